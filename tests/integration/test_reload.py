"""
Reload (SIGHUP) and drain (SIGTERM) of `sluice serve` (issue 12), with the
real OpenSSH sftp client and a file:// store.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_reload

Uploads "in flight" are throttled with sftp -l (Kbit/s) so a signal lands
while the client is still writing. TestReloadNotify: a reload that adds the
first notify: target starts the notify role (a plain-HTTP receiver on
127.0.0.1 gets the next file.stored), one that removes the last stops it.
"""

import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness as H

SIZE = 3 * 1024 * 1024          # at -l 4000 (about 500 KB/s): ~6 s
LIMIT = ["-l", "4000"]


def slow_put(port, user, key, local, remote):
    """A throttled `put` running in the background: the Popen."""
    batch = tempfile.NamedTemporaryFile("w", prefix="sftp-batch-", suffix=".txt", delete=False)
    batch.write("put %s %s\n" % (local, remote))
    batch.close()
    cmd = (["sftp", "-b", batch.name, "-P", str(port), "-i", key] + H.SSH_COMMON + LIMIT +
           ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "%s@%s" % (user, H.LOCALHOST)])
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    H._live.add(p)
    return p


def finish(p, timeout=60):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        H._kill_group(p)
        out, err = p.communicate()
    H._live.discard(p)
    return p.returncode, out.decode("utf-8", "replace") + err.decode("utf-8", "replace")


def partners_yaml(parts):
    """parts: (name, public key or ("password", HASH), allow_from or None)."""
    L = ["partners:"]
    for name, pub, allow in parts:
        L.append("  - name: %s" % H.yaml_str(name))
        if isinstance(pub, tuple):
            L.append("    password_hash: %s" % H.yaml_str(pub[1]))
        else:
            L += ["    authorized_keys:", "      - %s" % H.yaml_str(pub)]
        if allow:
            L.append("    allow_from: [%s]" % ", ".join(H.yaml_str(a) for a in allow))
    return "\n".join(L) + "\n"


class Base(unittest.TestCase):
    grace = "30s"

    def setUp(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-reload-")
        self.addCleanup(d.cleanup)
        self.tmp = d.name
        self.keys = H.Keys(os.path.join(self.tmp, "keys"))
        self.objects = os.path.join(self.tmp, "objects")
        os.makedirs(self.objects)
        self.gw = H.Sluice(os.path.join(self.tmp, "gw"), store={"url": "file://" + self.objects},
                           partners=[], extra_config="server:\n  shutdown_grace: %s" % self.grace)
        # everything but the partners block, which the tests rewrite
        self.head = self.gw.config_text.replace("partners:\n", "")
        self.write_config([("acme", self.keys.pub("acme"), None)])
        self.addCleanup(self.gw.kill)
        self.gw.start()

    def write_config(self, parts, extra=""):
        text = self.head + partners_yaml(parts) + extra
        tmp = self.gw.config_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.gw.config_path)

    def hup(self):
        self.gw.proc.send_signal(signal.SIGHUP)

    def hup_and_wait(self, event):
        """SIGHUP; the new `event` record (config.reloaded or _failed)."""
        n = len([r for r in self.gw.audit_records() if r.get("event") == event])
        self.hup()

        def probe():
            recs = [r for r in self.gw.audit_records() if r.get("event") == event]
            return recs[n] if len(recs) > n else None
        rec = H.poll(probe, 30)
        self.assertIsNotNone(rec, "no new %s\n%s" % (event, self.gw.log_tail(80)))
        return rec

    def login(self, user, cmds=("ls",)):
        return H.sftp(self.gw.port, user, self.keys.get(user), list(cmds), timeout=30)

    def stored(self, partner, name, sha, timeout=30):
        path = os.path.join(self.objects, partner, name)
        return H.poll(lambda: os.path.isfile(path) and H.sha256_file(path) == sha, timeout)

    def wait_writing(self, partner, name, timeout=15):
        """Until the session has written some of name (the upload is under way)."""
        land = self.gw.landing(partner)

        def probe():
            for d, _, files in os.walk(land):
                if name in files and os.path.getsize(os.path.join(d, name)) > 0:
                    return True
            return False
        return H.poll(probe, timeout, 0.1)


