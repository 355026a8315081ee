"""
test_audit_ship.py - issue 11: sealed audit segments shipped to the store
with Object Lock, and `sluice audit verify --store`.

A running gateway (as root: the roles run as the service user) with a tiny
audit.segment_max leaves real sealed segments; the uploader ships each to
<audit.prefix><host_id>/<name> in a moto bucket created with Object Lock:

  - every sealed segment appears with the same bytes, COMPLIANCE retention
    and a retain-until date about audit.retention.period ahead, and one
    audit.shipped record each (key, version id, ETag, checksum, retention);
  - `verify --store` exits 0; a byte changed in a local segment: exit 1
    naming it; a local segment deleted: named as missing locally; a newer
    version without a checksum is fetched and hashed;
  - a segment whose shipped row is forgotten and whose bytes changed is not
    written over the locked object: audit.ship_failed (held), the object
    keeps its bytes, and its version cannot be deleted (COMPLIANCE);
  - the same through a moto with IAM auth on (PUT and HEAD signed with the
    lock headers);
  - a file:// store ships too (retention ignored) and verifies.

moto with IAM auth refuses correct signatures of a query holding '/'
(ListObjectsV2 prefix=audit/gw/, see REFERENCE.md), which real S3 accepts:
the listing checks run against moto without auth.
"""

import datetime
import os
import sqlite3
import tempfile
import time
import unittest

import botocore.exceptions

import harness as H

BUCKET = "audit-locked"
HOST = "gw-ship.test"
PREFIX = "trail/%s/" % HOST


def _segments(segdir):
    try:
        return sorted(n for n in os.listdir(segdir)
                      if n.startswith("audit-") and n.endswith(".jsonl"))
    except FileNotFoundError:
        return []


def _gateway(tmp, keys, store, env, retention=True):
    partners = [{"name": "acme", "authorized_keys": [keys.pub("acme")]}]
    gw = H.Sluice(os.path.join(tmp, "gw"), store, partners, env=env)
    extra = "  segment_max: 4KiB\n  host_id: %s\n  prefix: trail\n" % HOST
    if retention:
        extra += "  retention: {mode: COMPLIANCE, period: 2d}\n"
    text = gw.config_text.replace(
        "audit:\n  path: %s\n" % H.yaml_str(gw.audit_path),
        "audit:\n  path: %s\n%s" % (H.yaml_str(gw.audit_path), extra))
    assert "segment_max" in text, text
    with open(gw.config_path, "w") as f:
        f.write(text)
    gw.segdir = os.path.join(os.path.dirname(gw.audit_path), "segments")
    return gw


def _put(gw, keys, tmp, n, size=3000):
    cmds = []
    for i in range(n):
        src = os.path.join(tmp, "f%d.bin" % i)
        H.write_random_file(src, size)
        cmds.append("put %s f%d.bin" % (src, i))
    return H.sftp(gw.port, "acme", keys.get("acme"), cmds)


def _shipped(gw):
    return {r["segment"]: r for r in gw.audit_records() if r.get("event") == "audit.shipped"}


def _wait_all_shipped(test, gw, timeout=60):
    def probe():
        segs = _segments(gw.segdir)
        got = _shipped(gw)
        return (segs, got) if segs and all(s in got for s in segs) else None
    r = H.poll(probe, timeout, 0.3)
    test.assertIsNotNone(r, "segments %r, shipped %r\n%s" % (
        _segments(gw.segdir), sorted(_shipped(gw)), gw.log_tail()))
    return r


