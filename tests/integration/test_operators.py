"""
Operator roles over the control socket (issue 11, "Operator roles"), against
`sluice serve` with a file:// store.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_operators

Throwaway local accounts are made for the test (and removed after it):
  AUD   in the group GRP, which operators: makes `auditor`
  OWN   operators: makes `owner` (a user entry)
  NOB   in no entry: no role
A file is held (the store refuses the uploader: EACCES), then:
  - AUD's `sluice queue list` runs in the gateway (through the socket) and
    shows it; AUD's `queue retry` is refused (exit 77, a message naming the
    role), and the file stays held;
  - NOB is refused even `queue list`;
  - OWN's `queue retry` releases it, the file is stored, and queue.retry
    names OWN as the operator;
  - operator.command / operator.done / operator.refused records name the
    operator, uid, role and outcome;
  - a client that sends garbage loses its connection, and the gateway still
    answers the next one.
Needs root (useradd, runuser).
"""

import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import unittest

import harness as H

PARTNER = "acme"


def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr))


@unittest.skipUnless(os.geteuid() == 0, "needs root: makes throwaway users")
class TestOperators(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-ops-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        tag = "%04x" % (os.getpid() & 0xffff)
        cls.grp, cls.aud, cls.own, cls.nob = ("slopg" + tag, "sloaud" + tag,
                                              "sloown" + tag, "slonob" + tag)
        cls._accounts()
        # the binary where the throwaway users may run it
        os.makedirs(os.path.join(cls.tmp, "bin"))
        cls.bin = os.path.join(cls.tmp, "bin", "sluice")
        shutil.copy2(H.SLUICE_BIN, cls.bin)
        os.chmod(os.path.dirname(cls.bin), 0o755)
        os.chmod(cls.bin, 0o755)
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        extra = "\n".join(["operators:",
                           "  - group: %s" % cls.grp, "    role: auditor",
                           "  - user: %s" % cls.own, "    role: owner"])
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
                          partners=[{"name": PARTNER, "authorized_keys": [cls.keys.pub(PARTNER)]}],
                          extra_config=extra)
        os.chmod(cls.gw.config_path, 0o644)  # operators read control.socket from it
        cls.sock = os.path.join(cls.tmp, "gw", "control.sock")
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def _accounts(cls):
        cls.addClassCleanup(cls._remove_accounts)
        _run(["groupadd", cls.grp])
        for u, extra in ((cls.aud, ["-G", cls.grp]), (cls.own, []), (cls.nob, [])):
            _run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin"]
                 + extra + [u])

    @classmethod
    def _remove_accounts(cls):
        for u in (cls.aud, cls.own, cls.nob):
            subprocess.run(["userdel", u], capture_output=True)
        subprocess.run(["groupdel", cls.grp], capture_output=True)

    def as_user(self, user, args):
        """`sluice -c cfg ARGS` as user: (rc, out, err)."""
        r = subprocess.run(["runuser", "-u", user, "--", self.bin, "-c", self.gw.config_path] + args,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                           cwd="/", errors="replace")
        return r.returncode, r.stdout, r.stderr

    def records(self, event, **match):
        return [r for r in self.gw.audit_records() if r.get("event") == event and
                all(r.get(k) == v for k, v in match.items())]

    def held_file(self):
        """Uploads one file while the store refuses the uploader; its queue id."""
        svc = pwd.getpwnam(H.SERVICE_USER)
        os.chown(self.objects, 0, 0)
        os.chmod(self.objects, 0o755)
        src = os.path.join(self.tmp, "report.csv")
        H.write_random_file(src, 2048)
        res = H.sftp(self.gw.port, PARTNER, self.keys.get(PARTNER), ["put %s report.csv" % src])
        self.assertEqual(res.rc, 0, res)
        rec = self.gw.wait_audit(lambda r: r.get("event") == "file.held", timeout=30)
        self.assertIsNotNone(rec, "the file was never held\n" + self.gw.diagnostics())
        self.addCleanup(os.chown, self.objects, svc.pw_uid, svc.pw_gid)
        return rec

    def test_roles(self):
        self.assertTrue(stat.S_ISSOCK(os.stat(self.sock).st_mode), "no control socket")
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o666)
        held = self.held_file()
        fid = held["fid"]

        # auditor: list works, through the gateway (the user cannot read sluice.db)
        rc, out, err = self.as_user(self.aud, ["queue", "list"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("report.csv", out)
        self.assertIn("held", out)
        rows = [l.split() for l in out.splitlines() if "report.csv" in l]
        fileid = rows[0][0]
        uid = pwd.getpwnam(self.aud).pw_uid
        cmd = self.records("operator.command", operator=self.aud, command="queue list")
        self.assertTrue(cmd, "no operator.command record for the auditor's list")
        self.assertEqual((cmd[-1]["uid"], cmd[-1]["role"], cmd[-1]["allowed"]), (uid, "auditor", True))
        self.assertEqual(cmd[-1]["args"], ["queue", "list"])
        done = self.gw.wait_audit(lambda r: r.get("event") == "operator.done" and
                                  r.get("request") == cmd[-1]["request"])
        self.assertIsNotNone(done, "no operator.done for the list")
        self.assertEqual(done["exit"], 0)

        # auditor: retry refused, clearly, and audited; nothing changed
        rc, out, err = self.as_user(self.aud, ["queue", "retry", fileid])
        self.assertEqual(rc, 77, out + err)
        for w in ("refused", self.aud, "auditor", "queue retry", "operator"):
            self.assertIn(w, err, "the refusal does not say %r: %s" % (w, err))
        ref = self.records("operator.refused", operator=self.aud, command="queue retry")
        self.assertTrue(ref, "no operator.refused record")
        self.assertEqual((ref[-1]["role"], ref[-1]["allowed"], ref[-1]["uid"]), ("auditor", False, uid))
        self.assertEqual(ref[-1]["args"], ["queue", "retry", fileid])
        self.assertFalse([r for r in self.records("queue.retry") if r.get("fid") == fid])

        # no role: even list is refused
        rc, out, err = self.as_user(self.nob, ["queue", "list"])
        self.assertEqual(rc, 77, out + err)
        self.assertIn("no operator role", err)
        self.assertNotIn("report.csv", out)
        self.assertTrue(self.records("operator.refused", operator=self.nob, role="none"))

        # owner: retry releases it; the record names the operator
        os.chown(self.objects, pwd.getpwnam(H.SERVICE_USER).pw_uid, grp.getgrnam(H.SERVICE_USER).gr_gid)
        rc, out, err = self.as_user(self.own, ["queue", "retry", fileid])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("held -> accepted", out)
        retry = self.gw.wait_audit(lambda r: r.get("event") == "queue.retry" and r.get("fid") == fid)
        self.assertIsNotNone(retry)
        self.assertEqual(retry["operator"], self.own)
        cmd = self.records("operator.command", operator=self.own, command="queue retry")
        self.assertTrue(cmd and cmd[-1]["role"] == "owner")
        stored = self.gw.wait_audit(lambda r: r.get("event") == "file.stored" and r.get("fid") == fid,
                                    timeout=30)
        self.assertIsNotNone(stored, "not stored after the owner's retry\n" + self.gw.diagnostics())

        # auditor: verify reads the trail the user may not read, only the trail
        rc, out, err = self.as_user(self.aud, ["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("chain intact", out)
        rc, out, err = self.as_user(self.aud, ["audit", "verify", "/etc/hostname"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("reads only trails", err)

        # --local: runs here, as the user, who cannot open the state database
        rc, out, err = self.as_user(self.aud, ["queue", "list", "--local"])
        self.assertNotEqual(rc, 0, out + err)
        self.assertEqual(len(self.records("operator.command", operator=self.aud,
                                          command="queue list")), 1)

    def test_garbage(self):
        """A malformed request costs the client its connection; the next client is served."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(10)
        s.connect(self.sock)
        s.send(b"\x00garbage" * 10)
        self.assertEqual(s.recv(2048), b"", "the gateway answered garbage")
        s.close()
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.gw.config_path])
        self.assertEqual(rc, 0, out + err)
        self.assertTrue(self.records("operator.command", operator="root", command="queue list"))


if __name__ == "__main__":
    unittest.main()
