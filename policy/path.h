/*
 * path.h - normalising a client's SFTP path to a path beneath the partner's
 * root. Pure string work; the open itself is confined again by openat2().
 */
#ifndef SLUICE_PATH_H
#define SLUICE_PATH_H

#include <stddef.h>

/*
 * Normalises the client path `in` (absolute, or relative to the root "/")
 * into `out` relative to the root, without leading or trailing '/':
 * "/" and "." become ".", "/a//b/./c/" becomes "a/b/c", "a/../b" becomes "b".
 * Returns 0, or a negative value:
 *   PATH_ESCAPE   a ".." would climb above the root
 *   PATH_INVALID  NUL inside len, a control character, a backslash, invalid
 *                 UTF-8, a component over 255 bytes
 *   PATH_TOOLONG  the result does not fit in outlen (or is over 4095 bytes)
 * `in` is len bytes, not NUL-terminated (it comes from the wire).
 */
#define PATH_ESCAPE	(-1)
#define PATH_INVALID	(-2)
#define PATH_TOOLONG	(-3)
/* flags: PATH_CLAMP makes ".." at the root stay at the root (as a chroot
 * does), for REALPATH only; every file operation passes 0. */
#define PATH_CLAMP	0x1
int path_normalize(const char *in, size_t len, int flags, char *out,
    size_t outlen);

/* The client-visible absolute form of a normalised path: "." -> "/",
 * "a/b" -> "/a/b". 0 or -1 on truncation. */
int path_to_client(const char *norm, char *out, size_t outlen);

/*
 * 1 if the normalised path norm (path_normalize's output) is dir or lies
 * beneath it, 0 if not (also for a NULL or empty dir). dir is a normalised
 * relative path too ("receipts"). Used for the read-only receipts folder
 * (spool/delivery.h): the SFTP engine refuses every change there.
 */
int path_under(const char *norm, const char *dir);

#endif
