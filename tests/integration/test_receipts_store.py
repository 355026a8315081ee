"""
Copies of delivery receipts in the store (issue 11, receipts.store;
uploader/receiptship.h): the intake, which holds no store credentials,
hands each receipt's bytes to the uploader through the state database; the
uploader puts them beside the object (<object key>.receipt.json[.asc]) or,
for a rejected file, under <prefix><partner>/receipts/<receipt name>, once
(If-None-Match: *), and records receipt.stored.

Driven by the real OpenSSH sftp client through `sluice serve` into moto's S3
(IAM auth on), receipts clearsigned with a key made by gpg at run time:

  acme    receipts.store: true (the top level): the stored file's receipt and
          the rejected file's are in S3 with the bytes the partner fetches
          over SFTP, and `gpg --verify` of the S3 copy passes
  quiet   receipts: {store: false}: a receipt over SFTP, nothing in S3
  The uploader dies right after its first copy is stored and before it is
  recorded (SLUICE_TEST_RECEIPT_CRASH, a test build's hook): the restarted
  uploader finds the copy there, identical, and records it once.

A bucket with Object Lock, store.object_lock and store.legal_hold: the copy
is retained and held like the objects. And a file:// store, unsigned
receipts: the copy lands beside the object.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_receipts_store
"""

import collections
import os
import subprocess
import tempfile
import unittest

import harness as H


def gpg(home, *args, **kw):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--yes",
                           "--pinentry-mode", "loopback", "--passphrase", ""] + list(args),
                          capture_output=True, timeout=60, **kw)


def fingerprint(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]


def with_blocks(gw, blocks):
    """Partner blocks inserted after each '- name: X' line of gw's config."""
    lines = []
    for line in gw.config_text.splitlines():
        lines.append(line)
        for n, block in blocks.items():
            if line == "  - name: %s" % H.yaml_str(n):
                lines.append(block)
    gw.config_text = "\n".join(lines) + "\n"
    with open(gw.config_path, "w") as f:
        f.write(gw.config_text)


