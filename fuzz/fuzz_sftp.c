/*
 * fuzz_sftp.c - libFuzzer target for the SFTP v3 engine (server/sftp.c).
 *
 * Each input is a byte stream from a client, fed after a fixed INIT to an
 * engine rooted in a private temp directory (emptied after every input), in
 * pieces whose sizes come from the input itself so that packet reassembly is
 * exercised too. Replies are drained as a session would.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_sftp -close_fd_mask=2 fuzz/corpus/sftp   (logs to stderr)
 * With -DSLUICE_FUZZ_REPLAY (no -fsanitize=fuzzer) it is a plain program
 * that replays the files and directories named on its command line: the
 * ctest fuzz.sftp_replay over fuzz/corpus/sftp/ (see fuzz/replay.h and
 * fuzz/build.sh).
 *
 * Seeds in fuzz/corpus/sftp/ are request streams without INIT (one file per
 * scenario: upload, listing, rename, traversal, bad handles...), made with
 * the python snippet at the end of this file.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "policy/config.h"
#include "server/sftp.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	top[64];
static int	rootfd = -1;

static int
hook_complete(void *arg, const struct sftp_file_info *fi)
{
	/* refuse every other file so both CLOSE outcomes are reached */
	return fi->size % 2 == 0 ? 0 : -1;
}

static void
hook_event(void *arg, const char *op, const char *path, const char *path2,
    uint32_t status, const char *reason)
{
	/* touch the strings so a dangling pointer shows up under ASan */
	volatile size_t n = strlen(op) + (path ? strlen(path) : 0) +
	    (path2 ? strlen(path2) : 0) + (reason ? strlen(reason) : 0);

	(void)n;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0;	/* keep the root itself */
	if (flag == FTW_D || flag == FTW_DP)
		chmod(path, 0700);
	return remove(path);
}

static void
setup_once(void)
{
	char root[128];

	if (rootfd != -1)
		return;
	log_init("fuzz", 0);
	snprintf(top, sizeof(top), "/tmp/fuzz_sftp.XXXXXX");
	if (mkdtemp(top) == NULL)
		abort();
	snprintf(root, sizeof(root), "%s", top);
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		abort();
}

