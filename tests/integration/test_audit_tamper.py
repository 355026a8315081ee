"""
test_audit_tamper.py - issue 11's proofs on a REAL trail (started as root,
so the audit writer runs as the service user and holds the key):

  TestTamperMatrix: one gateway with a small audit.segment_max, three
  partners (two keys, one password), the real sftp client and moto (IAM
  auth on): uploads, a file rejected as a duplicate, a download, a listing,
  a key rotation (`sluice audit rotate-key -c`: two keys in play), more
  uploads; the gateway is stopped and `sluice audit verify -c` is clean.
  Then, each on a fresh copy of the trail (segments, live file, keys),
  one tampering, and `verify` must exit 1 naming the file, the line and
  the kind, three ways: `-c` a configuration naming the copy, the
  segments directory and the live file with `--key`s, and every file
  listed one by one:
    an edited field; the same with the record's own hash recomputed; a
    deleted record; an inserted record (a copy of another); two records
    swapped; a sealed segment's tail cut (its seal; its seal and the record
    before); a middle segment dropped; two segments swapped; the oldest
    segment dropped (with -c); a forgery re-chained without the key (the
    plain hash chain recomputed in Python after an edit and after a
    deletion with every later seq, seal, audit.open and file name fixed:
    verify without keys passes, with the keys it names the MAC); a wrong
    key (32 random bytes); a segment of another host's trail spliced in.

  TestConcurrentOneChain: 40 sftp clients at once (4 partners, keys and
  passwords) + intake + uploader + control commands, the segment sealed
  every 4 KiB: one chain (verify -c clean, running and stopped), seq
  contiguous across segments, every file.received has its verdict and
  every accepted file its file.stored.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_audit_tamper
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest

import harness as H

HOST_A = "gw-a.tamper.test"
HOST_B = "gw-b.tamper.test"
# a foreign segment's first record: its seq out of place, or in place and
# its prev not the hash of our seal before it
SPLICED = re.compile(r"does not follow seq|a segment is missing|chain broken between segments")
# ... and verify names the host it came from
FOREIGN = re.compile(r"record from host %s in a trail of host %s .*(%s)"
                     % (re.escape(HOST_B), re.escape(HOST_A), SPLICED.pattern))


# ---------------------------------------------------------------------------
# the trail as bytes: a forger's tools (no key)

_HASH_RE = re.compile(rb',"hash":"([0-9a-f]{64})"(,"mac":"[0-9a-f]{64}")?\}$')


def split_record(line):
    """(the bytes `hash` covers, the stored hash, the `,"mac":...` part or b"")."""
    m = _HASH_RE.search(line)
    assert m, line
    return line[:m.start()], m.group(1).decode(), m.group(2) or b""


def set_field(prefix, name, value):
    """prefix with field name's JSON value replaced (it must be there once)."""
    v = json.dumps(value, separators=(",", ":")).encode()
    pat = re.compile(rb'"' + name.encode() + rb'":("(?:[^"\\]|\\.)*"|-?[0-9]+)')
    new, n = pat.subn(lambda m: b'"' + name.encode() + b'":' + v, prefix, count=1)
    assert n == 1, (name, prefix)
    return new


def rehash(prefix, mac):
    h = hashlib.sha256(prefix).hexdigest()
    return prefix + b',"hash":"' + h.encode() + b'"' + mac + b"}\n", h


def read_lines(path):
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.write(b"".join(lines))


def seg_name(first, last):
    return "audit-%012d-%012d.jsonl" % (first, last)


