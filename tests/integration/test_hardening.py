"""
Connection and session hardening (issue 3, "Isolation and hardening"), with
the real OpenSSH sftp client against `sluice serve` and a file:// store:

  - a flood of idle pre-auth sockets from one address does not starve a real
    partner (max_startups_per_address), and is cut after login_grace_time;
  - brute-force bans per address (refused at accept) and per user (refused
    at auth with the usual "Permission denied"), ending after the duration;
  - global deny_from checked at accept;
  - the algorithm policy refuses CBC, SHA-1 KEX and MACs, ssh-rsa, and RSA
    user keys under 2048 bits;
  - with server.user (root only) the session process runs as that user;
  - pre-auth USERAUTH_SUCCESS / CHANNEL_OPEN (CVE-2018-10933) opens nothing.

Loopback addresses other than 127.0.0.1 (127.0.0.2 ...) act as other clients.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_hardening
"""

import errno
import os
import pwd
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest
import uuid

import harness as H


def _tmpdir(case, prefix):
    d = tempfile.TemporaryDirectory(prefix=prefix)
    case.addCleanup(d.cleanup)
    return d.name


def _from(addr):
    """ssh options that make the client connect from addr."""
    return ["-o", "BindAddress=%s" % addr]


class HardeningCase(unittest.TestCase):

    partners_extra = {}

    def start_gw(self, server_yaml="", partners=None):
        H.require_binary()
        self.tmp = _tmpdir(self, "sluice-hard-")
        os.chmod(self.tmp, 0o755)  # an unprivileged session user must reach state/
        self.keys = H.Keys(os.path.join(self.tmp, "keys"))
        self.objects = os.path.join(self.tmp, "objects")
        os.makedirs(self.objects)
        self.password = "correct horse " + uuid.uuid4().hex[:8]
        if partners is None:
            partners = [
                {"name": "acme", "authorized_keys": [self.keys.pub("acme")],
                 "password_hash": H.password_hash(self.password)},
                {"name": "globex", "authorized_keys": [self.keys.pub("globex")],
                 "password_hash": H.password_hash(self.password)},
            ]
        self.gw = H.Sluice(os.path.join(self.tmp, "gw"), store={"url": "file://" + self.objects},
                           partners=partners, extra_config=server_yaml)
        self.addCleanup(self.gw.kill)
        self.gw.start()
        return self.gw

    def upload(self, user="acme", opts=(), name=None):
        """Uploads a small random file with key auth; (result, sha, name)."""
        name = name or "f-%s.bin" % uuid.uuid4().hex[:8]
        f = os.path.join(self.tmp, name)
        sha = H.write_random_file(f, 4096 + 17)
        res = H.sftp(self.gw.port, user, self.keys.get(user), ["put %s %s" % (f, name)],
                     timeout=30, extra_opts=list(opts))
        return res, sha, name

    def assertUploadOk(self, user="acme", opts=(), what="upload"):
        res, sha, name = self.upload(user, opts)
        if res.rc != 0:
            self.fail("%s failed: %r\n%s" % (what, res, self.gw.log_tail()))
        stored = os.path.join(self.objects, user, name)
        if not H.poll(lambda: os.path.isfile(stored) and H.sha256_file(stored) == sha, 30):
            self.fail("%s: %s was not stored\n%s" % (what, name, self.gw.diagnostics()))

    def assertRefused(self, res, what):
        self.assertNotEqual(res.rc, 0, "%s: must be refused but worked: %r" % (what, res))
        self.assertNotIn("Remote working directory", res.out, "%s: got past login: %r" % (what, res))

    def audit(self, event, **match):
        return [r for r in self.gw.audit_records()
                if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]

    def pw(self, user, password, addr="127.0.0.1"):
        return H.sftp_password(self.gw.port, user, password, ["pwd"], timeout=30,
                               extra_opts=_from(addr))


# ---------------------------------------------------------------------------

def _open_idle(port, n, src):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.settimeout(5)
        s.connect((H.LOCALHOST, port))
        s.setblocking(False)
        socks.append(s)
    return socks


def _closed(s):
    """True if the server closed s (EOF or reset); reads and drops any banner."""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError as e:
        return e.errno in (errno.ECONNRESET, errno.EPIPE)


