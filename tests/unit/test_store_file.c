/*
 * test_store_file.c - the file:// store: stores with intermediate
 * directories, is idempotent for the same bytes, follows store.collision for
 * different bytes at the same key (suffix: the first free or identical
 * KEY.N; reject: refused; version: as suffix), refuses unsafe keys and
 * symlinked directories, and leaves no temp files behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "uploader/store.h"

struct fx {
	char			 root[64];	/* holds store/ and src files */
	char			 dir[96];	/* the store directory */
	struct store_config	 cfg;
	struct store		*st;
	int			 nsrc;
};

static int
rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	umask(022);
	snprintf(f->root, sizeof(f->root), "%s", "/tmp/test_store_file.XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/store", f->root);
	if (mkdir(f->dir, 0750) != 0)
		return -1;
	f->cfg.kind = STORE_FILE;
	f->cfg.dir = f->dir;
	f->cfg.url = "file:///tmp/x";
	if ((f->st = store_open(&f->cfg, NULL)) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->st);
	rm_rf(f->root);
	free(f);
	return 0;
}

/* A spooled file with these bytes: fd open for reading, hex SHA-256 in sha. */
static int
src(struct fx *f, const char *data, size_t len, char sha[SHA256_HEX])
{
	char path[128];
	uint8_t d[SHA256_LEN];
	int fd;

	snprintf(path, sizeof(path), "%s/src%d", f->root, f->nsrc++);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(sha256_buf(data, len, d), 0);
	hex_encode(d, sizeof(d), sha);
	return fd;
}

static void
put(struct fx *f, const char *key, int fd, int64_t size, const char *sha,
    struct put_result *res)
{
	struct put_request req = { 0 };

	req.key = key;
	req.fd = fd;
	req.size = size;
	req.sha256 = sha;
	store_put(f->st, &req, res);
}

static void
assert_content(struct fx *f, const char *key, const char *want)
{
	char path[512], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, key);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_memory_equal(buf, want, strlen(want));
}

