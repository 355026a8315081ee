/*
 * intake.h - the intake role (no network, no S3 credentials): judges every
 * received file against its partner's completion rules (policy/completion.h)
 * and OpenPGP signature policy (spool/verify.h), fixes its object key, and
 * moves it into spool/ready (accepted) or quarantine/<partner>/ (rejected,
 * with a .reason file). The design (waiting files, temp names followed by
 * inode, sidecars, timeouts) is described at the top of spool/intake.c.
 */
#ifndef SLUICE_INTAKE_H
#define SLUICE_INTAKE_H

#include "policy/config.h"

/* Runs until SIGTERM/SIGINT. Returns the exit status. */
int intake_run(const struct config *cfg);

#endif
