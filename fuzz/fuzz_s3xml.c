/*
 * fuzz_s3xml.c - libFuzzer target for what the S3 client reads from a
 * store's replies (uploader/s3*.c, read with uploader/s3xml.c: error
 * bodies' Code and Message, InitiateMultipartUpload's UploadId, ListParts,
 * CompleteMultipartUpload's ETag, ListMultipartUploads in the stale-upload
 * sweep, and the headers beside them). It goes through the public functions (store_put,
 * store_abort_stale), so it keeps working whichever parser s3.c uses:
 * libcurl's curl_easy_setopt, curl_easy_perform and curl_easy_getinfo are
 * wrapped at link time (-Wl,--wrap, see fuzz/build.sh and
 * tests/CMakeLists.txt) and every request is answered from the input.
 *
 * Input: a mode byte (0 a small PUT, 1 a multipart upload resumed from a
 * saved one, so ListParts is read, 2 a fresh multipart upload, 3 the
 * stale-upload sweep), then replies, each: status (index into a table),
 * header flags, a 16-bit body length and the body. When the replies run
 * out a request fails as a bad certificate would (not retried), so every
 * input ends quickly. Seeds are moto's real replies (fuzz/make_seeds.py).
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_s3xml fuzz/corpus/s3xml
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.s3xml_replay over fuzz/corpus/s3xml/.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "uploader/store.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

CURLcode __real_curl_easy_setopt(CURL *, CURLoption, ...);
CURLcode __real_curl_easy_getinfo(CURL *, CURLINFO, ...);
CURLcode __wrap_curl_easy_setopt(CURL *, CURLoption, ...);
CURLcode __wrap_curl_easy_getinfo(CURL *, CURLINFO, ...);
CURLcode __wrap_curl_easy_perform(CURL *);

typedef size_t (*cb_fn)(char *, size_t, size_t, void *);

#define NCURL	16

static struct fake {
	CURL	*h;
	cb_fn	 hdr, body;
	void	*hdrarg, *bodyarg;
	long	 status;
} fakes[NCURL];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static size_t ring;
static const uint8_t *in;
static size_t inlen;

static struct fake *
fake_of(CURL *h)
{
	size_t i;

	for (i = 0; i < NCURL; i++)
		if (fakes[i].h == h)
			return &fakes[i];
	/* a new handle (the multipart workers make theirs): the oldest slot,
	 * long unused since at most 1 + parallel handles are alive */
	i = ring++ % NCURL;
	memset(&fakes[i], 0, sizeof(fakes[i]));
	fakes[i].h = h;
	return &fakes[i];
}

CURLcode
__wrap_curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	struct fake *f;
	va_list ap;
	void *v;

	/* every option is a long, a pointer or a curl_off_t: one word */
	va_start(ap, opt);
	v = va_arg(ap, void *);
	va_end(ap);
	pthread_mutex_lock(&mu);
	f = fake_of(h);
	if (opt == CURLOPT_HEADERFUNCTION)
		f->hdr = (cb_fn)v;
	else if (opt == CURLOPT_HEADERDATA)
		f->hdrarg = v;
	else if (opt == CURLOPT_WRITEFUNCTION)
		f->body = (cb_fn)v;
	else if (opt == CURLOPT_WRITEDATA)
		f->bodyarg = v;
	pthread_mutex_unlock(&mu);
	return __real_curl_easy_setopt(h, opt, v);
}

CURLcode
__wrap_curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	va_list ap;
	void *v;

	va_start(ap, info);
	v = va_arg(ap, void *);
	va_end(ap);
	if (info == CURLINFO_RESPONSE_CODE) {
		pthread_mutex_lock(&mu);
		*(long *)v = fake_of(h)->status;
		pthread_mutex_unlock(&mu);
		return CURLE_OK;
	}
	if (info == CURLINFO_TOTAL_TIME_T) {
		*(curl_off_t *)v = 1000;
		return CURLE_OK;
	}
	return __real_curl_easy_getinfo(h, info, v);
}

static void
hdr(struct fake *f, const char *line)
{
	char buf[300];
	size_t n = strlen(line);

	memcpy(buf, line, n);	/* not NUL-terminated, as curl gives it */
	if (f->hdr != NULL && f->hdr(buf, 1, n, f->hdrarg) != n)
		return;
}

CURLcode
__wrap_curl_easy_perform(CURL *h)
{
	static const long statuses[] = { 200, 200, 200, 200, 204, 206, 400, 403,
	    404, 409, 412, 429, 500, 501, 503, 301 };
	struct fake *f;
	uint8_t st, fl;
	size_t blen;
	char line[200], *body;

	pthread_mutex_lock(&mu);
	f = fake_of(h);
	if (inlen < 4) {
		f->status = 0;
		pthread_mutex_unlock(&mu);
		return CURLE_PEER_FAILED_VERIFICATION;	/* never retried */
	}
	st = in[0];
	fl = in[1];
	blen = (size_t)in[2] << 8 | in[3];
	in += 4;
	inlen -= 4;
	if (blen > inlen)
		blen = inlen;
	if ((body = malloc(blen + 1)) == NULL)
		abort();
	memcpy(body, in, blen);
	in += blen;
	inlen -= blen;
	f->status = statuses[st % 16];
	pthread_mutex_unlock(&mu);

	snprintf(line, sizeof(line), "HTTP/1.1 %ld X\r\n", f->status);
	hdr(f, line);
	if (fl & 1)
		hdr(f, "ETag: \"9b2cf535f27731c974343645a3985328\"\r\n");
	if (fl & 2)
		hdr(f, fl & 4 ? "x-amz-version-id: null\r\n" :
		    "x-amz-version-id: 3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY\r\n");
	if (fl & 8)	/* the SHA-256 of the small file (1024 zero bytes) */
		hdr(f, fl & 16 ? "x-amz-checksum-sha256: "
		    "X3C/GKCGAHAW6UiwSu07ghA6Nr6kF1W2zd+vEKzjxu8=\r\n" :
		    "x-amz-checksum-sha256: bm90IGl0\r\n");
	if (fl & 32)
		hdr(f, "x-amz-request-id: 4442587FB7D0A2F9\r\n");
	if (fl & 64)
		hdr(f, "x-amz-object-lock-mode: COMPLIANCE\r\n");
	hdr(f, "\r\n");
	if (blen > 0 && f->body != NULL)
		(void)f->body(body, 1, blen, f->bodyarg);
	free(body);
	return CURLE_OK;
}

