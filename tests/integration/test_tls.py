"""
The uploader over HTTPS: moto's S3 server (IAM auth on) serving TLS with a
certificate from a throwaway CA made with openssl at test time.

  - store.ca_file: an sftp upload through `sluice serve` lands byte-identical
    (single PUT and multipart, several TLS connections at once);
  - no ca_file (the CA is not in the system store): the file is held, not
    retried (a wrong trust anchor does not fix itself), with an error naming
    the endpoint, the certificate problem and store.ca_file; nothing lost;
    fixed config + `queue retry` stores it;
  - `sluice reconcile` without ca_file fails naming the endpoint and store.ca_file;
  - store.pinned_pubkey: a wrong pin holds the file (error names
    store.pinned_pubkey), the right pin stores it;
  - a connection reset during the TLS handshake is transient: retried, stored;
  - HTTPS_PROXY: the uploader tunnels through a CONNECT proxy.

Files are put straight into the spool and the state database as the intake
would leave them ("accepted") and `sluice uploader -c CFG` runs alone, as in
test_uploader.py.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_tls
"""

import os
import re
import secrets
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

import harness as H
import tlsutil as T

MiB = 1024 * 1024


def _no_proxy_env(env):
    """env without any proxy variable (a CI proxy must not change what we test)."""
    return {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}


