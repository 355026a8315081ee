/*
 * uploader.h - the uploader role: the only process with S3 credentials.
 * Takes accepted files from spool/ready, stores them (store.h), records the
 * stored object, and only then removes (retention delete) or archives
 * (retention keep: state_dir/archive/<fid>, deleted after the period) its
 * spool copy (invariant 2). `workers` threads store files side by side, each
 * with its own database connection, audit handle and store.
 *
 * Also the operator commands on the queue (queue.c) and the tables the
 * uploader keeps beside the files table (mpstate.c).
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

/* mpstate.c. A saved multipart upload (parts malloc'd, mp_saved_free). */
struct mp_saved {
	char		 upload_id[1024];
	char		 key[1100];
	int64_t		 part_size;
	struct mp_part	*parts;
	size_t		 nparts;
};
/* 1 with a saved upload, 0 none, -1 error. */
int mp_load(struct state *, int64_t file_id, struct mp_saved *);
void mp_saved_free(struct mp_saved *);
int mp_begin(struct state *, int64_t file_id, const char *key,
    const char *upload_id, int64_t part_size, int nparts);
int mp_part_save(struct state *, int64_t file_id, const struct mp_part *);
int mp_forget(struct state *, int64_t file_id);
/* The file is stored at key; checksum is what the store reports for it. */
int mp_record_stored(struct state *, int64_t file_id, const char *key,
    const char *checksum, int nparts);
/* 1 if upload_id is one of ours in progress, 0 not, -1 error. */
int mp_upload_known(struct state *, const char *upload_id);
/* The recorded checksum of a stored file: 1 (filled), 0 none, -1 error. */
int mp_expected(struct state *, int64_t file_id, char *checksum, size_t len);
/* Runs SQL on the state connection (BEGIN/COMMIT...). 0 or -1. */
int mp_exec(struct state *, const char *sql);

#endif
