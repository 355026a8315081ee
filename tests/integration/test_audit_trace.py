"""
`sluice audit trace` and `sluice audit export` (issue 11, "Answers") on the
trail of a real run: a file signed with a gpg key made at test time, sent with
the OpenSSH sftp client through `sluice serve` into moto's S3 (IAM auth on),
traced from its login to its local copy's removal (exit 0); a file held
because its gateway's bucket does not exist (a second gateway), whose trace
exits 1 naming what is missing; and the export of the run's period as JSON
Lines and CSV with its verification summary.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_audit_trace
"""

import csv
import datetime
import io
import json
import os
import subprocess
import tempfile
import unittest

import harness as H
from test_completion import fingerprint, gpg


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


class AuditTraceCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-trace-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))
        cls.pgp = os.path.join(tmp, "pgp-partner")
        os.makedirs(cls.pgp, mode=0o700)
        cls.addClassCleanup(subprocess.run, ["gpgconf", "--homedir", cls.pgp, "--kill", "all"],
                            capture_output=True, timeout=30)
        gpg(cls.pgp, "--quick-gen-key", "Acme <ops@acme.test>", "ed25519", "sign", "never")
        cls.fpr = fingerprint(cls.pgp, "ops@acme.test")
        keyring = os.path.join(tmp, "acme.asc")
        with open(keyring, "wb") as f:
            f.write(gpg(cls.pgp, "--export", "--armor", cls.fpr).stdout)

        cls.moto = H.Moto(tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        store = {"url": "s3://%s" % H.BUCKET, "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), store,
                          [{"name": "signed", "authorized_keys": [cls.keys.pub("signed")]}],
                          env=cls.moto.env())
        block = ("    signature:\n      mode: detached\n      signers: [\"%s\"]\n"
                 "      keyring: %s\n      wait: 8s" % (cls.fpr, H.yaml_str(keyring)))
        name = "  - name: %s\n" % H.yaml_str("signed")
        assert name in cls.gw.config_text
        cls.gw.config_text = cls.gw.config_text.replace(name, name + block + "\n", 1)
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)
        # a gateway whose bucket was never made: its files are held
        nostore = dict(store, url="s3://never-made")
        cls.gw2 = H.Sluice(os.path.join(tmp, "gw2"), nostore,
                           [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}],
                           env=cls.moto.env()).start()
        cls.addClassCleanup(cls.gw2.kill)

    def setUp(self):
        for g in (self.gw, self.gw2):
            if not g.alive():
                self.fail("sluice serve is no longer running\n%s" % g.log_tail())

    def local(self, name, data):
        path = os.path.join(self.tmp, "local", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def put(self, gw, partner, name, data):
        res = H.sftp(gw.port, partner, self.keys.get(partner),
                     ["put %s %s" % (self.local(name, data), name)], timeout=120)
        if res.rc != 0:
            self.fail("sftp failed: %r\n%s" % (res, gw.log_tail()))

    def wait(self, gw, event, pred, timeout=60):
        r = gw.wait_audit(lambda r: r.get("event") == event and pred(r), timeout)
        if r is None:
            self.fail("no %s record within %ss\n%s" % (event, timeout, gw.diagnostics()))
        return r

    def trace(self, gw, *args):
        return H.run_sluice(["audit", "trace", "-c", gw.config_path] + list(args), timeout=60)

    def signed_file(self):
        """Sends d1.csv (signature first), waits until its local copy is gone."""
        if getattr(self.__class__, "stored", None):
            return self.__class__.stored
        data = os.urandom(5000)
        path = self.local("d1.csv", data)
        gpg(self.pgp, "-u", self.fpr, "--detach-sign", "-o", path + ".sig", path)
        with open(path + ".sig", "rb") as f:
            self.put(self.gw, "signed", "d1.csv.sig", f.read())
        self.put(self.gw, "signed", "d1.csv", data)
        rcv = self.wait(self.gw, "file.received", lambda r: r.get("path") == "d1.csv")
        self.wait(self.gw, "file.removed", lambda r: r.get("fid") == rcv["fid"])
        self.__class__.stored = rcv
        return rcv

    def test_signed_file_story_complete(self):
        rcv = self.signed_file()
        fid = rcv["fid"]
        login = self.wait(self.gw, "auth.success", lambda r: r.get("session") == rcv["session"])
        stored = self.wait(self.gw, "file.stored", lambda r: r.get("fid") == fid)
        rc, out, err = self.trace(self.gw, fid)
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "file " + fid)
        events = [l.split()[1] for l in lines[1:] if l.startswith("  20")]
        self.assertEqual(events[0], "auth.success", out)
        self.assertEqual(events[1], "file.received", out)
        for ev in ("file.accepted", "file.stored", "file.removed"):
            self.assertIn(ev, events, out)
        self.assertLess(events.index("file.accepted"), events.index("file.stored"))
        self.assertLess(events.index("file.stored"), events.index("file.removed"))
        for want in ("key=" + login["key"], "client=" + json.dumps(login["client"]), "kex=" + login["kex"],
                     "sha256=" + rcv["sha256"], "size=5000", "signature key=signed/d1.csv",
                     "signer=" + self.fpr, "bucket=" + H.BUCKET,
                     "[seq %d, audit.jsonl]" % rcv["seq"],
                     "complete: stored as s3://%s/signed/d1.csv" % H.BUCKET):
            self.assertIn(want, out)
        self.assertIn("checksum=" + stored["checksum"], out)
        self.assertNotIn("GAP", out)

        # the same story by sha256 and by partner:path; JSON for machines
        for q in (rcv["sha256"], "signed:d1.csv", "signed:/d1.csv"):
            rc, out2, err = self.trace(self.gw, q)
            self.assertEqual(rc, 0, out2 + err)
            self.assertIn("file " + fid, out2)
        rc, js, err = self.trace(self.gw, "--json", fid)
        self.assertEqual(rc, 0, err)
        doc = json.loads(js)
        self.assertTrue(doc["complete"])
        f = doc["files"][0]
        self.assertEqual((f["fid"], f["partner"], f["path"], f["sha256"]),
                         (fid, "signed", "d1.csv", rcv["sha256"]))
        self.assertEqual(f["missing"], [])
        self.assertEqual(f["steps"][0]["record"]["session"], rcv["session"])
        self.assertEqual([s["event"] for s in f["steps"]], events)
        self.assertTrue(all(s["segment"] == "audit.jsonl" for s in f["steps"]))

        # the signature file: used, kept locally, its own complete story
        rc, out, err = self.trace(self.gw, "signed:d1.csv.sig")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("sidecar kept locally", out)

        # unknown and malformed queries
        rc, out, err = self.trace(self.gw, "0" * 32)
        self.assertEqual(rc, 3, out + err)
        self.assertIn("no file in the audit trail matches", err)
        rc, out, err = self.trace(self.gw, "not-a-query")
        self.assertEqual(rc, 2, out + err)

    def test_held_file_has_a_gap(self):
        self.put(self.gw2, "acme", "h1.csv", os.urandom(3000))
        held = self.wait(self.gw2, "file.held", lambda r: r.get("path") == "h1.csv", 90)
        rc, out, err = self.trace(self.gw2, held["fid"])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("auth.success", out)
        self.assertIn("file.accepted", out)
        self.assertIn("file.held", out)
        self.assertIn("GAP: missing file.stored: the file is held", out)
        self.assertIn("NoSuchBucket", out)
        rc, js, err = self.trace(self.gw2, "--json", "acme:h1.csv")
        self.assertEqual(rc, 1, err)
        doc = json.loads(js)
        self.assertFalse(doc["complete"])
        self.assertIn("held", doc["files"][0]["missing"][0])

    def export(self, *args):
        return H.run_sluice(["audit", "export", "-c", self.gw.config_path] + list(args),
                            timeout=60)

    def test_export_period(self):
        rcv = self.signed_file()
        t1 = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
        period = ["--from", rfc3339(self.t0), "--to", rfc3339(t1)]
        records = [r for r in self.gw.audit_records()
                   if self.t0 <= parse_ts(r["ts"]) < t1]

        rc, out, err = self.export(*period)
        self.assertEqual(rc, 0, err)
        got = [json.loads(l) for l in out.splitlines()]
        self.assertGreaterEqual(len(records), 10)
        self.assertEqual([r["seq"] for r in got][:len(records)], [r["seq"] for r in records])
        self.assertIn("export: %d record(s) from 1 of the trail's 1 file(s)" % len(got), err)
        self.assertIn("chain verified", err)
        self.assertIn("MACs checked and good", err)

        rc, out, err = self.export(*(period + ["--partner", "signed", "--format", "csv"]))
        self.assertEqual(rc, 0, err)
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], ["seq", "ts", "host", "event", "partner", "session", "remote",
                                   "fid", "path", "size", "sha256", "key", "reason", "record"])
        self.assertTrue(all(r[4] == "signed" for r in rows[1:]))
        mine = [r for r in rows[1:] if r[7] == rcv["fid"]]
        self.assertIn("file.received", [r[3] for r in mine])
        for r in rows[1:]:
            self.assertEqual(json.loads(r[13])["seq"], int(r[0]))
        self.assertIn("chain verified", err)

        # a period before anything: nothing, and nothing to verify
        rc, out, err = self.export("--from", "2000-01-01", "--to", "2000-01-02")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "")
        rc, out, err = self.export("--from", "yesterday")
        self.assertEqual(rc, 2, err)

        # an edited record: the summary says so and the exit is 1
        copy = os.path.join(self.tmp, "tampered")
        os.makedirs(copy, exist_ok=True)
        with open(self.gw.audit_path) as f:
            text = f.read()
        with open(os.path.join(copy, "audit.jsonl"), "w") as f:
            f.write(text.replace('"path":"d1.csv"', '"path":"d9.csv"', 1))
        cfg = os.path.join(copy, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write(self.gw.config_text.replace(H.yaml_str(self.gw.audit_path),
                                                H.yaml_str(os.path.join(copy, "audit.jsonl"))))
        # the running gateway answers only for its own configuration ...
        rc, out, err = H.run_sluice(["audit", "export", "-c", cfg] + period, timeout=60)
        self.assertEqual(rc, 2, err)
        self.assertIn("--local", err)
        # ... another one's files are read in this process
        rc, out, err = H.run_sluice(["audit", "export", "--local", "-c", cfg] + period,
                                    timeout=60)
        self.assertEqual(rc, 1, err)
        self.assertIn("NOT VERIFIED", err)


if __name__ == "__main__":
    unittest.main()