class TestStartupLimits(HardeningCase):

    def test_idle_flood_does_not_starve_partners(self):
        self.start_gw("server:\n  max_startups_per_address: 4\n  login_grace_time: 3s\n")
        socks = _open_idle(self.gw.port, 60, "127.0.0.2")
        self.addCleanup(lambda: [s.close() for s in socks])
        # All but 4 are cut at once, before any SSH byte.
        H.poll(lambda: sum(map(_closed, socks)) >= 56, 10)
        open_ = [s for s in socks if not _closed(s)]
        self.assertEqual(len(open_), 4, "expected exactly max_startups_per_address (4) idle "
                         "connections to stay open, got %d\n%s" % (len(open_), self.gw.log_tail()))
        # A partner from another address is not starved...
        self.assertUploadOk("acme", what="upload during a flood from 127.0.0.2")
        # ...while one more from the flooding address is refused.
        res, _, _ = self.upload("globex", _from("127.0.0.2"))
        self.assertRefused(res, "5th pre-auth connection from 127.0.0.2")
        self.assertIn("max_startups_per_address", H.tail(self.gw.log, 400))
        rec = self.audit("conn.refused", remote="127.0.0.2")
        self.assertTrue(rec, "no conn.refused audit record\n%s" % self.gw.log_tail())
        self.assertEqual(rec[0].get("setting"), "server.max_startups_per_address", rec[0])
        # After the grace time the idle ones are cut, and the address may log in.
        self.assertTrue(H.poll(lambda: all(_closed(s) for s in open_), 10),
                        "idle connections outlived login_grace_time (3s)\n%s" % self.gw.log_tail())
        self.assertUploadOk("globex", _from("127.0.0.2"), "upload from 127.0.0.2 after the grace time")

    def test_partner_session_limit(self):
        self.start_gw("server:\n  max_sessions_per_partner: 1\n")
        p = H.sftp_open(self.gw.port, "acme", self.keys.get("acme"))
        self.addCleanup(H.sftp_close, p)
        self.assertIsNotNone(self.gw.wait_audit(lambda r: r.get("event") == "auth.success"),
                             "the first session did not log in\n%s" % self.gw.log_tail())
        res, _, _ = self.upload("acme")
        self.assertRefused(res, "second acme session over max_sessions_per_partner=1")
        self.assertTrue(self.audit("session.refused", user="acme"), self.gw.log_tail())
        self.assertUploadOk("globex", what="another partner is not affected")
        H.sftp_close(p)
        self.assertTrue(H.poll(lambda: self.upload("acme")[0].rc == 0, 15),
                        "acme still refused after its session ended\n%s" % self.gw.log_tail())


    def test_idle_timeout(self):
        self.start_gw("server:\n  idle_timeout: 2s\n")
        p = H.sftp_open(self.gw.port, "acme", self.keys.get("acme"))
        self.addCleanup(H.sftp_close, p)
        self.assertIsNotNone(self.gw.wait_audit(lambda r: r.get("event") == "auth.success"),
                             "the session did not log in\n%s" % self.gw.log_tail())
        end = self.gw.wait_audit(lambda r: r.get("event") == "session.end", 15)
        self.assertIsNotNone(end, "an idle session outlived idle_timeout (2s)\n%s" % self.gw.log_tail())
        self.assertIn("idle timeout", H.tail(self.gw.log, 400))


# ---------------------------------------------------------------------------

