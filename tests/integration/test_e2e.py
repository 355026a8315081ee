"""
End-to-end: the real OpenSSH sftp client -> `sluice serve` -> moto's S3
(IAM auth on) or a file:// store; plus the CLI (check-config, audit verify).

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_e2e
"""

import os
import re
import shutil
import socket
import tempfile
import time
import unittest
import uuid

import harness as H


def _tmpdir(cls_or_self, prefix):
    d = tempfile.TemporaryDirectory(prefix=prefix)
    if isinstance(cls_or_self, type):
        cls_or_self.addClassCleanup(d.cleanup)
    else:
        cls_or_self.addCleanup(d.cleanup)
    return d.name


class GatewayCase(unittest.TestCase):
    """Shared assertions. Subclasses set cls.gw (a harness.Sluice)."""

    gw = None
    upload_failed = False  # after one upload never arrives, wait briefly for the rest

    def setUp(self):
        if self.gw is not None and not self.gw.alive():
            self.fail("sluice serve is no longer running (exit %s)\n%s"
                      % (self.gw.proc and self.gw.proc.returncode, self.gw.log_tail()))

    def assertSftpOk(self, res, what="sftp"):
        if res.rc != 0:
            self.fail("%s failed: %r\n%s" % (what, res, self.gw.log_tail()))

    def assertRefused(self, res, what):
        self.assertNotEqual(res.rc, 0, "%s: sftp succeeded but must be refused: %r" % (what, res))
        self.assertNotIn("Remote working directory", res.out,
                         "%s: the session got past authentication: %r" % (what, res))

    def wait_path(self, path, sha256, timeout=None):
        """Waits until the local file path exists with the given SHA-256."""
        timeout = timeout or (5 if type(self).upload_failed else 30)
        ok = H.poll(lambda: os.path.isfile(path) and H.sha256_file(path) == sha256, timeout)
        if not ok:
            type(self).upload_failed = True
            self.fail("%s did not appear with sha256 %s within %ss\n%s"
                      % (path, sha256, timeout, self.gw.diagnostics()))


# ---------------------------------------------------------------------------

class TestCli(unittest.TestCase):
    """The subcommands that need no server."""

    @classmethod
    def setUpClass(cls):
        H.require_binary()

    def setUp(self):
        self.tmp = _tmpdir(self, "sluice-cli-")
        self.keys = H.Keys(os.path.join(self.tmp, "keys"))

    def write_config(self, allow_from):
        os.makedirs(os.path.join(self.tmp, "state"), exist_ok=True)
        text = H.render_config(
            H.free_port(), [os.path.join(self.tmp, "ssh_host_ed25519_key")],
            os.path.join(self.tmp, "state"), os.path.join(self.tmp, "audit.jsonl"),
            {"url": "file://" + os.path.join(self.tmp, "objects")},
            [{"name": "acme", "authorized_keys": [self.keys.pub("acme")], "allow_from": allow_from}])
        path = os.path.join(self.tmp, "cfg.yaml")
        with open(path, "w") as f:
            f.write(text)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if "allow_from" in l)
        return path, line

    def test_help_and_version(self):
        rc, out, err = H.run_sluice(["--help"])
        self.assertEqual(rc, 0, "sluice --help: rc=%s\n%s%s" % (rc, out, err))
        self.assertIn("serve", out + err, "--help does not mention serve")
        rc, out, err = H.run_sluice(["--version"])
        self.assertEqual(rc, 0, "sluice --version: rc=%s\n%s%s" % (rc, out, err))
        self.assertRegex(out + err, r"\d+\.\d+")

    def test_check_config_good(self):
        path, _ = self.write_config(["127.0.0.1/32"])
        rc, out, err = H.run_sluice(["check-config", "-c", path])
        self.assertEqual(rc, 0, "check-config refused a valid config: rc=%s\n%s%s" % (rc, out, err))

    def test_check_config_bad_cidr(self):
        path, line = self.write_config(["10.0.0.0/8", "999.1.2.3/33"])
        rc, out, err = H.run_sluice(["check-config", "-c", path])
        self.assertNotEqual(rc, 0, "check-config accepted a bad CIDR:\n%s%s" % (out, err))
        m = re.search(r"cfg\.yaml:(\d+):", out + err)
        self.assertIsNotNone(m, "no FILE:LINE: in check-config output:\n%s%s" % (out, err))
        self.assertEqual(int(m.group(1)), line,
                         "check-config blamed line %s, the bad CIDR is on line %d:\n%s%s"
                         % (m.group(1), line, out, err))


