"""
The events of issue #11's "Complete" list that a partner or an operator
causes, through the real OpenSSH sftp client, `sluice serve` and moto:

  - sftp.read: one record per download (get), with the bytes sent equal to
    the file's size and the offset range [0, size);
  - sftp.list: one record per directory listing (ls) with the names returned;
  - config.loaded at start: the config's path and SHA-256, the partner
    names, and per-partner digests (the key digest checked against
    ssh-keygen's fingerprint);
  - reconcile.run after a store (all proven), then reconcile.unproven
    (why: missing) after the object is deleted behind the gateway's back,
    and (why: mismatched) after it is replaced;
  - the trail with all of these still verifies.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_audit_events
"""

import hashlib
import json
import os
import subprocess
import tempfile
import unittest

import harness as H


def _partner_lines(name, pub, extra):
    return ["  - name: %s" % name, "    authorized_keys:", "      - %s" % H.yaml_str(pub)] + \
        ["    %s" % l for l in extra]


class TestAuditEvents(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-events-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.gw = H.Sluice(
            os.path.join(cls.tmp, "gw"),
            store={"url": "s3://%s" % cls.moto.bucket, "region": "us-east-1",
                   "endpoint": cls.moto.endpoint, "path_style": True},
            partners=[], env=cls.moto.env())
        # roles are not in render_config: write the partners block here
        text = cls.gw.config_text.replace("partners:\n", "")
        lines = ["partners:"]
        lines += _partner_lines("acme", cls.keys.pub("acme"), ["role: owner"])
        lines += _partner_lines("beta", cls.keys.pub("beta"), ["allow_from: [127.0.0.1/32]"])
        cls.gw.config_text = text + "\n".join(lines) + "\n"
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())

    def ok(self, user, commands, what):
        res = H.sftp(self.gw.port, user, self.keys.get(user), commands)
        if res.rc != 0:
            self.fail("%s failed: %r\n%s" % (what, res, self.gw.log_tail()))
        return res

    def local(self, name, size):
        p = os.path.join(self.tmp, name)
        return p, H.write_random_file(p, size)

    def wait(self, pred, what, timeout=15):
        r = self.gw.wait_audit(pred, timeout=timeout)
        if r is None:
            self.fail("no %s record\n%s" % (what, self.gw.log_tail()))
        return r

    def reconcile(self):
        before = len(self.gw.audit_records())
        rc, out, err = H.run_sluice(["reconcile", "-c", self.gw.config_path],
                                    env=self.moto.env(), timeout=120)
        return rc, out + err, self.gw.audit_records()[before:]

    # -- reads and listings

    def test_get_is_one_sftp_read(self):
        f, sha = self.local("r1.csv", 300001)   # more than one READ (at most 255 KiB each)
        back = os.path.join(self.tmp, "r1.back")
        self.ok("acme", ["put %s r1.csv" % f], "put")
        before = len(self.gw.audit_records())
        self.ok("acme", ["get r1.csv %s" % back], "get")
        self.assertEqual(H.sha256_file(back), sha)
        r = self.wait(lambda r: r.get("event") == "sftp.read" and r.get("path") == "r1.csv",
                      "sftp.read for r1.csv")
        self.assertEqual(r["partner"], "acme")
        self.assertEqual(r["bytes"], 300001, r)
        self.assertEqual(r["size"], 300001, r)
        self.assertEqual(r["offset_from"], 0, r)
        self.assertEqual(r["offset_to"], 300001, r)
        self.assertGreaterEqual(r["reads"], 2, r)
        self.assertEqual(r["ended"], "close", r)
        self.assertRegex(r["session"], r"^[0-9a-f]{12}$")
        self.assertEqual(r["remote"], "127.0.0.1")
        # once per handle, not per READ; the session's records are in order
        # (the deferred read is before the session's end)
        self.wait(lambda r: r.get("event") == "session.end" and r.get("session") ==
                  [x for x in self.gw.audit_records() if x.get("event") == "sftp.read" and
                   x.get("path") == "r1.csv"][0]["session"], "session.end")
        recs = self.gw.audit_records()[before:]
        reads = [x for x in recs if x.get("event") == "sftp.read"]
        self.assertEqual(len(reads), 1, reads)
        ends = [i for i, x in enumerate(recs) if x.get("event") == "session.end" and
                x.get("session") == r["session"]]
        self.assertTrue(ends and recs.index(reads[0]) < ends[0], recs)

    def test_ls_is_one_sftp_list(self):
        a, _ = self.local("l1.csv", 10)
        b, _ = self.local("l2.csv", 20)
        self.ok("acme", ["mkdir dir1", "put %s dir1/l1.csv" % a, "put %s dir1/l2.csv" % b],
                "mkdir and put")
        res = self.ok("acme", ["ls -la dir1"], "ls")
        self.assertIn("l2.csv", res.out)
        r = self.wait(lambda r: r.get("event") == "sftp.list" and r.get("path") == "dir1",
                      "sftp.list for dir1")
        self.assertEqual(r["partner"], "acme")
        self.assertEqual(r["entries"], 4, r)     # ., .., l1.csv, l2.csv
        self.assertGreaterEqual(r["replies"], 1, r)
        self.assertEqual(r["ended"], "close", r)

    # -- the configuration

    def test_config_loaded(self):
        r = self.wait(lambda r: r.get("event") == "config.loaded", "config.loaded")
        with open(self.gw.config_path, "rb") as f:
            self.assertEqual(r["config_sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(r["config"], os.path.realpath(self.gw.config_path))
        self.assertEqual(r["partners"], ["acme", "beta"])
        self.assertEqual((r["part"], r["parts"]), (1, 1))
        start = [x for x in self.gw.audit_records() if x.get("event") == "process.start"]
        self.assertTrue(start and start[0]["seq"] < r["seq"], "config.loaded before process.start")
        for name in ("acme", "beta"):
            d = r["partner_digests"][name]
            for k in ("sha256", "keys", "allow_from", "role", "signature", "rules"):
                self.assertRegex(d[k], r"^[0-9a-f]{64}$", (name, k, d))
            self.assertEqual(d["nkeys"], 1)
            self.assertIs(d["password"], False)
            # the key digest: SHA-256 of the sorted fingerprints' JSON
            fp = subprocess.run(["ssh-keygen", "-lf", self.keys.get(name) + ".pub"],
                                capture_output=True, text=True, check=True).stdout.split()[1]
            self.assertEqual(d["keys"], hashlib.sha256(json.dumps(
                [fp], separators=(",", ":")).encode()).hexdigest(), (name, fp))
        acme, beta = r["partner_digests"]["acme"], r["partner_digests"]["beta"]
        self.assertNotEqual(acme["role"], beta["role"])      # owner vs dropbox
        self.assertNotEqual(acme["allow_from"], beta["allow_from"])
        self.assertEqual(acme["rules"], beta["rules"])       # both the defaults
        self.assertRegex(r["settings_sha256"], r"^[0-9a-f]{64}$")

    # -- reconcile

    def test_reconcile_run_and_unproven(self):
        f, sha = self.local("rc.csv", 5000)
        self.ok("beta", ["put %s rc.csv" % f], "put")
        st = self.wait(lambda r: r.get("event") == "file.stored" and r.get("path") == "rc.csv",
                       "file.stored for rc.csv", timeout=60)
        rc, out, recs = self.reconcile()
        self.assertEqual(rc, 0, out)
        runs = [x for x in recs if x.get("event") == "reconcile.run"]
        self.assertEqual(len(runs), 1, recs)
        run = runs[0]
        self.assertEqual(run["operator"], "root")
        self.assertGreaterEqual(run["proven"], 1, run)
        self.assertEqual(run["checked"], run["proven"], run)
        for k in ("unproven", "missing", "mismatched"):
            self.assertEqual(run[k], 0, run)
        self.assertEqual([x for x in recs if x.get("event") == "reconcile.unproven"], [])

        # deleted behind the gateway's back: missing
        self.moto.s3.delete_object(Bucket=self.moto.bucket, Key=st["key"])
        rc, out, recs = self.reconcile()
        self.assertEqual(rc, 1, out)
        bad = [x for x in recs if x.get("event") == "reconcile.unproven" and x.get("fid") == st["fid"]]
        self.assertEqual(len(bad), 1, recs)
        self.assertEqual((bad[0]["partner"], bad[0]["path"], bad[0]["key"], bad[0]["why"]),
                         ("beta", "rc.csv", st["key"], "missing"), bad[0])
        self.assertEqual(bad[0]["source"], "database")
        run = [x for x in recs if x.get("event") == "reconcile.run"][0]
        self.assertGreaterEqual(run["missing"], 1, run)
        self.assertEqual(run["unproven"], run["checked"] - run["proven"], run)
        self.assertLess(recs.index(bad[0]), recs.index(run))

        # other bytes at the key: mismatched
        self.moto.s3.put_object(Bucket=self.moto.bucket, Key=st["key"], Body=b"tampered",
                                ChecksumAlgorithm="SHA256")
        rc, out, recs = self.reconcile()
        self.assertEqual(rc, 1, out)
        bad = [x for x in recs if x.get("event") == "reconcile.unproven" and x.get("fid") == st["fid"]]
        self.assertEqual(len(bad), 1, recs)
        self.assertEqual(bad[0]["why"], "mismatched", bad[0])
        run = [x for x in recs if x.get("event") == "reconcile.run"][0]
        self.assertGreaterEqual(run["mismatched"], 1, run)

    def test_zz_trail_verifies(self):
        rc, out, err = H.run_sluice(["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    unittest.main()
