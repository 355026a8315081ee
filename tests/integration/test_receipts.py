"""
Receipts: at CLOSE a session writes the file's "received" facts as JSON in
the xattr user.sluice.receipt of the uploaded file (spool/receipt.h), links
it into state_dir/spool/incoming/<fid>, chmods it 0440 and fsyncs; the
intake imports receipts as "received" rows and file.received records, and
after a start checks each pending file's SHA-256 against its receipt (a
file cut by a crash goes to quarantine/_unrecorded/ with a .reason).

Driven by the real binary, a file:// store and the real OpenSSH sftp client.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_receipts

TestReceipts      one gateway; before its start, crash remnants are planted
                  in landing/<partner>/ + spool/incoming/<fid>: a cut file
                  (receipt claims another SHA-256), a valid one, a receipt
                  on a file still 0600, garbage receipts. Then a normal
                  upload and re-uploads by the partner (default dropbox role).
TestDatabasePath  SLUICE_TEST_NO_RECEIPTS=1: sessions record through the
                  database (row + audit outbox), no xattr on landing files.
"""

import collections
import errno
import json
import os
import sqlite3
import tempfile
import time
import unittest

import harness as H

PARTNER = "acme"
XATTR = "user.sluice.receipt"
STORED = ("stored", "removed", "archived")


