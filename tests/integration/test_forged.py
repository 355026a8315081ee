"""
Forged hand-offs (issue 10): everything a session produces (the receipt on a
file, a row in sluice.db) is input to the intake, checked like network input.
Planted here by the test (standing in for a compromised session) while a
gateway with two partners runs:

  (a) a file in landing/acme/ whose receipt claims partner bank
  (b) receipts with fid "../../x" and partner "../.."
  (c) "received" rows (the database path) with partner "../.." and fid
      "../x", and one with partner "../.." on a real spool file
  (d) "waiting" rows with partner "../.." and fid "../x" (judged at a start)

Each is quarantined as forged (quarantine/acme/ when the file is in
landing/acme, else quarantine/_forged/), audited as file.forged, never stored,
and nothing is created outside state_dir. A real upload still goes through.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_forged
"""

import json
import os
import sqlite3
import tempfile
import time
import unittest

import harness as H

A, B = "acme", "bank"
XATTR = "user.sluice.receipt"
STORED = ("stored", "removed", "archived")


def db(state_dir):
    con = sqlite3.connect(os.path.join(state_dir, "sluice.db"), timeout=10)
    con.row_factory = sqlite3.Row
    return con


def rows(state_dir):
    con = db(state_dir)
    try:
        return [dict(r) for r in con.execute("SELECT * FROM files")]
    finally:
        con.close()


def snapshot(root, skip):
    """Every path under root (directories too), but those under skip."""
    out = set()
    for d, dirs, files in os.walk(root):
        if os.path.commonpath([d, skip]) == skip:
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(d, n)
            if os.path.commonpath([p, skip]) != skip:
                out.add(p)
    return out


