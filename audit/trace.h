/*
 * trace.h - answering an examiner from the audit trail: the story of one
 * file (`sluice audit trace`) and the records of a period (`sluice audit
 * export`), read across segments.
 *
 * The trail is read as it lies on disk: the sealed segments in
 * cfg->audit_segments_dir (files audit-*.jsonl, in name order, which is seq
 * order) followed by the live file cfg->audit_path. Neither command
 * appends to the trail or needs the writer. trace does not check chains or
 * MACs (that is `sluice audit verify`, and export's summary); it only finds
 * records, so it maps each file and parses with jansson only the lines that
 * hold the needle (the fid, the sha256 or the path as JSON writes them).
 */
#ifndef SLUICE_AUDIT_TRACE_H
#define SLUICE_AUDIT_TRACE_H

#include <stdint.h>
#include <stdio.h>

/* One file of the trail, mapped read-only (map NULL when empty). */
struct trail_file {
	char		*path;		/* owned */
	const char	*name;		/* its last component, points into path */
	const char	*map;		/* owned mapping of maplen bytes */
	size_t		 maplen;
	size_t		 len;		/* up to and with its last newline */
};

struct trail {
	struct trail_file *f;		/* owned; segments, then the live file */
	size_t		 n;
};

/*
 * Lists and maps the trail: every audit-*.jsonl in segdir (may be NULL or
 * missing) in name order, then live (may be missing). Only whole lines are
 * mapped (a torn last line of the live file is left out). 0, or -1 (logged,
 * naming the file) when a file exists but cannot be read; *t is then empty.
 */
int trail_open(const char *segdir, const char *live, struct trail *t);
/* Unmaps and frees what trail_open made; t itself is the caller's. */
void trail_close(struct trail *t);

/* Exit codes of trace (and of the sluice commands). */
#define TRACE_COMPLETE	0	/* every story complete */
#define TRACE_GAP	1	/* at least one story has a gap */
#define TRACE_ERROR	2	/* usage or I/O error */
#define TRACE_NOTFOUND	3	/* no file matches the query */

/*
 * Tells the story of every file the query names: a fid (32 hex), a sha256
 * (64 hex) or PARTNER:PATH, each story in trail order (newest last), as
 * text or (json) one JSON document, to out. Returns one of TRACE_*.
 */
int audit_trace(const struct trail *t, const char *query, int json, FILE *out);

/*
 * RFC 3339 (2026-11-22T03:04:05[.123456](Z|+01:00)) or YYYY-MM-DD
 * (midnight UTC) to microseconds since the epoch. 0 or -1.
 */
int audit_time_parse(const char *s, int64_t *us);

/*
 * Writes the records whose ts is in [from_us, to_us), and (partner not
 * NULL) whose partner is that one, to out: as written (JSON Lines) or, with
 * csv, as CSV with a header (columns: seq, ts, host, event, partner,
 * session, remote, fid, path, size, sha256, key, reason, record; RFC 4180
 * quoting, CRLF line ends). Files whose first and last records lie outside
 * the period are skipped. The index of each file read is stored in
 * used[0..*nused) (used has t->n slots). Returns the number of records
 * written, or -1 (logged) on an output error.
 */
int64_t audit_export(const struct trail *t, int64_t from_us, int64_t to_us,
    const char *partner, int csv, FILE *out, size_t *used, size_t *nused);

/* Writes s (n bytes) as one CSV field, quoted when it must be. */
void csv_field(FILE *out, const char *s, size_t n);

/*
 * The commands: argv[0] is "trace" or "export"; cfgpath is the -c given
 * before the command (a -c after it wins). Exit codes as above.
 */
int audit_trace_cmd(int argc, char **argv, const char *cfgpath);
int audit_export_cmd(int argc, char **argv, const char *cfgpath);

#endif
