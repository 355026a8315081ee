"""
Delivery receipts to partners (issue 11, spool/delivery.h): for each file's
final verdict, stored or rejected, the intake writes a JSON receipt,
clearsigned with the gateway's OpenPGP key (receipts.sign_with), into the
partner's receipts/ folder, which the partner reads over SFTP and can never
change, whatever its role.

Driven by the real OpenSSH sftp client through `sluice serve` into moto's S3
(IAM auth on); the gateway's signing key is made with `gpg --batch` at run
time.

  acme    role owner (may upload, rename, remove, mkdir), completion.checksum
          sha256: a good file with a matching NAME.sha256 is stored, a file
          with a wrong one is rejected (with its sidecar)
  quiet   receipts: false: stored, and no receipt

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_delivery_receipts
"""

import json
import os
import stat
import subprocess
import tempfile
import time
import unittest

import harness as H


def gpg(home, *args, **kw):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--yes",
                           "--pinentry-mode", "loopback", "--passphrase", ""] + list(args),
                          capture_output=True, timeout=60, **kw)


def fingerprint(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]


class DeliveryReceipts(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-delivery-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))

        # the gateway's signing key, and a partner-side home that trusts
        # only its public half (what a bank would do)
        cls.gwhome = os.path.join(tmp, "pgp-gateway")
        cls.bank = os.path.join(tmp, "pgp-bank")
        for d in (cls.gwhome, cls.bank):
            os.makedirs(d, mode=0o700)
            cls.addClassCleanup(subprocess.run, ["gpgconf", "--homedir", d, "--kill", "all"],
                                capture_output=True, timeout=30)
        r = gpg(cls.gwhome, "--quick-gen-key", "Gateway <gw@sluice.test>", "ed25519", "sign",
                "never")
        assert r.returncode == 0, r.stderr
        cls.gwfpr = fingerprint(cls.gwhome, "gw@sluice.test")
        conf = os.path.join(tmp, "conf")
        os.makedirs(conf)
        seckey = os.path.join(conf, "receipts.sec.asc")
        fd = os.open(seckey, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(gpg(cls.gwhome, "--export-secret-keys", "--armor", cls.gwfpr).stdout)
        pub = gpg(cls.gwhome, "--export", "--armor", cls.gwfpr).stdout
        assert gpg(cls.bank, "--import", input=pub).returncode == 0
        H.share_with_gateway(conf)

        cls.moto = H.Moto(tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        store = {"url": "s3://%s" % H.BUCKET, "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        plist = [{"name": n, "authorized_keys": [cls.keys.pub(n)]} for n in ("acme", "quiet")]
        extra = ("receipts:\n  sign_with: \"%s\"\n  keyring: %s\n  keep: 30d\n"
                 % (cls.gwfpr, H.yaml_str(seckey)))
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), store, plist, env=cls.moto.env(),
                          extra_config=extra)
        blocks = {"acme": "    role: owner\n    completion:\n      checksum: sha256",
                  "quiet": "    receipts: false"}
        lines = []
        for line in cls.gw.config_text.splitlines():
            lines.append(line)
            for n, block in blocks.items():
                if line == "  - name: %s" % H.yaml_str(n):
                    lines.append(block)
        cls.gw.config_text = "\n".join(lines) + "\n"
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)

        # one good file (stored), one with a wrong checksum (rejected)
        cls.good = os.urandom(5000)
        cls.bad = os.urandom(4000)
        files = {"good.csv": cls.good,
                 "good.csv.sha256": ("%s  good.csv\n" % H.sha256_bytes(cls.good)).encode(),
                 "bad.csv": cls.bad,
                 "bad.csv.sha256": ("%s  bad.csv\n" % H.sha256_bytes(b"other")).encode()}
        cmds = []
        for name, data in files.items():
            cmds.append("put %s in/%s" % (cls.local(name, data), name))
        res = H.sftp(cls.gw.port, "acme", cls.keys.get("acme"), ["mkdir in"] + cmds,
                     timeout=120)
        assert res.rc == 0, "%r\n%s" % (res, cls.gw.log_tail())
        res = H.sftp(cls.gw.port, "quiet", cls.keys.get("quiet"),
                     ["put %s q.csv" % cls.local("q.csv", os.urandom(1000))], timeout=120)
        assert res.rc == 0, "%r\n%s" % (res, cls.gw.log_tail())

    @classmethod
    def local(cls, name, data):
        path = os.path.join(cls.tmp, "local", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())

    def written(self, partner, path, timeout=60):
        r = self.gw.wait_audit(lambda r: r.get("event") == "receipt.written"
                               and r.get("partner") == partner and r.get("path") == path,
                               timeout)
        if r is None:
            self.fail("no receipt.written for %s/%s within %ss\n%s"
                      % (partner, path, timeout, self.gw.diagnostics()))
        return r

    def fetch(self, rec):
        """The receipt rec names, fetched over SFTP with `get`: its bytes."""
        out = os.path.join(self.tmp, "got", os.path.basename(rec["receipt"]))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"),
                     ["get %s %s" % (rec["receipt"], out)])
        self.assertEqual(res.rc, 0, "%r" % res)
        with open(out, "rb") as f:
            return out, f.read()

    def verified_json(self, path):
        """gpg --verify with the gateway's public key only; then the JSON."""
        v = gpg(self.bank, "--verify", path)
        self.assertEqual(v.returncode, 0, v.stderr.decode(errors="replace"))
        self.assertIn("Good signature", v.stderr.decode(errors="replace"))
        self.assertIn(self.gwfpr[-16:], v.stderr.decode(errors="replace").replace(" ", ""))
        d = gpg(self.bank, "--decrypt", path)
        self.assertEqual(d.returncode, 0, d.stderr)
        return json.loads(d.stdout)

    # -- the receipts

    def test_stored_receipt(self):
        stored = self.gw.wait_audit(lambda r: r.get("event") == "file.stored"
                                    and r.get("path") == "in/good.csv", 60)
        self.assertIsNotNone(stored, self.gw.diagnostics())
        rec = self.written("acme", "in/good.csv")
        self.assertEqual(rec["verdict"], "stored")
        self.assertTrue(rec["signed"])
        self.assertEqual(rec["signed_by"], self.gwfpr)
        self.assertEqual(rec["fid"], stored["fid"])
        self.assertEqual(rec["receipt"], "receipts/%s-good.csv.json.asc" % stored["fid"])
        path, data = self.fetch(rec)
        self.assertTrue(data.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"), data[:80])
        j = self.verified_json(path)
        self.assertEqual(j["receipt"], "sluice-delivery-receipt/1")
        self.assertEqual(j["partner"], "acme")
        self.assertEqual(j["path"], "in/good.csv")
        self.assertEqual(j["size"], len(self.good))
        self.assertEqual(j["sha256"], H.sha256_bytes(self.good))
        self.assertEqual(j["verdict"], "stored")
        acc = self.gw.wait_audit(lambda r: r.get("event") == "file.accepted"
                                 and r.get("path") == "in/good.csv", 5)
        self.assertEqual(j["rule"], acc["rule"])
        self.assertIn("checksum", j["rule"])
        self.assertIsNone(j["reason"])
        self.assertEqual(j["bucket"], H.BUCKET)
        self.assertEqual(j["key"], "acme/in/good.csv")
        self.assertEqual(j["etag"], stored["etag"])
        self.assertEqual(j["fid"], stored["fid"])
        for k in ("received_at", "stored_at", "created_at"):
            self.assertRegex(j[k], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", k)
        self.assertLessEqual(j["received_at"], j["stored_at"])
        self.assertTrue(j["gateway"])
        self.assertIn("version_id", j)
        # a tampered copy no longer verifies
        bad = path + ".tampered"
        with open(bad, "wb") as f:
            f.write(data.replace(b'"verdict": "stored"', b'"verdict": "xtored"'))
        self.assertNotEqual(gpg(self.bank, "--verify", bad).returncode, 0)

    def test_rejected_receipt(self):
        rej = self.gw.wait_audit(lambda r: r.get("event") == "file.rejected"
                                 and r.get("path") == "in/bad.csv", 60)
        self.assertIsNotNone(rej, self.gw.diagnostics())
        rec = self.written("acme", "in/bad.csv")
        self.assertEqual(rec["verdict"], "rejected")
        path, _ = self.fetch(rec)
        j = self.verified_json(path)
        self.assertEqual(j["verdict"], "rejected")
        self.assertEqual(j["sha256"], H.sha256_bytes(self.bad))
        self.assertIn("checksum mismatch", j["reason"])
        self.assertEqual(j["fid"], rej["fid"])
        for k in ("stored_at", "bucket", "key", "etag", "version_id"):
            self.assertIsNone(j[k], k)
        # the sidecar rejected with it gets its own
        self.assertEqual(self.written("acme", "in/bad.csv.sha256")["verdict"], "rejected")

    def test_on_disk_owner_and_mode(self):
        self.written("acme", "in/good.csv")
        d = os.path.join(self.gw.landing("acme"), "receipts")
        st = os.stat(d)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o2750 if os.geteuid() == 0 else 0o750)
        names = os.listdir(d)
        self.assertTrue(names)
        for n in names:
            fst = os.stat(os.path.join(d, n))
            self.assertEqual(stat.S_IMODE(fst.st_mode), 0o640, n)
        if os.geteuid() == 0:
            import grp
            import pwd
            self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, H.SERVICE_USER)
            self.assertEqual(grp.getgrgid(st.st_gid).gr_name,
                             grp.getgrgid(pwd.getpwnam(H.SESSION_USER).pw_gid).gr_name)

    def test_read_only_over_sftp(self):
        rec = self.written("acme", "in/good.csv")
        # every receipt of the run is written before the folder is listed
        self.written("acme", "in/bad.csv")
        self.written("acme", "in/bad.csv.sha256")
        d = os.path.join(self.gw.landing("acme"), "receipts")
        before = sorted(os.listdir(d))
        name = rec["receipt"]
        junk = self.local("junk.json", b"{}")
        for cmd in ("put %s receipts/forged.json" % junk,
                    "put %s %s" % (junk, name),
                    "rm %s" % name,
                    "rename %s receipts/x.json" % name,
                    "rename %s moved.json" % name,
                    "rename in/good.csv.sha256 receipts/y.json",
                    "mkdir receipts/sub",
                    "rmdir receipts",
                    "rename receipts gone",
                    "chmod 666 %s" % name):
            res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), [cmd])
            self.assertNotEqual(res.rc, 0, "%s succeeded: %r" % (cmd, res))
            self.assertIn("ermission denied", res.err + res.out, "%s: %r" % (cmd, res))
        self.assertEqual(sorted(os.listdir(d)), before)
        denied = [r for r in self.gw.audit_records() if r.get("event") == "sftp.denied"
                  and r.get("partner") == "acme" and "receipts" in (r.get("path", "") +
                                                                    r.get("path2", ""))]
        self.assertTrue(denied)
        # reading still works: ls and get
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["ls -l receipts"])
        self.assertEqual(res.rc, 0, "%r" % res)
        self.assertIn(os.path.basename(name), res.out)

    def test_receipts_off(self):
        stored = self.gw.wait_audit(lambda r: r.get("event") == "file.stored"
                                    and r.get("partner") == "quiet", 60)
        self.assertIsNotNone(stored, self.gw.diagnostics())
        self.written("acme", "in/good.csv")   # the intake is writing receipts
        time.sleep(2.5)                        # more than one receipts turn
        self.assertFalse([r for r in self.gw.audit_records()
                          if r.get("event") == "receipt.written" and r.get("partner") == "quiet"])
        self.assertFalse(os.path.exists(os.path.join(self.gw.landing("quiet"), "receipts")))


if __name__ == "__main__":
    unittest.main()
