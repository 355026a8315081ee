"""
test_privsep.py - the trust boundaries of issue 10, checked from outside
on a running gateway (as root, so sluice separates its roles):

  - every role runs as the service user, every session as the session user,
    none as root but the supervisor; a session has NoNewPrivs 1, Seccomp 2,
    no AWS_* in its environment and no password hash in its memory;
  - a session runs sluice-session (beside sluice) with none of the roles'
    libraries mapped (curl, gpgme, SQLite, libyaml ...), and serve refuses
    to start without that program;
  - a "compromised session": code running as the session user (setpriv to
    its uid/gid) cannot write sluice.db, the audit trail, bans.json or the
    spool's other directories, read a keyring or the uploader's
    environment, or create files in state_dir;
  - inside the sandbox a session cannot open another partner's upload, the
    database or /etc/passwd (test build probe);
  - a session that makes a forbidden system call is killed by SIGSYS,
    logged, audited and counted, and the gateway keeps serving;
  - the supervisor (root) records process.start and process.stop through
    the audit writer, and the keyed trail still verifies.
"""

import hashlib
import os
import pwd
import shutil
import signal
import socket
import re
import subprocess
import tempfile
import time
import unittest
import uuid

import harness as H

MOTO_ENV = {"AWS_ACCESS_KEY_ID": "AKIAPRIVSEPTEST", "AWS_SECRET_ACCESS_KEY": "privsep-" + uuid.uuid4().hex}


