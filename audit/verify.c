/*
 * verify.c - `sluice audit verify`: walks a trail of one or more files (the
 * sealed segments in seq order, then the live file) as one chain, and names
 * the first bad record as FILE:LINE: why.
 *
 * Within a file every record must carry its own hash, chain to the one
 * before it ("prev"), have the next seq and, with keys, a good MAC under the
 * key its "kid" names. A file named like a sealed segment
 * (audit-<first>-<last>.jsonl) must end with an audit.seal record that
 * matches it (count, first_seq, last_seq, final_mac, segment) and nothing
 * after it; every file but the last must end so. Across files the next
 * file's first record (audit.open) must follow the seal: seq + 1, "prev" the
 * seal's hash, the MAC chained from the seal's MAC, "after"/"seal_seq"
 * naming it. So an edited, removed, inserted or reordered record, a cut
 * tail of a sealed segment, a segment dropped from the middle, and (with the
 * key) a segment forged and re-chained without the key are all named.
 * What no seal can show: records cut off the end of the live file, or the
 * newest sealed segments removed together with the live file.
 *
 * A sealed segment with <segment>.sig beside it (audit.sign_with) is also
 * checked against its OpenPGP signature (check_sig), so a segment is
 * checked without the HMAC key too.
 */
#include "audit/audit.h"

#include <openssl/crypto.h>

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gpgme.h>

#include "audit/audit_int.h"
#include "common/util.h"
#include "spool/verify.h"

