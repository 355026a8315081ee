"""
Two appliances, one bucket (docs/operator-guide.md, "Two appliances and
failover"): gateways A and B with their own state_dir, spool and audit
trail, the same host key (partners pin one fingerprint) and the same moto
bucket and prefix. A client streams files to both with the real sftp
client, one file per connection; A is SIGKILLed mid-stream (its whole
process group: supervisor, roles and sessions) and restarted on the same
state. A reaches the bucket through a forwarder that the test stalls
before the kill, so A dies holding acknowledged files not yet stored. Then:
  - every file acknowledged to the client (sftp exit 0: its CLOSE was
    answered OK) is in the bucket, byte-identical (sha256), exactly once:
    no object under any key but the name it was sent as;
  - each node's `sluice reconcile` proves everything it stored and its
    `sluice audit verify -c` is clean.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_ha_pair
"""

import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness as H
import proxyv2

PREFIX = "ha"
PER_NODE = 24        # files each node is sent
KILL_AT = 8          # A dies while receiving its 9th file (a large one)
BIG = 32 * 1024 * 1024


class TestHaPair(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-ha-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        store = {"url": "s3://%s/%s" % (cls.moto.bucket, PREFIX), "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        partners = [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}]
        # A's path to the store: a forwarder the test can stall
        cls.store_link = proxyv2.Forwarder(cls.moto.port, None, source=H.LOCALHOST)
        cls.addClassCleanup(cls.store_link.close)
        cls.gw = {}
        for n in ("a", "b"):
            st = dict(store)
            if n == "a":
                st["endpoint"] = "http://%s:%d" % (H.LOCALHOST, cls.store_link.port)
            g = H.Sluice(os.path.join(cls.tmp, "gw-" + n), store=st, partners=partners,
                         env=cls.moto.env())
            cls.addClassCleanup(g.kill)
            cls.gw[n] = g
        # one host key for both, as an operator copies /etc/sluice/ssh_host_*
        H.ssh_keygen(cls.gw["a"].host_key, "sluice-ha")
        shutil.copy2(cls.gw["a"].host_key, cls.gw["b"].host_key)
        for g in cls.gw.values():
            g.start()
            cls.addClassCleanup(g.stop)

    def host_fingerprint(self, g):
        r = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(g.port), H.LOCALHOST],
                           capture_output=True, text=True, timeout=20)
        line = next((l for l in r.stdout.splitlines() if "ssh-ed25519" in l), "")
        return line.split()[-1] if line else None

    def stream(self, node, files, acked, attempted, started):
        """Sends each file in its own sftp connection; records the acknowledged."""
        g = self.gw[node]
        for i, (name, path, sha) in enumerate(files):
            started[node] = i
            attempted.add(name)
            res = H.sftp(g.port, "acme", self.keys.get("acme"), ["put %s %s" % (path, name)],
                         timeout=30, extra_opts=["-o", "ConnectTimeout=3"])
            if res.rc == 0:
                acked[name] = sha
            elif not g.alive():
                time.sleep(0.2)   # down: the client retries later, as partners do

    def make_files(self, node):
        out = []
        rnd = random.Random(node)
        for i in range(PER_NODE):
            size = BIG if node == "a" and i == KILL_AT else rnd.randint(1, 200 * 1024)
            name = "%s-%03d.bin" % (node, i)
            path = os.path.join(self.tmp, "src", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            out.append((name, path, H.write_random_file(path, size)))
        return out

    def test_failover_loses_nothing_and_stores_once(self):
        a, b = self.gw["a"], self.gw["b"]
        fa, fb = self.host_fingerprint(a), self.host_fingerprint(b)
        self.assertIsNotNone(fa, "no host key from A")
        self.assertEqual(fa, fb, "the two appliances show different host keys")

        files = {n: self.make_files(n) for n in ("a", "b")}
        sent = {name: sha for fl in files.values() for name, _, sha in fl}
        acked, attempted, started = {}, set(), {"a": -1, "b": -1}
        th = [threading.Thread(target=self.stream, args=(n, files[n], acked, attempted, started))
              for n in ("a", "b")]
        for t in th:
            t.start()
        # A's store stops answering: what A acknowledges from here waits in
        # its spool
        self.assertTrue(H.poll(lambda: started["a"] >= 3, 40), "the stream to A stalled")
        self.store_link.gate.clear()
        # A dies while the large file is arriving (part of it in landing/)
        partial = os.path.join(a.landing("acme"), files["a"][KILL_AT][0])

        def arriving():
            try:
                return 0 < os.path.getsize(partial) < BIG // 2
            except OSError:
                return False
        self.assertTrue(H.poll(arriving, 40, 0.02), "the large file never started arriving at A")
        pid = a.proc.pid
        killed_during = started["a"]
        a.kill()          # SIGKILL to the process group: supervisor, roles, sessions
        in_spool = [k for k in list(acked) if k.startswith("a-") and
                    "%s/acme/%s" % (PREFIX, k) not in set(self.moto.keys())]
        self.assertEqual(H.group_members(pid), [], "A's processes survived SIGKILL")
        self.assertTrue(in_spool, "A held no acknowledged file when it died")
        time.sleep(1.0)
        a.start()
        self.store_link.gate.set()
        for t in th:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in th), "the upload streams did not finish")
        self.assertGreater(started["a"], killed_during, "nothing was sent to A after its restart")
        self.assertNotIn(files["a"][KILL_AT][0], acked, "A was not killed mid-file")
        for n in ("a", "b"):
            self.assertTrue(any(k.startswith(n + "-") for k in acked), "no file acknowledged by " + n)

        print("acknowledged: A %d of %d, B %d of %d; A was killed while sending file %d, "
              "with %d acknowledged file(s) not yet stored"
              % (sum(k.startswith("a-") for k in acked), PER_NODE,
                 sum(k.startswith("b-") for k in acked), PER_NODE, killed_during, len(in_spool)))
        want = {"%s/acme/%s" % (PREFIX, name): sha for name, sha in acked.items()}

        def all_stored():
            have = set(self.moto.keys())
            return want.keys() <= have
        if not H.poll(all_stored, 60, 0.5):
            missing = sorted(set(want) - set(self.moto.keys()))
            self.fail("acknowledged files not stored: %s\nA:\n%s\nB:\n%s"
                      % (missing, a.diagnostics(), b.diagnostics()))
        # exactly once: every object is one file sent under its own name,
        # byte-identical; an unacknowledged file may be stored (its CLOSE was
        # answered but the client did not see it), never twice or elsewhere
        time.sleep(1.0)
        for key in self.moto.keys():
            if key.startswith("audit/"):
                continue  # each node's sealed audit segments (audit.prefix)
            name = key[len(PREFIX + "/acme/"):] if key.startswith(PREFIX + "/acme/") else None
            self.assertIn(name, sent, "object %s is not a file that was sent (a duplicate?)" % key)
            self.assertIn(name, attempted, key)
            body = self.moto.get_bytes(key)
            self.assertEqual(H.sha256_bytes(body), sent[name], "object %s differs from what was sent" % key)
        for key, sha in want.items():
            self.assertEqual(H.sha256_bytes(self.moto.get_bytes(key)), sha, key)

        for n, g in self.gw.items():
            rc, out, err = H.run_sluice(["reconcile", "-c", g.config_path], env=self.moto.env(),
                                        timeout=120)
            self.assertEqual(rc, 0, "reconcile on %s:\n%s%s" % (n, out, err))
            rc, out, err = H.run_sluice(["audit", "verify", "-c", g.config_path], timeout=120)
            self.assertEqual(rc, 0, "audit verify on %s:\n%s%s" % (n, out, err))
        # each node's trail tells its own half: A's file.stored records name
        # only a- files, B's only b- files
        for n, g in self.gw.items():
            stored = [r.get("path") for r in g.audit_records() if r.get("event") == "file.stored"]
            self.assertTrue(stored, "no file.stored on " + n)
            self.assertTrue(all(p.startswith(n + "-") for p in stored), (n, stored))


if __name__ == "__main__":
    unittest.main()
