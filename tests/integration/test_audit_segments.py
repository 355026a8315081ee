"""
test_audit_segments.py - issue 11's segments and seals on a running gateway
(started as root, so the audit writer runs as the service user):

  - with a tiny audit.segment_max, uploads with the real sftp client leave
    several sealed segments, each ending with audit.seal, and
    `sluice audit verify -c` checks them all with the key;
  - SIGKILL of the audit writer mid-stream: the supervisor restarts it, the
    new writer seals what the killed one left (reason restart, a torn tail
    saved aside), and the trail still verifies;
  - `sluice audit rotate-key -c` asks the running writer: the records after
    it carry a new kid, the old key is kept in audit.keys/, the trail
    verifies with both keys and not with the new one alone; with the
    gateway stopped the command refuses.
"""

import json
import os
import pwd
import signal
import tempfile
import threading
import time
import unittest

import harness as H


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def _writer_pid(gw):
    for pid in H.group_members(gw.proc.pid):
        if _comm(pid) == "sluice-audit":
            return pid
    return None


def _last_record(path):
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    return json.loads(lines[-1])


@unittest.skipUnless(os.geteuid() == 0, "needs root: the writer runs as the service user")
class TestAuditSegments(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-segments-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        objects = os.path.join(cls.tmp, "objects")
        os.makedirs(objects)
        partners = [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}]
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), {"url": "file://" + objects}, partners)
        text = cls.gw.config_text.replace(
            "audit:\n  path: %s\n" % H.yaml_str(cls.gw.audit_path),
            "audit:\n  path: %s\n  segment_max: 4KiB\n  host_id: gw-seg.test\n"
            % H.yaml_str(cls.gw.audit_path))
        assert "segment_max" in text, text
        with open(cls.gw.config_path, "w") as f:
            f.write(text)
        cls.segdir = os.path.join(os.path.dirname(cls.gw.audit_path), "segments")
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)
        cls.n = 0

    def put(self, count, size=3000):
        cmds = []
        for _ in range(count):
            type(self).n += 1
            src = os.path.join(self.tmp, "f%d.bin" % self.n)
            H.write_random_file(src, size)
            cmds.append("put %s f%d.bin" % (src, self.n))
        return H.sftp(self.gw.port, "acme", self.keys.get("acme"), cmds)

    def verify_c(self, *extra):
        return H.run_sluice(["audit", "verify"] + list(extra) + ["-c", self.gw.config_path])

    def seals(self):
        return [_last_record(p) for p in H.audit_segments(self.gw.audit_path)]

    def test_1_uploads_leave_sealed_segments_that_verify(self):
        r = self.put(6)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, self.gw.log_tail()))
        self.assertIsNotNone(self.gw.wait_audit(
            lambda r: r.get("event") == "file.stored" and r.get("path") == "f6.bin", 30),
            self.gw.log_tail())
        segs = H.audit_segments(self.gw.audit_path)
        self.assertGreaterEqual(len(segs), 2, segs)
        for p, seal in zip(segs, self.seals()):
            self.assertEqual(seal["event"], "audit.seal", p)
            self.assertEqual(seal["segment"], os.path.basename(p))
            self.assertEqual(seal["host"], "gw-seg.test")
            self.assertIn(seal["reason"], ("size", "restart"), seal)
            self.assertEqual(seal["count"], seal["last_seq"] - seal["first_seq"] + 1)
        st = os.stat(self.segdir)
        self.assertEqual(st.st_mode & 0o777, 0o750)
        rc, out, err = self.verify_c()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("chain intact, MACs good", out)
        # The files alone, without the key: structure only, and it says so.
        rc, out, err = H.run_sluice(["audit", "verify", "--local", self.segdir, self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs not checked", out)
        # A segment cut short is named.
        victim = H.audit_segments(self.gw.audit_path)[0]
        with open(victim, "rb") as f:
            data = f.read()
        cut = os.path.join(self.tmp, "cut")
        os.makedirs(cut, exist_ok=True)
        for p in H.audit_segments(self.gw.audit_path):
            with open(p, "rb") as f, open(os.path.join(cut, os.path.basename(p)), "wb") as g:
                g.write(f.read())
        lines = data.splitlines(keepends=True)
        with open(os.path.join(cut, os.path.basename(victim)), "wb") as g:
            g.write(b"".join(lines[:-2]))
        rc, out, err = H.run_sluice(["audit", "verify", "--local", cut])
        self.assertEqual(rc, 1, out + err)
        self.assertIn(os.path.basename(victim) + ":%d: cut tail" % (len(lines) - 1), out)

    def test_2_sigkill_of_the_writer_mid_stream(self):
        pid = _writer_pid(self.gw)
        self.assertIsNotNone(pid, "no sluice-audit process")
        before = len(H.audit_segments(self.gw.audit_path))
        results = []
        t = threading.Thread(target=lambda: results.append(self.put(8, 1000)))
        t.start()
        # kill it while records are flowing
        H.poll(lambda: os.path.getsize(self.gw.audit_path) > 600 or None, 10, 0.01)
        os.kill(pid, signal.SIGKILL)
        t.join(120)
        new = H.poll(lambda: (_writer_pid(self.gw) not in (None, pid)) or None, 30)
        self.assertTrue(new, "the supervisor did not restart the writer\n%s" % self.gw.log_tail())
        # whatever the uploads saw, the gateway serves again
        r = self.put(1)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, self.gw.log_tail()))
        seals = self.seals()[before:]
        restart = [s for s in seals if s["reason"] == "restart"]
        self.assertTrue(restart, "no seal with reason restart: %r\n%s" % (seals, self.gw.log_tail()))
        for s in restart:
            if "torn_bytes" in s:
                torn = os.path.join(self.segdir, s["torn_file"])
                self.assertEqual(os.path.getsize(torn), s["torn_bytes"])
        rc, out, err = self.verify_c()
        self.assertEqual(rc, 0, out + err + self.gw.log_tail())
        self.assertIn("MACs good", out)

    def test_3_rotate_key(self):
        keyfile = os.path.join(self.gw.state_dir, "audit.key")
        old = H.read_audit(self.gw.audit_path)[-1]["kid"]
        rc, out, err = H.run_sluice(["audit", "rotate-key", "-c", self.gw.config_path])
        self.assertEqual(rc, 0, out + err + self.gw.log_tail())
        rot = self.gw.wait_audit(lambda r: r.get("event") == "audit.key_rotated")
        self.assertIsNotNone(rot, self.gw.log_tail())
        self.assertEqual(rot["old_kid"], old)
        self.assertNotEqual(rot["new_kid"], old)
        self.assertEqual(rot["operator"], "root")
        # through the control socket the writer's peer is the control role
        # (the service user); operator.command has the caller's uid
        self.assertIn(rot["uid"], (0, pwd.getpwnam(H.SERVICE_USER).pw_uid))
        kept = os.path.join(self.gw.state_dir, "audit.keys", old + ".key")
        self.assertTrue(os.path.exists(kept), kept)
        # the seal just before the rotation record ends the old key's segment
        seal = self.gw.wait_audit(lambda r: r.get("event") == "audit.seal"
                                  and r.get("seq") == rot["seq"] - 2)
        self.assertIsNotNone(seal, "%r" % self.seals()[-3:])
        self.assertEqual(seal["reason"], "rotate-key", "%r" % self.seals()[-3:])
        r = self.put(2)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, self.gw.log_tail()))
        rec = self.gw.wait_audit(lambda r: r.get("event") == "file.received"
                                 and r.get("path") == "f%d.bin" % self.n)
        self.assertIsNotNone(rec)
        self.assertEqual(rec["kid"], rot["new_kid"])
        rc, out, err = self.verify_c()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)
        # the new key alone does not verify the older records
        rc, out, err = H.run_sluice(["audit", "verify", "--local", "--key", keyfile, self.segdir,
                                     self.gw.audit_path])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("wrong key", out)
        rc, out, err = H.run_sluice(["audit", "verify", "--local", "--key", keyfile, "--key", kept,
                                     self.segdir, self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)

    def test_4_rotate_key_needs_a_running_writer(self):
        self.gw.stop()
        rc, out, err = H.run_sluice(["audit", "rotate-key", "-c", self.gw.config_path])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("no audit writer answers", err)
        self.assertIn("never rotated offline", err)
        # a stopped gateway's trail verifies; the next start seals it
        rc, out, err = self.verify_c()
        self.assertEqual(rc, 0, out + err)
        n = len(H.audit_segments(self.gw.audit_path))
        live = H.read_audit(self.gw.audit_path, segments=False)
        self.gw.start()
        self.assertIsNotNone(self.gw.wait_audit(lambda r: r.get("event") == "process.start"
                                                and r.get("pid") == self.gw.proc.pid))
        # records written at start may fill more 4 KiB segments (reason
        # "size"); only the first new seal tells whether the start sealed
        new = self.seals()[n:]
        if [r["event"] for r in live] == ["audit.open"]:
            # the tiny segment_max sealed everything before the stop
            self.assertNotIn("restart", [s["reason"] for s in new])
        else:
            self.assertTrue(new, self.gw.log_tail(80))
            self.assertEqual(new[0]["reason"], "restart", "%r" % new)
            self.assertNotIn("restart", [s["reason"] for s in new[1:]])
        rc, out, err = self.verify_c()
        self.assertEqual(rc, 0, out + err)

    def test_5_an_audit_directory_the_writer_cannot_write_is_refused(self):
        # the writer creates files beside audit.path (each new live file):
        # a root-owned directory would fail at the first seal; refuse at start
        self.gw.stop()
        bad = os.path.join(self.tmp, "root-owned")
        os.makedirs(bad, exist_ok=True)
        os.chmod(bad, 0o755)
        cfg = os.path.join(self.tmp, "bad-audit-dir.yaml")
        with open(cfg, "w") as f:
            f.write(self.gw.config_text.replace(
                H.yaml_str(self.gw.audit_path),
                H.yaml_str(os.path.join(bad, "audit.jsonl"))))
        rc, out, err = H.run_sluice(["serve", "-c", cfg], timeout=60)
        self.assertNotEqual(rc, 0, out + err)
        self.assertIn("must create files in %s" % bad, err)
        self.assertIn("chown", err)
        self.assertFalse(os.path.exists(os.path.join(bad, "audit.jsonl")))


if __name__ == "__main__":
    unittest.main()