# ---------------------------------------------------------------------------

class TestS3Gateway(GatewayCase):
    """One moto (IAM auth on) and one sluice for the whole class."""

    PREFIX = "optional/prefix"

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.tmp = _tmpdir(cls, "sluice-e2e-")
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.beta_password = "correct horse " + uuid.uuid4().hex[:8]
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.gw = H.Sluice(
            os.path.join(cls.tmp, "gw"),
            store={"url": "s3://%s/%s" % (cls.moto.bucket, cls.PREFIX), "region": "us-east-1",
                   "endpoint": cls.moto.endpoint, "path_style": True},
            partners=[
                {"name": "acme", "authorized_keys": [cls.keys.pub("acme")], "allow_from": ["127.0.0.1/32"]},
                {"name": "beta", "password_hash": H.password_hash(cls.beta_password)},
                {"name": "gamma", "authorized_keys": [cls.keys.pub("gamma")], "allow_from": ["203.0.113.0/24"]},
            ],
            env=cls.moto.env())
        cls.addClassCleanup(cls.gw.kill)  # runs after stop below; a no-op if stopped
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    def key(self, partner, path):
        return "%s/%s/%s" % (self.PREFIX, partner, path)

    def local(self, name, size=None, text=None):
        path = os.path.join(self.tmp, "%s-%s" % (uuid.uuid4().hex[:6], name))
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
            return path, H.sha256_file(path)
        return path, H.write_random_file(path, size)

    def put(self, user, key, commands, **kw):
        return H.sftp(self.gw.port, user, key, commands, **kw)

    def wait_object(self, key):
        timeout = 5 if type(self).upload_failed else 30
        head = self.moto.wait_for_object(self.moto.bucket, key, timeout)
        if head is None:
            type(self).upload_failed = True
            self.fail("object %s/%s not stored within %ss; bucket holds %s\n%s"
                      % (self.moto.bucket, key, timeout, self.moto.keys(), self.gw.diagnostics()))
        return head

    def assertStoredIdentical(self, key, sha256):
        head = self.wait_object(key)
        body = self.moto.get_bytes(key)
        self.assertEqual(H.sha256_bytes(body), sha256,
                         "object %s differs from the uploaded file (%d bytes stored)" % (key, len(body)))
        meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        if "sha256" in meta:
            self.assertEqual(meta["sha256"].lower(), sha256, "x-amz-meta-sha256 of %s is wrong" % key)
        return head

    # -- 1. key auth upload, byte-identical in S3, still listed

    def test_key_upload_lands_in_s3(self):
        big, big_sha = self.local("big.bin", size=3 * 1024 * 1024)
        small, small_sha = self.local("small.csv", text="id,amount\n1,10.00\n2,-3.50\n")
        res = self.put("acme", self.keys.get("acme"),
                       ["-mkdir in", "put %s in/big.bin" % big, "put %s in/file.csv" % small, "ls -l in"])
        self.assertSftpOk(res, "put as acme")
        for name in ("big.bin", "file.csv"):
            self.assertIn(name, res.out, "ls right after put does not show %s: %r" % (name, res))
        self.assertStoredIdentical(self.key("acme", "in/big.bin"), big_sha)
        self.assertStoredIdentical(self.key("acme", "in/file.csv"), small_sha)
        # still visible to the partner after the upload (invariant 6), in a new session
        res = self.put("acme", self.keys.get("acme"), ["ls -l in"])
        self.assertSftpOk(res, "ls after upload")
        for name in ("big.bin", "file.csv"):
            self.assertIn(name, res.out, "ls after the upload no longer shows %s: %r" % (name, res))

    def test_host_key_generated_private(self):
        self.assertTrue(os.path.isfile(self.gw.host_key), "host key %s was not generated" % self.gw.host_key)
        mode = os.stat(self.gw.host_key).st_mode & 0o777
        self.assertEqual(mode, 0o600, "host key mode is %o, want 600" % mode)

    # -- 2. password auth; refusals

    def test_password_login_uploads(self):
        f, sha = self.local("pw.txt", text="password upload %s\n" % uuid.uuid4())
        res = H.sftp_password(self.gw.port, "beta", self.beta_password,
                              ["-mkdir pw", "put %s pw/hello.txt" % f, "ls pw"])
        self.assertSftpOk(res, "password login as beta")
        self.assertIn("hello.txt", res.out)
        self.assertStoredIdentical(self.key("beta", "pw/hello.txt"), sha)

    def test_wrong_password_refused(self):
        f, _ = self.local("nope.txt", text="must not arrive\n")
        res = H.sftp_password(self.gw.port, "beta", self.beta_password + "x",
                              ["pwd", "put %s wrongpw.txt" % f])
        self.assertRefused(res, "wrong password for beta")
        self.assertFalse(H.find_named(self.gw.state_dir, "wrongpw.txt"), "a refused login stored a file")
        self.assertFalse([k for k in self.moto.keys() if k.endswith("wrongpw.txt")])
        rec = self.gw.wait_audit(lambda r: r.get("event") == "auth.failure"
                                 and "beta" in (r.get("partner"), r.get("user")), timeout=10)
        self.assertIsNotNone(rec, "no auth.failure audit record for beta's wrong password\n%s"
                             % self.gw.log_tail())

    def test_wrong_key_refused(self):
        res = self.put("acme", self.keys.get("wrong"), ["pwd"])
        self.assertRefused(res, "acme with a key that is not authorized")

    def test_unknown_user_refused(self):
        res = self.put("mallory", self.keys.get("acme"), ["pwd"])
        self.assertRefused(res, "unknown user with acme's key")
        res = H.sftp_password(self.gw.port, "mallory", self.beta_password, ["pwd"])
        self.assertRefused(res, "unknown user with beta's password")

    # -- 7. allow_from

    def test_allow_from_excludes_address(self):
        res = self.put("gamma", self.keys.get("gamma"), ["pwd"])
        self.assertRefused(res, "gamma (allow_from 203.0.113.0/24) from 127.0.0.1")

    # -- 3. path confinement

    def test_path_escape_refused(self):
        name = "escape-%s.txt" % uuid.uuid4().hex[:8]
        f, _ = self.local("escape.txt", text="escape attempt\n")
        for target in ("../" + name, "/../../tmp/" + name):
            res = self.put("acme", self.keys.get("acme"), ["pwd", "put %s %s" % (f, target)])
            self.assertIn("Remote working directory", res.out, "acme did not log in: %r" % res)
            self.assertNotEqual(res.rc, 0, "put to %s succeeded: %r" % (target, res))
            self.assertTrue(res.err.strip(), "sftp reported no error for put to %s: %r" % (target, res))
        self.assertTrue(self.gw.alive(), "sluice died on a path escape\n%s" % self.gw.log_tail())
        allowed = os.path.realpath(self.gw.landing("acme")) + os.sep
        hits = set()
        for root in (self.tmp, "/tmp"):  # whole trees
            hits.update(os.path.realpath(p) for p in H.find_named(root, name))
        for d in ("/", os.path.dirname(self.tmp), H.HERE, H.REPO, self.gw.state_dir):  # just these dirs
            if os.path.lexists(os.path.join(d, name)):
                hits.add(os.path.join(d, name))
        outside = sorted(p for p in hits if not p.startswith(allowed))
        self.assertEqual(outside, [], "a path escape wrote outside landing/acme\n%s" % self.gw.log_tail())

    # -- 4. audit trail

    def test_audit_chain(self):
        f, sha = self.local("audit.txt", text="audited %s\n" % uuid.uuid4())
        res = self.put("acme", self.keys.get("acme"), ["-mkdir audit", "put %s audit/log.txt" % f])
        self.assertSftpOk(res, "put for the audit test")
        key = self.key("acme", "audit/log.txt")
        self.assertStoredIdentical(key, sha)

        def about(r, event):
            return r.get("event") == event and (
                H.norm_path(r.get("path")) == "audit/log.txt" or r.get("key") == key)
        for event in ("file.received", "file.stored"):
            rec = self.gw.wait_audit(lambda r: about(r, event), timeout=15)
            self.assertIsNotNone(rec, "no %s audit record for audit/log.txt; events: %s"
                                 % (event, [r.get("event") for r in self.gw.audit_records()]))
        stored = self.gw.wait_audit(lambda r: about(r, "file.stored"))
        self.assertEqual(stored.get("bucket"), self.moto.bucket, "file.stored record: %s" % stored)
        self.assertEqual(stored.get("key"), key, "file.stored record: %s" % stored)
        received = self.gw.wait_audit(lambda r: about(r, "file.received"))
        if "sha256" in received:
            self.assertEqual(received["sha256"], sha, "file.received record: %s" % received)
        self.assertIsNotNone(self.gw.wait_audit(
            lambda r: r.get("event") == "auth.success" and r.get("partner") == "acme"),
            "no auth.success record for acme")
        for r in self.gw.audit_records():
            self.assertIn("prev", r, "audit record without prev: %s" % r)

        rc, out, err = H.run_sluice(["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, "audit verify failed on the live trail: rc=%s\n%s%s" % (rc, out, err))

        # tampering, always on copies
        copies = os.path.join(self.tmp, "audit-copies")
        os.makedirs(copies, exist_ok=True)
        with open(self.gw.audit_path, "rb") as fh:
            lines = fh.read().splitlines(keepends=True)
        self.assertGreaterEqual(len(lines), 3, "too few audit lines to tamper with")
        while lines and not lines[-1].endswith(b"\n"):  # a record being written right now
            lines.pop()
        mid = len(lines) // 2  # 0-based; line number mid + 1

        def verify_copy(name, new_lines):
            p = os.path.join(copies, name)
            with open(p, "wb") as fh:
                fh.write(b"".join(new_lines))
            return H.run_sluice(["audit", "verify", p])

        rc, out, err = verify_copy("intact.jsonl", lines)
        self.assertEqual(rc, 0, "audit verify fails on an untouched copy: rc=%s\n%s%s" % (rc, out, err))

        # (a) one byte of a middle record's content: the chain breaks there
        # (or at the next record, if records carry no hash of their own)
        content = flip_digit(lines[mid], after=b'"ts"')
        rc, out, err = verify_copy("content.jsonl", lines[:mid] + [content] + lines[mid + 1:])
        self.assertNotEqual(rc, 0, "audit verify accepted a changed record (line %d)" % (mid + 1))
        self.assertTrue(names_line(out + err, mid + 1) or names_line(out + err, mid + 2),
                        "audit verify did not name line %d:\n%s%s" % (mid + 1, out, err))

        # (b) one byte of a middle record's prev: that very line is bad
        broken = flip_digit(lines[mid], after=b'"prev"')
        rc, out, err = verify_copy("prev.jsonl", lines[:mid] + [broken] + lines[mid + 1:])
        self.assertNotEqual(rc, 0, "audit verify accepted a broken prev (line %d)" % (mid + 1))
        self.assertTrue(names_line(out + err, mid + 1),
                        "audit verify did not name line %d:\n%s%s" % (mid + 1, out, err))


def flip_digit(line, after):
    """line with one hex digit / digit in the value after the key `after` changed."""
    i = line.find(after)
    if i < 0:
        raise AssertionError("no %s in audit line %r" % (after.decode(), line))
    for j in range(i + len(after), len(line)):
        c = line[j:j + 1]
        if c.isdigit() or c in b"abcdef":
            new = b"0" if c != b"0" else b"1"
            return line[:j] + new + line[j + 1:]
    raise AssertionError("nothing to flip after %s in %r" % (after.decode(), line))


def names_line(text, n):
    return re.search(r"(?<![\d.])%d(?![\d.])" % n, text) is not None


# ---------------------------------------------------------------------------

class TestFileStore(GatewayCase):
    """6. store url file:///.../objects"""

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.tmp = _tmpdir(cls, "sluice-file-")
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
                          partners=[{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}])
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    def test_upload_lands_in_directory(self):
        f = os.path.join(self.tmp, "data.bin")
        sha = H.write_random_file(f, 300 * 1024 + 7)
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"),
                     ["-mkdir dir", "put %s dir/data.bin" % f, "ls -l dir"])
        self.assertSftpOk(res, "put as acme")
        self.assertIn("data.bin", res.out)
        self.wait_path(os.path.join(self.objects, "acme", "dir", "data.bin"), sha)
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["ls -l dir"])
        self.assertSftpOk(res, "ls after upload")
        self.assertIn("data.bin", res.out, "ls after the upload no longer shows data.bin")