static const char zeros64[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* The walk across files. */
struct vwalk {
	FILE		*out;
	struct audit_key *const *keys;
	size_t		 nkeys;
	char		 given[128];	/* the key ids, for messages */
	char		 prev[SHA256_HEX];	/* the last record's hash */
	uint8_t		 prevmac[SHA256_LEN];	/* ... its MAC */
	char		 prevmachex[SHA256_HEX];	/* ... as hex ("": none) */
	int64_t		 seq;		/* its seq (0: no record yet) */
	int64_t		 nrec, nkeyed, firstkeyed, firstseq;
	size_t		 nfiles, nsealed;
	char		 file[PATH_MAX];	/* the file being read */
	int64_t		 line;		/* its line */
	int64_t		 fseq;		/* its first record's seq */
	int64_t		 sealline;	/* its seal's line (0: none yet) */
	char		 segment[128];	/* the last seal's "segment" */
	int		 flags;		/* AUDIT_VERIFY_* */
	int		 midstart;	/* the trail starts after a segment */
	char		 after[128];	/* ... this one (audit.open "after") */
	char		 firstfile[PATH_MAX];
	dev_t		 lastdev;	/* the file read before */
	ino_t		 lastino;
	int		 twice;		/* two paths named one file */
	const struct audit_sigcheck *sc;	/* NULL: no signature checks */
	gpgme_ctx_t	 gctx;		/* made at the first .sig */
	size_t		 nsigned;	/* sealed segments with a good .sig */
	size_t		 nunsigned;	/* ... without a .sig */
	size_t		 nokey;		/* ... with a .sig but no public key */
	char		 nokeyfpr[64];	/* the first such signer */
	char		 signers[128];	/* their signers' fingerprints */
	char		 host[AUDIT_HOST_MAX + 1];	/* the trail's "host" so far */
	char		 foreign[AUDIT_HOST_MAX + 1];	/* this record's, when
							 * another ("": same) */
};

/* 1 if name is audit-<12 digits>-<12 digits>.jsonl; sets first, last. */
static int
segment_name(const char *name, int64_t *first, int64_t *last)
{
	const char *b = strrchr(name, '/');
	char num[13];
	size_t i;

	b = b ? b + 1 : name;
	if (strlen(b) != 37 || strncmp(b, "audit-", 6) != 0 || b[18] != '-' ||
	    strcmp(b + 31, ".jsonl") != 0)
		return 0;
	for (i = 0; i < 12; i++)
		if (b[6 + i] < '0' || b[6 + i] > '9' ||
		    b[19 + i] < '0' || b[19 + i] > '9')
			return 0;
	if (first != NULL) {
		memcpy(num, b + 6, 12);
		num[12] = '\0';
		(void)parse_int64(num, 0, INT64_MAX, first);
		memcpy(num, b + 19, 12);
		(void)parse_int64(num, 0, INT64_MAX, last);
	}
	return 1;
}

int
audit_segment_name_ok(const char *name)
{
	return segment_name(name, NULL, NULL);
}

static const char *
base(const char *p)
{
	const char *b = strrchr(p, '/');

	return b ? b + 1 : p;
}

static int
bad(struct vwalk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "FILE:LINE: why" for the current record; returns 1. */
static int
bad(struct vwalk *w, const char *fmt, ...)
{
	va_list ap;

	fprintf(w->out, "%s:%lld: ", w->file, (long long)w->line);
	/* a segment of another node (the other of an HA pair) mixed in */
	if (w->foreign[0] != '\0')
		fprintf(w->out, "record from host %s in a trail of host %s (a "
		    "segment of another node is mixed in; verify each node's "
		    "trail apart): ", w->foreign, w->host);
	va_start(ap, fmt);
	vfprintf(w->out, fmt, ap);
	va_end(ap);
	fputc('\n', w->out);
	return 1;
}

static int64_t
iget(json_t *rec, const char *k)
{
	json_t *v = json_object_get(rec, k);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *
sget(json_t *rec, const char *k)
{
	json_t *v = json_object_get(rec, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The first record of a file after another file: it must follow the seal. */
static int
check_boundary(struct vwalk *w, json_t *rec, int64_t seq, const char *prev,
    const char *lastfile)
{
	const char *ev = sget(rec, "event"), *after = sget(rec, "after");

	if (seq > w->seq + 1)
		return bad(w, "a segment is missing: seq %lld follows seq %lld "
		    "that ends %s (records %lld-%lld are in none of the files "
		    "given)", (long long)seq, (long long)w->seq, lastfile,
		    (long long)w->seq + 1, (long long)seq - 1);
	if (seq != w->seq + 1)
		return bad(w, "seq %lld does not follow seq %lld that ends %s "
		    "(a segment is repeated or out of order)", (long long)seq,
		    (long long)w->seq, lastfile);
	if (strcmp(prev, w->prev) != 0)
		return bad(w, "chain broken between segments: \"prev\" is not "
		    "the hash of the seal that ends %s (this segment or that "
		    "one was replaced)", lastfile);
	if (ev == NULL || strcmp(ev, "audit.open") != 0)
		return bad(w, "the segment does not begin with audit.open");
	if (after == NULL || strcmp(after, w->segment) != 0 ||
	    iget(rec, "seal_seq") != w->seq)
		return bad(w, "audit.open names segment %s seal seq %lld, but "
		    "the segment before it is %s with its seal at seq %lld",
		    after ? after : "(none)", (long long)iget(rec, "seal_seq"),
		    w->segment, (long long)w->seq);
	return 0;
}

/* "prev" and "seq" of a record; *nomac: its MAC cannot be checked. */
static int
check_link(struct vwalk *w, json_t *rec, const char *lastfile, int *nomac)
{
	const char *prev = sget(rec, "prev"), *ev = sget(rec, "event");
	int64_t seq = iget(rec, "seq");

	*nomac = 0;
	if (prev == NULL)
		prev = "";
	if (w->line == 1)
		w->fseq = seq;
	if (w->sealline > 0)
		return bad(w, "record after this segment's seal (line %lld): "
		    "records were appended to a sealed segment",
		    (long long)w->sealline);
	if (w->line == 1 && lastfile != NULL)
		return check_boundary(w, rec, seq, prev, lastfile);
	if (w->nrec == 0 && seq > 1) {
		/* The first file given starts after a seal not given. */
		if (w->flags & AUDIT_VERIFY_WHOLE)
			return bad(w, "the trail starts at seq %lld, not 1: "
			    "segments before it are missing (nothing in sluice "
			    "removes a segment; give the files by name to check "
			    "from here on)", (long long)seq);
		if (ev == NULL || strcmp(ev, "audit.open") != 0)
			return bad(w, "the trail starts at seq %lld, not 1, and "
			    "not with audit.open (records before it were "
			    "removed)", (long long)seq);
		w->midstart = 1;
		(void)xstrlcpy(w->after, sget(rec, "after") ?
		    sget(rec, "after") : "?", sizeof(w->after));
		*nomac = 1;
		return 0;
	}
	if (strcmp(prev, w->prev) != 0)
		return bad(w, "chain broken: \"prev\" does not match the hash "
		    "of the record before it (a record was removed, inserted "
		    "or reordered)");
	if (seq != w->seq + 1)
		return bad(w, "sequence number %lld, expected %lld",
		    (long long)seq, (long long)w->seq + 1);
	return 0;
}

/* The MAC of a record (line[0..plen) is what it covers). */
static int
check_mac(struct vwalk *w, json_t *rec, const char *line, size_t plen,
    const char *machex, int nomac)
{
	const struct audit_key *k = NULL;
	const char *kid = sget(rec, "kid");
	char hex[SHA256_HEX];
	uint8_t m[SHA256_LEN];
	size_t i;

	if (machex[0] == '\0') {
		if (w->nkeyed > 0)
			return bad(w, "record has no \"mac\" after keyed records "
			    "(its MAC was stripped, or a process without the key "
			    "appended it)");
		return 0;
	}
	if (kid == NULL || strlen(kid) != AUDIT_KID_HEX - 1)
		return bad(w, "keyed record has no valid \"kid\"");
	if (w->nkeyed++ == 0)
		w->firstkeyed = w->nrec + 1;
	if (w->nkeys > 0 && !nomac) {
		for (i = 0; i < w->nkeys && k == NULL; i++)
			if (strcmp(w->keys[i]->kid, kid) == 0)
				k = w->keys[i];
		if (k == NULL)
			return bad(w, "wrong key: the record was MAC'd with key "
			    "id %s, and no key given has that id (given: %s)",
			    kid, w->given);
		if (audit_mac(k, w->prevmac, line, plen, m) != 0)
			return bad(w, "cannot compute HMAC-SHA256");
		hex_encode(m, sizeof(m), hex);
		if (CRYPTO_memcmp(hex, machex, 64) != 0)
			return bad(w, "MAC does not match (key id %s): this "
			    "record was changed, or one before it removed, "
			    "inserted or reordered, by someone without the key",
			    k->kid);
	}
	audit_hex_decode32(machex, w->prevmac);
	return 0;
}

/* An audit.seal record against the file it ends. */
static int
check_seal(struct vwalk *w, json_t *rec)
{
	int64_t seq = iget(rec, "seq"), count = iget(rec, "count");
	int64_t first = iget(rec, "first_seq"), last = iget(rec, "last_seq");
	int64_t nf, nl;
	const char *seg = sget(rec, "segment"), *fm = sget(rec, "final_mac");

	if (seg == NULL || fm == NULL || count < 0 || first < 0 || last < 0)
		return bad(w, "audit.seal lacks segment, count, first_seq, "
		    "last_seq or final_mac");
	if (first != w->fseq || last != seq - 1)
		return bad(w, "the seal covers seq %lld-%lld, but this segment "
		    "holds seq %lld-%lld before it", (long long)first,
		    (long long)last, (long long)w->fseq, (long long)seq - 1);
	if (count != w->line - 1 || count != last - first + 1)
		return bad(w, "the seal counts %lld records, but %lld are "
		    "before it in this segment (records were removed or "
		    "inserted)", (long long)count, (long long)w->line - 1);
	if (strcmp(fm, w->prevmachex) != 0)
		return bad(w, "the seal's final_mac is not the MAC of the "
		    "record before it (line %lld)", (long long)w->line - 1);
	if (segment_name(w->file, &nf, &nl) &&
	    (strcmp(seg, base(w->file)) != 0 || nf != first || nl != seq))
		return bad(w, "the seal names segment %s, but this file is %s "
		    "(a segment was renamed or swapped)", seg, base(w->file));
	(void)xstrlcpy(w->segment, seg, sizeof(w->segment));
	w->sealline = w->line;
	return 0;
}

/* One line (without its newline): 0, or 1 after naming what is wrong. */
static int
check_line(struct vwalk *w, char *line, size_t n, const char *lastfile)
{
	char stored[SHA256_HEX], machex[SHA256_HEX], hex[SHA256_HEX];
	uint8_t h[SHA256_LEN];
	json_error_t jerr;
	json_t *rec;
	const char *ev, *host;
	ssize_t plen;
	int rc = 1, nomac;

	if (n != strlen(line))
		return bad(w, "record contains a NUL byte");
	if ((plen = audit_record_split(line, n, stored, machex)) == -1)
		return bad(w, "record has no \"hash\" seal at its end");
	if (sha256_buf(line, (size_t)plen, h) != 0)
		return bad(w, "cannot compute SHA-256");
	hex_encode(h, sizeof(h), hex);
	if (strcmp(hex, stored) != 0)
		return bad(w, "record was altered: its content does not match "
		    "its \"hash\"");
	if ((rec = json_loads(line, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return bad(w, "not a JSON record: %s", jerr.text);
	host = sget(rec, "host");
	if (host != NULL && w->host[0] != '\0' && strcmp(host, w->host) != 0)
		(void)xstrlcpy(w->foreign, host, sizeof(w->foreign));
	if (check_link(w, rec, lastfile, &nomac) != 0 ||
	    check_mac(w, rec, line, (size_t)plen, machex, nomac) != 0)
		goto done;
	ev = sget(rec, "event");
	if (ev != NULL && strcmp(ev, "audit.seal") == 0 &&
	    check_seal(w, rec) != 0)
		goto done;
	if (w->nrec++ == 0)
		w->firstseq = iget(rec, "seq");
	w->seq = iget(rec, "seq");
	memcpy(w->prev, stored, SHA256_HEX);
	memcpy(w->prevmachex, machex, SHA256_HEX);
	if (host != NULL)	/* a renamed host chains on: it is the trail's */
		(void)xstrlcpy(w->host, host, sizeof(w->host));
	rc = 0;
done:
	w->foreign[0] = '\0';
	json_decref(rec);
	return rc;
}

/* "cut tail" for a file that must end with its seal and does not. */
static int
cut_tail(struct vwalk *w)
{
	w->line++;
	return bad(w, "cut tail: the segment ends without its audit.seal "
	    "record (records were cut off its end)");
}

/* The gpgme context for the signature checks; NULL (printed) if none. */
static gpgme_ctx_t
sig_ctx(struct vwalk *w)
{
	gpgme_error_t err;

	if (w->gctx != NULL)
		return w->gctx;
	if (verify_init() == -1) {
		fprintf(w->out, "sluice: gpgme or gpg is missing: signatures "
		    "cannot be checked (install gnupg)\n");
		return NULL;
	}
	if ((err = gpgme_new(&w->gctx)) != 0 ||
	    (err = gpgme_set_protocol(w->gctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
	    (w->sc->home != NULL && (err = gpgme_ctx_set_engine_info(w->gctx,
	    GPGME_PROTOCOL_OpenPGP, NULL, w->sc->home)) != 0)) {
		fprintf(w->out, "sluice: gpgme: %s\n", gpgme_strerror(err));
		if (w->gctx != NULL)
			gpgme_release(w->gctx);
		w->gctx = NULL;
		return NULL;
	}
	gpgme_set_offline(w->gctx, 1);
	return w->gctx;
}

/* Runs gpgme_op_verify of sigpath over path; its result or NULL (printed). */
static gpgme_verify_result_t
sig_run(struct vwalk *w, gpgme_ctx_t ctx, const char *path,
    const char *sigpath)
{
	gpgme_data_t sd = NULL, fd_d = NULL;
	gpgme_verify_result_t res = NULL;
	gpgme_error_t err = 0;
	int sfd, ffd;

	sfd = open(sigpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ffd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd == -1 || ffd == -1) {
		fprintf(w->out, "%s: %s\n", sfd == -1 ? sigpath : path,
		    strerror(errno));
		goto done;
	}
	if ((err = gpgme_data_new_from_fd(&sd, sfd)) != 0 ||
	    (err = gpgme_data_new_from_fd(&fd_d, ffd)) != 0 ||
	    (err = gpgme_op_verify(ctx, sd, fd_d, NULL)) != 0) {
		fprintf(w->out, "%s: cannot check the signature: %s\n",
		    sigpath, gpgme_strerror(err));
		goto done;
	}
	res = gpgme_op_verify_result(ctx);
done:
	gpgme_data_release(sd);
	gpgme_data_release(fd_d);
	if (sfd != -1)
		close(sfd);
	if (ffd != -1)
		close(ffd);
	return res;
}

/*
 * The .sig beside a sealed segment, if there is one: 0 (good, or none), 1
 * (bad or a wrong signer: named) or 2 (cannot be checked: named).
 */
static int
check_sig(struct vwalk *w, const char *path)
{
	const gpgme_sigsum_t badsum = GPGME_SIGSUM_RED |
	    GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
	    GPGME_SIGSUM_SIG_EXPIRED | GPGME_SIGSUM_BAD_POLICY |
	    GPGME_SIGSUM_SYS_ERROR;
	gpgme_verify_result_t res;
	gpgme_signature_t s;
	gpgme_key_t key = NULL;
	gpgme_ctx_t ctx;
	char sigpath[PATH_MAX], primary[64];
	struct stat st;

	if (xsnprintf(sigpath, sizeof(sigpath), "%s.sig", path) < 0)
		return 2;
	if (stat(sigpath, &st) == -1) {
		if (errno != ENOENT) {
			fprintf(w->out, "%s: %s\n", sigpath, strerror(errno));
			return 2;
		}
		w->nunsigned++;
		return 0;
	}
	if ((ctx = sig_ctx(w)) == NULL ||
	    (res = sig_run(w, ctx, path, sigpath)) == NULL)
		return 2;
	if ((s = res->signatures) == NULL) {
		fprintf(w->out, "%s: holds no OpenPGP signature\n", sigpath);
		return 1;
	}
	if ((gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY ||
	    (s->summary & GPGME_SIGSUM_KEY_MISSING)) && !w->sc->required) {
		if (w->nokey++ == 0)
			(void)xstrlcpy(w->nokeyfpr, s->fpr ? s->fpr : "?",
			    sizeof(w->nokeyfpr));
		return 0;
	}
	if (gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY ||
	    (s->summary & GPGME_SIGSUM_KEY_MISSING)) {
		fprintf(w->out, "%s: cannot check the signature: no public key "
		    "for %s (give --keyring FILE with the gateway's public key: "
		    "gpg --export --armor FINGERPRINT)\n", sigpath,
		    s->fpr ? s->fpr : "?");
		return 2;
	}
	if (gpgme_err_code(s->status) != GPG_ERR_NO_ERROR ||
	    (s->summary & badsum) || s->wrong_key_usage) {
		fprintf(w->out, "%s: BAD signature (%s): %s is not the file "
		    "that was signed when it was sealed (changed since), or the "
		    "signature is damaged\n", sigpath,
		    gpgme_strerror(s->status), path);
		return 1;
	}
	/* s->fpr is the signing subkey: pin and report the primary key. */
	if (gpgme_get_key(ctx, s->fpr, &key, 0) != 0 || key == NULL ||
	    key->subkeys == NULL || key->subkeys->fpr == NULL)
		(void)xstrlcpy(primary, s->fpr ? s->fpr : "?", sizeof(primary));
	else
		(void)xstrlcpy(primary, key->subkeys->fpr, sizeof(primary));
	gpgme_key_unref(key);
	if (w->sc->signer != NULL && strcasecmp(primary, w->sc->signer) != 0) {
		fprintf(w->out, "%s: signed by %s, not by the expected signer "
		    "%s\n", sigpath, primary, w->sc->signer);
		return 1;
	}
	if (strstr(w->signers, primary) == NULL) {
		if (w->signers[0] != '\0')
			(void)xstrlcat(w->signers, ", ", sizeof(w->signers));
		(void)xstrlcat(w->signers, primary, sizeof(w->signers));
	}
	w->nsigned++;
	return 0;
}

/* One file: 0, 1 (bad, named) or 2 (unreadable). */
static int
verify_file(struct vwalk *w, const char *path, const char *lastfile)
{
	struct stat st;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 1;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(w->out, "%s: %s\n", path, strerror(errno));
		return 2;
	}
	/* The live path still names the segment just linked (mid-seal). */
	if (fstat(fileno(f), &st) == 0) {
		if (w->nfiles > 0 && st.st_dev == w->lastdev &&
		    st.st_ino == w->lastino)
			w->twice = 1;
		w->lastdev = st.st_dev;
		w->lastino = st.st_ino;
	}
	(void)xstrlcpy(w->file, path, sizeof(w->file));
	w->line = 0;
	w->sealline = 0;
	w->fseq = 0;
	while ((n = getline(&line, &cap, f)) != -1) {
		w->line++;
		if (n == 0 || line[n - 1] != '\n') {
			bad(w, "record is not terminated by a newline (torn "
			    "write or truncation)");
			goto done;
		}
		line[--n] = '\0';
		if (check_line(w, line, (size_t)n, lastfile) != 0)
			goto done;
	}
	if (ferror(f)) {
		fprintf(w->out, "%s: read error: %s\n", path, strerror(errno));
		rc = 2;
		goto done;
	}
	w->nfiles++;
	if (w->sealline > 0)
		w->nsealed++;
	if (w->sealline > 0 && w->sc != NULL &&
	    segment_name(path, NULL, NULL) && (rc = check_sig(w, path)) != 0)
		goto done;
	rc = 0;
done:
	free(line);
	fclose(f);
	return rc;
}

static int
seg_filter(const struct dirent *d)
{
	return segment_name(d->d_name, NULL, NULL);
}

/* Appends path (or, a directory, its segments in name order) to *files. */
static int
expand(const char *path, int flags, char ***files, size_t *n, FILE *out)
{
	struct dirent **ents = NULL;
	struct stat st;
	char p[PATH_MAX], **nf;
	int i, cnt, rc = 0;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT && (flags & AUDIT_VERIFY_SKIP_MISSING))
			return 0;
		fprintf(out, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if ((nf = reallocarray(*files, *n + 1, sizeof(*nf))) == NULL)
			return -1;
		*files = nf;
		return ((*files)[(*n)++] = strdup(path)) == NULL ? -1 : 0;
	}
	if ((cnt = scandir(path, &ents, seg_filter, alphasort)) == -1) {
		fprintf(out, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < cnt; i++) {
		if (rc == 0 && (xsnprintf(p, sizeof(p), "%s/%s", path,
		    ents[i]->d_name) < 0 || expand(p, 0, files, n, out) == -1))
			rc = -1;
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static void
summary(struct vwalk *w, char **files, size_t nfiles)
{
	char label[PATH_MAX * 2 + 64], start[256];

	if (nfiles == 1)
		(void)xstrlcpy(label, files[0], sizeof(label));
	else
		(void)xsnprintf(label, sizeof(label), "%s .. %s (%zu files, "
		    "%zu sealed)", files[0], files[nfiles - 1], nfiles,
		    w->nsealed);
	start[0] = '\0';
	if (w->midstart)
		(void)xsnprintf(start, sizeof(start), "; starts at seq %lld "
		    "after segment %s (not given: not checked)",
		    (long long)w->firstseq, w->after);
	if (w->nkeys == 0)
		fprintf(w->out, "%s: %lld records, chain intact, last hash %s; "
		    "MACs not checked (no key given; %lld records carry "
		    "one)%s\n", label, (long long)w->nrec, w->prev,
		    (long long)w->nkeyed, start);
	else if (w->firstkeyed > 1)
		fprintf(w->out, "%s: %lld records, chain intact, MACs good (key "
		    "ids %s) from record %lld; records 1-%lld have no MAC "
		    "(written before the key) and are bound by the hash chain to "
		    "the MAC of record %lld; last hash %s%s\n", label,
		    (long long)w->nrec, w->given, (long long)w->firstkeyed,
		    (long long)w->firstkeyed - 1, (long long)w->firstkeyed,
		    w->prev, start);
	else
		fprintf(w->out, "%s: %lld records, chain intact, MACs good (key "
		    "ids %s), last hash %s%s\n", label, (long long)w->nrec,
		    w->given, w->prev, start);
	if (w->nsigned > 0)
		fprintf(w->out, "%s: %zu of %zu sealed segments checked by their "
		    "OpenPGP signatures: seal signed by %s%s%s%s\n", label,
		    w->nsigned, w->nsigned + w->nunsigned, w->signers,
		    w->sc->signer != NULL ? " (the expected signer)" :
		    " (signer not pinned: give --signer FPR to require it)",
		    w->nkeys == 0 ? "; without the HMAC key, the signatures "
		    "are what shows these segments unchanged since sealed" : "",
		    w->nunsigned > 0 ? "; the others have no .sig (sealed "
		    "before audit.sign_with, or audit.seal_unsigned)" : "");
	if (w->nokey > 0)
		fprintf(w->out, "%s: %zu sealed segments have a .sig that was not "
		    "checked: no public key for %s here (give --keyring FILE "
		    "with the gateway's public key: gpg --export --armor "
		    "FINGERPRINT)\n", label, w->nokey, w->nokeyfpr);
	if (w->nsigned == 0 && w->nokey == 0 && w->sc != NULL &&
	    w->sc->signer != NULL && w->nsealed > 0)
		fprintf(w->out, "%s: no sealed segment has a .sig signature: "
		    "none was checked against signer %s\n", label,
		    w->sc->signer);
}

static int
walk(struct vwalk *w, char **files, size_t nfiles)
{
	size_t i;
	int rc;

	for (i = 0; i < nfiles; i++) {
		if (i > 0 && w->nrec > 0 && w->sealline == 0)
			return cut_tail(w);
		if ((rc = verify_file(w, files[i], i > 0 && w->nrec > 0 ?
		    files[i - 1] : NULL)) != 0)
			return rc;
	}
	if (nfiles > 0 && segment_name(files[nfiles - 1], NULL, NULL) &&
	    w->sealline == 0)
		return cut_tail(w);
	if (w->nkeys > 0 && w->nkeyed == 0 && w->nrec > 0) {
		fprintf(w->out, "%s:1: no record carries a MAC: the trail was "
		    "not written with a key, or its MACs were stripped\n",
		    files[0]);
		return 1;
	}
	summary(w, files, nfiles);
	return 0;
}

static void
files_free(char **files, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

/* The files paths stand for (directories expanded); 0 or -1 (printed). */
static int
expand_all(const char *const *paths, size_t npaths, int flags, char ***files,
    size_t *nfiles, FILE *out)
{
	size_t i;

	*files = NULL;
	*nfiles = 0;
	for (i = 0; i < npaths; i++)
		if (expand(paths[i], flags, files, nfiles, out) == -1) {
			files_free(*files, *nfiles);
			*files = NULL;
			*nfiles = 0;
			return -1;
		}
	return 0;
}

/* One walk over files; its verdict printed to out; *twice as vwalk's. */
static int
verify_files(char **files, size_t nfiles, struct audit_key *const *keys,
    size_t nkeys, int flags, const struct audit_sigcheck *sc, int *twice,
    FILE *out)
{
	struct vwalk *w;
	size_t i;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return 2;
	w->out = out;
	w->keys = keys;
	w->nkeys = nkeys;
	w->flags = flags;
	w->sc = sc;
	for (i = 0; i < nkeys; i++) {
		if (i > 0)
			(void)xstrlcat(w->given, ", ", sizeof(w->given));
		(void)xstrlcat(w->given, keys[i]->kid, sizeof(w->given));
	}
	memcpy(w->prev, zeros64, SHA256_HEX);
	rc = walk(w, files, nfiles);
	*twice = w->twice;
	if (w->gctx != NULL)
		gpgme_release(w->gctx);
	free(w);
	return rc;
}

/* 1 if the two lists name the same files in the same order. */
static int
files_same(char **a, size_t na, char **b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

/*
 * A running writer may seal the live file between the listing of the
 * segments directory and the reading of the live file: the live file then
 * starts after a segment the listing does not have. Or the listing has the
 * segment just linked while the live path still names that same file (the
 * next live file is not renamed over it yet): its records are read twice.
 * So a walk that finds the trail bad is done again (up to VERIFY_TRIES
 * times) while the listing changes or a file was read twice (after a pause:
 * the writer finishes the seal), and only the last walk's words are printed.
 */
#define VERIFY_TRIES	6
int
audit_verify_trail(const char *const *paths, size_t npaths,
    struct audit_key *const *keys, size_t nkeys, int flags, FILE *out)
{
	return audit_verify_trail_sig(paths, npaths, keys, nkeys, flags, NULL,
	    out);
}

int
audit_verify_trail_sig(const char *const *paths, size_t npaths,
    struct audit_key *const *keys, size_t nkeys, int flags,
    const struct audit_sigcheck *sc, FILE *out)
{
	char **files = NULL, **again = NULL, *buf = NULL;
	size_t nfiles = 0, nagain = 0, blen = 0;
	FILE *mem;
	int rc = 2, tries, twice = 0;

	if (expand_all(paths, npaths, flags, &files, &nfiles, out) == -1)
		return 2;
	if (nfiles == 0) {
		fprintf(out, "%s: no audit trail files there\n",
		    npaths > 0 ? paths[0] : "(nothing given)");
		goto done;
	}
	for (tries = 1;; tries++) {
		if ((mem = open_memstream(&buf, &blen)) == NULL)
			goto done;
		rc = verify_files(files, nfiles, keys, nkeys, flags, sc,
		    &twice, mem);
		if (fclose(mem) != 0) {
			rc = 2;
			goto done;
		}
		if (rc != 1 || tries == VERIFY_TRIES)
			break;
		if (twice)
			(void)usleep(10000U << tries);	/* 20 .. 320 ms */
		if (expand_all(paths, npaths, flags, &again, &nagain,
		    out) == -1 || (!twice && files_same(files, nfiles, again,
		    nagain)))
			break;
		files_free(files, nfiles);
		files = again;
		nfiles = nagain;
		again = NULL;
		nagain = 0;
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		(void)fwrite(buf, 1, blen, out);
done:
	free(buf);
	files_free(files, nfiles);
	files_free(again, nagain);
	return rc;
}

int
audit_verify_keys(const char *path, struct audit_key *const *keys,
    size_t nkeys, FILE *out)
{
	const char *paths[1] = { path };

	return audit_verify_trail(paths, 1, keys, nkeys, 0, out);
}

int
audit_verify(const char *path, FILE *out)
{
	return audit_verify_keys(path, NULL, 0, out);
}

/* ---- a GnuPG home for --keyring ------------------------------------------ */

int
audit_sigcheck_home(const char *keyring, char *home, size_t len, FILE *err)
{
	const char *tmp = getenv("TMPDIR");
	gpgme_ctx_t ctx = NULL;
	gpgme_data_t d = NULL;
	gpgme_import_result_t ir;
	gpgme_error_t e;
	int fd = -1, rc = -1;

	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	if (xsnprintf(home, len, "%s/sluice-verify-XXXXXX", tmp) < 0 ||
	    mkdtemp(home) == NULL) {
		fprintf(err, "sluice: cannot make a GnuPG home in %s: %s\n", tmp,
		    strerror(errno));
		home[0] = '\0';
		return -1;
	}
	if (verify_init() == -1)
		goto fail;
	if ((fd = open(keyring, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(err, "sluice: %s: %s\n", keyring, strerror(errno));
		goto fail;
	}
	if ((e = gpgme_new(&ctx)) != 0 ||
	    (e = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
	    (e = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL,
	    home)) != 0 || (e = gpgme_data_new_from_fd(&d, fd)) != 0 ||
	    (e = gpgme_op_import(ctx, d)) != 0) {
		fprintf(err, "sluice: %s: cannot import it: %s\n", keyring,
		    gpgme_strerror(e));
		goto fail;
	}
	if ((ir = gpgme_op_import_result(ctx)) == NULL || ir->considered == 0) {
		fprintf(err, "sluice: %s holds no OpenPGP key (export the "
		    "gateway's public key with gpg --export --armor "
		    "FINGERPRINT)\n", keyring);
		goto fail;
	}
	rc = 0;
fail:
	gpgme_data_release(d);
	if (ctx != NULL)
		gpgme_release(ctx);
	if (fd != -1)
		close(fd);
	if (rc == -1) {
		audit_sigcheck_home_remove(home);
		home[0] = '\0';
	}
	return rc;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)f;
	if (type == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

void
audit_sigcheck_home_remove(const char *home)
{
	if (home == NULL || home[0] == '\0')
		return;
	verify_stop_agent(home);
	(void)nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