class TlsCase(unittest.TestCase):
    moto = None

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-tls-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.pki = T.Pki(os.path.join(cls._tmp.name, "pki"))
        cls.moto = T.TlsMoto(cls._tmp.name, cls.pki).start()
        cls.addClassCleanup(cls.moto.stop)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="case-", dir=self._tmp.name)
        self.state = os.path.join(self.dir, "state")
        self.audit = os.path.join(self.dir, "audit.jsonl")
        for d in ("spool/ready", "spool/incoming", "landing", "quarantine"):
            os.makedirs(os.path.join(self.state, d), exist_ok=True)
        self.procs = []
        self.addCleanup(self._stop_all)

    def _stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)

    def config(self, endpoint=None, store_extra=(), uploader=("max_backoff: 2s",)):
        """store_extra: YAML lines under store:; (re)writes cfg.yaml."""
        text = H.render_config(H.free_port(), [os.path.join(self.dir, "hostkey")],
                               self.state, self.audit,
                               {"url": "s3://%s/" % self.moto.bucket, "region": "us-east-1",
                                "endpoint": endpoint or self.moto.endpoint, "path_style": True},
                               [{"name": "acme", "password_hash": H.password_hash("x")}],
                               extra="\n".join(["uploader:"] + ["  " + l for l in uploader]))
        text = text.replace("  path_style: true\n", "  path_style: true\n" +
                            "".join("  %s\n" % l for l in store_extra), 1)
        self.cfg = os.path.join(self.dir, "cfg.yaml")
        with open(self.cfg, "w") as f:
            f.write(text)
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])  # creates the database
        self.assertEqual(rc, 0, out + err)
        return self.cfg

    def add_file(self, key, size):
        """A spooled, accepted file; returns (id, sha256, path)."""
        fid = secrets.token_hex(16)
        path = os.path.join(self.state, "spool", "ready", fid)
        sha = H.write_random_file(path, size)
        db = sqlite3.connect(os.path.join(self.state, "sluice.db"), timeout=30)
        now = int(time.time() * 1000)
        cur = db.execute(
            "INSERT INTO files (fid, partner, path, size, sha256, received_ms, state, "
            "object_key, updated_ms) VALUES (?,?,?,?,?,?,?,?,?)",
            (fid, "acme", key, size, sha, now, "accepted", key, now))
        db.commit()
        rid = cur.lastrowid
        db.close()
        return rid, sha, path

    def rows(self):
        db = sqlite3.connect(os.path.join(self.state, "sluice.db"), timeout=30)
        try:
            return db.execute("SELECT id, state, object_key, sha256, last_error, attempts "
                              "FROM files ORDER BY id").fetchall()
        finally:
            db.close()

    def start_uploader(self, env=None):
        e = {k: v for k, v in _no_proxy_env(os.environ).items() if not k.startswith("AWS_")}
        e["AWS_EC2_METADATA_DISABLED"] = "true"
        e.update(self.moto.env())
        e.update(env or {})
        # started as root, it runs as the service user: the case and what
        # the class made beside it (a CA, keys) must be its to read
        H.share_with_gateway(os.path.dirname(self.dir))
        log = open(os.path.join(self.dir, "uploader.log"), "ab")
        p = subprocess.Popen([H.SLUICE_BIN, "-v", "uploader", "-c", self.cfg], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, env=e, start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            self.fail("uploader did not stop on SIGTERM\n" + self.log())

    def log(self, n=60):
        return H.tail(os.path.join(self.dir, "uploader.log"), n)

    def log_text(self):
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            return f.read()

    def wait_states(self, want, timeout=60):
        ok = H.poll(lambda: all(r[1] in want for r in self.rows()), timeout, 0.3)
        if not ok:
            self.fail("files not %s within %ss: %r\n%s" % (want, timeout, self.rows(), self.log()))

    def assert_objects(self, files):
        for key, sha in files:
            data = self.moto.get_bytes(key)  # boto3 with verify=the test CA
            self.assertEqual(H.sha256_bytes(data), sha, "object %s differs" % key)

    def assert_absent(self, key):
        self.assertNotIn(key, self.moto.keys(), "%s was stored although TLS must have failed" % key)

    def assert_held_for_tls(self, key, path, words):
        """The file is held after one attempt, kept in the spool, the error says words."""
        self.wait_states({"held"}, 60)
        row = self.rows()[0]
        self.assertEqual(row[5], 1, "a TLS verification failure was retried instead of held: %r" % (row,))
        for w in words:
            self.assertIn(w, row[4], "last_error does not say %r: %r" % (w, row[4]))
        self.assertTrue(os.path.isfile(path), "the held file is gone from the spool")
        self.assert_absent(key)
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("held", out)
        self.assertIn(words[-1], out, "queue list does not show the TLS error:\n" + out)
        self.assertIn(words[-1], self.log_text(), "the log does not show the TLS error:\n" + self.log())
        held = [r for r in H.read_audit(self.audit) if r.get("event") == "file.held"]
        self.assertEqual(len(held), 1, held)

    def release_and_wait(self, rid):
        rc, out, err = H.run_sluice(["queue", "retry", "-c", self.cfg, "--all"])
        self.assertEqual(rc, 0, out + err)
        self.wait_states({"stored", "removed"}, 60)


class TestTrust(TlsCase):

    def test_sftp_upload_with_ca_file(self):
        """sftp -> sluice serve -> HTTPS moto trusted through store.ca_file: byte-identical objects."""
        keys = H.Keys(os.path.join(self.dir, "keys"))
        gw = H.Sluice(os.path.join(self.dir, "gw"),
                      store={"url": "s3://%s/tls" % self.moto.bucket, "region": "us-east-1",
                             "endpoint": self.moto.endpoint, "path_style": True},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                      env=self.moto.env(),
                      extra_config="uploader:\n  multipart_threshold: 6MiB\n  part_size: 5MiB")
        with open(gw.config_path, "w") as f:
            f.write(gw.config_text.replace("  path_style: true\n", "  path_style: true\n"
                                           "  ca_file: %s\n" % H.yaml_str(self.pki.ca), 1))
        self.addCleanup(gw.kill)
        gw.start()
        small = os.path.join(self.dir, "small.csv")
        big = os.path.join(self.dir, "big.bin")
        small_sha = H.write_random_file(small, 70000)
        big_sha = H.write_random_file(big, 13 * MiB + 11)  # 3 parts
        res = H.sftp(gw.port, "acme", keys.get("acme"),
                     ["-mkdir in", "put %s in/small.csv" % small, "put %s in/big.bin" % big])
        self.assertEqual(res.rc, 0, "%r\n%s" % (res, gw.log_tail()))
        for key in ("tls/acme/in/small.csv", "tls/acme/in/big.bin"):
            if self.moto.wait_for_object(None, key, 60) is None:
                self.fail("%s not stored over HTTPS; bucket holds %s\n%s"
                          % (key, self.moto.keys(), gw.diagnostics()))
        self.assert_objects([("tls/acme/in/small.csv", small_sha), ("tls/acme/in/big.bin", big_sha)])
        self.assertEqual(gw.stop(), 0)

    def test_untrusted_ca_held_then_fixed(self):
        """No ca_file, CA not in the system store: held (not retried) with the fix in the
        error; restarted with ca_file and released: stored byte-identical."""
        self.config()
        rid, sha, path = self.add_file("untrusted/a.bin", 300000)
        p = self.start_uploader()
        self.assert_held_for_tls("untrusted/a.bin", path,
                                 [self.moto.endpoint, "certificate", "store.ca_file"])
        self.stop(p)
        self.config(store_extra=["ca_file: %s" % H.yaml_str(self.pki.ca)])
        p = self.start_uploader()
        self.release_and_wait(rid)
        self.stop(p)
        self.assert_objects([("untrusted/a.bin", sha)])

    def test_pinned_pubkey(self):
        """A wrong pin holds the file (error names store.pinned_pubkey); the right pin stores it."""
        ca = "ca_file: %s" % H.yaml_str(self.pki.ca)
        self.config(store_extra=[ca, "pinned_pubkey: %s" % H.yaml_str(self.pki.ca_pin)])
        rid, sha, path = self.add_file("pinned/a.bin", 200000)
        p = self.start_uploader()
        self.assert_held_for_tls("pinned/a.bin", path, [self.moto.endpoint, "store.pinned_pubkey"])
        self.stop(p)
        # several pins joined with ';' (a key rollover): one matches
        self.config(store_extra=[ca, "pinned_pubkey: %s" % H.yaml_str(self.pki.ca_pin + ";" + self.pki.pin)])
        p = self.start_uploader()
        self.release_and_wait(rid)
        self.stop(p)
        self.assert_objects([("pinned/a.bin", sha)])

    def test_reconcile_untrusted_ca(self):
        """`sluice reconcile` without ca_file: exits 1 naming the endpoint and store.ca_file
        (the same message as uploads), not curl's bare text; with ca_file it proves the object."""
        ca = "ca_file: %s" % H.yaml_str(self.pki.ca)
        self.config(store_extra=[ca])
        self.add_file("reconcile/a.bin", 50000)
        p = self.start_uploader()
        self.wait_states({"stored", "removed"}, 60)
        self.stop(p)
        env = _no_proxy_env(os.environ)
        env.update(self.moto.env())
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        rc, out, err = H.run_sluice(["reconcile", "-c", self.cfg], env=env, timeout=60)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("1 proven, 0 unproven", out)
        self.config()  # the same store, no ca_file
        rc, out, err = H.run_sluice(["reconcile", "-c", self.cfg], env=env, timeout=60)
        self.assertNotEqual(rc, 0, "reconcile passed without a trusted CA:\n" + out + err)
        self.assertIn("UNPROVEN", out, out + err)
        for w in (self.moto.endpoint, "certificate", "store.ca_file"):
            self.assertIn(w, out + err, "reconcile output does not say %r:\n%s" % (w, out + err))


class TestTransport(TlsCase):

    def test_handshake_reset_is_retried(self):
        """Connections reset during the TLS handshake are transient: retried, then stored, never held."""
        # 3 resets: the uploader's start-up sweep of stale multipart uploads
        # may take one; the PUT meets the others.
        front = T.TcpForwarder(self.moto.port, reset_first=3).start()
        self.addCleanup(front.stop)
        self.config(endpoint="https://%s:%d" % (H.LOCALHOST, front.port),
                    store_extra=["ca_file: %s" % H.yaml_str(self.pki.ca)])
        rid, sha, _ = self.add_file("reset/a.bin", 100000)
        p = self.start_uploader()
        self.wait_states({"stored", "removed"}, 60)
        self.stop(p)
        self.assertEqual(front.resets, 3, "the forwarder did not reset the first handshakes")
        self.assert_objects([("reset/a.bin", sha)])
        audit = H.read_audit(self.audit)
        retries = [r for r in audit if r.get("event") == "upload.retry"
                   and re.search(r"curl: .*\((35|55|56)\)", r.get("error", ""))]
        self.assertTrue(retries, "no upload.retry for a reset handshake: %r\n%s" % (audit, self.log()))
        self.assertGreaterEqual(self.rows()[0][5], 2, "stored without a retry: %r" % self.rows())
        self.assertFalse([r for r in audit if r.get("event") == "file.held"])

    def test_https_proxy_connect(self):
        """HTTPS_PROXY set (no no_proxy): the uploader tunnels to the endpoint through CONNECT."""
        proxy = T.ConnectProxy().start()
        self.addCleanup(proxy.stop)
        self.config(store_extra=["ca_file: %s" % H.yaml_str(self.pki.ca)])
        rid, sha, _ = self.add_file("proxied/a.bin", 150000)
        p = self.start_uploader(env={"HTTPS_PROXY": proxy.url})
        self.wait_states({"stored", "removed"}, 60)
        self.stop(p)
        self.assert_objects([("proxied/a.bin", sha)])
        self.assertGreaterEqual(proxy.connects, 1, "the uploader did not go through HTTPS_PROXY")
        self.assertEqual(set(proxy.targets), {"%s:%d" % (H.LOCALHOST, self.moto.port)}, proxy.targets)


if __name__ == "__main__":
    unittest.main()