static void
drain(struct sftp *s)
{
	const uint8_t *o;
	size_t n;

	o = sftp_output(s, &n);
	if (n > 0) {
		volatile uint8_t sink = o[0] ^ o[n - 1];

		(void)sink;
		sftp_output_consume(s, n);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t init[] = { 0, 0, 0, 5, 1, 0, 0, 0, 3 };
	struct sftp_params p;
	struct sftp *s;
	size_t off = 0, chunk;
	unsigned seed = size > 0 ? data[0] : 0;

	setup_once();
	memset(&p, 0, sizeof(p));
	p.rootfd = rootfd;
	p.max_handles = 8;
	/* data[0] also picks the role and limits: all, dropbox, or list+read
	 * (so refusals are reached), and a small max_file_size */
	switch (seed % 3) {
	case 0:	p.perms = PERM_ALL; break;
	case 1: p.perms = 0; break;
	default: p.perms = PERM_LIST | PERM_READ; break;
	}
	p.max_file_size = (seed & 0x40) ? 64 : 0;
	p.min_free_space = (seed & 0x20) ? 1 : 0;
	p.hooks.file_complete = hook_complete;
	p.hooks.event = hook_event;
	if ((s = sftp_new(&p)) == NULL)
		return 0;
	if (sftp_input(s, init, sizeof(init)) == 0) {
		while (off < size) {
			/* chunk sizes 1..4096 from a small LCG on data[0] */
			seed = seed * 1103515245u + 12345u;
			chunk = (seed >> 16) % 4096 + 1;
			if (chunk > size - off)
				chunk = size - off;
			if (sftp_input(s, data + off, chunk) == -1)
				break;
			drain(s);
			off += chunk;
		}
	}
	drain(s);
	sftp_free(s);
	nftw(top, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
static void
replay_done(void)
{
	if (rootfd != -1) {
		close(rootfd);
		rmdir(top);
	}
}

int
main(int argc, char **argv)
{
	int rc = fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);

	replay_done();
	return rc;
}
#endif

/*
 * The first byte of an input also chooses the role (see above), so seeds
 * keep the 'upload' scenario and friends meaningful under every role.
 *
 * Seed generator (run from the repository root):
 *
 * python3 - <<'EOF'
 * import struct, os
 * d = 'fuzz/corpus/sftp'; os.makedirs(d, exist_ok=True)
 * def s(b): b = b.encode() if isinstance(b, str) else b; return struct.pack('>I', len(b)) + b
 * def pkt(t, i, body=b''): b = bytes([t]) + struct.pack('>I', i) + body; return struct.pack('>I', len(b)) + b
 * H = b'\0\0\0\1'   # the first handle: slot 0, generation 1
 * u32 = lambda v: struct.pack('>I', v); u64 = lambda v: struct.pack('>Q', v)
 * seeds = {
 *  'upload': pkt(16, 1, s('.')) + pkt(3, 2, s('/f.csv') + u32(0x1a) + u32(0)) +
 *            pkt(6, 3, s(H) + u64(0) + s('a,b\n')) + pkt(6, 4, s(H) + u64(4) + s('c,d\n')) +
 *            pkt(4, 5, s(H)) + pkt(17, 6, s('/f.csv')),
 *  'outoforder': pkt(3, 1, s('o') + u32(0x1a) + u32(0)) + pkt(6, 2, s(H) + u64(8) + s('BBBB')) +
 *            pkt(6, 3, s(H) + u64(0) + s('AAAAAAAA')) + pkt(6, 4, s(H) + u64(2) + s('x')) + pkt(4, 5, s(H)),
 *  'listing': pkt(14, 1, s('/d') + u32(0)) + pkt(11, 2, s('/')) + pkt(12, 3, s(H)) + pkt(12, 4, s(H)) + pkt(4, 5, s(H)),
 *  'rename': pkt(3, 1, s('a') + u32(0x1a) + u32(0)) + pkt(4, 2, s(H)) + pkt(18, 3, s('a') + s('b')) +
 *            pkt(200, 4, s('posix-rename@openssh.com') + s('b') + s('c')) + pkt(13, 5, s('c')),
 *  'traversal': pkt(3, 1, s('../x') + u32(0x1a) + u32(0)) + pkt(17, 2, s('/../../etc/passwd')) +
 *            pkt(14, 3, s('a/../../b') + u32(0)) + pkt(16, 4, s('../../..')),
 *  'handles': pkt(4, 1, s(b'\xff\xff\0\1')) + pkt(5, 2, s(b'\0\0\0\1') + u64(0) + u32(0xffffffff)) +
 *            pkt(6, 3, s(b'\0\0') + u64(1 << 63) + s('x')) + pkt(8, 4, s(b'')),
 *  'extended': b''.join(pkt(200, i, s(n) + a) for i, (n, a) in enumerate([
 *            ('limits@openssh.com', b''), ('statvfs@openssh.com', s('/')),
 *            ('expand-path@openssh.com', s('~/x')), ('hardlink@openssh.com', s('a') + s('b')),
 *            ('nope@example.com', b'')])),
 *  'setstat': pkt(3, 1, s('t') + u32(0x1a) + u32(0)) + pkt(4, 2, s(H)) +
 *            pkt(9, 3, s('t') + u32(0xf) + u64(0) + u32(0) + u32(0) + u32(0o777) + u32(1) + u32(2)) +
 *            pkt(9, 4, s('t') + u32(0x8) + u32(1) + u32(2)) + pkt(15, 5, s('t')) + pkt(19, 6, s('t')),
 *  'split_bad': pkt(99, 1) + struct.pack('>I', 3) + b'\x11\0\0',
 * }
 * for k, v in seeds.items(): open(os.path.join(d, k), 'wb').write(v)
 * EOF
 */