class TestBans(HardeningCase):

    def test_address_and_user_bans(self):
        self.start_gw("server:\n  ban:\n    failures: 4\n    window: 10m\n    duration: 6s\n")
        # 4 failures for an unknown user from 127.0.0.3: that address is banned.
        for i in range(4):
            self.assertRefused(self.pw("mallory", "guess%d" % i, "127.0.0.3"), "wrong password")
        self.assertTrue(self.gw.wait_audit(lambda r: r.get("event") == "auth.ban" and
                                           r.get("remote") == "127.0.0.3", 5),
                        "no auth.ban for 127.0.0.3\n%s" % self.gw.log_tail())
        res = self.pw("acme", self.password, "127.0.0.3")
        self.assertRefused(res, "correct password from a banned address")
        # refused at accept: the audit trail has no auth attempt for it
        self.assertFalse(self.audit("auth.success"), "a banned address logged in")
        self.assertTrue(self.audit("conn.refused", remote="127.0.0.3"), self.gw.log_tail())
        # The same partner from another address is fine (the user is not banned).
        self.assertEqual(self.pw("acme", self.password, "127.0.0.2").rc, 0,
                         "acme from 127.0.0.2 refused\n%s" % self.gw.log_tail())

        # 4 failures for acme from 4 addresses, one each: nobody is banned. A
        # user ban holds per source (address, IPv6 /64), so nobody can lock a
        # partner out from elsewhere.
        for i in range(4):
            self.assertRefused(self.pw("acme", "wrong%d" % i, "127.0.1.%d" % (i + 1)),
                               "wrong password")
        self.assertEqual(self.pw("acme", self.password, "127.0.0.2").rc, 0,
                         "acme locked out by failures from other addresses\n%s" % self.gw.log_tail())
        self.assertFalse(self.audit("auth.ban", user="acme"), "a user ban from spread failures")
        # 4 from one address ban acme's password logins from there (and the address).
        for i in range(4):
            self.assertRefused(self.pw("acme", "wrong%d" % i, "127.0.1.9"), "wrong password")
        self.assertTrue(self.gw.wait_audit(lambda r: r.get("event") == "auth.ban" and
                                           r.get("user") == "acme" and
                                           r.get("prefix") == "127.0.1.9", 5),
                        "no auth.ban for user acme from 127.0.1.9\n%s" % self.gw.log_tail())
        self.assertRefused(self.pw("acme", self.password, "127.0.1.9"),
                           "correct password for a user banned from this address")
        # ...not from anywhere else:
        self.assertEqual(self.pw("acme", self.password, "127.0.0.2").rc, 0,
                         "acme refused from an address it never failed from\n%s" % self.gw.log_tail())
        # The ban is on password logins: the partner's key still works, so that
        # anyone who knows a partner's name cannot lock a key-only partner out.
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["pwd"], extra_opts=_from("127.0.0.2"))
        self.assertEqual(res.rc, 0, "key login of a user banned for wrong passwords was refused: %r\n%s"
                         % (res, self.gw.log_tail()))
        # ...other partners are not.
        self.assertEqual(self.pw("globex", self.password, "127.0.0.2").rc, 0, self.gw.log_tail())
        fails = self.audit("auth.failure")
        self.assertGreaterEqual(len(fails), 8, fails)
        # The bans end (6 s), and the user may log in again.
        time.sleep(6.5)
        self.assertEqual(self.pw("acme", self.password, "127.0.0.3").rc, 0,
                         "acme still refused after the bans ended\n%s" % self.gw.log_tail())

    def test_deny_from(self):
        self.start_gw("server:\n  deny_from: [127.0.0.5/32]\n")
        res, _, _ = self.upload("acme", _from("127.0.0.5"))
        self.assertRefused(res, "connection from a deny_from address")
        self.assertTrue(self.audit("conn.refused", remote="127.0.0.5"), self.gw.log_tail())
        self.assertUploadOk("acme", _from("127.0.0.6"), "another address")


# ---------------------------------------------------------------------------