/* No ".sluice-tmp." names anywhere under dir. */
static void
assert_no_temp(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s' -name '.sluice-tmp.*')\"",
	    dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_stores(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha[SHA256_HEX], path[256];
	struct stat st;
	const char *data = "hello, bank\n";
	int fd = src(f, data, strlen(data), sha);

	put(f, "acme/in/2026/report.csv", fd, (int64_t)strlen(data), sha, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 0);
	assert_string_equal(res.error, "");
	assert_content(f, "acme/in/2026/report.csv", data);
	snprintf(path, sizeof(path), "%s/acme/in", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_no_temp(f->dir);

	/* An empty file is an object too. */
	close(fd);
	fd = src(f, "", 0, sha);
	put(f, "acme/empty", fd, 0, sha, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_content(f, "acme/empty", "");
	close(fd);
}

static void
test_idempotent(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha[SHA256_HEX];
	const char *data = "same bytes twice";
	int fd = src(f, data, strlen(data), sha);
	int fd2;

	put(f, "p/same.txt", fd, (int64_t)strlen(data), sha, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 0);
	put(f, "p/same.txt", fd, (int64_t)strlen(data), sha, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 1);
	/* A second spooled copy of the same bytes, too. */
	fd2 = src(f, data, strlen(data), sha);
	put(f, "p/same.txt", fd2, (int64_t)strlen(data), sha, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 1);
	assert_content(f, "p/same.txt", data);
	assert_no_temp(f->dir);
	close(fd);
	close(fd2);
}

static void
test_collision_suffix(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha1[SHA256_HEX], sha2[SHA256_HEX], sha3[SHA256_HEX];
	char sha4[SHA256_HEX], path[256];
	int fd1 = src(f, "first version", 13, sha1);
	int fd2 = src(f, "second version", 14, sha2);
	int fd3 = src(f, "third version!", 14, sha3);	/* same size as fd2 */
	int fd4 = src(f, "x", 1, sha4);

	/* collision: suffix is the default (0). */
	assert_int_equal(f->cfg.collision, COLLISION_SUFFIX);
	put(f, "p/x.dat", fd1, 13, sha1, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_string_equal(res.key, "p/x.dat");
	put(f, "p/x.dat", fd2, 14, sha2, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 0);
	assert_string_equal(res.key, "p/x.dat.1");
	put(f, "p/x.dat", fd3, 14, sha3, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_string_equal(res.key, "p/x.dat.2");
	assert_content(f, "p/x.dat", "first version");
	assert_content(f, "p/x.dat.1", "second version");
	assert_content(f, "p/x.dat.2", "third version!");
	/* A repeat finds its identical copy at its suffix: no .3. */
	put(f, "p/x.dat", fd3, 14, sha3, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 1);
	assert_string_equal(res.key, "p/x.dat.2");
	put(f, "p/x.dat", fd1, 13, sha1, &res);
	assert_int_equal(res.existed, 1);
	assert_string_equal(res.key, "p/x.dat");
	snprintf(path, sizeof(path), "%s/p/x.dat.3", f->dir);
	assert_int_equal(access(path, F_OK), -1);
	/* A directory or a symlink where the object would go is different. */
	put(f, "p", fd4, 1, sha4, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_string_equal(res.key, "p.1");
	assert_content(f, "p.1", "x");
	snprintf(path, sizeof(path), "%s/lnk", f->dir);
	assert_int_equal(symlink("p.1", path), 0);
	put(f, "lnk", fd4, 1, sha4, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 0);
	assert_string_equal(res.key, "lnk.1");
	assert_no_temp(f->dir);
	close(fd1);
	close(fd2);
	close(fd3);
	close(fd4);
}

static void
test_collision_suffix_too_long(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha1[SHA256_HEX], sha2[SHA256_HEX], key[300];
	int fd1 = src(f, "one", 3, sha1);
	int fd2 = src(f, "two", 3, sha2);

	memset(key, 'n', 255);	/* a name of NAME_MAX bytes: no room for .1 */
	key[255] = '\0';
	put(f, key, fd1, 3, sha1, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	put(f, key, fd2, 3, sha2, &res);
	assert_int_equal(res.outcome, PUT_FATAL);
	assert_non_null(strstr(res.error, "longer than 255 bytes"));
	assert_no_temp(f->dir);
	close(fd1);
	close(fd2);
}

static void
test_collision_reject(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha1[SHA256_HEX], sha2[SHA256_HEX], path[256];
	int fd1 = src(f, "first version", 13, sha1);
	int fd2 = src(f, "second version", 14, sha2);

	f->cfg.collision = COLLISION_REJECT;
	put(f, "p/x.dat", fd1, 13, sha1, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	put(f, "p/x.dat", fd2, 14, sha2, &res);
	assert_int_equal(res.outcome, PUT_FATAL);
	assert_int_equal(res.existed, 0);
	assert_string_equal(res.error, "a different object already exists at "
	    "p/x.dat (collision: reject)");
	assert_content(f, "p/x.dat", "first version");
	snprintf(path, sizeof(path), "%s/p/x.dat.1", f->dir);
	assert_int_equal(access(path, F_OK), -1);
	/* The same bytes again are still "stored". */
	put(f, "p/x.dat", fd1, 13, sha1, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_int_equal(res.existed, 1);
	/* A directory where the object would go is different as well. */
	put(f, "p", fd2, 14, sha2, &res);
	assert_int_equal(res.outcome, PUT_FATAL);
	assert_non_null(strstr(res.error, "collision: reject"));
	assert_no_temp(f->dir);
	close(fd1);
	close(fd2);
}

static void
test_collision_version(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha1[SHA256_HEX], sha2[SHA256_HEX];
	int fd1 = src(f, "first version", 13, sha1);
	int fd2 = src(f, "second version", 14, sha2);

	/* A directory keeps no versions: version behaves as suffix. */
	store_close(f->st);
	f->cfg.collision = COLLISION_VERSION;
	assert_non_null(f->st = store_open(&f->cfg, NULL));
	put(f, "v/x.dat", fd1, 13, sha1, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	put(f, "v/x.dat", fd2, 14, sha2, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	assert_string_equal(res.key, "v/x.dat.1");
	assert_content(f, "v/x.dat", "first version");
	assert_content(f, "v/x.dat.1", "second version");
	assert_no_temp(f->dir);
	close(fd1);
	close(fd2);
}

static void
test_unsafe_keys(void **state)
{
	static const char *bad[] = {
		"../escape", "a/../../escape", "a/..", "..", "/abs/path",
		"a//b", "a/./b", ".", "a/", "", ".sluice-tmp.x",
	};
	struct fx *f = *state;
	struct put_result res;
	char sha[SHA256_HEX], path[128];
	size_t i;
	int fd = src(f, "x", 1, sha);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(f, bad[i], fd, 1, sha, &res);
		assert_int_equal(res.outcome, PUT_FATAL);
		assert_non_null(strstr(res.error, "not a relative path"));
	}
	snprintf(path, sizeof(path), "%s/escape", f->root);
	assert_int_equal(access(path, F_OK), -1);
	/* Dots inside a name are fine. */
	put(f, "a/..b/c..", fd, 1, sha, &res);
	assert_int_equal(res.outcome, PUT_STORED);
	close(fd);
}

static void
test_symlink_dir(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha[SHA256_HEX], link[128], outside[128];
	int fd = src(f, "x", 1, sha);

	snprintf(outside, sizeof(outside), "%s/outside", f->root);
	snprintf(link, sizeof(link), "%s/evil", f->dir);
	assert_int_equal(mkdir(outside, 0700), 0);
	assert_int_equal(symlink(outside, link), 0);
	put(f, "evil/f", fd, 1, sha, &res);
	assert_int_equal(res.outcome, PUT_FATAL);
	snprintf(outside, sizeof(outside), "%s/outside/f", f->root);
	assert_int_equal(access(outside, F_OK), -1);
	close(fd);
}

static void
test_bad_spool(void **state)
{
	struct fx *f = *state;
	struct put_result res;
	char sha[SHA256_HEX], other[SHA256_HEX], path[256];
	int fd = src(f, "abcdef", 6, sha);
	int fd2 = src(f, "zzz", 3, other);

	/* Bytes that do not hash to the recorded SHA-256: nothing stored. */
	put(f, "q/wrong", fd, 6, other, &res);
	assert_int_equal(res.outcome, PUT_RETRY);
	assert_non_null(strstr(res.error, "does not match"));
	snprintf(path, sizeof(path), "%s/q/wrong", f->dir);
	assert_int_equal(access(path, F_OK), -1);
	/* Shorter than the recorded size. */
	put(f, "q/short", fd2, 10, other, &res);
	assert_int_equal(res.outcome, PUT_FATAL);
	assert_non_null(strstr(res.error, "shorter"));
	/* Not a SHA-256 at all. */
	put(f, "q/nosha", fd, 6, "abc", &res);
	assert_int_equal(res.outcome, PUT_FATAL);
	assert_no_temp(f->dir);
	close(fd);
	close(fd2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collision_suffix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collision_suffix_too_long, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_collision_reject, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collision_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_spool, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