class TestReload(Base):

    def test_reload_during_upload(self):
        big = os.path.join(self.tmp, "big.bin")
        sha = H.write_random_file(big, SIZE)
        p = slow_put(self.gw.port, "acme", self.keys.get("acme"), big, "big.bin")
        self.assertTrue(self.wait_writing("acme", "big.bin"),
                        "the upload did not start\n%s" % self.gw.log_tail())
        # a second partner; acme's allowlist changes (it still admits us)
        self.write_config([("acme", self.keys.pub("acme"), ["127.0.0.0/8"]),
                           ("beta", self.keys.pub("beta"), None)])
        self.hup()
        rec = self.gw.wait_audit(lambda r: r.get("event") == "config.reloaded", 30)
        self.assertIsNotNone(rec, "no config.reloaded\n%s" % self.gw.log_tail(80))
        self.assertEqual(rec.get("partners_added"), ["beta"], rec)
        self.assertIn("acme", rec.get("allowlists_changed", {}), rec)
        self.assertEqual(rec["allowlists_changed"]["acme"]["added"], ["127.0.0.0/8"], rec)
        self.assertIsNone(p.poll(), "the upload ended before the reload was done; make SIZE "
                          "larger\n%s" % self.gw.log_tail())
        # the new partner logs in while the upload is still running
        res = self.login("beta")
        self.assertEqual(res.rc, 0, "beta cannot log in after the reload: %r\n%s"
                         % (res, self.gw.log_tail(80)))
        rc, out = finish(p)
        self.assertEqual(rc, 0, "the upload in flight failed across the reload: %s\n%s"
                         % (out, self.gw.log_tail(80)))
        self.assertTrue(self.stored("acme", "big.bin", sha, 60),
                        "big.bin was not stored\n%s" % self.gw.diagnostics())

        # an invalid configuration is refused; the running one stays
        self.write_config([("acme", self.keys.pub("acme"), ["10.0.0.0/33"]),
                           ("beta", self.keys.pub("beta"), None)])
        self.hup()
        bad = self.gw.wait_audit(lambda r: r.get("event") == "config.reload_failed", 30)
        self.assertIsNotNone(bad, "no config.reload_failed\n%s" % self.gw.log_tail(80))
        self.assertGreaterEqual(bad.get("errors", 0), 1, bad)
        self.assertIn("cfg.yaml:", bad.get("first_error", ""), bad)
        self.assertIn("allow_from", bad.get("first_error", ""), bad)
        log = H.tail(self.gw.log, 200)
        self.assertRegex(log, r"reload refused: \S*cfg\.yaml:\d+: partners\[0\]\.allow_from",
                         "the error was not logged with file:line\n%s" % log)
        for user in ("acme", "beta"):
            res = self.login(user)
            self.assertEqual(res.rc, 0, "%s cannot log in after a refused reload: %r\n%s"
                             % (user, res, self.gw.log_tail(80)))
        self.assertTrue(self.gw.alive())

    def test_removed_partner_and_restart_only_key(self):
        self.write_config([("beta", self.keys.pub("beta"), None)])
        self.hup()
        rec = self.gw.wait_audit(lambda r: r.get("event") == "config.reloaded", 30)
        self.assertIsNotNone(rec, self.gw.log_tail(80))
        self.assertEqual(rec.get("partners_removed"), ["acme"], rec)
        self.assertNotEqual(self.login("acme").rc, 0, "a removed partner still logs in")
        self.assertEqual(self.login("beta").rc, 0, self.gw.log_tail(80))
        # an allowlist that leaves us out, and a password partner (its hash
        # reaches only the listener, which checks passwords)
        pw = "reload-Secret-1"
        self.write_config([("beta", self.keys.pub("beta"), ["10.0.0.0/8"]),
                           ("pw", ("password", H.password_hash(pw)), None)])
        rec = self.hup_and_wait("config.reloaded")
        self.assertEqual(rec.get("partners_added"), ["pw"], rec)
        self.assertNotEqual(self.login("beta").rc, 0, "beta's new allowlist was not applied")
        res = H.sftp_password(self.gw.port, "pw", pw, ["ls"], timeout=30)
        self.assertEqual(res.rc, 0, "the password partner added by the reload cannot log in: %r\n%s"
                         % (res, self.gw.log_tail(80)))
        # a new port is refused by name; nothing changes
        self.head = self.head.replace("listen: 127.0.0.1:%d" % self.gw.port,
                                      "listen: 127.0.0.1:%d" % H.free_port())
        self.write_config([("acme", self.keys.pub("acme"), None),
                           ("beta", self.keys.pub("beta"), None)])
        self.hup()
        bad = self.gw.wait_audit(lambda r: r.get("event") == "config.reload_failed", 30)
        self.assertIsNotNone(bad, self.gw.log_tail(80))
        self.assertIn("listen.port", bad.get("first_error", ""), bad)
        self.assertNotEqual(self.login("acme").rc, 0, "a refused reload applied its partners")


