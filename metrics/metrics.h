/*
 * metrics.h - the metrics role: Prometheus text at /metrics, /healthz and
 * /readyz over HTTP (libmicrohttpd) on config metrics.listen.
 *
 * It runs as the service user and holds no secret: no S3 credentials, no
 * keys, no message channel to another role. Every number is read:
 *   - files by state and the oldest accepted-not-stored file: sluice.db,
 *     opened read-only (spool/state.h state_open_ro);
 *   - sessions, logins, bans, files and bytes by partner and verdict,
 *     records: the live audit trail, followed (metrics/follow.h);
 *   - the last seal and the sealed segments: audit.segments_dir (a
 *     segment's mtime is the time its seal was written);
 *   - uploads, retries, errors by S3 code, the S3 latency histogram, the
 *     store's reachability and the credentials' validity and expiry: the
 *     uploader's run/uploader.metrics (uploader/umetrics.h);
 *   - every role up: the supervisor's run/roles.status (METRICS_ROLES_FILE:
 *     one "name up|down restarts" line per role, rewritten atomically when
 *     a role starts or dies);
 *   - the spool's free space: statvfs(state_dir).
 * The main thread gathers all of it every METRICS_REFRESH_MS into a
 * snapshot; the HTTP thread only copies the snapshot out, so a scrape costs
 * no query and a flood of scrapes cannot load the database.
 *
 * HTTP: GET and HEAD only (405 otherwise), no request body (413), one
 * polling thread, at most METRICS_MAX_CONN connections (4 per address),
 * 10 s connection timeout.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include "policy/config.h"

#define METRICS_ROLES_FILE	"roles.status"	/* in state_dir/run/ */
#define METRICS_REFRESH_MS	1000
#define METRICS_MAX_CONN	16
#define METRICS_STALE_S		30	/* uploader.metrics older: not ready */

/* Runs until SIGTERM. Exit status. */
int metrics_run(const struct config *cfg);

#endif
