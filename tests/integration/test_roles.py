"""
Roles, limits, visibility and resume, driven by the real OpenSSH sftp client
against `sluice serve` with a file:// store (issue 3).

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_roles

Partners of the one gateway:
  drop  the default role (dropbox: upload, list, rename, mkdir)
  own   role owner (everything inside its root)
  aud   a configured role "auditor" (list, read)
  vis   dropbox with visible_for: 2s
and server: max_file_size 8 MiB.
"""

import os
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import harness as H

MAX_FILE = 8 * 1024 * 1024


def listing(res):
    """The names an sftp batch printed (its echoed commands left out)."""
    names = set()
    for line in res.out.splitlines():
        if line.startswith("sftp>") or not line.strip():
            continue
        names.add(line.split()[-1].split("/")[-1])
    return names


def _partner_lines(name, pub, extra):
    return ["  - name: %s" % name, "    authorized_keys:", "      - %s" % H.yaml_str(pub)] + \
        ["    %s" % l for l in extra]


class TestRoles(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-roles-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        gwdir = os.path.join(cls.tmp, "gw")
        cls.gw = H.Sluice(gwdir, store={"url": "file://" + cls.objects}, partners=[])
        # partner keys (role, visible_for) are not in render_config: write the
        # partners block here
        text = cls.gw.config_text.replace("partners:\n", "")
        lines = ["server:",
                 "  max_file_size: %d" % MAX_FILE,
                 "  min_free_space: 1MiB",
                 "roles:",
                 "  auditor: [list, read]",
                 "partners:"]
        lines += _partner_lines("drop", cls.keys.pub("drop"), [])
        lines += _partner_lines("own", cls.keys.pub("own"), ["role: owner"])
        lines += _partner_lines("aud", cls.keys.pub("aud"), ["role: auditor"])
        lines += _partner_lines("vis", cls.keys.pub("vis"), ["visible_for: 2s"])
        cls.gw.config_text = text + "\n".join(lines) + "\n"
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        # a file for the auditor to read (the operator put it there)
        aud = cls.gw.landing("aud")
        os.makedirs(aud, exist_ok=True)
        cls.report_sha = H.write_random_file(os.path.join(aud, "report.csv"), 4321)
        os.chmod(os.path.join(aud, "report.csv"), 0o440)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())

    # -- helpers

    def sftp(self, user, commands, **kw):
        return H.sftp(self.gw.port, user, self.keys.get(user), commands, **kw)

    def ok(self, user, commands, what):
        res = self.sftp(user, commands)
        if res.rc != 0:
            self.fail("%s failed: %r\n%s" % (what, res, self.gw.log_tail()))
        return res

    def refused(self, user, command, what, text="Permission denied"):
        res = self.sftp(user, [command])
        self.assertNotEqual(res.rc, 0, "%s: must be refused: %r" % (what, res))
        if text:
            self.assertIn(text, res.out + res.err, "%s: %r" % (what, res))
        return res

    def local(self, name, size):
        p = os.path.join(self.tmp, name)
        return p, H.write_random_file(p, size)

    def wait_object(self, partner, path, sha, timeout=30):
        p = os.path.join(self.objects, partner, path)
        if not H.poll(lambda: os.path.isfile(p) and H.sha256_file(p) == sha, timeout):
            self.fail("%s did not land with sha256 %s within %ss\n%s"
                      % (p, sha, timeout, self.gw.diagnostics()))

    def denied(self, partner, op, path):
        r = self.gw.wait_audit(lambda r: r.get("event") == "sftp.denied" and
                               r.get("partner") == partner and r.get("op") == op and
                               r.get("path") == path and r.get("status") == "permission_denied",
                               timeout=10)
        self.assertIsNotNone(r, "no sftp.denied record for %s %s %s" % (partner, op, path))

    # -- roles

    def test_dropbox_cannot_remove_read_or_overwrite(self):
        f, sha = self.local("d1.csv", 20000)
        g, _ = self.local("d1-other.csv", 999)
        self.ok("drop", ["put %s d1.csv" % f, "ls -l"], "put as drop")
        self.refused("drop", "rm d1.csv", "rm an accepted file")
        self.denied("drop", "remove", "d1.csv")
        self.refused("drop", "get d1.csv %s" % os.path.join(self.tmp, "d1.back"), "get")
        self.denied("drop", "open", "d1.csv")
        back = os.path.join(self.tmp, "d1.back")
        self.assertFalse(os.path.exists(back) and os.path.getsize(back) > 0, "bytes were read")
        self.refused("drop", "put %s d1.csv" % g, "overwrite an accepted file")
        landed = os.path.join(self.gw.landing("drop"), "d1.csv")
        self.assertEqual(H.sha256_file(landed), sha, "the accepted file changed")
        self.assertEqual(stat.S_IMODE(os.stat(landed).st_mode), 0o440)
        self.wait_object("drop", "d1.csv", sha)
        # what dropbox may do: mkdir, rename, set times (put -p), list
        self.ok("drop", ["mkdir sub", "rename d1.csv sub/d1.csv", "put -p %s sub/p.csv" % g,
                         "ls -l sub"], "mkdir, rename, put -p")
        self.refused("drop", "rmdir sub", "rmdir")

    def test_dropbox_replaces_a_never_recorded_accepted_file(self):
        """A crash inside CLOSE can leave a 0440 file that was never recorded (its
        partner was never told OK): the partner may upload that name again."""
        landing = self.gw.landing("drop")
        os.makedirs(landing, exist_ok=True)
        orphan = os.path.join(landing, "crashed.csv")
        with open(orphan, "wb") as o:
            o.write(b"half-recorded\n")
        os.chmod(orphan, 0o440)
        H.as_session_file(orphan)
        f, sha = self.local("crashed.csv", 5000)
        self.ok("drop", ["put %s crashed.csv" % f], "re-upload over a never-recorded file")
        self.assertEqual(H.sha256_file(orphan), sha)
        self.wait_object("drop", "crashed.csv", sha)
        # once recorded, the same name is an accepted file again: no overwrite
        g, _ = self.local("crashed-2.csv", 77)
        self.refused("drop", "put %s crashed.csv" % g, "overwrite a recorded file")

    def test_owner_may_read_overwrite_remove(self):
        f, sha = self.local("o1.csv", 30000)
        g, sha2 = self.local("o1-new.csv", 4000)
        back = os.path.join(self.tmp, "o1.back")
        self.ok("own", ["put %s o1.csv" % f, "get o1.csv %s" % back], "put and get as owner")
        self.assertEqual(H.sha256_file(back), sha)
        self.wait_object("own", "o1.csv", sha)
        self.ok("own", ["put %s o1.csv" % g], "overwrite as owner")
        self.assertEqual(H.sha256_file(os.path.join(self.gw.landing("own"), "o1.csv")), sha2)
        res = self.ok("own", ["rm o1.csv", "ls -1"], "rm as owner")
        self.assertNotIn("o1.csv", listing(res))
        # the first upload's object is intact
        self.assertEqual(H.sha256_file(os.path.join(self.objects, "own", "o1.csv")), sha)

    def test_auditor_lists_and_reads_but_cannot_put(self):
        back = os.path.join(self.tmp, "report.back")
        res = self.ok("aud", ["ls -l", "get report.csv %s" % back], "ls and get as auditor")
        self.assertIn("report.csv", listing(res))
        self.assertEqual(H.sha256_file(back), self.report_sha)
        f, _ = self.local("a1.csv", 100)
        self.refused("aud", "put %s a1.csv" % f, "put as auditor")
        self.denied("aud", "open", "a1.csv")
        self.assertFalse(os.path.exists(os.path.join(self.gw.landing("aud"), "a1.csv")))
        self.refused("aud", "mkdir d", "mkdir as auditor")

    # -- limits

    def test_max_file_size(self):
        f, _ = self.local("big.bin", MAX_FILE + 1024 * 1024)
        res = self.sftp("drop", ["put %s big.bin" % f])
        self.assertNotEqual(res.rc, 0, "a put over max_file_size must fail: %r" % res)
        # OpenSSH's sftp prints the status code only; the gateway says why
        self.assertTrue(H.poll(lambda: "big.bin: file too large (limit %d bytes)" % MAX_FILE
                               in H.tail(self.gw.log, 400), 5), self.gw.log_tail())
        self.assertIsNotNone(self.gw.wait_audit(
            lambda r: r.get("event") == "sftp.denied" and r.get("op") == "write" and
            r.get("path") == "big.bin" and r.get("status") == "failure" and
            r.get("reason") == "file too large (limit %d bytes)" % MAX_FILE, timeout=5),
            "no sftp.denied with the reason for big.bin")
        p = os.path.join(self.gw.landing("drop"), "big.bin")
        if os.path.exists(p):
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o640, "kept as complete")
        time.sleep(1)
        self.assertFalse(any(r.get("event") == "file.received" and r.get("path") == "big.bin"
                             for r in self.gw.audit_records()), "recorded as received")
        self.assertFalse(os.path.exists(os.path.join(self.objects, "drop", "big.bin")))
        # a file at the limit goes through
        f, sha = self.local("limit.bin", MAX_FILE)
        self.ok("drop", ["put %s limit.bin" % f], "put at max_file_size")
        self.wait_object("drop", "limit.bin", sha)

    # -- visibility

    def test_visible_for_then_gone(self):
        f, sha = self.local("v1.csv", 5000)
        res = self.ok("vis", ["put %s v1.csv" % f, "ls -1"], "put as vis")
        self.assertIn("v1.csv", listing(res), "not listed right after CLOSE")
        # times can be set on the uploaded file (put -p does SETSTAT after CLOSE)
        self.ok("vis", ["put -p %s v2.csv" % f], "put -p")
        self.wait_object("vis", "v1.csv", sha)
        rec = self.gw.wait_audit(lambda r: r.get("event") == "file.expired_from_view" and
                                 r.get("path") == "v1.csv", timeout=30)
        self.assertIsNotNone(rec, "v1.csv never left the view\n%s" % self.gw.log_tail())
        res = self.ok("vis", ["ls -1"], "ls after the window")
        self.assertNotIn("v1.csv", listing(res))
        # the stored object stays
        self.assertEqual(H.sha256_file(os.path.join(self.objects, "vis", "v1.csv")), sha)

    # -- resume

    def test_reput_after_killed_client(self):
        size = 6 * 1024 * 1024
        f, sha = self.local("r1.bin", size)
        landed = os.path.join(self.gw.landing("drop"), "r1.bin")
        ends = sum(1 for r in self.gw.audit_records() if r.get("event") == "session.end")
        batch = os.path.join(self.tmp, "r1.batch")
        with open(batch, "w") as b:
            b.write("put %s r1.bin\n" % f)
        cmd = (["sftp", "-b", batch, "-l", "4000", "-P", str(self.gw.port),
                "-i", self.keys.get("drop")] + H.SSH_COMMON +
               ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "drop@%s" % H.LOCALHOST])
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            grown = H.poll(lambda: os.path.exists(landed) and os.path.getsize(landed) >= 1 << 20, 30)
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        self.assertTrue(grown, "the upload never got going\n%s" % self.gw.log_tail())
        # the killed session ends and leaves an incomplete file
        self.assertTrue(H.poll(lambda: sum(1 for r in self.gw.audit_records()
                                           if r.get("event") == "session.end") > ends, 20),
                        "the killed client's session did not end")
        part = os.path.getsize(landed)
        self.assertLess(part, size, "the transfer was not interrupted")
        self.assertEqual(stat.S_IMODE(os.stat(landed).st_mode), 0o640)
        self.assertFalse(os.path.exists(os.path.join(self.objects, "drop", "r1.bin")))
        res = self.ok("drop", ["reput %s r1.bin" % f], "reput")
        self.assertEqual(H.sha256_file(landed), sha)
        self.wait_object("drop", "r1.bin", sha)
        rec = [r for r in self.gw.audit_records()
               if r.get("event") == "file.received" and r.get("path") == "r1.bin"]
        self.assertEqual(len(rec), 1)
        self.assertEqual(rec[0].get("sha256"), sha)


if __name__ == "__main__":
    unittest.main()
