/*
 * umetrics.h - the uploader's own numbers, published for the metrics role
 * (metrics/metrics.h) in state_dir/run/uploader.metrics: a small JSON
 * document rewritten atomically (temp file, rename) every UMETRICS_WRITE_MS
 * by the dispatcher. The metrics role only reads it: it needs no S3
 * credentials and no message channel to the uploader.
 *
 *   { "pid": 123, "started": 1700000000, "written": 1700000060,
 *     "attempts": 10, "stored": 8, "retries": 1, "held": 1,
 *     "errors": { "SlowDown": 1, "AccessDenied": 1 },
 *     "s3_request_seconds": { "le": [0.005, ...], "counts": [...],
 *                             "sum": 1.25, "count": 40 },
 *     "store": { "reachable": true, "error": "", "checked": 1700000055 },
 *     "credentials": { "valid": true, "source": "environment",
 *                      "expires": 0, "error": "" } }
 *
 * Counters start at zero when the uploader starts (Prometheus sees a reset).
 * errors: by S3 error code (the response's <Code>), "HTTP<status>" when the
 * store gave none, "Timeout" or "Network" when no answer came, "Local" for
 * a spool problem; at most UMETRICS_MAX_CODES codes, the rest as "Other".
 *
 * store.reachable comes from a probe thread with its own store handle: a
 * HEAD of <prefix>.sluice-readyz-probe every UMETRICS_PROBE_MS. Found, not
 * found (404) or refused (any 4xx: without s3:ListBucket a missing key
 * answers 403) all prove the store answers; 5xx, a timeout or no
 * connection do not. credentials.valid: the chain has credentials that have
 * not expired, and no upload since the last success failed with an
 * authentication error (InvalidAccessKeyId, SignatureDoesNotMatch,
 * ExpiredToken, InvalidToken, or the credentials-expired hold).
 *
 * Thread-safe: workers call umetrics_outcome and the S3 client
 * umetrics_request from any thread.
 */
#ifndef SLUICE_UMETRICS_H
#define SLUICE_UMETRICS_H

#include "policy/config.h"
#include "uploader/store.h"

#define UMETRICS_FILE		"uploader.metrics"	/* in state_dir/run/ */
#define UMETRICS_WRITE_MS	2000
#define UMETRICS_PROBE_MS	15000
#define UMETRICS_MAX_CODES	32
#define UMETRICS_NBUCKETS	12

/* The histogram's upper bounds in seconds (exposed for the tests). */
extern const double umetrics_bounds[UMETRICS_NBUCKETS];

/* Starts the probe thread (its own store, borrowing cfg, which must
 * outlive umetrics_stop). 0 or -1 (logged; the uploader runs on). */
int umetrics_start(const struct config *cfg);
/* Stops and joins the probe thread and writes the file a last time. */
void umetrics_stop(void);
/* One HTTP exchange with the store took seconds. */
void umetrics_request(double seconds);
/* One upload attempt ended with res. */
void umetrics_outcome(const struct put_result *res);
/* Writes the file when UMETRICS_WRITE_MS passed since the last write. */
void umetrics_tick(void);

#endif