def local(tmp, name, data):
    path = os.path.join(tmp, "local", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


class Base(unittest.TestCase):

    def written(self, partner, path, timeout=60):
        r = self.gw.wait_audit(lambda r: r.get("event") == "receipt.written"
                               and r.get("partner") == partner and r.get("path") == path,
                               timeout)
        if r is None:
            self.fail("no receipt.written for %s/%s within %ss\n%s"
                      % (partner, path, timeout, self.gw.diagnostics()))
        return r

    def stored(self, fid, timeout=60):
        r = self.gw.wait_audit(lambda r: r.get("event") == "receipt.stored"
                               and r.get("fid") == fid, timeout)
        if r is None:
            self.fail("no receipt.stored for %s within %ss\n%s"
                      % (fid, timeout, self.gw.diagnostics()))
        return r

    def fetch(self, partner, rec):
        """The receipt rec names, fetched over SFTP: its path and bytes."""
        out = os.path.join(self.tmp, "got", partner, os.path.basename(rec["receipt"]))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        res = H.sftp(self.gw.port, partner, self.keys.get(partner),
                     ["get %s %s" % (rec["receipt"], out)])
        self.assertEqual(res.rc, 0, "%r" % res)
        with open(out, "rb") as f:
            return out, f.read()


class S3Copies(Base):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-rstore-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))
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

        # the uploader dies once, right after storing its first copy
        cls.crash = os.path.join(tmp, "crash-once")
        open(cls.crash, "w").close()
        H.share_with_gateway(tmp)

        cls.moto = H.Moto(tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        # versioned: a second PUT of a copy would leave a second version
        cls.moto.s3.put_bucket_versioning(Bucket=H.BUCKET,
                                          VersioningConfiguration={"Status": "Enabled"})
        store = {"url": "s3://%s" % H.BUCKET, "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        plist = [{"name": n, "authorized_keys": [cls.keys.pub(n)]} for n in ("acme", "quiet")]
        extra = ("receipts:\n  sign_with: \"%s\"\n  keyring: %s\n  store: true\n"
                 % (cls.gwfpr, H.yaml_str(seckey)))
        env = dict(cls.moto.env())
        env["SLUICE_TEST_RECEIPT_CRASH"] = cls.crash
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), store, plist, env=env, extra_config=extra)
        with_blocks(cls.gw, {"acme": "    role: owner\n    completion:\n      checksum: sha256",
                             "quiet": "    role: owner\n    receipts:\n      store: false"})
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)

        cls.good = os.urandom(5000)
        cls.bad = os.urandom(4000)
        files = {"good.csv": cls.good,
                 "good.csv.sha256": ("%s  good.csv\n" % H.sha256_bytes(cls.good)).encode(),
                 "bad.csv": cls.bad,
                 "bad.csv.sha256": ("%s  bad.csv\n" % H.sha256_bytes(b"other")).encode()}
        cmds = ["put %s in/%s" % (local(tmp, n, d), n) for n, d in files.items()]
        res = H.sftp(cls.gw.port, "acme", cls.keys.get("acme"), ["mkdir in"] + cmds,
                     timeout=120)
        assert res.rc == 0, "%r\n%s" % (res, cls.gw.log_tail())
        res = H.sftp(cls.gw.port, "quiet", cls.keys.get("quiet"),
                     ["put %s q.csv" % local(tmp, "q.csv", os.urandom(1000))], timeout=120)
        assert res.rc == 0, "%r\n%s" % (res, cls.gw.log_tail())

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())

    def test_stored_copy_beside_object(self):
        rec = self.written("acme", "in/good.csv")
        st = self.stored(rec["fid"])
        self.assertEqual(st["key"], "acme/in/good.csv.receipt.json.asc")
        self.assertEqual(st["bucket"], H.BUCKET)
        self.assertEqual(st["partner"], "acme")
        path, data = self.fetch("acme", rec)
        s3data = self.moto.get_bytes(st["key"])
        self.assertEqual(s3data, data)
        self.assertEqual(st["sha256"], H.sha256_bytes(data))
        self.assertEqual(st["size"], len(data))
        # anyone holding the gateway's public key checks the S3 copy
        s3path = os.path.join(self.tmp, "s3-good.json.asc")
        with open(s3path, "wb") as f:
            f.write(s3data)
        v = gpg(self.bank, "--verify", s3path)
        self.assertEqual(v.returncode, 0, v.stderr.decode(errors="replace"))
        self.assertIn("Good signature", v.stderr.decode(errors="replace"))
        # and the object itself is still what the partner sent
        self.assertEqual(self.moto.get_bytes("acme/in/good.csv"), self.good)
        # the file's story tells where the copy is
        rc, out, err = H.run_sluice(["audit", "trace", "-c", self.gw.config_path, rec["fid"]],
                                    timeout=60)
        self.assertIn("receipt.stored", out, err)
        self.assertIn("acme/in/good.csv.receipt.json.asc", out)

    def test_rejected_copy_under_partner_prefix(self):
        rec = self.written("acme", "in/bad.csv")
        self.assertEqual(rec["verdict"], "rejected")
        st = self.stored(rec["fid"])
        self.assertEqual(st["key"], "acme/" + rec["receipt"])
        _, data = self.fetch("acme", rec)
        self.assertEqual(self.moto.get_bytes(st["key"]), data)

    def test_store_false_keeps_it_out_of_s3(self):
        rec = self.written("quiet", "q.csv")
        self.fetch("quiet", rec)
        # acme's copies are stored by now: the uploader has been through
        self.stored(self.written("acme", "in/good.csv")["fid"])
        self.stored(self.written("acme", "in/bad.csv")["fid"])
        self.assertFalse([k for k in self.moto.keys() if k.startswith("quiet/")
                          and "receipt" in k], self.moto.keys())
        self.assertFalse([r for r in self.gw.audit_records()
                          if r.get("event") == "receipt.stored" and r.get("partner") == "quiet"])

    def test_crash_after_put_stores_exactly_once(self):
        fids = [self.written("acme", p)["fid"]
                for p in ("in/good.csv", "in/bad.csv", "in/bad.csv.sha256")]
        for fid in fids:
            self.stored(fid)
        self.assertFalse(os.path.exists(self.crash), "the uploader never reached the hook")
        recs = [r for r in self.gw.audit_records() if r.get("event") == "receipt.stored"]
        per_fid = collections.Counter(r["fid"] for r in recs)
        self.assertTrue(all(n == 1 for n in per_fid.values()), per_fid)
        # the copy stored before the crash was found there, identical
        self.assertEqual(len([r for r in recs if r["existed"]]), 1, recs)
        with open(self.gw.log, errors="replace") as f:
            self.assertIn("role uploader exited with status 9", f.read())
        # one version of each copy, none failed
        versions = collections.Counter(
            v["Key"] for v in self.moto.s3.list_object_versions(Bucket=H.BUCKET)
            .get("Versions", []))
        for r in recs:
            self.assertEqual(versions[r["key"]], 1, r["key"])
            self.assertTrue(r["version_id"], r)
        self.assertFalse([r for r in self.gw.audit_records()
                          if r.get("event") == "receipt.store_failed"])