def db_rows(state_dir):
    """{fid: dict(row)} of the files table."""
    con = sqlite3.connect(os.path.join(state_dir, "sluice.db"), timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return {r["fid"]: dict(r) for r in con.execute("SELECT * FROM files")}
    finally:
        con.close()


def rows_by_path(state_dir, path):
    return [r for r in db_rows(state_dir).values() if r["path"].lstrip("/") == path]


def events(records, event, fid=None):
    return [r for r in records if r.get("event") == event and (fid is None or r.get("fid") == fid)]


def make_gateway(tmp, keys, env):
    objects = os.path.join(tmp, "objects")
    os.makedirs(objects, exist_ok=True)
    gw = H.Sluice(os.path.join(tmp, "gw"), store={"url": "file://" + objects},
                  partners=[{"name": PARTNER, "authorized_keys": [keys.pub(PARTNER)]}], env=env)
    return gw, objects


def getxattr_or_none(path):
    try:
        return os.getxattr(path, XATTR)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


class Gateway(unittest.TestCase):
    """Shared helpers: the class sets gw, objects, keys, tmp."""

    def put(self, name, data):
        src = os.path.join(self.tmp, "src-" + name)
        with open(src, "wb") as f:
            f.write(data)
        return H.sftp(self.gw.port, PARTNER, self.keys.get(PARTNER), ["put %s %s" % (src, name)])

    def wait_stored(self, name, sha, timeout=30):
        """The row of name with this sha256 once stored (or None)."""
        def probe():
            for r in rows_by_path(self.gw.state_dir, name):
                if r["sha256"] == sha and r["state"] in STORED:
                    return r
            return None
        return H.poll(probe, timeout)

    def object_bytes(self, name):
        p = os.path.join(self.objects, PARTNER, name)
        with open(p, "rb") as f:
            return f.read()

    def diag(self):
        return self.gw.diagnostics()


class TestReceipts(Gateway):

    @classmethod
    def plant(cls, name, data, receipt, mode=0o440):
        """A landing file holding data, linked into spool/incoming under a new
        fid, carrying receipt (a dict: completed with the real facts; bytes:
        stored as is), then chmod mode. Returns the fid."""
        fid = os.urandom(16).hex()
        landing = cls.gw.landing(PARTNER)
        os.makedirs(landing, mode=0o750, exist_ok=True)
        lp = os.path.join(landing, name)
        with open(lp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(lp, 0o640)
        H.as_session_file(lp)
        if isinstance(receipt, dict):
            st = os.stat(lp)
            r = {"v": 1, "fid": fid, "partner": PARTNER, "path": name, "remote": "127.0.0.1",
                 "session": "planted", "size": len(data), "sha256": H.sha256_bytes(data),
                 "received_ms": int(time.time() * 1000), "landing_dev": st.st_dev,
                 "landing_ino": st.st_ino}
            r.update(receipt)
            receipt = json.dumps(r, separators=(",", ":")).encode()
        os.setxattr(lp, XATTR, receipt)
        os.link(lp, os.path.join(cls.gw.state_dir, "spool", "incoming", fid))
        os.chmod(lp, mode)
        return fid

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-receipts-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        # the unrecorded sweep looks at links of any age (its first pass runs
        # at the intake's start)
        cls.gw, cls.objects = make_gateway(cls.tmp, cls.keys, {"SLUICE_TEST_UNRECORDED_AGE_S": "0"})
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()          # creates the database and the spool
        rc = cls.gw.stop()
        assert rc == 0, "sluice serve exited with %s\n%s" % (rc, cls.gw.log_tail())

        P = cls.planted = {}
        # 2: cut by a crash: the receipt's SHA-256 is of the whole file, the
        # disk kept other bytes of the same length (only the start-up check
        # can tell)
        whole = os.urandom(7000)
        cut = whole[:3000] + bytes(4000)
        P["cut"] = ("cut.bin", cut, cls.plant("cut.bin", cut, {"sha256": H.sha256_bytes(whole)}))
        # 2b: cut short: the receipt claims more bytes than the file has
        short = os.urandom(2000)
        P["short"] = ("short.bin", short, cls.plant("short.bin", short, {
            "size": 5000, "sha256": H.sha256_bytes(short + os.urandom(3000))}))
        # 3: a valid remnant: closed, receipt durable, never imported
        good = os.urandom(9000)
        P["valid"] = ("valid.bin", good, cls.plant("valid.bin", good, {}))
        # 4: receipt written, crash before the chmod 0440 (uploads are 0640)
        w = os.urandom(3000)
        P["writable"] = ("writable.bin", w, cls.plant("writable.bin", w, {}, mode=0o640))
        # 6: receipts that are none
        g1, g2 = os.urandom(1000), os.urandom(1100)
        P["notjson"] = ("notjson.bin", g1, cls.plant("notjson.bin", g1, b"{not json"))
        P["v2"] = ("v2.bin", g2, cls.plant("v2.bin", g2, {"v": 2}))

        cls.gw.start()
        q = os.path.join(cls.gw.state_dir, "quarantine", "_unrecorded")
        want = [P[k][2] for k in ("cut", "short", "writable", "notjson", "v2")]
        H.poll(lambda: all(os.path.exists(os.path.join(q, f)) for f in want), 20)
        H.poll(lambda: db_rows(cls.gw.state_dir).get(P["valid"][2], {}).get("state") in STORED, 30)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        assert rc == 0, "sluice serve exited with %s\n%s" % (rc, cls.gw.log_tail())

    def quarantined(self, key, reason_has):
        """Asserts planted[key] ended in quarantine/_unrecorded/<fid> (same
        bytes) with a .reason containing reason_has, audited file.unrecorded,
        no row, no object, not in spool/incoming."""
        name, data, fid = self.planted[key]
        st = self.gw.state_dir
        why = "%s (fid %s)\n%s" % (key, fid, self.diag())
        q = os.path.join(st, "quarantine", "_unrecorded", fid)
        self.assertTrue(os.path.isfile(q), "not in quarantine/_unrecorded: " + why)
        with open(q, "rb") as f:
            self.assertEqual(f.read(), data, "quarantined bytes differ: " + why)
        with open(q + ".reason") as f:
            reason = f.read()
        self.assertIn(reason_has, reason, why)
        self.assertFalse(os.path.exists(os.path.join(st, "spool", "incoming", fid)), why)
        self.assertNotIn(fid, db_rows(st), "a row for it: " + why)
        recs = self.gw.audit_records()
        self.assertEqual(len(events(recs, "file.unrecorded", fid)), 1, why)
        self.assertEqual(events(recs, "file.received", fid), [], why)
        self.assertFalse(os.path.exists(os.path.join(self.objects, PARTNER, name)), "shipped: " + why)
        return reason

    def test_1_normal_upload_carries_receipt(self):
        data = os.urandom(150000)
        sha = H.sha256_bytes(data)
        r = self.put("normal.bin", data)
        self.assertEqual(r.rc, 0, repr(r))
        lp = os.path.join(self.gw.landing(PARTNER), "normal.bin")
        st = os.stat(lp)
        self.assertEqual(st.st_mode & 0o777, 0o440)
        raw = getxattr_or_none(lp)
        self.assertIsNotNone(raw, "no %s on %s" % (XATTR, lp))
        rc = json.loads(raw)
        self.assertEqual(rc.get("v"), 1, rc)
        self.assertRegex(rc.get("fid", ""), r"^[0-9a-f]{32}$", rc)
        self.assertEqual((rc["partner"], rc["path"].lstrip("/"), rc["size"], rc["sha256"]),
                         (PARTNER, "normal.bin", len(data), sha), rc)
        self.assertEqual((rc["landing_dev"], rc["landing_ino"]), (st.st_dev, st.st_ino), rc)
        row = self.wait_stored("normal.bin", sha)
        self.assertIsNotNone(row, "not stored: %r\n%s" % (rows_by_path(self.gw.state_dir, "normal.bin"),
                                                          self.diag()))
        self.assertEqual((row["fid"], row["partner"], row["path"], row["size"], row["sha256"],
                          row["landing_ino"]),
                         (rc["fid"], rc["partner"], rc["path"], rc["size"], rc["sha256"],
                          rc["landing_ino"]))
        recv = events(self.gw.audit_records(), "file.received", rc["fid"])
        self.assertEqual(len(recv), 1, recv)
        a = recv[0]
        self.assertEqual((a.get("partner"), a.get("path"), a.get("size"), a.get("sha256")),
                         (rc["partner"], rc["path"], rc["size"], rc["sha256"]), a)
        self.assertTrue(a.get("received_at"), a)
        self.assertNotIn("outbox", a, "recorded through the database, not the receipt: %r" % a)
        self.assertEqual(self.object_bytes("normal.bin"), data)
        # a recorded name is not the partner's to replace (dropbox role)
        r = self.put("normal.bin", b"again")
        self.assertNotEqual(r.rc, 0, "overwrote a recorded file: %r" % r)
        self.assertEqual(self.object_bytes("normal.bin"), data)

    def test_2_cut_remnant_quarantined_then_uploaded_again(self):
        reason = self.quarantined("cut", "does not match")
        self.assertIn("checked", reason)     # found by the SHA-256 check
        self.quarantined("short", "does not match")
        name, _, fid = self.planted["cut"]
        lp = os.path.join(self.gw.landing(PARTNER), name)
        self.assertEqual(os.stat(lp).st_mode & 0o777, 0o440)
        data = os.urandom(12345)
        r = self.put(name, data)
        self.assertEqual(r.rc, 0, "re-upload of a cut file refused: %r\n%s" % (r, self.diag()))
        row = self.wait_stored(name, H.sha256_bytes(data))
        self.assertIsNotNone(row, self.diag())
        self.assertNotEqual(row["fid"], fid)
        self.assertEqual(self.object_bytes(name), data)
        with open(os.path.join(self.gw.state_dir, "quarantine", "_unrecorded", fid), "rb") as f:
            self.assertEqual(f.read(), self.planted["cut"][1], "quarantined copy changed")

    def test_3_valid_remnant_imported_once(self):
        name, data, fid = self.planted["valid"]
        rows = db_rows(self.gw.state_dir)
        self.assertIn(rows.get(fid, {}).get("state"), STORED, self.diag())
        self.assertEqual(len(rows_by_path(self.gw.state_dir, name)), 1)
        self.assertEqual(self.object_bytes(name), data)
        recs = self.gw.audit_records()
        self.assertEqual(len(events(recs, "file.received", fid)), 1)
        self.assertEqual(len(events(recs, "file.stored", fid)), 1)
        self.assertEqual(events(recs, "file.unrecorded", fid), [])
        # recorded: the partner may not replace it
        r = self.put(name, b"x")
        self.assertNotEqual(r.rc, 0, repr(r))

    def test_4_receipt_on_writable_file_quarantined(self):
        self.quarantined("writable", "does not match")
        name = self.planted["writable"][0]
        # still the partner's incomplete upload: it may send it again
        data = os.urandom(4000)
        r = self.put(name, data)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, self.diag()))
        self.assertIsNotNone(self.wait_stored(name, H.sha256_bytes(data)), self.diag())
        self.assertEqual(self.object_bytes(name), data)

    def test_6_garbage_receipts_not_imported(self):
        # receipt_read refuses them, so the import skips the file and the
        # unrecorded sweep (no row knows the fid) quarantines it
        for k in ("notjson", "v2"):
            self.quarantined(k, "never recorded")

    def test_7_audit_chain_verifies(self):
        rc, out, err = H.run_sluice(["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)


class TestDatabasePath(Gateway):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-noreceipts-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.gw, cls.objects = make_gateway(cls.tmp, cls.keys, {"SLUICE_TEST_NO_RECEIPTS": "1"})
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()

    def test_5_database_path(self):
        files = collections.OrderedDict(("db-%d.bin" % i, os.urandom(1000 + 7919 * i)) for i in range(4))
        for name, data in files.items():
            r = self.put(name, data)
            self.assertEqual(r.rc, 0, repr(r))
            self.assertIsNone(getxattr_or_none(os.path.join(self.gw.landing(PARTNER), name)),
                              "a receipt although SLUICE_TEST_NO_RECEIPTS=1")
        fids = {}
        for name, data in files.items():
            row = self.wait_stored(name, H.sha256_bytes(data))
            self.assertIsNotNone(row, "%s not stored\n%s" % (name, self.diag()))
            fids[name] = row["fid"]
            self.assertEqual(self.object_bytes(name), data, name)
        rc = self.gw.stop()
        self.assertEqual(rc, 0, self.gw.log_tail())
        recs = self.gw.audit_records()
        for name, fid in fids.items():
            recv = events(recs, "file.received", fid)
            self.assertEqual(len(recv), 1, "%s: %r" % (name, recv))
            self.assertIn("outbox", recv[0], recv[0])
            self.assertTrue(recv[0].get("received_at"), recv[0])
            self.assertEqual(recv[0].get("sha256"), H.sha256_bytes(files[name]))
        self.assertEqual(events(recs, "file.unrecorded"), [])
        rc, out, err = H.run_sluice(["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    unittest.main()
