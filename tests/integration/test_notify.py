"""
Events out (issue 12, notify/events.h): for each file's final verdict the
gateway notifies downstream systems, from the notify outbox in sluice.db,
with retries, so nothing is lost while a receiver is down, even across a
SIGKILL of the gateway.

Driven by the real OpenSSH sftp client through `sluice serve` into moto's S3
(IAM auth on). Targets:
  0  a webhook to a local HTTPS receiver (Python http.server, a certificate
     made at test time by tlsutil.Pki), file.stored and file.rejected; the
     receiver checks X-Sluice-Signature (HMAC-SHA256 of the body with the
     shared secret) and the body's fields
  1  a command (argv, no shell) that writes its stdin and SLUICE_* to files
     the test reads

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_notify
"""

import hashlib
import hmac
import http.server
import json
import os
import ssl
import tempfile
import threading
import time
import unittest

import harness as H
import tlsutil

SECRET = b"not-a-real-secret-0123456789abcdef"


class Receiver:
    """An HTTPS server on a fixed port that records every POST (and can be
    stopped and started again on the same port)."""

    def __init__(self, pki, port):
        self.pki = pki
        self.port = port
        self.got = []
        self.lock = threading.Lock()
        self.httpd = None

    def start(self):
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rcv.lock:
                    rcv.got.append({"path": self.path, "headers": dict(self.headers),
                                    "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer((H.LOCALHOST, self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.cert, self.pki.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def deliveries(self, fid):
        with self.lock:
            return [g for g in self.got
                    if g["headers"].get("X-Sluice-Delivery", "").startswith(fid + ".")]


HOOK = """#!/bin/sh
# a command target: stdin and the SLUICE_* environment into $1
set -e
out="$1/$SLUICE_DELIVERY"
cat > "$out.json.tmp"
env | grep '^SLUICE_' | sort > "$out.env"
mv "$out.json.tmp" "$out.json"
"""


class Notify(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-notify-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))
        cls.pki = tlsutil.Pki(os.path.join(tmp, "pki"))
        os.chmod(cls.pki.dir, 0o755)
        os.chmod(cls.pki.ca, 0o644)
        cls.rcv = Receiver(cls.pki, H.free_port()).start()
        cls.addClassCleanup(lambda: cls.rcv.stop())

        conf = os.path.join(tmp, "conf")
        os.makedirs(conf)
        cls.secret = os.path.join(conf, "hook.secret")
        fd = os.open(cls.secret, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(SECRET + b"\n")
        cls.hook = os.path.join(conf, "hook.sh")
        with open(cls.hook, "w") as f:
            f.write(HOOK)
        os.chmod(cls.hook, 0o755)
        cls.out = os.path.join(tmp, "hookout")
        os.makedirs(cls.out)
        cls.url = "https://127.0.0.1:%d/hook?token=q1" % cls.rcv.port

        cls.moto = H.Moto(tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        store = {"url": "s3://%s" % H.BUCKET, "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        plist = [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}]
        extra = ("notify:\n"
                 "  - on: [file.stored, file.rejected]\n"
                 "    webhook: {url: %s, secret_file: %s, ca_file: %s, timeout: 5s}\n"
                 "  - on: [file.stored, file.rejected]\n"
                 "    partners: [acme]\n"
                 "    command: [%s, %s]\n"
                 "    timeout: 20s\n"
                 % (H.yaml_str(cls.url), H.yaml_str(cls.secret), H.yaml_str(cls.pki.ca),
                    H.yaml_str(cls.hook), H.yaml_str(cls.out)))
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), store, plist, env=cls.moto.env(),
                          extra_config=extra)
        lines = []
        for line in cls.gw.config_text.splitlines():
            lines.append(line)
            if line == "  - name: %s" % H.yaml_str("acme"):
                lines.append("    role: owner\n    completion:\n      checksum: sha256")
        cls.gw.config_text = "\n".join(lines) + "\n"
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)

    @classmethod
    def local(cls, name, data):
        path = os.path.join(cls.tmp, "local", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def put(self, files):
        cmds = ["-mkdir in"] + ["put %s in/%s" % (self.local(n, d), n) for n, d in files.items()]
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), cmds, timeout=120)
        self.assertEqual(res.rc, 0, "%r\n%s" % (res, self.gw.log_tail()))

    def verdict(self, event, path, timeout=60):
        r = self.gw.wait_audit(lambda r: r.get("event") == event and r.get("path") == path,
                               timeout)
        self.assertIsNotNone(r, "no %s for %s\n%s" % (event, path, self.gw.diagnostics()))
        return r

    def delivered(self, fid, timeout=90):
        got = H.poll(lambda: self.rcv.deliveries(fid), timeout, 0.2)
        self.assertTrue(got, "no webhook delivery for %s\n%s" % (fid, self.gw.log_tail()))
        return got

    def check_signed(self, g):
        h = g["headers"]
        want = "sha256=" + hmac.new(SECRET, g["body"], hashlib.sha256).hexdigest()
        self.assertEqual(h["X-Sluice-Signature"], want)
        # a body changed in transit no longer matches
        self.assertNotEqual(h["X-Sluice-Signature"], "sha256=" + hmac.new(
            SECRET, g["body"] + b" ", hashlib.sha256).hexdigest())
        self.assertLessEqual(abs(int(h["X-Sluice-Timestamp"]) - time.time()), 300)
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(g["path"], "/hook?token=q1")
        return json.loads(g["body"])

    def command_output(self, delivery, timeout=60):
        path = os.path.join(self.out, delivery + ".json")
        self.assertTrue(H.poll(lambda: os.path.exists(path), timeout),
                        "the command never wrote %s\n%s" % (path, self.gw.log_tail()))
        with open(path, "rb") as f:
            body = json.loads(f.read())
        with open(os.path.join(self.out, delivery + ".env")) as f:
            env = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
        return body, env

    def test_1_stored_and_rejected(self):
        good, bad = os.urandom(3000), os.urandom(2000)
        self.put({"good.csv": good,
                  "good.csv.sha256": ("%s  good.csv\n" % H.sha256_bytes(good)).encode(),
                  "bad.csv": bad,
                  "bad.csv.sha256": ("%s  bad.csv\n" % H.sha256_bytes(b"x")).encode()})
        stored = self.verdict("file.stored", "in/good.csv")
        rejected = self.verdict("file.rejected", "in/bad.csv")

        got = self.delivered(stored["fid"])
        b = self.check_signed(got[0])
        self.assertEqual(got[0]["headers"]["X-Sluice-Delivery"], stored["fid"] + ".stored.0")
        self.assertEqual(b["delivery"], stored["fid"] + ".stored.0")
        self.assertEqual(b["event"], "file.stored")
        self.assertEqual(b["fid"], stored["fid"])
        self.assertEqual(b["partner"], "acme")
        self.assertEqual(b["path"], "in/good.csv")
        self.assertEqual(b["size"], len(good))
        self.assertEqual(b["sha256"], H.sha256_bytes(good))
        self.assertEqual(b["bucket"], H.BUCKET)
        self.assertEqual(b["key"], "acme/in/good.csv")
        self.assertEqual(b["etag"], stored["etag"])
        self.assertEqual(self.moto.get_bytes(b["key"]), good)

        got = self.delivered(rejected["fid"])
        b = self.check_signed(got[0])
        self.assertEqual(b["event"], "file.rejected")
        self.assertEqual(b["path"], "in/bad.csv")
        self.assertEqual(b["sha256"], H.sha256_bytes(bad))
        self.assertTrue(b["reason"])
        self.assertNotIn("key", b)

        # the command got the same events on stdin, and its environment
        body, env = self.command_output(stored["fid"] + ".stored.1")
        self.assertEqual(body["fid"], stored["fid"])
        self.assertEqual(env["SLUICE_EVENT"], "file.stored")
        self.assertEqual(env["SLUICE_FID"], stored["fid"])
        self.assertEqual(env["SLUICE_PARTNER"], "acme")
        self.assertEqual(env["SLUICE_KEY"], "acme/in/good.csv")
        body, env = self.command_output(rejected["fid"] + ".rejected.1")
        self.assertEqual(body["event"], "file.rejected")
        self.assertNotIn("SLUICE_KEY", env)

        # audited: notify.sent per target, the URL without its query
        sent = self.gw.wait_audit(lambda r: r.get("event") == "notify.sent"
                                  and r.get("fid") == stored["fid"] and r.get("target") == 0, 10)
        self.assertIsNotNone(sent)
        self.assertEqual(sent["kind"], "webhook")
        self.assertEqual(sent["verdict"], "stored")
        self.assertEqual(sent["delivery"], stored["fid"] + ".stored.0")
        self.assertEqual(sent["url"], "https://127.0.0.1:%d/hook" % self.rcv.port)
        self.assertEqual(sent["http_status"], 204)
        self.assertEqual(sent["attempt"], 1)
        sent = self.gw.wait_audit(lambda r: r.get("event") == "notify.sent"
                                  and r.get("fid") == rejected["fid"] and r.get("target") == 1, 10)
        self.assertIsNotNone(sent)
        self.assertEqual(sent["kind"], "command")
        self.assertEqual(sent["exit_code"], 0)
        # the secret is nowhere in the trail or the log
        with open(self.gw.audit_path, "rb") as f:
            self.assertNotIn(SECRET, f.read())
        with open(self.gw.log, "rb") as f:
            self.assertNotIn(SECRET, f.read())

    def test_0_role_has_no_aws_credentials(self):
        """The notify role: its own process, the service user, no AWS_*
        (the gateway was given moto's keys), no capabilities."""
        import pwd
        svc = pwd.getpwnam(H.SERVICE_USER).pw_uid
        pid = H.role_pid(self.gw.proc.pid, "sluice-notify")
        self.assertIsNotNone(pid, "no sluice-notify process\n%s" % self.gw.log_tail())
        with open("/proc/%d/status" % pid) as f:
            st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        self.assertEqual([int(x) for x in st["Uid"].split()], [svc] * 4)
        self.assertEqual(st["CapEff"].strip(), "0000000000000000")
        # the supervisor's AWS_* are gone from its environment, values
        # wiped from its memory too (/proc/PID/environ is that memory)
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
        for k, v in self.moto.env().items():
            self.assertNotIn(v.encode(), raw, k)
        self.assertFalse([e for e in raw.split(b"\0") if e.startswith(b"AWS_")
                          and not e.endswith(b"=")], raw)

    def test_2_receiver_down_and_gateway_killed(self):
        self.rcv.stop()
        data = os.urandom(1500)
        self.put({"late.csv": data,
                  "late.csv.sha256": ("%s  late.csv\n" % H.sha256_bytes(data)).encode()})
        stored = self.verdict("file.stored", "in/late.csv")
        failed = self.gw.wait_audit(lambda r: r.get("event") == "notify.failed"
                                    and r.get("fid") == stored["fid"], 60)
        self.assertIsNotNone(failed, self.gw.log_tail())
        self.assertEqual(failed["target"], 0)
        self.assertIn("retry_at", failed)
        self.assertTrue(failed["error"])
        # the command target does not wait for the webhook
        self.command_output(stored["fid"] + ".stored.1")
        # SIGKILL the whole gateway while the notification is pending
        self.gw.kill()
        self.assertEqual(self.rcv.deliveries(stored["fid"]), [])
        self.rcv.start()
        self.gw.start()
        got = self.delivered(stored["fid"])
        b = self.check_signed(got[0])
        self.assertEqual(b["fid"], stored["fid"])
        self.assertEqual(b["path"], "in/late.csv")
        sent = self.gw.wait_audit(lambda r: r.get("event") == "notify.sent"
                                  and r.get("fid") == stored["fid"] and r.get("target") == 0, 10)
        self.assertIsNotNone(sent)
        self.assertGreaterEqual(sent["attempt"], 2)
        # nothing given up
        self.assertFalse([r for r in self.gw.audit_records() if r.get("event") == "notify.gave_up"])


if __name__ == "__main__":
    unittest.main()