class ObjectLockCopies(Base):
    """store.object_lock and store.legal_hold reach the receipt's copy too."""

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-rstore-lock-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))
        cls.moto = H.Moto(tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.moto.s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
        store = {"url": "s3://locked", "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), store,
                          [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}],
                          env=cls.moto.env(), extra_config="receipts:\n  store: true\n")
        text = cls.gw.config_text.replace(
            "  path_style: true\n", "  path_style: true\n  object_lock: {mode: GOVERNANCE, days: 2}"
            "\n  legal_hold: true\n", 1)
        assert text != cls.gw.config_text
        cls.gw.config_text = text
        with open(cls.gw.config_path, "w") as f:
            f.write(text)
        with_blocks(cls.gw, {"acme": "    role: owner"})
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)
        res = H.sftp(cls.gw.port, "acme", cls.keys.get("acme"),
                     ["put %s l.csv" % local(tmp, "l.csv", os.urandom(2000))], timeout=120)
        assert res.rc == 0, "%r\n%s" % (res, cls.gw.log_tail())

    def test_copy_retained_and_held(self):
        rec = self.written("acme", "l.csv")
        st = self.stored(rec["fid"])
        self.assertEqual(st["key"], "acme/l.csv.receipt.json")
        self.assertEqual(st["bucket"], "locked")
        _, data = self.fetch("acme", rec)
        self.assertEqual(self.moto.get_bytes(st["key"], bucket="locked"), data)
        h = self.moto.s3.head_object(Bucket="locked", Key=st["key"])
        self.assertEqual(h.get("ObjectLockMode"), "GOVERNANCE", h)
        self.assertIn("ObjectLockRetainUntilDate", h)
        lh = self.moto.s3.get_object_legal_hold(Bucket="locked", Key=st["key"])
        self.assertEqual(lh["LegalHold"]["Status"], "ON")


class FileStoreCopies(Base):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-rstore-file-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))
        cls.objects = os.path.join(tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), {"url": "file://" + cls.objects},
                          [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}],
                          extra_config="receipts:\n  store: true\n")
        with_blocks(cls.gw, {"acme": "    role: owner"})
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)
        cls.data = os.urandom(3000)
        res = H.sftp(cls.gw.port, "acme", cls.keys.get("acme"),
                     ["put %s x.csv" % local(tmp, "x.csv", cls.data)], timeout=120)
        assert res.rc == 0, "%r\n%s" % (res, cls.gw.log_tail())

    def test_copy_beside_object(self):
        rec = self.written("acme", "x.csv")
        self.assertTrue(rec["receipt"].endswith(".json"))
        st = self.stored(rec["fid"])
        self.assertEqual(st["key"], "acme/x.csv.receipt.json")
        _, data = self.fetch("acme", rec)
        with open(os.path.join(self.objects, "acme", "x.csv.receipt.json"), "rb") as f:
            self.assertEqual(f.read(), data)
        with open(os.path.join(self.objects, "acme", "x.csv"), "rb") as f:
            self.assertEqual(f.read(), self.data)
        self.assertEqual(st["sha256"], H.sha256_bytes(data))


if __name__ == "__main__":
    unittest.main()
