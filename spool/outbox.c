#include "spool/outbox.h"

#include <stdint.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "spool/state.h"

#define OUTBOX_BATCH	256

struct flush {
	struct audit	*au;
	int		 failed;
};

static int
append_one(void *arg, int64_t id, const char *event, const char *fields)
{
	struct flush *f = arg;
	json_error_t err;
	json_t *o;

	if ((o = json_loads(fields, 0, &err)) == NULL || !json_is_object(o)) {
		/* Written by us; unreadable means a damaged database. Keep it
		 * in the trail rather than drop it. */
		log_warnx("audit outbox record %lld is not a JSON object; "
		    "appending it as text", (long long)id);
		json_decref(o);
		o = json_pack("{s:s}", "unparsed", fields);
	}
	if (o != NULL)
		json_object_set_new(o, "outbox", json_integer(id));
	if (audit_emit(f->au, event, o) == -1) {
		f->failed = 1;
		return -1;
	}
	return 0;
}

int
outbox_flush(struct state *st, struct audit *au)
{
	struct flush f;
	int64_t last;
	int n, total = 0;

	for (;;) {
		f.au = au;
		f.failed = 0;
		audit_defer(au);
		n = state_outbox_read(st, OUTBOX_BATCH, append_one, &f, &last);
		/* durable in the trail before they leave the outbox */
		if (audit_sync(au) == -1)
			return -1;
		if (n > 0 && state_outbox_delete(st, last) == -1)
			return -1;
		if (n == -1 || f.failed) {
			log_warnx("audit outbox: records wait for the next pass "
			    "(the audit trail could not be written)");
			return -1;
		}
		total += n;
		if (n < OUTBOX_BATCH)
			return total;
	}
}
