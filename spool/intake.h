/*
 * intake.h - the intake role (no network, no S3 credentials): judges every
 * received file and moves it into spool/ready (accepted) or quarantine/
 * (rejected). Today's rule: a closed, fsynced write handle is complete, and
 * the object key is fixed here from the partner's template. Signature
 * verification and further completion rules plug in here.
 */
#ifndef SLUICE_INTAKE_H
#define SLUICE_INTAKE_H

#include "policy/config.h"

/* Runs until SIGTERM/SIGINT. Returns the exit status. */
int intake_run(const struct config *cfg);

/* Shared by the roles: 1 once SIGTERM/SIGINT arrived (set by role_signals). */
extern volatile int role_quit;
void role_signals(void);
/* Sleeps up to ms, returning early on a signal. */
void role_sleep(int ms);

#endif