/* ---- the client --------------------------------------------------------- */

static struct store_config cfg;
static struct store *store;
static struct aws_creds creds;
static char dir[256], small[300], big[300];
static int smallfd = -1, bigfd = -1;
static const struct mp_part saved_parts[] = {
	{ 1, "\"9b2cf535f27731c974343645a3985328\"",
	  "wDbLt1U6kJ+LiHfURhkkMH8n7LZs/5KO7q/VacOIfik=" },	/* 5 MiB of 0 */
};

static int
mp_begin(void *arg, const char *key, const char *id, int64_t ps, int n)
{
	return 0;
}

static int
mp_part(void *arg, const struct mp_part *p)
{
	return 0;
}

static void
mp_forget(void *arg)
{
}

static int
keep(void *arg, const char *key, const char *id)
{
	if (strlen(key) == 0 || strlen(id) == 0)
		abort();
	return key[0] == 'k';
}

static void
setup_once(void)
{
	struct aws_creds c;
	const char *tmp;

	if (dir[0] != '\0')
		return;
	log_init("fuzz", 0);
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_s3xml.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(small, sizeof(small), "%s/small", dir);
	snprintf(big, sizeof(big), "%s/big", dir);
	/* sparse: zero bytes, no disk */
	if ((smallfd = open(small, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1 ||
	    ftruncate(smallfd, 1024) == -1 ||
	    (bigfd = open(big, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1 ||
	    ftruncate(bigfd, 5 * 1024 * 1024 + 1) == -1)
		abort();
	memset(&c, 0, sizeof(c));
	xstrlcpy(c.access_key, "AKIAIOSFODNN7EXAMPLE", sizeof(c.access_key));
	xstrlcpy(c.secret_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	    sizeof(c.secret_key));
	cfg.url = "s3://bucket/in/";
	cfg.kind = STORE_S3;
	cfg.bucket = "bucket";
	cfg.prefix = "in/";
	cfg.region = "us-east-1";
	cfg.endpoint = "http://127.0.0.1:9";
	cfg.path_style = 1;
	creds = c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sum_small[] =
	    "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
	static char sum_big[SHA256_HEX];
	struct put_request req;
	struct put_result res;
	struct mp_hooks hk;
	uint8_t d[SHA256_LEN], mode;

	if (size < 1)
		return 0;
	setup_once();
	if (sum_big[0] == '\0') {
		if (sha256_fd(bigfd, d) != 0)
			abort();
		hex_encode(d, sizeof(d), sum_big);
	}
	/* a new store each time: the sweep's markers live in it */
	if ((store = store_open(&cfg, &creds)) == NULL)
		abort();
	mode = data[0] % 4;
	pthread_mutex_lock(&mu);
	in = data + 1;
	inlen = size - 1;
	pthread_mutex_unlock(&mu);

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	memset(&hk, 0, sizeof(hk));
	hk.begin = mp_begin;
	hk.part = mp_part;
	hk.forget = mp_forget;
	req.key = "in/a&b <c>.csv";
	req.max_backoff_ms = 1;
	req.parallel = 1;
	req.mp = &hk;
	switch (mode) {
	case 0:
		req.fd = smallfd;
		req.size = 1024;
		req.sha256 = sum_small;
		store_put(store, &req, &res);
		break;
	case 1:
		hk.upload_id = "2~resumed-upload-id";
		hk.key = req.key;
		hk.part_size = 5 * 1024 * 1024;
		hk.parts = saved_parts;
		hk.nparts = 1;
		/* FALLTHROUGH */
	case 2:
		req.fd = bigfd;
		req.size = 5 * 1024 * 1024 + 1;
		req.sha256 = sum_big;
		req.multipart_threshold = 5 * 1024 * 1024;
		req.part_size = 5 * 1024 * 1024;
		store_put(store, &req, &res);
		break;
	default:
		(void)store_abort_stale(store, 3600, keep, NULL);
		break;
	}
	if (strnlen(res.error, sizeof(res.error)) >= sizeof(res.error) ||
	    strnlen(res.etag, sizeof(res.etag)) >= sizeof(res.etag))
		abort();
	store_close(store);
	store = NULL;
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	int rc = fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);

	if (dir[0] != '\0') {
		close(smallfd);
		close(bigfd);
		unlink(small);
		unlink(big);
		rmdir(dir);
	}
	return rc;
}
#endif
