/*
 * mpstate.c - the uploader's tables in the state database (schema in
 * spool/state.c): uploads (per file: the key it is stored at, the checksum
 * S3 reports for it, and while a multipart upload runs its id and part size)
 * and parts (the parts S3 confirmed). Each call is one statement or one
 * transaction on the caller's connection.
 */
#include "uploader/uploader.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"

static sqlite3_stmt *
mp_prep(struct state *st, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(state_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
		log_warnx("state: %s", sqlite3_errmsg(state_db(st)));
		return NULL;
	}
	return s;
}

static int
mp_done(struct state *st, sqlite3_stmt *s, const char *what)
{
	int rc = 0;

	if (sqlite3_step(s) != SQLITE_DONE) {
		log_warnx("state: %s: %s", what, sqlite3_errmsg(state_db(st)));
		rc = -1;
	}
	sqlite3_finalize(s);
	return rc;
}

static void
text(sqlite3_stmt *s, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	xstrlcpy(dst, t ? (const char *)t : "", len);
}

int
mp_load(struct state *st, int64_t file_id, struct mp_saved *m)
{
	sqlite3_stmt *s;
	struct mp_part *np;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if ((s = mp_prep(st, "SELECT object_key, upload_id, part_size FROM "
	    "uploads WHERE file_id = ? AND upload_id != ''")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		text(s, 0, m->key, sizeof(m->key));
		text(s, 1, m->upload_id, sizeof(m->upload_id));
		m->part_size = sqlite3_column_int64(s, 2);
		rc = 1;
	}
	sqlite3_finalize(s);
	if (rc != 1)
		return rc;
	if ((s = mp_prep(st, "SELECT part, etag, checksum FROM parts WHERE "
	    "file_id = ? ORDER BY part")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if ((np = reallocarray(m->parts, m->nparts + 1,
		    sizeof(*np))) == NULL) {
			rc = -1;
			break;
		}
		m->parts = np;
		memset(&np[m->nparts], 0, sizeof(*np));
		np[m->nparts].number = sqlite3_column_int(s, 0);
		text(s, 1, np[m->nparts].etag, sizeof(np->etag));
		text(s, 2, np[m->nparts].checksum, sizeof(np->checksum));
		m->nparts++;
	}
	sqlite3_finalize(s);
	return rc;
}

void
mp_saved_free(struct mp_saved *m)
{
	free(m->parts);
	m->parts = NULL;
	m->nparts = 0;
}

int
mp_begin(struct state *st, int64_t file_id, const char *key,
    const char *upload_id, int64_t part_size, int nparts)
{
	sqlite3_stmt *s;

	if ((s = mp_prep(st, "DELETE FROM parts WHERE file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if (mp_done(st, s, "parts") != 0)
		return -1;
	if ((s = mp_prep(st, "INSERT OR REPLACE INTO uploads (file_id, "
	    "object_key, upload_id, part_size, nparts, checksum, created_ms) "
	    "VALUES (?,?,?,?,?,'',?)")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, upload_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, part_size);
	sqlite3_bind_int(s, 5, nparts);
	sqlite3_bind_int64(s, 6, now_ms());
	return mp_done(st, s, "uploads");
}

int
mp_part_save(struct state *st, int64_t file_id, const struct mp_part *p)
{
	sqlite3_stmt *s;

	if ((s = mp_prep(st, "INSERT OR REPLACE INTO parts (file_id, part, "
	    "etag, checksum) VALUES (?,?,?,?)")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_int(s, 2, p->number);
	sqlite3_bind_text(s, 3, p->etag, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, p->checksum, -1, SQLITE_STATIC);
	return mp_done(st, s, "parts");
}

int
mp_forget(struct state *st, int64_t file_id)
{
	sqlite3_stmt *s;

	if ((s = mp_prep(st, "DELETE FROM parts WHERE file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if (mp_done(st, s, "parts") != 0)
		return -1;
	if ((s = mp_prep(st, "UPDATE uploads SET upload_id = '' WHERE "
	    "file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	return mp_done(st, s, "uploads");
}

int
mp_record_stored(struct state *st, int64_t file_id, const char *key,
    const char *checksum, int nparts)
{
	sqlite3_stmt *s;

	if (mp_forget(st, file_id) != 0)
		return -1;
	if ((s = mp_prep(st, "INSERT OR REPLACE INTO uploads (file_id, "
	    "object_key, upload_id, part_size, nparts, checksum, created_ms) "
	    "VALUES (?,?,'',0,?,?,?)")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, nparts);
	sqlite3_bind_text(s, 4, checksum, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, now_ms());
	return mp_done(st, s, "uploads");
}

int
mp_upload_known(struct state *st, const char *upload_id)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = mp_prep(st, "SELECT 1 FROM uploads WHERE upload_id = ?")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, upload_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return rc;
}

int
mp_expected(struct state *st, int64_t file_id, char *checksum, size_t len)
{
	sqlite3_stmt *s;
	int rc = 0;

	checksum[0] = '\0';
	if ((s = mp_prep(st, "SELECT checksum FROM uploads WHERE file_id = ?")) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		text(s, 0, checksum, len);
		rc = checksum[0] != '\0';
	}
	sqlite3_finalize(s);
	return rc;
}

int
mp_exec(struct state *st, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(state_db(st), sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("state: %s: %s", sql, err ? err : "error");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}