class TestForged(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-forged-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
                          partners=[{"name": A, "authorized_keys": [cls.keys.pub(A)]},
                                    {"name": B, "authorized_keys": [cls.keys.pub(B)]}])
        cls.addClassCleanup(cls.gw.kill)
        cls.st = cls.gw.state_dir
        # a directory next to state_dir that must stay empty
        cls.sentinel = os.path.join(os.path.dirname(cls.st), "sentinel")
        os.makedirs(cls.sentinel)
        cls.gw.start()
        for p in (A, B):
            os.makedirs(cls.gw.landing(p), mode=0o750, exist_ok=True)
        # logs and the trail grow; new names anywhere outside state_dir are
        # what must not appear
        cls.before = snapshot(cls.tmp, cls.st)
        cls.bytes = {}      # name -> data of every planted file
        P = cls.planted = {}

        # (a) in landing/acme, the receipt says bank
        P["a"] = cls.plant("a.bin", {"partner": B})
        # (b) receipts whose fid and partner are paths
        P["b_fid"] = cls.plant("b.bin", {"fid": "../../x"})
        P["b_partner"] = cls.plant("b2.bin", {"partner": "../.."})
        # (c) rows inserted as a session without xattrs does
        P["c_row"] = cls.plant_row(partner="../..", fid="../x", state="received")
        P["c_row_file"] = cls.plant_row(partner="../..", state="received", name="c.bin")
        cls.waiting_fid = os.urandom(16).hex()
        # (d) waiting rows (no pass judges them): seen at the intake's start
        P["d_partner"] = cls.plant_row(partner="../..", fid=cls.waiting_fid, state="waiting")
        P["d_fid"] = cls.plant_row(partner=A, fid="../y", state="waiting")

        def done():
            recs = cls.gw.audit_records()
            return len([r for r in recs if r.get("event") == "file.forged"]) >= 5
        H.poll(done, 20)
        rc = cls.gw.stop()
        assert rc == 0, "sluice serve exited with %s\n%s" % (rc, cls.gw.log_tail())
        cls.gw.start()
        H.poll(lambda: len([r for r in cls.gw.audit_records() if r.get("event") == "file.forged"]) >= 7, 20)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        assert rc == 0, "sluice serve exited with %s\n%s" % (rc, cls.gw.log_tail())

    @classmethod
    def plant(cls, name, receipt, partner_dir=A):
        """A closed file in landing/<partner_dir>/name with receipt (the real
        facts, updated by `receipt`), linked as spool/incoming/<fid>."""
        fid = os.urandom(16).hex()
        data = os.urandom(5000 + len(cls.bytes) * 17)
        lp = os.path.join(cls.gw.landing(partner_dir), name)
        with open(lp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        st = os.stat(lp)
        r = {"v": 1, "fid": fid, "partner": partner_dir, "path": name, "remote": "127.0.0.1",
             "session": "forger", "size": len(data), "sha256": H.sha256_bytes(data),
             "received_ms": int(time.time() * 1000), "landing_dev": st.st_dev,
             "landing_ino": st.st_ino}
        r.update(receipt)
        os.setxattr(lp, XATTR, json.dumps(r).encode())
        os.link(lp, os.path.join(cls.st, "spool", "incoming", fid))
        os.chmod(lp, 0o440)
        cls.bytes[name] = data
        return {"spool": fid, "claim": r, "name": name, "data": data}

    @classmethod
    def plant_row(cls, partner, state, fid=None, name=None):
        """A row as a session on the database path inserts it; with name, on
        a real file in landing/acme linked into spool/incoming/<fid>."""
        fid = fid or os.urandom(16).hex()
        dev = ino = 1
        data = None
        if name is not None:
            data = os.urandom(3000)
            lp = os.path.join(cls.gw.landing(A), name)
            with open(lp, "wb") as f:
                f.write(data)
            os.chmod(lp, 0o440)
            os.link(lp, os.path.join(cls.st, "spool", "incoming", fid))
            st = os.stat(lp)
            dev, ino = st.st_dev, st.st_ino
            cls.bytes[name] = data
        con = db(cls.st)
        try:
            with con:
                con.execute(
                    "INSERT INTO files (fid, partner, path, size, sha256, received_ms, state, "
                    "updated_ms, landing_dev, landing_ino) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (fid, partner, name or "x.bin", len(data or b""),
                     H.sha256_bytes(data or b""), int(time.time() * 1000), state,
                     int(time.time() * 1000), dev, ino))
        finally:
            con.close()
        return {"spool": fid if name else None, "claim": {"fid": fid, "partner": partner},
                "name": name, "data": data}

    def forged(self, key):
        recs = self.gw.audit_records()
        c = self.planted[key]["claim"]
        return [r for r in recs if r.get("event") == "file.forged" and r.get("fid") == c["fid"]
                and r.get("partner") == c["partner"]]

    def diag(self):
        return self.gw.diagnostics()

    def assert_quarantined(self, key, where, reason_has):
        p = self.planted[key]
        why = "%s: %r\n%s" % (key, p["claim"], self.diag())
        q = os.path.join(self.st, "quarantine", where, p["spool"])
        self.assertTrue(os.path.isfile(q), "not in quarantine/%s: %s" % (where, why))
        with open(q, "rb") as f:
            self.assertEqual(f.read(), p["data"], why)
        with open(q + ".reason") as f:
            reason = f.read()
        self.assertIn("forged hand-off", reason, why)
        self.assertIn(reason_has, reason, why)
        self.assertFalse(os.path.exists(os.path.join(self.st, "spool", "incoming", p["spool"])), why)
        ev = self.forged(key)
        self.assertGreaterEqual(len(ev), 1, "no file.forged: " + why)
        self.assertEqual(ev[0].get("quarantined_as"), "%s/%s" % (where, p["spool"]), ev)
        self.assertIn(reason_has, ev[0].get("reason", ""), ev)
        return ev[0]

    def test_a_receipt_claims_another_partner(self):
        ev = self.assert_quarantined("a", A, "claims partner bank but the file is in landing/acme")
        self.assertEqual((ev["source"], ev["found_in"]), ("receipt", A), ev)
        for r in rows(self.st):
            self.assertNotEqual(r["fid"], self.planted["a"]["spool"], "imported: %r" % r)
            self.assertNotEqual(r["partner"], B, "a row for bank: %r" % r)

    def test_b_receipt_fid_and_partner_are_paths(self):
        ev = self.assert_quarantined("b_fid", A, "its fid")
        self.assertEqual(ev["spool_name"], self.planted["b_fid"]["spool"], ev)
        self.assert_quarantined("b_partner", A, "its partner")
        fids = {r["fid"] for r in rows(self.st)}
        self.assertNotIn("../../x", fids)
        self.assertNotIn(self.planted["b_partner"]["spool"], fids)

    def test_c_rows_with_paths_for_names(self):
        by_fid = {r["fid"]: r for r in rows(self.st)}
        for key in ("c_row", "c_row_file", "d_partner", "d_fid"):
            c = self.planted[key]["claim"]
            r = by_fid[c["fid"]]
            self.assertEqual(r["state"], "rejected", "%s: %r\n%s" % (key, r, self.diag()))
            self.assertTrue(r["last_error"].startswith("forged hand-off"), r)
            ev = self.forged(key)
            self.assertGreaterEqual(len(ev), 1, "%s: no file.forged\n%s" % (key, self.diag()))
            self.assertEqual(ev[0]["source"], "record", ev)
            self.assertEqual(ev[0]["id"], r["id"], ev)
        # the one with a real spool file: in acme's quarantine (its landing
        # directory), not under the path its partner names
        self.assert_quarantined("c_row_file", A, "its partner")
        # the others had no file to move: nothing moved, nothing followed
        for key in ("c_row", "d_fid"):
            self.assertIsNone(self.forged(key)[0].get("quarantined_as"))

    def test_d_never_stored_nothing_outside(self):
        stored = set()
        for d, _, files in os.walk(self.objects):
            for n in files:
                stored.add(H.sha256_file(os.path.join(d, n)))
        for name, data in self.bytes.items():
            self.assertNotIn(H.sha256_bytes(data), stored, "%s was stored" % name)
        for r in rows(self.st):
            self.assertNotIn(r["state"], STORED + ("accepted", "uploading"), r)
        self.assertEqual(os.listdir(self.sentinel), [])
        # the audit writer's own files beside its trail are not the hand-off's:
        # the next live trail of a rotation (audit.jsonl.next, a moment
        # before it is renamed over audit.jsonl), its segments, and the
        # segments it ships (to the file store's audit/)
        trail = os.path.dirname(self.gw.audit_path)
        after = {p for p in snapshot(self.tmp, self.st)
                 if not p.startswith(os.path.join(trail, "segments"))
                 and not p.startswith(self.gw.audit_path + ".")
                 and not p.startswith(os.path.join(self.objects, "audit"))}
        self.assertEqual(sorted(after - self.before), [], "created outside state_dir")
        for p in ("x", "y", "x.reason", "y.reason"):
            self.assertFalse(os.path.lexists(os.path.join(self.st, "spool", p)), p)

    def test_e_real_upload_still_stored(self):
        data = os.urandom(20000)
        src = os.path.join(self.tmp, "src.bin")
        with open(src, "wb") as f:
            f.write(data)
        r = H.sftp(self.gw.port, A, self.keys.get(A), ["put %s real.bin" % src])
        self.assertEqual(r.rc, 0, repr(r))
        sha = H.sha256_bytes(data)
        got = H.poll(lambda: [x for x in rows(self.st) if x["path"] == "real.bin"
                              and x["sha256"] == sha and x["state"] in STORED], 30)
        self.assertTrue(got, self.diag())
        self.assertEqual(got[0]["partner"], A)
        self.assertEqual(self.forged("a")[0]["partner"], B)

    def test_f_audit_chain_verifies(self):
        rc, out, err = H.run_sluice(["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    unittest.main()