def _status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _mem_has(pid, needle, chunk=8 << 20):
    """Whether needle is in a readable mapping of pid (read as root through
    /proc/PID/mem, in chunks; huge reservations such as ASan's shadow are
    skipped: nothing is ever written there)."""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or m.group(3)[0] != "r":
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start > 1 << 30:
                continue
            pos = start
            while pos < end:
                n = min(chunk + len(needle), end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except OSError:
                    break
                if needle in data:
                    return True
                pos += chunk
    return False


def _test_build():
    rc, out, err = H.run_sluice(["--version"], timeout=10)
    return "test build" in out


def _as_session_user(argv):
    """Runs argv as the session user (what a compromised session could do)."""
    ses = pwd.getpwnam(H.SESSION_USER)
    return subprocess.run(["setpriv", "--reuid=%d" % ses.pw_uid, "--regid=%d" % ses.pw_gid,
                           "--init-groups", "--"] + argv,
                          capture_output=True, text=True, timeout=30)


@unittest.skipUnless(os.geteuid() == 0, "needs root: sluice separates its roles only when started as root")
class TestPrivsep(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-privsep-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        cls.pw_acme = "acme " + uuid.uuid4().hex
        cls.pw_globex = "globex " + uuid.uuid4().hex
        cls.hash_acme = H.password_hash(cls.pw_acme)
        cls.hash_globex = H.password_hash(cls.pw_globex)
        # a keyring file the intake reads: no session may
        cls.keyring = os.path.join(cls.tmp, "acme-keyring.asc")
        with open(cls.keyring, "w") as f:
            f.write("not a real keyring; only its permissions are tested\n")
        os.chmod(cls.keyring, 0o640)
        partners = [
            {"name": "acme", "authorized_keys": [cls.keys.pub("acme")], "password_hash": cls.hash_acme},
            {"name": "globex", "authorized_keys": [cls.keys.pub("globex")],
             "password_hash": cls.hash_globex},
        ]
        cls.env = dict(MOTO_ENV)
        if _test_build():
            cls.env["SLUICE_TEST_PROBE_PATHS"] = ":".join([
                os.path.join(cls.tmp, "gw", "state", "landing", "globex", "g.bin"),
                os.path.join(cls.tmp, "gw", "state", "sluice.db"),
                "/etc/passwd",
                # the control: its own root is within reach
                os.path.join(cls.tmp, "gw", "state", "landing", "acme")])
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
                          partners=partners, env=cls.env)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        # globex's upload, which acme's session must not reach
        src = os.path.join(cls.tmp, "g.bin")
        H.write_random_file(src, 5000)
        r = H.sftp(cls.gw.port, "globex", cls.keys.get("globex"), ["put %s g.bin" % src])
        assert r.rc == 0, "%r\n%s" % (r, cls.gw.log_tail())

    def open_session(self, user="acme"):
        # sessions of earlier tests may still be closing: ours is a new one
        before = {pid for pid, c in H.procs_by_comm(self.gw.proc.pid).items()
                  if c == "sluice-session"}
        p = H.sftp_open(self.gw.port, user, self.keys.get(user))
        self.addCleanup(H.sftp_close, p)
        p.stdin.write(b"pwd\n")
        p.stdin.flush()
        pid = H.poll(lambda: next((pid for pid, c in H.procs_by_comm(self.gw.proc.pid).items()
                                   if c == "sluice-session" and pid not in before), None), 15)
        self.assertIsNotNone(pid, "no session process\n%s" % self.gw.log_tail())
        # logged in: the post-auth sandbox is on once auth.success is written
        self.assertIsNotNone(self.gw.wait_audit(lambda r: r.get("event") == "auth.success"
                                                and r.get("partner") == user),
                             "no login\n%s" % self.gw.log_tail())
        time.sleep(0.3)
        return pid

    # -- users ---------------------------------------------------------------

    def test_roles_users(self):
        svc = pwd.getpwnam(H.SERVICE_USER).pw_uid
        procs = H.procs_by_comm(self.gw.proc.pid)
        names = sorted(procs.values())
        for role in ("sluice-audit", "sluice-listener", "sluice-intake", "sluice-uploader"):
            self.assertIn(role, names, "role %s not running: %s" % (role, names))
        for pid, comm in procs.items():
            st = _status(pid)
            uids = [int(x) for x in st["Uid"].split()]
            if pid == self.gw.proc.pid:
                continue    # the supervisor keeps root to start roles
            if comm.startswith("sluice-") and comm != "sluice-session":
                self.assertEqual(uids, [svc] * 4, "%s (%d) runs as %s" % (comm, pid, uids))
                self.assertEqual(st["NoNewPrivs"], "1", comm)
                self.assertEqual(st["CapEff"], "0000000000000000", comm)

    def test_session_confined(self):
        pid = self.open_session()
        st = _status(pid)
        ses = pwd.getpwnam(H.SESSION_USER).pw_uid
        self.assertEqual([int(x) for x in st["Uid"].split()], [ses] * 4, st["Uid"])
        self.assertEqual(st["NoNewPrivs"], "1")
        self.assertEqual(st["Seccomp"], "2", "no seccomp filter on the session")
        self.assertEqual(st["CapEff"], "0000000000000000")
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        self.assertFalse([e for e in env if e.startswith(b"AWS_")], "AWS_* in a session: %r" % env)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertIn(b"__session", f.read(), "the session was not re-exec'd")
        # its own program, beside the gateway's, without the roles' libraries
        exe = os.readlink("/proc/%d/exe" % pid)
        self.assertEqual(exe, os.path.join(os.path.dirname(os.path.realpath(H.SLUICE_BIN)),
                                           "sluice-session"))
        with open("/proc/%d/maps" % pid) as f:
            libs = {os.path.basename(line.split()[-1]) for line in f if ".so" in line}
        for lib in ("libcurl", "libgpgme", "libsqlite3", "libyaml", "libmicrohttpd",
                    "libsystemd", "libcrypt.so"):
            self.assertFalse([m for m in libs if m.startswith(lib)],
                             "%s mapped in a session: %s" % (lib, sorted(libs)))
        self.assertTrue([m for m in libs if m.startswith("libssh.so")], sorted(libs))

    def test_session_memory_holds_no_password_hash(self):
        pid = self.open_session()
        needles = [self.hash_acme.encode(), self.hash_globex.encode(),
                   self.hash_globex.split("$")[-1].encode()]
        found = [n for n in needles if _mem_has(pid, n)]
        self.assertEqual(found, [], "a password hash is in the session's memory")
        # and the scan can find what is there: the session's configuration
        # holds the partners' names
        self.assertTrue(_mem_has(pid, b"globex"), "the memory scan reads nothing")

    def test_passwords_checked_by_the_listener(self):
        r = H.sftp_password(self.gw.port, "acme", self.pw_acme, ["pwd"])
        self.assertEqual(r.rc, 0, "password login failed: %r\n%s" % (r, self.gw.log_tail()))
        r = H.sftp_password(self.gw.port, "acme", self.pw_globex, ["pwd"])
        self.assertNotEqual(r.rc, 0, "another partner's password let acme in")

    # -- a compromised session -------------------------------------------------

    def test_compromised_session_user(self):
        sd = self.gw.state_dir
        uploader = next(pid for pid, c in H.procs_by_comm(self.gw.proc.pid).items()
                        if c == "sluice-uploader")
        attempts = {
            "write sluice.db": ["sh", "-c", "echo x >> '%s/sluice.db'" % sd],
            "open sluice.db with sqlite": ["sqlite3", os.path.join(sd, "sluice.db"),
                                           "INSERT INTO files (fid) VALUES ('x')"],
            "append to the audit trail": ["sh", "-c", "echo '{}' >> '%s'" % self.gw.audit_path],
            "truncate the audit trail": ["truncate", "-s", "0", self.gw.audit_path],
            "read the audit trail": ["cat", self.gw.audit_path],
            "read the audit key": ["cat", os.path.join(sd, "audit.key")],
            "read the uploader's environment": ["cat", "/proc/%d/environ" % uploader],
            "read a keyring": ["cat", self.keyring],
            "create a file in state_dir": ["touch", os.path.join(sd, "evil")],
            "write bans.json": ["sh", "-c", "echo '{}' > '%s/bans.json'" % sd],
            "create a file in spool/ready": ["touch", os.path.join(sd, "spool", "ready", "evil")],
            "create a file in quarantine": ["touch", os.path.join(sd, "quarantine", "evil")],
            "list landing/": ["ls", os.path.join(sd, "landing")],
            "read the host key": ["cat", self.gw.host_key],
        }
        before = os.stat(self.gw.audit_path).st_size
        succeeded = []
        for what, argv in attempts.items():
            r = _as_session_user(argv)
            if r.returncode == 0:
                succeeded.append("%s: %s" % (what, r.stdout[:80]))
        self.assertEqual(succeeded, [], "the session user could:\n" + "\n".join(succeeded))
        self.assertGreaterEqual(os.stat(self.gw.audit_path).st_size, before)
        self.assertFalse(os.path.exists(os.path.join(sd, "evil")))
        # the harness itself works: the session user can reach its own share
        r = _as_session_user(["ls", os.path.join(sd, "landing", "acme")])
        self.assertEqual(r.returncode, 0, "the session user cannot reach landing/acme: %s" % r.stderr)
        rc, out, err = H.run_sluice(["audit", "verify", self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs not checked", out)

    def test_audit_key_belongs_to_the_writer(self):
        # the writer (user sluice) made the key on its first start; only it
        # reads it, and with it every record's MAC checks
        key = os.path.join(self.gw.state_dir, "audit.key")
        H.poll(lambda: os.path.exists(key), 10)
        st = os.stat(key)
        self.assertEqual(st.st_mode & 0o7777, 0o400)
        self.assertEqual(st.st_size, 32)
        self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, "sluice")
        r = H.sftp_password(self.gw.port, "acme", self.pw_acme, ["pwd"])
        self.assertEqual(r.rc, 0, "password login failed: %r" % (r,))
        rc, out, err = H.run_sluice(["audit", "verify", "--key", key, self.gw.audit_path])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)
        with open(self.gw.audit_path) as f:
            recs = [l for l in f if l.strip()]
        self.assertTrue(recs and all('"mac":"' in l for l in recs), recs[:3])

    def test_sandbox_probe(self):
        if not _test_build():
            self.skipTest("needs a test build (cmake -DSLUICE_TEST_HOOKS=ON; tests/run.sh builds one)")
        self.open_session()
        log = H.poll(lambda: [l for l in H.tail(self.gw.log, 2000).splitlines()
                              if "test probe" in l and "g.bin" in l and "session" in l], 10)
        self.assertTrue(log, "no probe lines\n%s" % self.gw.log_tail())
        lines = [l for l in H.tail(self.gw.log, 2000).splitlines() if "test probe" in l]
        # acme's sessions: globex's upload, the database and /etc/passwd are
        # all out of reach
        own = [l for l in lines if l.endswith("landing/acme: opened")]
        self.assertTrue(own, "the probe cannot open even its own root:\n%s" % "\n".join(lines))
        for target in ("landing/globex/g.bin", "sluice.db", "/etc/passwd"):
            hits = [l for l in lines if target in l]
            self.assertTrue(hits, target)
            self.assertFalse([l for l in hits if l.endswith("opened")],
                             "a session opened %s:\n%s" % (target, "\n".join(hits)))


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class TestForbiddenSyscall(unittest.TestCase):

    def test_sigsys_kills_and_counts(self):
        H.require_binary()
        if not _test_build():
            self.skipTest("needs a test build (cmake -DSLUICE_TEST_HOOKS=ON; tests/run.sh builds one)")
        d = tempfile.TemporaryDirectory(prefix="sluice-sigsys-")
        self.addCleanup(d.cleanup)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                      env={"SLUICE_TEST_FORBIDDEN_SYSCALL": "postauth"})
        self.addCleanup(gw.kill)
        gw.start()
        for _ in range(2):
            r = H.sftp(gw.port, "acme", keys.get("acme"), ["pwd"], timeout=20)
            self.assertNotEqual(r.rc, 0, "a session survived its forbidden system call")
        ok = H.poll(lambda: len(re.findall(r"died of signal 31", H.tail(gw.log, 500))) >= 2, 10)
        self.assertTrue(ok, "the listener did not log the SIGSYS\n%s" % gw.log_tail())
        # the audit writer records asynchronously: wait for both records
        # rather than reading the trail the instant the log shows the kill
        def crashes():
            return [r for r in H.read_audit(gw.audit_path) if r.get("event") == "session.crash"]
        H.poll(lambda: len(crashes()) >= 2, 10)
        crashes = crashes()
        self.assertEqual(len(crashes), 2, crashes)
        self.assertEqual(crashes[0].get("reason"), "sandbox violation")
        self.assertEqual(crashes[0].get("signal"), 31)
        self.assertTrue(gw.alive(), "the gateway died with its session")
        # still serving: the port answers with an SSH banner
        import socket
        with socket.create_connection((H.LOCALHOST, gw.port), timeout=5) as s:
            s.settimeout(5)
            self.assertTrue(s.recv(64).startswith(b"SSH-2.0-"))