class TestAlgorithms(HardeningCase):

    def test_weak_algorithms_refused(self):
        self.start_gw()
        self.assertUploadOk("acme", what="default algorithms")
        for opts in (["-o", "Ciphers=aes128-cbc"],
                     ["-o", "KexAlgorithms=diffie-hellman-group14-sha1"],
                     ["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"],
                     ["-o", "HostKeyAlgorithms=ssh-rsa"]):
            before = H.tail(self.gw.log, 100000).count("no match for method")
            res, _, _ = self.upload("acme", opts)
            self.assertRefused(res, " ".join(opts))
            # the server names what did not match (the client only sees the close)
            self.assertTrue(H.poll(lambda: H.tail(self.gw.log, 100000).count("no match for method")
                                   > before, 5),
                            "%s: no 'no match for method' in the log\n%s" % (opts, self.gw.log_tail()))
        log = H.tail(self.gw.log, 400)
        self.assertRegex(log, r"logged in .*\(kex \S+, cipher \S+, mac \S+\)")

    def test_check_config_warns_once(self):
        # One list of weak names (policy/algos.c): check-config names each
        # weak algorithm once, with its FILE:LINE, not again from the listener.
        H.require_binary()
        tmp = _tmpdir(self, "sluice-algos-")
        keys = H.Keys(os.path.join(tmp, "keys"))
        gw = H.Sluice(os.path.join(tmp, "gw"), store={"url": "file://" + tmp},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                      extra_config="server:\n  algorithms:\n"
                                   "    ciphers: [aes256-ctr, aes128-cbc]\n"
                                   "    macs: [hmac-sha2-256, hmac-sha1]\n")
        rc, out, err = H.run_sluice(["check-config", "-c", gw.config_path])
        self.assertEqual(rc, 0, out + err)
        for name in ("aes128-cbc", "hmac-sha1"):
            self.assertEqual((out + err).count(name), 1,
                             "%s named %d times:\n%s%s" % (name, (out + err).count(name), out, err))
        self.assertRegex(err, r"cfg\.yaml:\d+: warning: server\.algorithms\.ciphers: aes128-cbc is weak")

    def test_configured_algorithms(self):
        self.start_gw("server:\n  algorithms:\n    ciphers: [aes128-ctr]\n"
                      "    macs: [hmac-sha2-512-etm@openssh.com]\n")
        res, _, _ = self.upload("acme", ["-o", "Ciphers=aes256-gcm@openssh.com"])
        self.assertRefused(res, "a cipher outside server.algorithms.ciphers")
        self.assertUploadOk("acme", ["-o", "Ciphers=aes128-ctr"], "the configured cipher")
        self.assertRegex(H.tail(self.gw.log, 400), r"cipher aes128-ctr, mac hmac-sha2-512-etm")

    def test_rsa_user_keys(self):
        # A 2048-bit RSA key logs in (rsa-sha2-*, never ssh-rsa/SHA-1); smaller
        # ones are refused by the loader, and by libssh (RSA_MIN_SIZE 2048).
        H.require_binary()
        tmp = _tmpdir(self, "sluice-rsa-")
        key = os.path.join(tmp, "rsa2048")
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", key],
                       check=True, capture_output=True, timeout=60)
        with open(key + ".pub") as f:
            pub = f.read().strip()
        self.start_gw(partners=[{"name": "acme", "authorized_keys": [pub]}])
        res = H.sftp(self.gw.port, "acme", key, ["pwd"])
        self.assertEqual(res.rc, 0, "a 2048-bit RSA key was refused: %r\n%s" % (res, self.gw.log_tail()))
        res = H.sftp(self.gw.port, "acme", key, ["pwd"], extra_opts=["-o", "PubkeyAcceptedAlgorithms=ssh-rsa"])
        self.assertRefused(res, "an RSA key signing with SHA-1 (ssh-rsa)")


# ---------------------------------------------------------------------------

def _uid_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        return None
    return None


class TestPrivsep(HardeningCase):

    def test_session_runs_as_server_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (to create a user and switch to it); run the suite as root")
        user = "sluicet%s" % uuid.uuid4().hex[:6]
        r = subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", user],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            self.skipTest("useradd failed: %s" % r.stderr.strip())
        self.addCleanup(subprocess.run, ["userdel", user], capture_output=True, timeout=30)
        uid = pwd.getpwnam(user).pw_uid
        self.start_gw("server:\n  user: %s\n" % user)
        p = H.sftp_open(self.gw.port, "acme", self.keys.get("acme"))
        self.addCleanup(H.sftp_close, p)
        self.assertIsNotNone(self.gw.wait_audit(lambda r: r.get("event") == "auth.success"),
                             "no login with server.user set\n%s" % self.gw.log_tail())
        uids = {pid: _uid_of(pid) for pid in H.group_members(self.gw.proc.pid)}
        sessions = [pid for pid, u in uids.items() if u and u[0] == uid]
        self.assertEqual(len(sessions), 1, "expected one session process running as %s (uid %d): %r"
                         % (user, uid, uids))
        self.assertEqual(uids[sessions[0]], [uid] * 4, "real/effective/saved/fs uid differ")
        # the host key stays root's and unreadable to the session user
        st = os.stat(self.gw.host_key)
        self.assertEqual((st.st_uid, st.st_mode & 0o077), (0, 0), "host key mode/owner")
        H.sftp_close(p)
        self.assertUploadOk("acme", what="upload with server.user")
        f = [n for n in os.listdir(self.gw.landing("acme")) if n.startswith("f-")]
        self.assertTrue(f)
        self.assertEqual(os.stat(os.path.join(self.gw.landing("acme"), f[0])).st_uid, uid,
                         "the landed file is not owned by the session user")


