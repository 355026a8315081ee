"""
The spool's free-space floor (server.min_free_space, issue 13 "disk full"):
a partner's write that would take the spool's file system below it fails
with SSH_FX_FAILURE and a message, the log says `no space`, the audit trail
has sftp.denied with reason "no space" (docs/audit.md), nothing is received
or stored; once the floor is met again (here: a reload lowers it) the same
upload goes through.

The floor is set above what the disk has free (statvfs of the state_dir's
file system), so no disk has to be filled. Real OpenSSH sftp client, a
file:// store.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_disk_floor
"""

import os
import signal
import tempfile
import unittest

import harness as H

MIB = 1024 * 1024


class TestDiskFloor(unittest.TestCase):

    def setUp(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-floor-")
        self.addCleanup(d.cleanup)
        self.tmp = d.name
        self.keys = H.Keys(os.path.join(self.tmp, "keys"))
        self.objects = os.path.join(self.tmp, "objects")
        os.makedirs(self.objects)
        self.gw = H.Sluice(os.path.join(self.tmp, "gw"), store={"url": "file://" + self.objects},
                           partners=[{"name": "acme",
                                     "authorized_keys": [self.keys.pub("acme")]}])
        v = os.statvfs(self.tmp)
        free_mib = v.f_bavail * v.f_frsize // MIB
        # above what the disk has free, even if others free some meanwhile
        self.base = self.gw.config_text
        self.write_floor("%dMiB" % (free_mib + 64 * 1024))
        self.addCleanup(self.gw.kill)
        self.gw.start()

    def write_floor(self, floor):
        text = self.base + "server:\n  min_free_space: %s\n" % floor
        tmp = self.gw.config_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.gw.config_path)

    def put(self, local, name):
        return H.sftp(self.gw.port, "acme", self.keys.get("acme"),
                      ["put %s %s" % (local, name)], timeout=60)

    def test_write_below_the_floor_is_refused_with_a_reason(self):
        local = os.path.join(self.tmp, "a.bin")
        sha = H.write_random_file(local, 200 * 1024)
        res = self.put(local, "a.bin")
        self.assertNotEqual(res.rc, 0, "a write below the floor was accepted: %r" % (res,))

        def denied(op):
            return self.gw.wait_audit(lambda r: r.get("event") == "sftp.denied" and
                                      r.get("op") == op and
                                      r.get("path", "").endswith("a.bin"), 20)
        w = denied("write")
        self.assertIsNotNone(w, "no sftp.denied for the write\n%s" % self.gw.log_tail(80))
        self.assertEqual(w.get("status"), "failure", w)
        self.assertEqual(w.get("reason"), "no space", w)
        self.assertEqual(w.get("partner"), "acme", w)
        c = denied("close")
        self.assertIsNotNone(c, "no sftp.denied for the CLOSE\n%s" % self.gw.log_tail(80))
        self.assertEqual(c.get("reason"), "no space", c)
        log = H.tail(self.gw.log, 200)
        self.assertRegex(log, r"a\.bin: no space: .*min_free_space",
                         "no `no space` log line\n%s" % log)
        recs = self.gw.audit_records()
        self.assertFalse([r for r in recs if r.get("event") == "file.received"], recs[-5:])
        # a refusal for another cause carries no reason
        self.assertFalse([r for r in recs if r.get("event") == "sftp.op" and "reason" in r])
        self.assertFalse(os.path.exists(os.path.join(self.objects, "acme", "a.bin")))

        # space again (the floor lowered by a reload): the same upload goes through
        self.write_floor("0")
        self.gw.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.gw.wait_audit(lambda r: r.get("event") == "config.reloaded",
                                                30), self.gw.log_tail(80))
        res = self.put(local, "a.bin")
        self.assertEqual(res.rc, 0, "%r\n%s" % (res, self.gw.log_tail(80)))
        path = os.path.join(self.objects, "acme", "a.bin")
        self.assertTrue(H.poll(lambda: os.path.isfile(path) and H.sha256_file(path) == sha, 60),
                        "a.bin was not stored after the floor was met\n%s"
                        % self.gw.diagnostics())


if __name__ == "__main__":
    unittest.main(verbosity=2)