class TestSessionProgram(unittest.TestCase):

    def test_missing_session_program_stops_the_start(self):
        """Without sluice-session beside sluice (or in ../libexec/sluice)
        serve refuses to start, naming both places, instead of failing
        each connection later."""
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-nosession-")
        self.addCleanup(d.cleanup)
        bindir = os.path.join(d.name, "bin")
        os.makedirs(bindir)
        sluice = os.path.join(bindir, "sluice")
        shutil.copy2(H.SLUICE_BIN, sluice)
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        keys = H.Keys(os.path.join(d.name, "keys"))
        gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}])
        H.share_with_gateway(d.name)
        try:
            r = subprocess.run([sluice, "serve", "-c", gw.config_path], cwd=gw.workdir,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30, start_new_session=True)
        except subprocess.TimeoutExpired:
            self.fail("serve started without its session program")
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn(os.path.join(bindir, "sluice-session"), r.stderr)
        self.assertIn("libexec/sluice/sluice-session", r.stderr)
        self.assertFalse(H.port_open(gw.port), "something listens on the port")


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class TestProcessRecords(unittest.TestCase):

    def test_start_and_stop_recorded(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-procrec-")
        self.addCleanup(d.cleanup)
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        keys = H.Keys(os.path.join(d.name, "keys"))
        gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}])
        self.addCleanup(gw.kill)
        rc, out, _ = H.run_sluice(["--version"])
        version = out.split()[1]
        with open(gw.config_path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        config = os.path.realpath(gw.config_path)

        def check(r, pid):
            self.assertEqual(r.get("version"), version, r)
            self.assertEqual(r.get("command"), "serve", r)
            self.assertEqual(r.get("config"), config, r)
            self.assertEqual(r.get("config_sha256"), digest, r)
            self.assertEqual(r.get("host"), socket.gethostname(), r)
            self.assertEqual(r.get("pid"), pid, r)

        for sig, reason in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            gw.start()
            pid = gw.proc.pid
            r = gw.wait_audit(lambda r: r.get("event") == "process.start" and r.get("pid") == pid)
            self.assertIsNotNone(r, "no process.start record\n%s" % gw.log_tail())
            check(r, pid)
            self.assertNotIn("reason", r)
            gw.proc.send_signal(sig)
            # let it end on this signal alone (stop() would add a SIGTERM)
            gw.proc.wait(20)
            self.assertEqual(gw.stop(), 0, gw.log_tail())
            recs = gw.audit_records()
            # the last record: every other role stopped first, the writer after it
            self.assertEqual(recs[-1].get("event"), "process.stop", recs[-3:])
            check(recs[-1], pid)
            self.assertEqual(recs[-1].get("reason"), reason, gw.log_tail())
        key = os.path.join(gw.state_dir, "audit.key")
        rc, out, err = H.run_sluice(["audit", "verify", "--key", key, gw.audit_path])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)


if __name__ == "__main__":
    unittest.main()
