/*
 * uploader.h - the uploader role: the only process with S3 credentials.
 * Takes accepted files from spool/ready, stores them (store.h), records the
 * stored object, and only then removes (retention delete) or archives
 * (retention keep: state_dir/archive/<fid>, deleted after the period) its
 * spool copy (invariant 2). `workers` threads store files side by side, each
 * with its own database connection, audit handle and store.
 *
 * Also the operator commands on the queue (queue.c). Its multipart progress
 * is kept in the state database (state_upload_* in spool/state.h).
 */
#ifndef SLUICE_UPLOADER_H
#define SLUICE_UPLOADER_H

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "spool/state.h"
#include "uploader/store.h"

#define UPLOAD_BACKOFF_BASE_MS	1000
#define UPLOAD_BACKOFF_CAP_MS	20000

/* Runs until SIGTERM/SIGINT. Returns the exit status. */
int uploader_run(const struct config *cfg);

/*
 * `sluice queue list|retry|hold ...` and `sluice reconcile`: argv holds
 * the words after the command (options included); cfgpath is the -c given
 * before the command (or the default). Exit status.
 */
int queue_main(int argc, char **argv, const char *cfgpath);
int reconcile_main(int argc, char **argv, const char *cfgpath);
/*
 * The same with a configuration already loaded (borrowed), as the control
 * role runs them (control/control.h): -c is refused, and op (NULL: the
 * invoking user) is the operator the queue.* and reconcile.run records
 * name.
 */
int queue_run(const struct config *cfg, const char *op, int argc,
    char **argv);
int reconcile_run(const struct config *cfg, const char *op, int argc,
    char **argv);

#endif
