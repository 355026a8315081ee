/*
 * test_janitor.c - spool/janitor.c: stored files leave the partner's view
 * after visible_for, and nothing else is ever touched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testtree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/util.h"
#include "policy/config.h"
#include "spool/janitor.h"
#include "spool/state.h"

struct env {
	char		 dir[64];
	char		 landing[PATH_MAX];	/* landing/acme */
	char		 auditp[PATH_MAX];
	struct partner	 partner;
	struct config	 cfg;
	struct state	*st;
	struct audit	*au;
};

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	xstrlcpy(e->dir, "/tmp/sluice-test-janitor-XXXXXX", sizeof(e->dir));
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(spool_init(e->dir), 0);
	xsnprintf(e->landing, sizeof(e->landing), "%s/landing/acme", e->dir);
	assert_int_equal(mkdir(e->landing, 0750), 0);
	xsnprintf(e->auditp, sizeof(e->auditp), "%s/audit.jsonl", e->dir);
	e->partner.name = "acme";
	e->partner.visible_for_s = 3600;
	e->cfg.state_dir = e->dir;
	e->cfg.partners = &e->partner;
	e->cfg.npartners = 1;
	assert_non_null(e->st = state_open(e->dir));
	assert_non_null(e->au = audit_open(e->auditp));
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	audit_close(e->au);
	state_close(e->st);
	assert_int_equal(testtree_remove(e->dir), 0);
	free(e);
	return 0;
}

/* A file at landing/acme/<rel> (mode), recorded as received with its
 * inode; stored stored_ago_s seconds ago when stored_ago_s >= 0. */