def rechain(files):
    """
    A forger without the key: files is [(path, [lines])] in trail order
    (sealed segments, then the live file), possibly edited or shortened.
    Renumbers seq from the first record's, recomputes every prev and hash,
    makes every seal and audit.open match, renames the segments to their
    new seqs, and leaves every "mac" as it was (it cannot compute them).
    Returns the new paths.
    """
    first = json.loads(files[0][1][0])
    seq, prev = first["seq"], first["prev"]
    out, last_seal = [], None
    for fi, (path, lines) in enumerate(files):
        new, fseq = [], seq
        for i, line in enumerate(lines):
            prefix, _, mac = split_record(line.rstrip(b"\n"))
            rec = json.loads(line)
            prefix = set_field(set_field(prefix, "seq", seq), "prev", prev)
            if rec["event"] == "audit.open" and last_seal is not None:
                prefix = set_field(set_field(prefix, "after", last_seal[0]),
                                   "seal_seq", last_seal[1])
            if rec["event"] == "audit.seal":
                name = seg_name(fseq, seq)
                prefix = set_field(prefix, "segment", name)
                prefix = set_field(prefix, "first_seq", fseq)
                prefix = set_field(prefix, "last_seq", seq - 1)
                prefix = set_field(prefix, "count", seq - fseq)
                last_seal = (name, seq)
            line, prev = rehash(prefix, mac)
            new.append(line)
            seq += 1
        if fi < len(files) - 1:
            npath = os.path.join(os.path.dirname(path), last_seal[0])
        else:
            npath = path
        os.unlink(path)
        write_lines(npath, new)
        out.append(npath)
    return out


# ---------------------------------------------------------------------------

class Trail:
    """A copy of a trail: segments/, audit.jsonl, keys/audit.key, keys/audit.keys/."""

    def __init__(self, root):
        self.root = root
        self.segdir = os.path.join(root, "segments")
        self.live = os.path.join(root, "audit.jsonl")
        self.keydir = os.path.join(root, "keys")
        self.key = os.path.join(self.keydir, "audit.key")

    def segments(self):
        return sorted(glob.glob(os.path.join(self.segdir, "audit-*.jsonl")))

    def keys(self):
        return [self.key] + sorted(glob.glob(os.path.join(self.keydir, "audit.keys", "*.key")))

    def files(self):
        return self.segments() + [self.live]


def copy_trail(src_segdir, src_live, src_keydir, dst):
    """Copies a trail and its keys to dst (keys keep their mode 0400)."""
    t = Trail(dst)
    os.makedirs(t.keydir)
    shutil.copytree(src_segdir, t.segdir, ignore=shutil.ignore_patterns("*.torn"))
    shutil.copy2(src_live, t.live)
    shutil.copy2(os.path.join(src_keydir, "audit.key"), t.key)
    if os.path.isdir(os.path.join(src_keydir, "audit.keys")):
        shutil.copytree(os.path.join(src_keydir, "audit.keys"), os.path.join(t.keydir, "audit.keys"))
    return t