# ---------------------------------------------------------------------------

class TestUnrecordedSweep(GatewayCase):
    """A spool link no database row knows (a session died between linking a closed
    upload and recording it) is moved to quarantine/_unrecorded/, never deleted."""

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.tmp = _tmpdir(cls, "sluice-unrec-")
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
                          partners=[{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}],
                          env={"SLUICE_TEST_UNRECORDED_AGE_S": "0"})
        # a short incomplete_ttl makes intake's janitor pass run every second
        with open(cls.gw.config_path) as f:
            text = f.read()
        old = '  - name: "acme"\n'
        assert old in text, text
        text = text.replace(old, old + "    completion:\n      incomplete_ttl: 4s\n", 1)
        with open(cls.gw.config_path, "w") as f:
            f.write(text)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    def test_unrecorded_spool_file_quarantined(self):
        # a normal upload first: its spool link is recorded and must not be touched
        f = os.path.join(self.tmp, "ok.bin")
        sha = H.write_random_file(f, 4096)
        self.assertSftpOk(H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["put %s ok.bin" % f]))
        self.wait_path(os.path.join(self.objects, "acme", "ok.bin"), sha)
        fid = uuid.uuid4().hex
        orphan = os.path.join(self.gw.state_dir, "spool", "incoming", fid)
        with open(orphan, "wb") as o:
            o.write(b"half-recorded bytes\n")
        qdir = os.path.join(self.gw.state_dir, "quarantine", "_unrecorded")
        self.assertTrue(H.poll(lambda: os.path.isfile(os.path.join(qdir, fid)), 15),
                        "the unrecorded spool file was not quarantined\n%s" % self.gw.diagnostics())
        self.assertFalse(os.path.exists(orphan))
        with open(os.path.join(qdir, fid), "rb") as q:
            self.assertEqual(q.read(), b"half-recorded bytes\n")
        with open(os.path.join(qdir, fid + ".reason")) as r:
            self.assertIn("never recorded", r.read())
        self.assertTrue(self.gw.wait_audit(lambda r: r.get("event") == "file.unrecorded"
                                           and r.get("fid") == fid, 5), self.gw.log_tail())
        # the recorded upload is still stored, nothing else moved
        self.assertEqual(sorted(os.listdir(qdir)), sorted([fid, fid + ".reason"]))