static int64_t
add(struct env *e, const char *rel, mode_t mode, int64_t stored_ago_s)
{
	struct file_rec r;
	struct stat st;
	char p[PATH_MAX];
	int fd;

	xsnprintf(p, sizeof(p), "%s/%s", e->landing, rel);
	assert_true((fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	assert_int_equal(write(fd, "data\n", 5), 5);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	memset(&r, 0, sizeof(r));
	assert_int_equal(random_id(r.fid, sizeof(r.fid)), 0);
	xstrlcpy(r.partner, "acme", sizeof(r.partner));
	xstrlcpy(r.path, rel, sizeof(r.path));
	xstrlcpy(r.sha256, "ab", sizeof(r.sha256));
	r.size = 5;
	r.received_ms = now_ms();
	r.landing_dev = (int64_t)st.st_dev;
	r.landing_ino = (int64_t)st.st_ino;
	assert_int_equal(state_insert(e->st, &r), 0);
	/* the spool's hard link, which the janitor must never touch */
	xsnprintf(p, sizeof(p), "%s/spool/incoming/%s", e->dir, r.fid);
	{
		char src[PATH_MAX];

		xsnprintf(src, sizeof(src), "%s/%s", e->landing, rel);
		assert_int_equal(link(src, p), 0);
	}
	if (stored_ago_s >= 0) {
		r.state = FS_STORED;
		r.stored_ms = now_ms() - stored_ago_s * 1000;
		assert_int_equal(state_update(e->st, &r, FS_RECEIVED), 0);
	}
	return r.id;
}

static int
exists(struct env *e, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	xsnprintf(p, sizeof(p), "%s/%s", e->landing, rel);
	return lstat(p, &st) == 0;
}

static int64_t
landing_ino(struct env *e, int64_t id)
{
	struct file_rec r;

	assert_int_equal(state_get(e->st, id, &r), 1);
	return r.landing_ino;
}

static int
audit_count(struct env *e, const char *needle)
{
	char line[8192];
	FILE *f = fopen(e->auditp, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

static void
test_expires_only_its_own_file(void **state)
{
	struct env *e = *state;
	char p[PATH_MAX], q[PATH_MAX], outside[PATH_MAX];
	struct file_rec r;
	struct stat st;
	int64_t old, fresh, unstored, replaced, reopened, planted;
	int fd;

	old = add(e, "old.csv", 0440, 7200);
	fresh = add(e, "fresh.csv", 0440, 60);
	unstored = add(e, "unstored.csv", 0440, -1);
	replaced = add(e, "replaced.csv", 0440, 7200);
	reopened = add(e, "reopened.csv", 0440, 7200);
	/* replaced: another file under the name (a re-upload by an owner) */
	xsnprintf(p, sizeof(p), "%s/replaced.csv", e->landing);
	xsnprintf(q, sizeof(q), "%s/keep", e->dir);
	assert_int_equal(rename(p, q), 0);
	assert_true((fd = open(p, O_WRONLY | O_CREAT, 0440)) >= 0);
	close(fd);
	/* reopened: the same inode, no longer accepted (mode 0600) */
	xsnprintf(p, sizeof(p), "%s/reopened.csv", e->landing);
	assert_int_equal(chmod(p, 0600), 0);
	/* planted: a symlink on the way to an outside file with the inode */
	xsnprintf(outside, sizeof(outside), "%s/outside", e->dir);
	assert_int_equal(mkdir(outside, 0750), 0);
	xsnprintf(p, sizeof(p), "%s/sub", e->landing);
	assert_int_equal(mkdir(p, 0750), 0);
	planted = add(e, "sub/x.csv", 0440, 7200);
	xsnprintf(q, sizeof(q), "%s/sub/x.csv", e->landing);
	{
		char o[PATH_MAX + 16];

		xsnprintf(o, sizeof(o), "%s/x.csv", outside);
		assert_int_equal(rename(q, o), 0);
		assert_int_equal(rmdir(p), 0);
		assert_int_equal(symlink(outside, p), 0);
	}

	assert_int_equal(janitor_pass(&e->cfg, e->st, e->au, now_ms()), 1);
	assert_false(exists(e, "old.csv"));
	assert_true(exists(e, "fresh.csv"));
	assert_true(exists(e, "unstored.csv"));
	assert_true(exists(e, "replaced.csv"));
	assert_true(exists(e, "reopened.csv"));
	xsnprintf(p, sizeof(p), "%s/x.csv", outside);
	assert_int_equal(stat(p, &st), 0);
	/* the spool keeps every copy */
	assert_int_equal(state_get(e->st, old, &r), 1);
	xsnprintf(p, sizeof(p), "%s/spool/incoming/%s", e->dir, r.fid);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(r.state, FS_STORED);
	/* handled rows are forgotten, the others stay pending */
	assert_int_equal(landing_ino(e, old), 0);
	assert_int_equal(landing_ino(e, replaced), 0);
	assert_int_equal(landing_ino(e, reopened), 0);
	assert_int_equal(landing_ino(e, planted), 0);
	assert_true(landing_ino(e, fresh) != 0);
	assert_true(landing_ino(e, unstored) != 0);
	assert_int_equal(audit_count(e, "file.expired_from_view"), 1);
	assert_int_equal(audit_count(e, "\"old.csv\""), 1);

	/* idle: nothing to do, nothing audited */
	assert_int_equal(janitor_pass(&e->cfg, e->st, e->au, now_ms()), 0);
	assert_int_equal(audit_count(e, "file.expired_from_view"), 1);
	/* later, the fresh one's window ends too */
	assert_int_equal(janitor_pass(&e->cfg, e->st, e->au,
	    now_ms() + 3600 * 1000), 1);
	assert_false(exists(e, "fresh.csv"));
	assert_true(exists(e, "unstored.csv"));
}

static void
test_window_and_interval(void **state)
{
	struct env *e = *state;

	e->partner.visible_for_s = 0;	/* gone as soon as stored */
	add(e, "now.csv", 0440, 0);
	assert_int_equal(janitor_pass(&e->cfg, e->st, e->au, now_ms()), 1);
	assert_false(exists(e, "now.csv"));

	e->partner.visible_for_s = 2;
	assert_int_equal(janitor_interval_ms(&e->cfg), 1000);
	e->partner.visible_for_s = 30;
	assert_int_equal(janitor_interval_ms(&e->cfg), 15000);
	e->partner.visible_for_s = 86400;
	assert_int_equal(janitor_interval_ms(&e->cfg), 60000);

	/* a tick runs a pass at once, then waits for the interval */
	e->partner.visible_for_s = 1;
	add(e, "t1.csv", 0440, 10);
	janitor_tick(&e->cfg, e->st, e->au);
	assert_false(exists(e, "t1.csv"));
	add(e, "t2.csv", 0440, 10);
	janitor_tick(&e->cfg, e->st, e->au);
	assert_true(exists(e, "t2.csv"));
	usleep(1100 * 1000);
	janitor_tick(&e->cfg, e->st, e->au);
	assert_false(exists(e, "t2.csv"));
}

static void
test_landing_dir_missing(void **state)
{
	struct env *e = *state;
	char p[PATH_MAX];
	int64_t id;

	id = add(e, "a.csv", 0440, 7200);
	xsnprintf(p, sizeof(p), "%s/a.csv", e->landing);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rmdir(e->landing), 0);
	assert_int_equal(janitor_pass(&e->cfg, e->st, e->au, now_ms()), 0);
	assert_int_equal(landing_ino(e, id), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expires_only_its_own_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_and_interval,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_landing_dir_missing,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
