/*
 * keys.h - what sluice accepts as a partner's SSH public key (an
 * authorized_keys line): the key types, the RSA size floor and the line
 * syntax. Pure checks (libssh parses the key, nothing is read or logged), so
 * the config loader (policy/config.c) can call them and word the messages.
 */
#ifndef SLUICE_KEYS_H
#define SLUICE_KEYS_H

#include <stddef.h>

#define PUBKEY_RSA_MIN_BITS	2048

/*
 * Checks one authorized_keys line "TYPE BASE64 [COMMENT]" (leading blanks
 * allowed; options such as from= are refused). NULL if it is a key sluice
 * accepts, with *norm set to a malloc'd "TYPE BASE64" the caller frees;
 * else why, filled with the reason (it may quote the key type, never the
 * key) and *norm NULL.
 */
const char *pubkey_line_problem(const char *line, char **norm, char *why,
    size_t whylen);

/* 1 if an authorized_keys entry s looks like a key line (a known or
 * SSH-style key type, or several words), 0 if it looks like a file path. */
int pubkey_line_like(const char *s);

#endif