class TestShutdown(unittest.TestCase):
    """8. SIGTERM stops `sluice serve` cleanly: exit 0, no process left."""

    def setUp(self):
        H.require_binary()
        self.tmp = _tmpdir(self, "sluice-stop-")
        self.keys = H.Keys(os.path.join(self.tmp, "keys"))
        self.objects = os.path.join(self.tmp, "objects")
        os.makedirs(self.objects)
        self.gw = H.Sluice(os.path.join(self.tmp, "gw"), store={"url": "file://" + self.objects},
                           partners=[{"name": "acme", "authorized_keys": [self.keys.pub("acme")]}])
        self.addCleanup(self.gw.kill)
        self.gw.start()

    def test_sigterm_after_upload(self):
        f = os.path.join(self.tmp, "x.txt")
        sha = H.write_random_file(f, 1000)
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["put %s x.txt" % f])
        self.assertEqual(res.rc, 0, "%r\n%s" % (res, self.gw.log_tail()))
        stored = os.path.join(self.objects, "acme", "x.txt")
        self.assertTrue(H.poll(lambda: os.path.isfile(stored) and H.sha256_file(stored) == sha, 20),
                        "x.txt was not stored\n%s" % self.gw.diagnostics())
        rc = self.gw.stop()
        self.assertEqual(rc, 0, "sluice serve exited %s on SIGTERM\n%s" % (rc, self.gw.log_tail()))

    def test_sigterm_with_open_connection(self):
        # a client that connected and went quiet must not hold up shutdown
        s = socket.create_connection((H.LOCALHOST, self.gw.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"SSH-2.0-sluice-test\r\n")
        time.sleep(0.5)
        rc = self.gw.stop()
        self.assertEqual(rc, 0, "sluice serve exited %s on SIGTERM\n%s" % (rc, self.gw.log_tail()))

    def test_sigterm_with_idle_sftp_session(self):
        # a partner logged in and idle: its session ends, the gateway exits 0
        p = H.sftp_open(self.gw.port, "acme", self.keys.get("acme"))
        self.addCleanup(H.sftp_close, p)
        ok = self.gw.wait_audit(lambda r: r.get("event") == "auth.success", timeout=15)
        self.assertIsNotNone(ok, "the idle sftp session did not log in\n%s" % self.gw.log_tail())
        rc = self.gw.stop()
        self.assertEqual(rc, 0, "sluice serve exited %s on SIGTERM\n%s" % (rc, self.gw.log_tail()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