# ---------------------------------------------------------------------------

_PREAUTH = textwrap.dedent(r"""
    import socket, sys
    import paramiko
    from paramiko.common import cMSG_USERAUTH_SUCCESS
    from paramiko.message import Message
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    t = paramiko.Transport(s)
    t.start_client(timeout=10)
    m = Message()
    m.add_byte(cMSG_USERAUTH_SUCCESS)
    t._send_message(m)
    try:
        ch = t.open_session(timeout=5)
        ch.invoke_subsystem("sftp")
        print("OPENED")
    except Exception as e:
        print("REFUSED", type(e).__name__, e)
    t.close()
""")


class TestPreauth(HardeningCase):

    def test_userauth_success_from_client(self):
        py = "/usr/bin/python3"
        if subprocess.run([py, "-c", "import paramiko"], capture_output=True).returncode != 0:
            self.skipTest("Debian's python3-paramiko is not installed for %s" % py)
        self.start_gw()
        r = subprocess.run([py, "-c", _PREAUTH, str(self.gw.port)], capture_output=True, text=True,
                           timeout=60)
        self.assertIn("REFUSED", r.stdout, "pre-auth channel open: %s %s\n%s"
                      % (r.stdout, r.stderr, self.gw.log_tail()))
        self.assertFalse(self.audit("auth.success"))
        self.assertUploadOk("acme", what="the gateway still serves others")


# ---------------------------------------------------------------------------

class TestBansPersist(HardeningCase):

    def test_bans_survive_restart(self):
        self.start_gw("server:\n  ban:\n    failures: 3\n    window: 10m\n    duration: 10m\n")
        bans = os.path.join(self.gw.state_dir, "bans.json")
        for i in range(3):
            self.assertRefused(self.pw("mallory", "guess%d" % i, "127.0.0.4"), "wrong password")
        self.assertTrue(self.gw.wait_audit(lambda r: r.get("event") == "auth.ban" and
                                           r.get("remote") == "127.0.0.4", 5),
                        "no auth.ban for 127.0.0.4\n%s" % self.gw.log_tail())
        self.assertTrue(H.poll(lambda: os.path.isfile(bans), 5),
                        "no %s after a ban\n%s" % (bans, self.gw.diagnostics()))
        with open(bans) as f:
            text = f.read()
        self.assertIn('"127.0.0.4"', text)
        self.assertNotIn(self.password, text)
        self.assertNotIn("guess", text)
        # SIGKILL: no orderly save at exit, so the ban must be on disk already.
        self.gw.kill()
        self.gw.start()
        before = len(self.audit("conn.refused", remote="127.0.0.4"))
        res = self.pw("acme", self.password, "127.0.0.4")
        self.assertRefused(res, "correct password from an address banned before the restart")
        # the listener may write its record just after the client saw the door shut
        self.assertTrue(H.poll(lambda: len(self.audit("conn.refused", remote="127.0.0.4")) > before, 5),
                        "no conn.refused for 127.0.0.4 after the restart\n%s" % self.gw.log_tail())
        self.assertEqual(self.pw("acme", self.password, "127.0.0.2").rc, 0,
                         "acme from 127.0.0.2 refused after the restart\n%s" % self.gw.log_tail())
        # A corrupt ban table is reported and ignored: the gateway still starts.
        self.assertEqual(self.gw.stop(), 0)
        with open(bans, "w") as f:
            f.write('{"version": 1, "addresses": [')
        self.gw.start()
        self.assertEqual(self.pw("acme", self.password, "127.0.0.4").rc, 0,
                         "login refused after the ban table was corrupted\n%s" % self.gw.log_tail())
        self.assertIn("ban table %s cannot be used" % bans, H.tail(self.gw.log, 400))


if __name__ == "__main__":
    unittest.main()