@unittest.skipUnless(os.geteuid() == 0, "needs root: the roles run as the service user")
class TestAuditShipS3(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-ship-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.moto = H.Moto(cls.tmp, auth=False).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.moto.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        cls.gw = _gateway(cls.tmp, cls.keys, {
            "url": "s3://" + BUCKET, "region": "us-east-1",
            "endpoint": cls.moto.endpoint, "path_style": True}, cls.moto.env())
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)
        r = _put(cls.gw, cls.keys, cls.tmp, 5)
        assert r.rc == 0, "%r\n%s" % (r, cls.gw.log_tail())

    def verify_store(self):
        return H.run_sluice(["audit", "verify", "--store", "-c", self.gw.config_path],
                            env=self.moto.env(), timeout=120)

    def test_1_segments_shipped_locked_and_verified(self):
        segs, got = _wait_all_shipped(self, self.gw)
        self.assertGreaterEqual(len(segs), 2, segs)
        now = datetime.datetime.now(datetime.timezone.utc)
        for name in segs:
            key = PREFIX + name
            rec = got[name]
            with open(os.path.join(self.gw.segdir, name), "rb") as f:
                data = f.read()
            self.assertEqual(self.moto.get_bytes(key, BUCKET), data, key)
            h = self.moto.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
            self.assertEqual(h.get("ObjectLockMode"), "COMPLIANCE", key)
            until = h["ObjectLockRetainUntilDate"]
            self.assertLess(abs((until - now).total_seconds() - 2 * 86400), 600, until)
            self.assertEqual(rec["key"], key)
            self.assertEqual(rec["bucket"], BUCKET)
            self.assertEqual(rec["version_id"], h["VersionId"])
            self.assertEqual(rec["etag"], h["ETag"].strip('"'))
            self.assertEqual(rec["checksum"], h["ChecksumSHA256"])
            self.assertEqual(rec["sha256"], H.sha256_bytes(data))
            self.assertEqual(rec["retention_mode"], "COMPLIANCE")
            self.assertEqual(rec["retain_until"], until.strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.assertEqual(h["Metadata"].get("segment"), name)
        db = sqlite3.connect(os.path.join(self.gw.state_dir, "sluice.db"))
        rows = dict(db.execute("SELECT name, key FROM audit_shipped").fetchall())
        db.close()
        for name in segs:
            self.assertEqual(rows.get(name), PREFIX + name)
        rc, out, err = self.verify_store()
        self.assertEqual(rc, 0, out + err)
        for name in segs:
            self.assertIn("ok       " + name, out)
        self.assertIn("COMPLIANCE until", out)

    def test_2_changed_and_missing_local_segments_are_named(self):
        segs, _ = _wait_all_shipped(self, self.gw)
        changed, gone = segs[0], segs[1]
        path = os.path.join(self.gw.segdir, changed)
        with open(path, "rb") as f:
            orig = f.read()
        gone_path = os.path.join(self.gw.segdir, gone)
        with open(gone_path, "rb") as f:
            gone_data = f.read()
        try:
            with open(path, "r+b") as f:
                f.seek(20)
                b = f.read(1)
                f.seek(20)
                f.write(bytes([b[0] ^ 1]))
            rc, out, err = self.verify_store()
            self.assertEqual(rc, 1, out + err)
            self.assertIn("DIFFERS  " + changed, out)
            os.unlink(gone_path)
            rc, out, err = self.verify_store()
            self.assertEqual(rc, 1, out + err)
            self.assertIn("DIFFERS  " + changed, out)
            self.assertRegex(out, r"MISSING  %s: in the store .*missing locally" % gone)
            # The shipper never re-sends a shipped segment: the store keeps
            # the original bytes.
            time.sleep(3)
            self.assertEqual(self.moto.get_bytes(PREFIX + changed, BUCKET), orig)
        finally:
            with open(path, "wb") as f:
                f.write(orig)
            with open(gone_path, "wb") as f:
                f.write(gone_data)
        rc, out, err = self.verify_store()
        self.assertEqual(rc, 0, out + err)
        # A newer version without a checksum (the lock keeps the old one,
        # not the key): verify fetches and hashes it.
        key = PREFIX + changed
        self.moto.s3.put_object(Bucket=BUCKET, Key=key, Body=orig)
        h = self.moto.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        self.assertNotIn("ChecksumSHA256", h)
        rc, out, err = self.verify_store()
        self.assertEqual(rc, 0, out + err)
        self.moto.s3.put_object(Bucket=BUCKET, Key=key, Body=orig + b"\n")
        rc, out, err = self.verify_store()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("DIFFERS  " + changed, out)

    def test_3_a_locked_object_is_never_replaced(self):
        segs, _ = _wait_all_shipped(self, self.gw)
        victim = segs[-1]
        key = PREFIX + victim
        path = os.path.join(self.gw.segdir, victim)
        with open(path, "rb") as f:
            orig = f.read()
        try:
            with open(path, "r+b") as f:
                f.seek(10)
                f.write(b"X")
            # forget that it was shipped: the next pass tries again
            db = sqlite3.connect(os.path.join(self.gw.state_dir, "sluice.db"), timeout=30)
            with db:
                db.execute("DELETE FROM audit_shipped WHERE name = ?", (victim,))
            db.close()
            fail = self.gw.wait_audit(lambda r: r.get("event") == "audit.ship_failed"
                                      and r.get("segment") == victim, 30)
            self.assertIsNotNone(fail, self.gw.log_tail())
            self.assertEqual(fail["key"], key)
            self.assertTrue(fail["held"], fail)
            self.assertEqual(fail["attempt"], 1)
            self.assertEqual(fail["retry_in_ms"], 3600 * 1000)
            self.assertIn("different object", fail["error"])
            self.assertIn("AUDIT SEGMENT NOT SHIPPED: " + victim, H.tail(self.gw.log, 400))
            self.assertEqual(self.moto.get_bytes(key, BUCKET), orig)
            versions = self.moto.s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
            self.assertEqual(len(versions), 1, versions)
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.moto.s3.delete_object(Bucket=BUCKET, Key=key,
                                           VersionId=versions[0]["VersionId"])
            self.assertEqual(e.exception.response["Error"]["Code"], "AccessDenied")
            self.assertEqual(self.moto.get_bytes(key, BUCKET), orig)
        finally:
            with open(path, "wb") as f:
                f.write(orig)


@unittest.skipUnless(os.geteuid() == 0, "needs root: the roles run as the service user")
class TestAuditShipSignedS3(unittest.TestCase):
    """The PUT with lock headers and the HEAD, signed, against moto with IAM auth."""

    def test_ships_with_iam_auth(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-ship-auth-")
        self.addCleanup(d.cleanup)
        keys = H.Keys(os.path.join(d.name, "keys"))
        moto = H.Moto(d.name).start()
        self.addCleanup(moto.stop)
        moto.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        gw = _gateway(d.name, keys, {
            "url": "s3://" + BUCKET, "region": "us-east-1",
            "endpoint": moto.endpoint, "path_style": True}, moto.env())
        gw.start()
        self.addCleanup(gw.stop)
        r = _put(gw, keys, d.name, 3)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, gw.log_tail()))
        segs, got = _wait_all_shipped(self, gw)
        for name in segs:
            h = moto.s3.head_object(Bucket=BUCKET, Key=PREFIX + name)
            self.assertEqual(h.get("ObjectLockMode"), "COMPLIANCE")
            self.assertEqual(got[name]["retention_mode"], "COMPLIANCE")
        self.assertFalse([r for r in gw.audit_records() if r.get("event") == "audit.ship_failed"])