SECRET = b"reload-notify-secret-0123456789"


class Receiver:
    """A plain HTTP server on 127.0.0.1 (webhooks may use http:// only to
    loopback) recording every POST."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rcv.lock:
                    rcv.got.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((H.LOCALHOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self, name):
        """The JSON bodies received about a file whose path ends in name."""
        with self.lock:
            got = list(self.got)
        out = []
        for g in got:
            b = json.loads(g["body"])
            if b.get("path", "").endswith(name):
                want = "sha256=" + hmac.new(SECRET, g["body"], hashlib.sha256).hexdigest()
                b["_signed"] = g["headers"].get("X-Sluice-Signature") == want
                out.append(b)
        return out


class TestReloadNotify(Base):

    def roles_status(self):
        try:
            with open(os.path.join(self.gw.state_dir, "run", "roles.status")) as f:
                return dict(l.split()[:2] for l in f if l.strip())
        except OSError:
            return {}

    def put(self, name):
        local = os.path.join(self.tmp, name)
        sha = H.write_random_file(local, 4096)
        res = self.login("acme", ["put %s %s" % (local, name)])
        self.assertEqual(res.rc, 0, "%r\n%s" % (res, self.gw.log_tail()))
        self.assertTrue(self.stored("acme", name, sha, 60),
                        "%s was not stored\n%s" % (name, self.gw.diagnostics()))

    def test_reload_starts_and_stops_the_notify_role(self):
        rcv = Receiver()
        self.addCleanup(rcv.stop)
        secret = os.path.join(self.tmp, "hook.secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(SECRET + b"\n")
        ids = H.service_ids()           # the notify role reads it
        if ids is not None:
            os.chown(secret, *ids)
        parts = [("acme", self.keys.pub("acme"), None)]
        notify = ("notify:\n"
                  "  - on: [file.stored]\n"
                  "    webhook: {url: %s, secret_file: %s, timeout: 5s}\n"
                  % (H.yaml_str("http://127.0.0.1:%d/hook" % rcv.port), H.yaml_str(secret)))

        self.put("before.bin")
        self.assertTrue(H.poll(lambda: "uploader" in self.roles_status(), 10),
                        self.roles_status())
        self.assertNotIn("notify", self.roles_status(), "notify runs without targets")

        # the first target: the role starts and sends the next file.stored
        self.write_config(parts, notify)
        rec = self.hup_and_wait("config.reloaded")
        self.assertIn("notify", rec.get("roles_restarted", []), rec)
        self.assertNotIn("roles_stopped", rec)
        self.assertTrue(H.poll(lambda: self.roles_status().get("notify") == "up", 15),
                        "notify not up after the reload: %r\n%s"
                        % (self.roles_status(), self.gw.log_tail(80)))
        self.put("after.bin")
        got = H.poll(lambda: rcv.bodies("after.bin"), 60)
        self.assertTrue(got, "no webhook for after.bin\n%s" % self.gw.log_tail(80))
        self.assertEqual(got[0]["event"], "file.stored", got[0])
        self.assertEqual(got[0]["partner"], "acme", got[0])
        self.assertTrue(got[0]["_signed"], "bad X-Sluice-Signature")
        self.assertEqual(rcv.bodies("before.bin"), [], "a file stored before any target "
                         "was notified")

        # the last target removed: the role stops and nothing more is sent
        self.write_config(parts)
        rec = self.hup_and_wait("config.reloaded")
        self.assertEqual(rec.get("roles_stopped"), ["notify"], rec)
        self.assertNotIn("notify", rec.get("roles_restarted", []), rec)
        self.assertTrue(H.poll(lambda: "notify" not in self.roles_status(), 15),
                        self.roles_status())
        self.assertIn("role notify stopped", H.tail(self.gw.log, 200))
        self.put("later.bin")
        time.sleep(2)
        self.assertEqual(rcv.bodies("later.bin"), [], "notified with no target left")
        self.assertTrue(self.gw.alive())
        # the stopped role is not restarted as if it had died
        time.sleep(3)
        self.assertNotIn("notify", self.roles_status())
        self.assertNotRegex(H.tail(self.gw.log, 200), r"role notify (died|exited)")


class TestDrain(Base):
    # room for the throttled upload in the slower ASan build (there it took
    # close to 20 s, and the session ended just after a 20 s grace)
    grace = "60s"

    def test_sigterm_lets_the_upload_finish(self):
        big = os.path.join(self.tmp, "big.bin")
        sha = H.write_random_file(big, SIZE)
        p = slow_put(self.gw.port, "acme", self.keys.get("acme"), big, "big.bin")
        self.assertTrue(self.wait_writing("acme", "big.bin"),
                        "the upload did not start\n%s" % self.gw.log_tail())
        t0 = time.monotonic()
        self.gw.proc.send_signal(signal.SIGTERM)
        # no new connection once draining
        refused = H.poll(lambda: not H.port_open(self.gw.port), 5, 0.1)
        self.assertTrue(refused, "a new connection was accepted during the drain\n%s"
                        % self.gw.log_tail())
        self.assertIsNone(p.poll(), "the upload ended at once: the drain did not wait")
        rc, out = finish(p)
        self.assertEqual(rc, 0, "the upload was cut by SIGTERM: %s\n%s" % (out, self.gw.log_tail(80)))
        # the one SIGTERM stops it once the session is gone (a second one
        # would cut the drain short: a session of the ASan build takes its
        # time to exit)
        try:
            self.gw.proc.wait(65)
        except subprocess.TimeoutExpired:
            self.fail("the drain did not end by itself\n%s" % self.gw.log_tail(80))
        self.assertEqual(self.gw.stop(timeout=30), 0, self.gw.log_tail(80))
        self.assertLess(time.monotonic() - t0, 65)
        stop = [r for r in self.gw.audit_records() if r.get("event") == "process.stop"]
        self.assertTrue(stop, "no process.stop")
        self.assertEqual(stop[-1].get("sessions_finished"), 1, stop[-1])
        self.assertEqual(stop[-1].get("sessions_cut"), 0, stop[-1])
        # stored now, or after the next start
        if not self.stored("acme", "big.bin", sha, 0.5):
            self.gw.start()
            self.assertTrue(self.stored("acme", "big.bin", sha, 60),
                            "big.bin was not stored after the restart\n%s" % self.gw.diagnostics())


class TestDrainCut(Base):
    grace = "2s"

    def test_grace_over_cuts_the_upload(self):
        big = os.path.join(self.tmp, "big.bin")
        H.write_random_file(big, SIZE)
        p = slow_put(self.gw.port, "acme", self.keys.get("acme"), big, "big.bin")
        self.assertTrue(self.wait_writing("acme", "big.bin"), self.gw.log_tail())
        self.assertEqual(self.gw.stop(timeout=30), 0, self.gw.log_tail(80))
        rc, _ = finish(p)
        self.assertNotEqual(rc, 0, "the upload was not cut after shutdown_grace")
        stop = [r for r in self.gw.audit_records() if r.get("event") == "process.stop"]
        self.assertEqual(stop[-1].get("sessions_cut"), 1, stop[-1])
        self.assertFalse(os.path.exists(os.path.join(self.objects, "acme", "big.bin")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
