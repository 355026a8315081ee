/*
 * uploader.h - the uploader role: the only process with S3 credentials.
 * Takes accepted files from spool/ready, stores them (store.h), records the
 * stored object, and only then removes its spool copy (invariant 2).
 */
#ifndef SLUICE_UPLOADER_H
#define SLUICE_UPLOADER_H

#include "policy/config.h"

#define UPLOAD_BACKOFF_BASE_MS	1000
#define UPLOAD_BACKOFF_CAP_MS	20000

/* Runs until SIGTERM/SIGINT. Returns the exit status. */
int uploader_run(const struct config *cfg);

#endif