@unittest.skipUnless(os.geteuid() == 0, "needs root: the roles run as the service user")
class TestAuditShipFile(unittest.TestCase):

    def test_file_store(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-ship-file-")
        self.addCleanup(d.cleanup)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        gw = _gateway(d.name, keys, {"url": "file://" + objects}, {})
        gw.start()
        self.addCleanup(gw.stop)
        r = _put(gw, keys, d.name, 3)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, gw.log_tail()))
        segs, got = _wait_all_shipped(self, gw)
        for name in segs:
            with open(os.path.join(gw.segdir, name), "rb") as f, \
                    open(os.path.join(objects, PREFIX + name), "rb") as g:
                self.assertEqual(f.read(), g.read(), name)
            self.assertEqual(got[name]["retention_mode"], "")
        self.assertIn("keeps no Object Lock", H.tail(gw.log, 400))
        rc, out, err = H.run_sluice(["audit", "verify", "--store", "-c", gw.config_path])
        self.assertEqual(rc, 0, out + err)
        # an object only in the store
        extra = os.path.join(objects, PREFIX, "audit-999999999998-999999999999.jsonl")
        with open(extra, "wb") as f:
            f.write(b"{}\n")
        rc, out, err = H.run_sluice(["audit", "verify", "--store", "-c", gw.config_path])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("MISSING  audit-999999999998-999999999999.jsonl: in the store", out)


if __name__ == "__main__":
    unittest.main()