@unittest.skipUnless(os.geteuid() == 0, "needs root: the writer runs as the service user")
class TestTamperMatrix(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-tamper-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.password = "tamper proof 11"
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        store = {"url": "s3://%s" % cls.moto.bucket, "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        partners = [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]},
                    {"name": "beta", "authorized_keys": [cls.keys.pub("beta")]},
                    {"name": "gamma", "password_hash": H.password_hash(cls.password)}]
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store, partners, env=cls.moto.env())
        text = cls.gw.config_text.replace(
            "audit:\n  path: %s\n" % H.yaml_str(cls.gw.audit_path),
            "audit:\n  path: %s\n  segment_max: 3KiB\n  host_id: %s\n"
            % (H.yaml_str(cls.gw.audit_path), HOST_A))
        # beta rejects a second copy of the same bytes
        text = text.replace('  - name: "beta"\n', '  - name: "beta"\n'
                            '    duplicate_window: 1h\n    duplicate_policy: reject\n')
        # acme and gamma may read back (download, list) what they sent
        for n in ("acme", "gamma"):
            text = text.replace('  - name: "%s"\n' % n, '  - name: "%s"\n    role: owner\n' % n)
        assert "duplicate_policy" in text and "segment_max" in text and "owner" in text, text
        cls.gw.config_text = text
        with open(cls.gw.config_path, "w") as f:
            f.write(text)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        try:
            cls._traffic()
        finally:
            cls.gw.stop()
        cls._live_records()
        cls.segdir = os.path.join(os.path.dirname(cls.gw.audit_path), "segments")
        cls.orig = copy_trail(cls.segdir, cls.gw.audit_path, cls.gw.state_dir,
                              os.path.join(cls.tmp, "orig"))
        cls.ncase = 0

    @classmethod
    def _ok(cls, res, what):
        if res.rc != 0:
            raise AssertionError("%s: %r\n%s" % (what, res, cls.gw.log_tail()))

    @classmethod
    def _wait(cls, pred, what, timeout=30):
        r = cls.gw.wait_audit(pred, timeout)
        if r is None:
            raise AssertionError("no %s\n%s" % (what, cls.gw.log_tail()))
        return r

    @classmethod
    def _stored(cls, partner, path):
        return cls._wait(lambda r: r.get("event") == "file.stored" and r.get("partner") == partner
                         and r.get("path") == path, "file.stored for %s:%s" % (partner, path))

    @classmethod
    def _traffic(cls):
        def local(name, size=2000, data=None):
            p = os.path.join(cls.tmp, name)
            if data is None:
                H.write_random_file(p, size)
            else:
                with open(p, "wb") as f:
                    f.write(data)
            return p
        gw, port = cls.gw, cls.gw.port
        cls._ok(H.sftp(port, "acme", cls.keys.get("acme"),
                       ["put %s a%d.csv" % (local("a%d" % i), i) for i in range(1, 4)]), "acme puts")
        same = os.urandom(1500)
        cls._ok(H.sftp(port, "beta", cls.keys.get("beta"),
                       ["put %s dup1.csv" % local("d1", data=same)]), "beta put")
        cls._stored("beta", "dup1.csv")
        cls._ok(H.sftp(port, "beta", cls.keys.get("beta"),
                       ["put %s dup2.csv" % local("d2", data=same)]), "beta put again")
        cls._wait(lambda r: r.get("event") == "file.rejected" and r.get("path") == "dup2.csv",
                  "file.rejected for dup2.csv")
        cls._ok(H.sftp_password(port, "gamma", cls.password, ["put %s g1.csv" % local("g1")]),
                "gamma put (password)")
        for i in range(1, 4):
            cls._stored("acme", "a%d.csv" % i)
        cls._stored("gamma", "g1.csv")
        cls._ok(H.sftp(port, "acme", cls.keys.get("acme"),
                       ["get a1.csv %s" % os.path.join(cls.tmp, "a1.back"), "ls -l"]),
                "acme get and ls")
        cls._wait(lambda r: r.get("event") == "sftp.list", "sftp.list")
        rc, out, err = H.run_sluice(["audit", "rotate-key", "-c", gw.config_path])
        if rc != 0:
            raise AssertionError("rotate-key: %s%s\n%s" % (out, err, gw.log_tail()))
        cls._wait(lambda r: r.get("event") == "audit.key_rotated", "audit.key_rotated")
        cls._ok(H.sftp(port, "acme", cls.keys.get("acme"),
                       ["put %s a%d.csv" % (local("a%d" % i), i) for i in range(4, 6)]),
                "acme puts after the rotation")
        cls._ok(H.sftp_password(port, "gamma", cls.password, ["put %s g2.csv" % local("g2"),
                                                               "ls"]), "gamma put and ls")
        for p, n in (("acme", "a4.csv"), ("acme", "a5.csv"), ("gamma", "g2.csv")):
            cls._stored(p, n)

    @classmethod
    def _live_records(cls):
        """A size rotation between the last records and the stop can leave
        the live trail with its audit.open alone; a test edits a record
        there. A login and a listing (no rotation at start: the live trail
        is fresh) give it some, as often as that takes."""
        for _ in range(3):
            if len(read_lines(cls.gw.audit_path)) >= 3:
                return
            cls.gw.start()
            try:
                cls._ok(H.sftp(cls.gw.port, "acme", cls.keys.get("acme"), ["ls"]),
                        "acme ls after the stop")
            finally:
                cls.gw.stop()

    # -- helpers

    def fresh(self):
        """A fresh copy of the trail, with a configuration naming it (for -c)."""
        type(self).ncase += 1
        t = copy_trail(self.orig.segdir, self.orig.live, self.orig.keydir,
                       os.path.join(self.tmp, "case%02d" % self.ncase))
        t.cfg = os.path.join(t.root, "cfg.yaml")
        text = self.gw.config_text.replace(
            "audit:\n  path: %s\n" % H.yaml_str(self.gw.audit_path),
            "audit:\n  path: %s\n  key: %s\n" % (H.yaml_str(t.live), H.yaml_str(t.key)))
        assert t.key in text
        with open(t.cfg, "w") as f:
            f.write(text)
        return t

    def middle(self, t):
        segs = t.segments()
        self.assertGreaterEqual(len(segs), 5, segs)
        return segs[len(segs) // 2]

    def verify(self, *args):
        # --local: files are read here, never by a gateway that happens to
        # answer on the default control socket
        rc, out, err = H.run_sluice(["audit", "verify", "--local"] + list(args))
        return rc, out + err

    def ways(self, t, keys=None):
        """[(how, rc, output)] of verify -c, DIR + live, and each file given."""
        keys = t.keys() if keys is None else keys
        kargs = []
        for k in keys:
            kargs += ["--key", k]
        out = [("-c",) + self.verify("-c", t.cfg)] if keys == t.keys() else []
        out.append(("dir",) + self.verify(*(kargs + [t.segdir, t.live])))
        out.append(("files",) + self.verify(*(kargs + t.files())))
        return out

    def named(self, t, path, line, kind, keys=None):
        """Every way of verifying exits 1 and names basename(path):line: ...kind
        (a string, or a compiled pattern)."""
        kind = kind.pattern if isinstance(kind, re.Pattern) else re.escape(kind)
        pat = re.compile(r"(^|/)%s:%d: .*(%s)" % (re.escape(os.path.basename(path)), line, kind),
                         re.M)
        for how, rc, out in self.ways(t, keys):
            self.assertEqual(rc, 1, "verify (%s) missed it:\n%s" % (how, out))
            self.assertRegex(out, pat, "verify (%s) named something else" % how)
        return out

    def record_line(self, path, pred):
        """The 1-based line of the first record of path for which pred holds."""
        for i, line in enumerate(read_lines(path), 1):
            if pred(json.loads(line)):
                return i
        self.fail("no such record in %s" % path)

    # -- the untouched trail

    def test_00_real_trail_verifies(self):
        t = self.fresh()
        recs = [json.loads(l) for p in t.files() for l in read_lines(p)]
        events = {r["event"] for r in recs}
        for ev in ("auth.success", "file.received", "file.accepted", "file.rejected",
                   "file.stored", "sftp.read", "sftp.list", "audit.seal", "audit.open",
                   "audit.key_rotated", "process.start", "process.stop"):
            self.assertIn(ev, events)
        self.assertEqual({r["host"] for r in recs}, {HOST_A})
        self.assertEqual(len({r["kid"] for r in recs}), 2, "two keys in play")
        self.assertEqual(len(t.keys()), 2, t.keys())
        self.assertEqual([r["seq"] for r in recs], list(range(1, len(recs) + 1)))
        methods = {r["method"] for r in recs if r["event"] == "auth.success"}
        self.assertEqual(methods, {"publickey", "password"})
        for how, rc, out in self.ways(t):
            self.assertEqual(rc, 0, "%s: %s" % (how, out))
            self.assertIn("chain intact, MACs good", out)
        rc, out = self.verify(t.segdir, t.live)
        self.assertEqual(rc, 0, out)
        self.assertIn("MACs not checked", out)
        # the gateway's own configuration, as the operator runs it
        rc, out = self.verify("-c", self.gw.config_path)
        self.assertEqual(rc, 0, out)
        self.assertIn("MACs good", out)

    # -- records

    def test_edit_a_field(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        lines[2] = lines[2].replace(b'"host":"%s"' % HOST_A.encode(), b'"host":"gw-x.tamper.test"')
        write_lines(seg, lines)
        self.named(t, seg, 3, "record was altered")
        # without a key too: the plain hash of the line no longer matches
        rc, out = self.verify(t.segdir, t.live)
        self.assertEqual(rc, 1, out)

    def test_edit_a_field_and_its_hash(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        prefix, _, mac = split_record(lines[2].rstrip(b"\n"))
        lines[2], _ = rehash(set_field(prefix, "ts", "2020-01-01T00:00:00.000000Z"), mac)
        write_lines(seg, lines)
        # with the keys its MAC is named; without, the next record's prev
        self.named(t, seg, 3, "MAC does not match")
        rc, out = self.verify(t.segdir, t.live)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"(^|/)%s:4: chain broken" % re.escape(os.path.basename(seg)))

    def test_delete_a_record(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        del lines[2]
        write_lines(seg, lines)
        self.named(t, seg, 3, "chain broken")

    def test_insert_a_copy(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        lines.insert(3, lines[1])
        write_lines(seg, lines)
        self.named(t, seg, 4, "chain broken")

    def test_swap_two_records(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        lines[2], lines[3] = lines[3], lines[2]
        write_lines(seg, lines)
        self.named(t, seg, 3, "chain broken")

    def test_edit_in_the_live_file(self):
        t = self.fresh()
        lines = read_lines(t.live)
        self.assertGreaterEqual(len(lines), 3)
        lines[-1] = lines[-1].replace(b'"seq":', b'"seq": ')
        write_lines(t.live, lines)
        self.named(t, t.live, len(lines), "record was altered")

    # -- cut tails

    def test_cut_the_seal(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        write_lines(seg, lines[:-1])
        self.named(t, seg, len(lines), "cut tail")

    def test_cut_the_seal_and_the_record_before(self):
        t = self.fresh()
        seg = self.middle(t)
        lines = read_lines(seg)
        write_lines(seg, lines[:-2])
        self.named(t, seg, len(lines) - 1, "cut tail")

    def test_cut_the_last_segment_mid_line(self):
        t = self.fresh()
        seg = t.segments()[-1]
        lines = read_lines(seg)
        write_lines(seg, lines[:-1] + [lines[-1][:40]])
        self.named(t, seg, len(lines), "not terminated by a newline")

    # -- whole segments

    def test_drop_a_middle_segment(self):
        t = self.fresh()
        segs = t.segments()
        seg = self.middle(t)
        after = segs[segs.index(seg) + 1]
        os.unlink(seg)
        self.named(t, after, 1, "a segment is missing")

    def test_swap_two_segments(self):
        t = self.fresh()
        segs = t.segments()
        i = segs.index(self.middle(t))
        a, b = segs[i], segs[i + 1]
        da, db = read_lines(a), read_lines(b)
        write_lines(a, db)
        write_lines(b, da)
        self.named(t, a, 1, "a segment is missing")

    def test_drop_the_oldest_segment(self):
        # the configured trail begins at seq 1: nothing in sluice removes a
        # segment, so one missing at the start is named with -c; a segment
        # given alone may start later (an examiner's period)
        t = self.fresh()
        segs = t.segments()
        os.unlink(segs[0])
        rc, out = self.verify("-c", t.cfg)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"(^|/)%s:1: .*segments before it are missing"
                         % re.escape(os.path.basename(segs[1])))
        rc, out = self.verify(*sum([["--key", k] for k in t.keys()], []) + t.files())
        self.assertEqual(rc, 0, out)
        self.assertIn("not given: not checked", out)

    # -- forgeries without the key

    def forge(self, t, edit):
        """Applies edit(lines of the middle segment) and re-chains everything
        from there to the live file as a forger without the key would; the
        middle segment's new path."""
        segs = t.segments()
        i = segs.index(self.middle(t))
        files = [(p, read_lines(p)) for p in segs[i:] + [t.live]]
        files[0] = (files[0][0], edit(files[0][1]))
        return rechain(files)[0]

    def forged_only_mac_catches(self, t, seg, line):
        rc, out = self.verify(t.segdir, t.live)
        self.assertEqual(rc, 0, "the forgery is not a good one:\n" + out)
        self.assertIn("MACs not checked", out)
        rc, out = self.verify(*t.files())
        self.assertEqual(rc, 0, out)
        self.named(t, seg, line, "MAC does not match")

    def test_forgery_edit_rechained(self):
        t = self.fresh()

        def edit(lines):
            prefix, _, mac = split_record(lines[2].rstrip(b"\n"))
            lines[2], _ = rehash(set_field(prefix, "host", "gw-x.tamper.test"), mac)
            return lines
        seg = self.forge(t, edit)
        self.forged_only_mac_catches(t, seg, 3)

    def test_forgery_delete_rechained(self):
        t = self.fresh()
        old = self.middle(t)

        def edit(lines):
            del lines[2]
            return lines
        seg = self.forge(t, edit)
        self.assertNotEqual(os.path.basename(seg), os.path.basename(old), "renamed to its new seqs")
        self.forged_only_mac_catches(t, seg, 3)

    def test_forgery_mac_stripped(self):
        # a forger drops the MACs of what he rewrote: a keyed trail cannot
        # turn unkeyed half-way
        t = self.fresh()

        def edit(lines):
            out = []
            for l in lines:
                prefix, _, _ = split_record(l.rstrip(b"\n"))
                out.append(rehash(prefix, b"")[0])
            return out
        seg = self.forge(t, edit)
        self.named(t, seg, 1, "has no \"mac\" after keyed records")

    # -- keys

    def test_wrong_key(self):
        t = self.fresh()
        bad = os.path.join(t.root, "random.key")
        fd = os.open(bad, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        os.write(fd, os.urandom(32))
        os.close(fd)
        self.named(t, t.segments()[0], 1, "wrong key", keys=[bad])
        # -c with the random key in audit.key's place and the old keys gone
        shutil.rmtree(os.path.join(t.keydir, "audit.keys"))
        os.chmod(t.key, 0o600)
        shutil.copy2(bad, t.key)
        rc, out = self.verify("-c", t.cfg)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"(^|/)%s:1: wrong key" % re.escape(os.path.basename(t.segments()[0])))

    def test_one_key_of_two(self):
        # the new key alone: the first record MAC'd with the old one is named
        t = self.fresh()
        recs = [(p, i, json.loads(l)) for p in t.files() for i, l in enumerate(read_lines(p), 1)]
        newkid = recs[-1][2]["kid"]
        p, i, _ = [x for x in recs if x[2]["kid"] != newkid][0]
        self.named(t, p, i, "wrong key", keys=[t.key])

    # -- another host's trail

    def other_host_trail(self):
        """A short trail of a second gateway (another host id, its own key)."""
        if getattr(type(self), "_other", None) is None:
            objects = os.path.join(self.tmp, "objects-b")
            os.makedirs(objects)
            gw = H.Sluice(os.path.join(self.tmp, "gw-b"), {"url": "file://" + objects},
                          [{"name": "acme", "authorized_keys": [self.keys.pub("acme")]}])
            gw.config_text = gw.config_text.replace(
                "audit:\n  path: %s\n" % H.yaml_str(gw.audit_path),
                "audit:\n  path: %s\n  segment_max: 1KiB\n  host_id: %s\n"
                % (H.yaml_str(gw.audit_path), HOST_B))
            with open(gw.config_path, "w") as f:
                f.write(gw.config_text)
            try:
                for _ in range(2):
                    gw.start()
                    self.assertEqual(H.sftp(gw.port, "acme", self.keys.get("acme"), ["ls"]).rc, 0)
                    gw.stop()
            finally:
                gw.kill()
            segdir = os.path.join(os.path.dirname(gw.audit_path), "segments")
            type(self)._other = copy_trail(segdir, gw.audit_path, gw.state_dir,
                                           os.path.join(self.tmp, "other"))
        return type(self)._other

    def test_another_hosts_segment_spliced_in(self):
        other = self.other_host_trail()
        osegs = other.segments()
        self.assertGreaterEqual(len(osegs), 3, osegs)
        rc, out = self.verify("--key", other.key, other.segdir, other.live)
        self.assertEqual(rc, 0, out)
        # in place of a middle segment, under that segment's name
        t = self.fresh()
        seg = self.middle(t)
        shutil.copyfile(osegs[1], seg)
        self.named(t, seg, 1, FOREIGN)
        # beside them, under its own name (it sorts among ours: its seqs
        # are as low as our first segments')
        t = self.fresh()
        shutil.copy(osegs[-1], t.segdir)
        spliced = os.path.join(t.segdir, os.path.basename(osegs[-1]))
        self.assertNotEqual(t.segments()[0], spliced)
        self.named(t, spliced, 1, FOREIGN)
        # with its host's key given as well, it is still named
        t = self.fresh()
        seg = self.middle(t)
        shutil.copyfile(osegs[1], seg)
        self.named(t, seg, 1, FOREIGN, keys=t.keys() + [other.key])


# ---------------------------------------------------------------------------

CLIENTS = 40
PER_CLIENT = 3


@unittest.skipUnless(os.geteuid() == 0, "needs root: the writer runs as the service user")
class TestConcurrentOneChain(unittest.TestCase):

    def test_many_writers_one_chain(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-tamper-conc-")
        self.addCleanup(d.cleanup)
        tmp = d.name
        keys = H.Keys(os.path.join(tmp, "keys"))
        moto = H.Moto(tmp).start()
        self.addCleanup(moto.stop)
        pw = "concurrent 11"
        partners = [{"name": "k1", "authorized_keys": [keys.pub("k1")]},
                    {"name": "k2", "authorized_keys": [keys.pub("k2")]},
                    {"name": "p1", "password_hash": H.password_hash(pw)},
                    {"name": "p2", "password_hash": H.password_hash(pw)}]
        store = {"url": "s3://%s" % moto.bucket, "region": "us-east-1",
                 "endpoint": moto.endpoint, "path_style": True}
        limits = "\n".join(["server:", "  max_startups: 100", "  max_startups_per_address: 100",
                            "  max_sessions_per_address: 100", "  max_sessions_per_partner: 20"])
        gw = H.Sluice(os.path.join(tmp, "gw"), store, partners, env=moto.env(),
                      extra_config=limits)
        gw.config_text = gw.config_text.replace(
            "audit:\n  path: %s\n" % H.yaml_str(gw.audit_path),
            "audit:\n  path: %s\n  segment_max: 4KiB\n  host_id: gw-conc.test\n"
            % H.yaml_str(gw.audit_path))
        with open(gw.config_path, "w") as f:
            f.write(gw.config_text)
        self.addCleanup(gw.kill)
        gw.start()

        srcs = []
        for c in range(CLIENTS):
            row = []
            for j in range(PER_CLIENT):
                p = os.path.join(tmp, "c%02d-%d.csv" % (c, j))
                H.write_random_file(p, 1000 + 37 * c + j)
                row.append(p)
            srcs.append(row)
        results = [None] * CLIENTS
        stop = threading.Event()
        ctl = []

        def client(c):
            name = partners[c % 4]["name"]
            cmds = ["put %s %s" % (p, os.path.basename(p)) for p in srcs[c]] + ["ls"]
            if name.startswith("k"):
                results[c] = H.sftp(gw.port, name, keys.get(name), cmds, timeout=120)
            else:
                results[c] = H.sftp_password(gw.port, name, pw, cmds, timeout=120)

        def control(args):
            while not stop.is_set():
                ctl.append(H.run_sluice(args + ["-c", gw.config_path], timeout=60))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        # operators at work meanwhile (through the control socket): each
        # command is an operator.command and an operator.done record
        cts = [threading.Thread(target=control, args=(["queue", "list"],)),
               threading.Thread(target=control, args=(["audit", "trace", "k1:c00-0.csv"],))]
        for ct in cts:
            ct.start()
        for th in threads:
            th.start()
        for th in threads:
            th.join(180)
        for c, r in enumerate(results):
            self.assertIsNotNone(r, "client %d did not finish" % c)
            self.assertEqual(r.rc, 0, "client %d: %r\n%s" % (c, r, gw.log_tail()))
        names = {(partners[c % 4]["name"], os.path.basename(p))
                 for c in range(CLIENTS) for p in srcs[c]}

        def all_stored():
            got = {(r.get("partner"), r.get("path")) for r in gw.audit_records()
                   if r.get("event") == "file.stored"}
            return names <= got
        ok = H.poll(all_stored, 90, 0.5)
        stop.set()
        for ct in cts:
            ct.join(60)
        self.assertTrue(ok, "not every file was stored\n%s" % gw.log_tail())
        # trace exits 1 while the file's story has a gap (not stored yet),
        # 3 before it was received
        self.assertTrue(ctl and all(rc in (0, 1, 3) for rc, _, _ in ctl),
                        "control commands: %r" % [(rc, e) for rc, _, e in ctl
                                                  if rc not in (0, 1, 3)][:3])
        # verify through the running gateway (the writer still rotating)
        rc, out, err = H.run_sluice(["audit", "verify", "-c", gw.config_path], timeout=60)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)
        gw.stop()
        rc, out, err = H.run_sluice(["audit", "verify", "-c", gw.config_path], timeout=60)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)

        segs = H.audit_segments(gw.audit_path)
        self.assertGreaterEqual(len(segs), 10, "the writer did not rotate every 4 KiB")
        recs = gw.audit_records()
        self.assertEqual([r["seq"] for r in recs], list(range(1, len(recs) + 1)))
        self.assertEqual({r["host"] for r in recs}, {"gw-conc.test"})
        by_fid = {}
        for r in recs:
            if r.get("fid"):
                by_fid.setdefault(r["fid"], []).append(r["event"])
        received = [r for r in recs if r["event"] == "file.received"]
        self.assertEqual({(r["partner"], r["path"]) for r in received}, names)
        self.assertEqual(len(received), len(names), "a file received twice")
        for r in received:
            evs = by_fid[r["fid"]]
            self.assertIn("file.accepted", evs, (r, evs))
            self.assertIn("file.stored", evs, (r, evs))
            self.assertLess(evs.index("file.received"), evs.index("file.accepted"), evs)
            self.assertLess(evs.index("file.accepted"), evs.index("file.stored"), evs)
        logins = {r["session"] for r in recs if r["event"] == "auth.success"}
        self.assertEqual(len(logins), CLIENTS)
        self.assertEqual({r["session"] for r in recs if r["event"] == "session.end"}, logins)
        self.assertEqual(sum(1 for r in recs if r["event"] == "sftp.list"), CLIENTS)
        ops = [r for r in recs if r["event"] == "operator.command"]
        # one per control command, and the verify -c above
        self.assertEqual(len(ops), len(ctl) + 1, "one operator.command per command")
        self.assertEqual(len([r for r in recs if r["event"] == "operator.done"]), len(ctl) + 1)


if __name__ == "__main__":
    unittest.main()
