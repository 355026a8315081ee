"""
The uploader role against moto (IAM auth on): durability under SIGKILL
(single PUTs and multipart uploads), the fault proxy (503/500/reset/delay/
flipped byte, checksums checked as S3 does), a missing bucket (held, then
`queue retry`), `reconcile`, and credentials from a local IMDSv2 server.

Files are put straight into the spool and the state database as the intake
would leave them ("accepted"), and `sluice uploader -c CFG` runs alone, so
it can be killed and restarted quickly.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_uploader
"""

import base64
import hashlib
import os
import random
import re
import secrets
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

import botocore.exceptions

import harness as H
from faultproxy import FaultProxy
from imds import Imds

MiB = 1024 * 1024


class UploaderCase(unittest.TestCase):
    moto = None

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-up-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.moto = H.Moto(os.path.join(cls._tmp.name)).start()
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

    def config(self, endpoint=None, bucket=None, prefix="", store_extra=(), uploader=None):
        """store_extra: YAML lines under store:; uploader: YAML lines of an uploader: block."""
        url = "s3://%s/%s" % (bucket or self.moto.bucket, prefix)
        text = H.render_config(H.free_port(), [os.path.join(self.dir, "hostkey")],
                               self.state, self.audit,
                               {"url": url, "region": "us-east-1",
                                "endpoint": endpoint or self.moto.endpoint, "path_style": True},
                               [{"name": "acme", "password_hash": H.password_hash("x")}],
                               extra="\n".join(["uploader:"] + ["  " + l for l in uploader])
                               if uploader else "")
        if store_extra:
            text = text.replace("  path_style: true\n", "  path_style: true\n" +
                                "".join("  %s\n" % l for l in store_extra), 1)
        self.cfg = os.path.join(self.dir, "cfg.yaml")
        with open(self.cfg, "w") as f:
            f.write(text)
        # creates the database with its schema
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])
        self.assertEqual(rc, 0, out + err)
        return self.cfg

    def add_file(self, key, size, data=None):
        """A spooled, accepted file (random bytes, or data); returns (id, sha256, path)."""
        fid = secrets.token_hex(16)
        path = os.path.join(self.state, "spool", "ready", fid)
        if data is None:
            H.write_random_file(path, size)
        else:
            with open(path, "wb") as f:
                f.write(data)
            size = len(data)
        sha = H.sha256_file(path)
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
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
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

    def log(self):
        return H.tail(os.path.join(self.dir, "uploader.log"), 60)

    def wait_states(self, want, timeout=120):
        ok = H.poll(lambda: all(r[1] in want for r in self.rows()), timeout, 0.3)
        if not ok:
            self.fail("files not %s within %ss: %r\n%s" % (want, timeout, self.rows(), self.log()))

    def assert_objects(self, files, bucket=None):
        for key, sha in files:
            data = self.moto.get_bytes(key, bucket=bucket)
            self.assertEqual(H.sha256_bytes(data), sha, "object %s differs" % key)


class TestDurability(UploaderCase):

    def test_sigkill_loop_single_and_multipart(self):
        """SIGKILL the uploader 24 times mid-upload; every file ends stored once, byte-identical."""
        self.config()
        files = []
        for i in range(8):
            _, sha, _ = self.add_file("kill/small-%d.bin" % i, random.choice([1, 4096, 65536, 900 * 1024]))
            files.append(("kill/small-%d.bin" % i, sha))
        for i, size in enumerate([40 * MiB + 123, 24 * MiB]):
            _, sha, _ = self.add_file("kill/big-%d.bin" % i, size)
            files.append(("kill/big-%d.bin" % i, sha))
        rng = random.Random(5)
        kills = 0
        while kills < 24:
            p = self.start_uploader()
            time.sleep(rng.uniform(0.05, 0.9))
            if p.poll() is not None:
                self.fail("uploader exited early (%s)\n%s" % (p.returncode, self.log()))
            p.kill()
            p.wait(10)
            kills += 1
        p = self.start_uploader()
        self.wait_states({"removed"}, 240)
        self.stop(p)
        self.assert_objects(files)
        keys = sorted(k for k in self.moto.keys() if k.startswith("kill/"))
        self.assertEqual(keys, sorted(k for k, _ in files), "extra or missing objects (suffixes?)")
        for r in self.rows():
            self.assertFalse(os.path.exists(os.path.join(self.state, "spool", "ready", r[0].__str__())))
        rc, out, err = H.run_sluice(["reconcile", "-c", self.cfg], env=self.moto.env(), timeout=120)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("%d proven, 0 unproven" % len(files), out)
        # every stored file has its record, however the kills fell
        stored = {r["key"] for r in H.read_audit(self.audit) if r.get("event") == "file.stored"}
        self.assertEqual(stored, {k for k, _ in files}, "a stored file without its file.stored record")

    def parts_done(self, rid):
        db = sqlite3.connect(os.path.join(self.state, "sluice.db"), timeout=30)
        try:
            return db.execute("SELECT count(*) FROM parts WHERE file_id = ?", (rid,)).fetchone()[0]
        finally:
            db.close()

    def test_multipart_resumes_after_kill(self):
        """Killed after some parts: the restart confirms them (ListParts) and sends only the rest."""
        self.config(uploader=["workers: 1", "part_size: 5MiB", "multipart_threshold: 6MiB"])
        rid, sha, _ = self.add_file("resume/big.bin", 120 * MiB + 7)
        p = self.start_uploader()
        ok = H.poll(lambda: self.parts_done(rid) >= 3, 60, 0.02)
        p.kill()
        p.wait(10)
        self.assertTrue(ok, "no parts recorded\n" + self.log())
        before = self.parts_done(rid)
        p = self.start_uploader()
        self.wait_states({"removed"}, 120)
        self.stop(p)
        self.assert_objects([("resume/big.bin", sha)])
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            log = f.read()
        m = re.search(r"resuming upload: (\d+) of 25 parts already stored", log)
        self.assertTrue(m, log[-3000:])
        self.assertGreaterEqual(int(m.group(1)), before)
        # the parts sent after the restart: only the missing ones
        after = log[m.end():]
        self.assertEqual(after.count("s3: PUT /%s/resume/big.bin?partNumber=" % self.moto.bucket),
                         25 - int(m.group(1)), after[-3000:])
        stored = [r for r in H.read_audit(self.audit) if r.get("event") == "file.stored"]
        self.assertEqual(len(stored), 1)
        self.assertTrue(stored[0]["checksum"].endswith("-25"), stored[0])

    def test_multipart_resumes_after_sigterm(self):
        """SIGTERM (a drain, systemctl stop) after some parts: the next start completes the
        upload, once, with every part."""
        self.config(uploader=["workers: 1", "part_size: 5MiB", "multipart_threshold: 6MiB"])
        rid, sha, _ = self.add_file("term/big.bin", 40 * MiB + 7)
        p = self.start_uploader()
        ok = H.poll(lambda: self.parts_done(rid) >= 2, 60, 0.02)
        self.stop(p)
        self.assertTrue(ok, "no parts recorded\n" + self.log())
        state = [r[1] for r in self.rows() if r[0] == rid]
        self.assertNotIn("removed", state, "finished before SIGTERM: make the file larger")
        p = self.start_uploader()
        self.wait_states({"removed"}, 120)
        self.stop(p)
        self.assert_objects([("term/big.bin", sha)])
        self.assertRegex(self.log(), r"resuming upload: \d+ of 9 parts already stored")
        stored = [r for r in H.read_audit(self.audit) if r.get("event") == "file.stored"]
        self.assertEqual(len(stored), 1, stored)
        self.assertTrue(stored[0]["checksum"].endswith("-9"), stored[0])

    def test_spool_copy_not_matching_is_never_stored(self):
        """A spooled copy whose bytes no longer match the SHA-256 taken at receipt is never made an
        object, single PUT or multipart (its parts may be sent while the file is hashed, but the
        upload is not completed); once the bytes match again it is stored."""
        self.config(uploader=["workers: 2", "part_size: 5MiB", "multipart_threshold: 6MiB",
                              "max_backoff: 1s"])
        files = {}
        for key, size, at in (("bad/small.bin", 40000, 1234), ("bad/big.bin", 23 * MiB, 21 * MiB + 5)):
            rid, sha, path = self.add_file(key, size)
            with open(path, "r+b") as f:
                f.seek(at)
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ 0x20]))
            files[key] = (rid, sha, path, at)
        p = self.start_uploader()
        ok = H.poll(lambda: all((r[5] or 0) >= 2 for r in self.rows()), 60, 0.2)
        self.assertTrue(ok, "%r\n%s" % (self.rows(), self.log()))
        for r in self.rows():
            self.assertEqual(r[1], "accepted", r)
            self.assertIn("does not match", r[4] or "", r)
        for key in files:
            with self.assertRaises(Exception, msg=key):
                self.moto.s3.head_object(Bucket=self.moto.bucket, Key=key)
        self.assertFalse([r for r in H.read_audit(self.audit) if r.get("event") == "file.stored"])
        # the bytes come back (a transient read error, a restored disk): stored, byte-identical
        self.stop(p)
        for key, (rid, sha, path, at) in files.items():
            with open(path, "r+b") as f:
                f.seek(at)
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ 0x20]))
        p = self.start_uploader()
        self.wait_states({"removed"}, 120)
        self.stop(p)
        self.assert_objects([(k, v[1]) for k, v in files.items()])

    def test_collision_suffix(self):
        """A different object at the key: stored at KEY.1 (collision: suffix, the default)."""
        self.config()
        self.moto.s3.put_object(Bucket=self.moto.bucket, Key="coll/a.txt", Body=b"someone else's")
        _, sha, _ = self.add_file("coll/a.txt", 1000)
        _, sha2, _ = self.add_file("coll/big.bin", 20 * MiB)
        self.moto.s3.put_object(Bucket=self.moto.bucket, Key="coll/big.bin", Body=b"other")
        p = self.start_uploader()
        self.wait_states({"removed"}, 120)
        self.stop(p)
        self.assert_objects([("coll/a.txt.1", sha), ("coll/big.bin.1", sha2)])
        self.assertEqual(self.moto.get_bytes("coll/a.txt"), b"someone else's")
        keys = {r[2] for r in self.rows()}
        self.assertEqual(keys, {"coll/a.txt.1", "coll/big.bin.1"})
        # reconcile notices an object that changed behind our back
        self.moto.s3.put_object(Bucket=self.moto.bucket, Key="coll/a.txt.1", Body=b"tampered")
        rc, out, err = H.run_sluice(["reconcile", "-c", self.cfg], env=self.moto.env(), timeout=60)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("UNPROVEN", out)
        self.assertIn("coll/a.txt.1", out)


def uploader_pids(pgid):
    """The uploader role's process(es) in a sluice serve group (comm sluice-uploader)."""
    out = []
    for pid in H.group_members(pgid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "sluice-uploader":
                    out.append(pid)
        except OSError:
            pass
    return out


class TestServe(UploaderCase):

    def test_serve_restarts_killed_uploader(self):
        """Under sluice serve, SIGKILL the uploader role mid-upload 3 times: it is restarted and finishes."""
        gw = H.Sluice(os.path.join(self.dir, "gw"),
                      {"url": "s3://%s/" % self.moto.bucket, "region": "us-east-1",
                       "endpoint": self.moto.endpoint, "path_style": True},
                      [{"name": "acme", "password_hash": H.password_hash("x")}],
                      env=self.moto.env(),
                      extra_config="uploader:\n  multipart_threshold: 6MiB\n  part_size: 5MiB")
        self.state = gw.state_dir
        gw.start()
        self.addCleanup(gw.kill)
        files = []
        for i, size in enumerate([30 * MiB, 12 * MiB, 5000, 70000]):
            _, sha, _ = self.add_file("serve/f-%d.bin" % i, size)
            files.append(("serve/f-%d.bin" % i, sha))
        for k in range(3):
            pids = []
            ok = H.poll(lambda: uploader_pids(gw.proc.pid), 20, 0.05)
            self.assertTrue(ok, "no uploader role running\n" + gw.log_tail())
            pids = uploader_pids(gw.proc.pid)
            time.sleep(0.2)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)

            def reaped(n=k + 1):
                with open(gw.log, errors="replace") as f:
                    return f.read().count("role uploader died of signal 9") >= n
            self.assertTrue(H.poll(reaped, 10, 0.05), "kill %d not seen by the supervisor\n%s"
                            % (k + 1, gw.log_tail()))
        ok = H.poll(lambda: all(r[1] == "removed" for r in self.rows()), 120, 0.3)
        self.assertTrue(ok, "%r\n%s" % (self.rows(), gw.log_tail()))
        self.assertEqual(gw.stop(), 0)
        self.assert_objects(files)
        with open(gw.log, errors="replace") as f:
            log = f.read()
        self.assertGreaterEqual(log.count("role uploader died of signal 9"), 3,
                                "\n".join(l for l in log.splitlines() if "supervisor" in l or "ready" in l or "signal" in l))


class TestFaults(UploaderCase):

    def test_fault_proxy(self):
        """503, 500, resets mid-body, delays and flipped bytes: everything still stored byte-identical."""
        proxy = FaultProxy(self.moto.endpoint, rate=0.35, seed=7).start()
        self.addCleanup(proxy.stop)
        self.config(endpoint=proxy.endpoint)
        files = []
        for i in range(12):
            _, sha, _ = self.add_file("fault/f-%d.bin" % i, 16 * 1024 + i)
            files.append(("fault/f-%d.bin" % i, sha))
        _, sha, _ = self.add_file("fault/big.bin", 26 * MiB)
        files.append(("fault/big.bin", sha))
        p = self.start_uploader()
        self.wait_states({"removed"}, 300)
        self.stop(p)
        self.assert_objects(files)
        for k in ("503", "500", "reset", "flip", "delay"):
            self.assertGreater(proxy.stats[k], 0, "fault %s never injected: %r" % (k, proxy.stats))
        self.assertGreater(proxy.stats["checked"], 0)
        retries = [r for r in H.read_audit(self.audit) if r.get("event") == "upload.retry"]
        self.assertTrue(retries, "no upload.retry in the audit trail")
        self.assertFalse([r for r in H.read_audit(self.audit) if r.get("event") == "file.held"])

    def test_store_without_checksums(self):
        """A store that keeps no checksums (no x-amz-checksum-sha256 in its answers): an object is
        recognised by its size and the x-amz-meta-sha256 sluice wrote, so the same file again (as
        after a record lost to a crash) counts as stored at its key, not a collision at KEY.1,
        single PUT and multipart; a different object at the key still is a collision."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        proxy.strip_checksums = True
        self.config(endpoint=proxy.endpoint, uploader=["multipart_threshold: 6MiB", "part_size: 5MiB"])
        self.moto.s3.put_object(Bucket=self.moto.bucket, Key="nock/other.bin", Body=b"not ours")
        files, data = [], {}
        for key, size in (("nock/a.bin", 5000), ("nock/big.bin", 13 * MiB), ("nock/other.bin", 3000)):
            _, sha, path = self.add_file(key, size)
            with open(path, "rb") as f:
                data[key] = f.read()
            files.append((key, sha))
        p = self.start_uploader()
        self.wait_states({"removed"}, 120)
        self.assert_objects([files[0], files[1], ("nock/other.bin.1", files[2][1])])
        self.assertFalse([h for m, _, h in proxy.requests if m == "HEAD" and "x-amz-checksum-sha256" in h])
        # the same two files again
        for key in ("nock/a.bin", "nock/big.bin"):
            self.add_file(key, 0, data[key])
        self.wait_states({"removed"}, 120)
        self.stop(p)
        stored = [r for r in H.read_audit(self.audit) if r.get("event") == "file.stored"]
        self.assertEqual(sorted(r["key"] for r in stored if r.get("existed")),
                         ["nock/a.bin", "nock/big.bin"], stored)
        for key in ("nock/a.bin.1", "nock/big.bin.1"):   # (moto refuses a signed prefix=nock/)
            with self.assertRaises(botocore.exceptions.ClientError, msg=key):
                self.moto.s3.head_object(Bucket=self.moto.bucket, Key=key)
        self.assert_objects([files[0], files[1]])

    def test_virtual_hosted_addressing(self):
        """path_style: false puts the bucket in the host name (BUCKET.localhost here, reached through
        an HTTP proxy since this machine's resolver knows no *.localhost); moto checks the signature
        over that host. Single PUT and multipart."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        self.config(endpoint="http://localhost:%d" % self.moto.port,
                    uploader=["multipart_threshold: 6MiB", "part_size: 5MiB"])
        with open(self.cfg) as f:
            text = f.read()
        self.assertIn("path_style: true", text)
        with open(self.cfg, "w") as f:
            f.write(text.replace("path_style: true", "path_style: false"))
        files = [("vh/a.bin", self.add_file("vh/a.bin", 3000)[1]),
                 ("vh/big.bin", self.add_file("vh/big.bin", 11 * MiB)[1])]
        p = self.start_uploader(env={"http_proxy": proxy.endpoint, "no_proxy": "", "NO_PROXY": ""})
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects(files)
        self.assertTrue(proxy.requests)
        self.assertEqual({h.get("host") for _, _, h in proxy.requests},
                         {"%s.localhost:%d" % (self.moto.bucket, self.moto.port)})
        self.assertFalse([pth for _, pth, _ in proxy.requests if "/%s/" % self.moto.bucket in pth])

    def test_parts_in_flight(self):
        """A multipart file sends several parts at once (10 by default), not one after another."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        proxy.delay_parts = 0.3     # each part takes a while, as over a WAN
        self.config(endpoint=proxy.endpoint, uploader=["multipart_threshold: 6MiB", "part_size: 5MiB"])
        files = [("inflight/big.bin", self.add_file("inflight/big.bin", 40 * MiB)[1])]
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects(files)
        self.assertGreaterEqual(proxy.max_parts_inflight, 4, "parts went one at a time")

    def test_put_checksum_echo_skips_head(self):
        """A PUT whose answer carries back the x-amz-checksum-sha256 sent (S3 checked the bytes:
        moto answers it too) needs no verifying HEAD; a store that answers another checksum, or
        none, gets the HEAD, and the file is stored once it agrees."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        self.config(endpoint=proxy.endpoint)
        files = [("echo/a.bin", self.add_file("echo/a.bin", 4000)[1])]
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        puts = [h for m, pth, h in proxy.requests if m == "PUT" and pth.endswith("/echo/a.bin")]
        self.assertEqual(len(puts), 1, proxy.requests)
        self.assertFalse([pth for m, pth, _ in proxy.requests
                          if m == "HEAD" and pth.endswith("/echo/a.bin")], proxy.requests)
        # a store echoing another checksum, then one echoing none
        for n, echo in enumerate(("bm90IHRoZSBjaGVja3N1bQ==", "")):
            proxy.put_checksum = echo
            key = "echo/b%d.bin" % n
            files.append((key, self.add_file(key, 5000 + n)[1]))
            self.wait_states({"removed"}, 60)
            self.assertTrue([pth for m, pth, _ in proxy.requests
                             if m == "HEAD" and pth.endswith("/" + key)], (key, proxy.requests))
        self.stop(p)
        self.assert_objects(files)

    def test_head_disagrees_held(self):
        """The HEAD after a PUT reports a checksum other than the SHA-256 taken at receipt (the
        object is not what was sent): the file is held, audited with both checksums, not counted
        as stored, and its spool copy kept. (The PUT's answer carries no checksum back, else no
        HEAD is needed.)"""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        proxy.put_checksum = ""
        proxy.head_checksum = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
        self.config(endpoint=proxy.endpoint)
        _, sha, path = self.add_file("disagree/a.bin", 4000)
        p = self.start_uploader()
        self.wait_states({"held"}, 60)
        self.stop(p)
        row = self.rows()[0]
        self.assertIn("checksum differs", row[4])
        self.assertIn(proxy.head_checksum, row[4])
        self.assertTrue(os.path.exists(path), "spool copy deleted")
        audit = H.read_audit(self.audit)
        self.assertFalse([r for r in audit if r.get("event") == "file.stored"])
        self.assertTrue([r for r in audit if r.get("event") == "file.held"])

    def test_missing_bucket_held_then_retry(self):
        """NoSuchBucket: held (audited); `queue retry` after the bucket exists: stored."""
        self.config(bucket="made-later")
        rid, sha, _ = self.add_file("late/x.bin", 5000)
        p = self.start_uploader()
        self.wait_states({"held"}, 60)
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])
        self.assertEqual(rc, 0, err)
        self.assertIn("held", out)
        self.assertIn("NoSuchBucket", out)
        self.assertTrue([r for r in H.read_audit(self.audit) if r.get("event") == "file.held"])
        self.moto.s3.create_bucket(Bucket="made-later")
        rc, out, err = H.run_sluice(["queue", "retry", "-c", self.cfg, str(rid)])
        self.assertEqual(rc, 0, out + err)
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("late/x.bin", sha)], bucket="made-later")
        self.assertTrue([r for r in H.read_audit(self.audit) if r.get("event") == "queue.retry"])
        # retry of a file that is not held is refused
        rc, out, err = H.run_sluice(["queue", "retry", "-c", self.cfg, str(rid)])
        self.assertNotEqual(rc, 0)


class TestPolicies(UploaderCase):

    def test_collision_reject_and_version(self):
        """collision: reject holds the file; collision: version writes a new version at the same key."""
        self.config(store_extra=["collision: reject"])
        self.moto.s3.put_object(Bucket=self.moto.bucket, Key="rej/a.txt", Body=b"theirs")
        self.add_file("rej/a.txt", 100)
        p = self.start_uploader()
        self.wait_states({"held"}, 60)
        self.stop(p)
        self.assertIn("collision: reject", self.rows()[0][4])
        self.assertEqual(self.moto.get_bytes("rej/a.txt"), b"theirs")

        self.moto.s3.create_bucket(Bucket="versioned")
        self.moto.s3.put_bucket_versioning(Bucket="versioned",
                                           VersioningConfiguration={"Status": "Enabled"})
        self.moto.s3.put_object(Bucket="versioned", Key="ver/a.txt", Body=b"old")
        self.setUp()
        self.config(bucket="versioned", store_extra=["collision: version"])
        _, sha, _ = self.add_file("ver/a.txt", 100)
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("ver/a.txt", sha)], bucket="versioned")
        # (no Prefix=: moto refuses signatures of queries holding '/')
        vers = [v for v in self.moto.s3.list_object_versions(Bucket="versioned")["Versions"]
                if v["Key"] == "ver/a.txt"]
        self.assertEqual(len(vers), 2)
        # another file of ours at the key: a third version; reconcile proves both of ours by
        # their version ids (the key's latest version is only the second's)
        self.add_file("ver/a.txt", 200)
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        self.stop(p)
        rc, out, err = H.run_sluice(["reconcile", "-c", self.cfg], env=self.moto.env(), timeout=60)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("2 proven, 0 unproven", out)

        # collision: version on a bucket WITHOUT versioning must never overwrite
        # the stored object: the file is held instead.
        self.moto.s3.create_bucket(Bucket="unversioned")
        self.moto.s3.put_object(Bucket="unversioned", Key="ver/b.txt", Body=b"stored before")
        self.setUp()
        self.config(bucket="unversioned", store_extra=["collision: version"])
        self.add_file("ver/b.txt", 100)
        p = self.start_uploader()
        self.wait_states({"held"}, 60)
        self.stop(p)
        self.assertIn("not versioned", self.rows()[0][4])
        self.assertEqual(self.moto.get_bytes("ver/b.txt", bucket="unversioned"), b"stored before")

    def test_refused_credentials_held(self):
        """InvalidAccessKeyId (a key the store does not know) and SignatureDoesNotMatch (a wrong
        secret) are not retried blindly: held after one attempt, audited (file.held) and counted by
        `queue list`; `queue hold` holds a waiting file by hand; with good credentials, `queue retry
        --all` releases them and they are stored."""
        self.config()
        files = [("auth/a.bin", self.add_file("auth/a.bin", 1000)[1])]
        # a key id and secret made up now: the store knows neither
        p = self.start_uploader(env={"AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
                                     "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30)})
        self.wait_states({"held"}, 60)
        self.stop(p)
        files.append(("auth/b.bin", self.add_file("auth/b.bin", 2000)[1]))
        p = self.start_uploader(env={"AWS_SECRET_ACCESS_KEY": "not-" + self.moto.secret_key})
        self.wait_states({"held"}, 60)
        self.stop(p)
        rows = self.rows()
        for row, code in zip(rows, ("InvalidAccessKeyId", "SignatureDoesNotMatch")):
            self.assertIn(code, row[4], row)
            self.assertEqual(row[5], 1, "retried instead of held: %r" % (row,))
        held = [r for r in H.read_audit(self.audit) if r.get("event") == "file.held"]
        self.assertEqual([r["key"] for r in held], ["auth/a.bin", "auth/b.bin"], held)
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            self.assertNotIn(self.moto.secret_key, f.read())
        # held by hand before any uploader saw it
        rid3, sha3, _ = self.add_file("auth/c.bin", 10)
        files.append(("auth/c.bin", sha3))
        rc, out, err = H.run_sluice(["queue", "hold", "-c", self.cfg, str(rid3)])
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.rows()[2][1], "held")
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("3 file(s): 3 held", out)
        rc, out, err = H.run_sluice(["queue", "retry", "-c", self.cfg, "--all"])
        self.assertEqual(rc, 0, out + err)
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects(files)

    def test_retention_keep(self):
        """retention {keep: 30d}: stored files move to state_dir/archive/ (state archived)."""
        self.config(uploader=["retention: {keep: 30d}"])
        rid, sha, path = self.add_file("keep/a.bin", 2048)
        p = self.start_uploader()
        self.wait_states({"archived"}, 60)
        self.stop(p)
        self.assertFalse(os.path.exists(path))
        arch = os.path.join(self.state, "archive", os.path.basename(path))
        self.assertEqual(H.sha256_file(arch), sha)
        self.assert_objects([("keep/a.bin", sha)])
        self.assertTrue([r for r in H.read_audit(self.audit) if r.get("event") == "file.archived"])
        # 31 days on for this one (not for a second): the sweep at start deletes its archive copy
        rid2, sha2, path2 = self.add_file("keep/b.bin", 1000)
        p = self.start_uploader()
        self.wait_states({"archived"}, 60)
        self.stop(p)
        db = sqlite3.connect(os.path.join(self.state, "sluice.db"), timeout=30)
        db.execute("UPDATE files SET stored_ms = stored_ms - 31 * 86400000 WHERE id = ?", (rid,))
        db.commit()
        db.close()
        p = self.start_uploader()
        ok = H.poll(lambda: [r[1] for r in self.rows()] == ["removed", "archived"], 30, 0.2)
        self.stop(p)
        self.assertTrue(ok, "%r\n%s" % (self.rows(), self.log()))
        self.assertFalse(os.path.exists(arch))
        self.assertTrue(os.path.exists(os.path.join(self.state, "archive", os.path.basename(path2))))
        gone = [r for r in H.read_audit(self.audit) if r.get("event") == "file.removed"]
        self.assertEqual([(r["key"], r.get("reason")) for r in gone],
                         [("keep/a.bin", "retention period over")])

    def test_store_options(self):
        """sse, storage class, acl, tags (URL-encoded) and Object Lock reach S3."""
        self.moto.s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()  # to see the headers
        self.addCleanup(proxy.stop)
        self.config(bucket="locked", endpoint=proxy.endpoint, store_extra=[
            "sse: AES256", "storage_class: STANDARD_IA", "acl: bucket-owner-full-control",
            "tags: {dept: \"fin ance\", \"k:1\": \"v=1/2 +x@\"}",
            "object_lock: {mode: GOVERNANCE, days: 2}"],
            uploader=["multipart_threshold: 6MiB", "part_size: 5MiB"])
        _, sha, _ = self.add_file("opt/a.bin", 3000)
        _, sha2, _ = self.add_file("opt/big.bin", 11 * MiB)
        p = self.start_uploader()
        self.wait_states({"removed"}, 90)
        self.stop(p)
        self.assert_objects([("opt/a.bin", sha), ("opt/big.bin", sha2)], bucket="locked")
        for key in ("opt/a.bin", "opt/big.bin"):
            h = self.moto.s3.head_object(Bucket="locked", Key=key)
            self.assertEqual(h.get("ServerSideEncryption"), "AES256", key)
            self.assertEqual(h.get("StorageClass"), "STANDARD_IA", key)
            if key == "opt/a.bin":  # moto keeps no lock from CreateMultipartUpload
                self.assertEqual(h.get("ObjectLockMode"), "GOVERNANCE", key)
                self.assertIn("ObjectLockRetainUntilDate", h)
            tags = {t["Key"]: t["Value"] for t in
                    self.moto.s3.get_object_tagging(Bucket="locked", Key=key)["TagSet"]}
            self.assertEqual(tags, {"dept": "fin ance", "k:1": "v=1/2 +x@"}, key)
        stored = [r for r in H.read_audit(self.audit) if r.get("event") == "file.stored"]
        self.assertEqual(sorted(r["parts"] for r in stored), [0, 3])
        writes = [(m, path, h) for m, path, h in proxy.requests
                  if (m == "PUT" and "partNumber=" not in path) or (m == "POST" and path.endswith("?uploads="))]
        self.assertEqual(len(writes), 2, [w[:2] for w in writes])
        for m, path, h in writes:
            self.assertEqual(h.get("x-amz-object-lock-mode"), "GOVERNANCE", path)
            self.assertRegex(h.get("x-amz-object-lock-retain-until-date", ""),
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(h.get("x-amz-acl"), "bucket-owner-full-control")
            self.assertEqual(h.get("x-amz-tagging"), "dept=fin%20ance&k%3A1=v%3D1%2F2%20%2Bx%40")
        parts = [h for m, path, h in proxy.requests if "partNumber=" in path]
        self.assertEqual(len(parts), 3)
        for h in parts:
            self.assertTrue(h.get("x-amz-checksum-sha256"))
            self.assertEqual(len(h.get("x-amz-content-sha256", "")), 64)

    def test_stale_multipart_aborted(self):
        """Multipart uploads under our prefix that are not ours and over a day old are aborted."""
        mu = self.moto.s3.create_multipart_upload(Bucket=self.moto.bucket, Key="pre/stale.bin")
        other = self.moto.s3.create_multipart_upload(Bucket=self.moto.bucket, Key="elsewhere/x.bin")
        self.config(prefix="pre/")
        p = self.start_uploader()

        def ids():
            r = self.moto.s3.list_multipart_uploads(Bucket=self.moto.bucket)
            return {u["UploadId"] for u in r.get("Uploads", [])}
        ok = H.poll(lambda: mu["UploadId"] not in ids(), 30)
        self.stop(p)
        self.assertTrue(ok, "stale upload not aborted\n" + self.log())
        self.assertIn(other["UploadId"], ids(), "an upload outside the prefix was aborted")
        self.moto.s3.abort_multipart_upload(Bucket=self.moto.bucket, Key="elsewhere/x.bin",
                                            UploadId=other["UploadId"])


class TestCredentials(UploaderCase):

    def test_expired_token_refreshed_once(self):
        """400 ExpiredToken: the credentials are fetched again and the request repeated."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        self.config(endpoint=proxy.endpoint)
        p = self.start_uploader()
        time.sleep(1)
        proxy.expire_next = 1
        _, sha, _ = self.add_file("exp/a.bin", 1234)
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("exp/a.bin", sha)])
        self.assertEqual(proxy.stats["expired"], 1)
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            self.assertIn("credentials expired (ExpiredToken); refreshing", f.read())
        self.assertEqual(self.rows()[0][5], 1, "needed more than one attempt")

    def test_imds_credentials_refresh(self):
        """No env keys: IMDSv2 provides them; near expiry they are fetched again."""
        imds = Imds(self.moto.access_key, self.moto.secret_key, lifetime=240).start()
        self.addCleanup(imds.stop)
        self.config()
        _, sha, _ = self.add_file("imds/a.bin", 3000)
        env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
               "AWS_EC2_METADATA_DISABLED": "false",
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint,
               "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.dir, "none"),
               "AWS_CONFIG_FILE": os.path.join(self.dir, "none")}
        p = self.start_uploader(env)
        self.wait_states({"removed"}, 60)
        time.sleep(1.5)  # refreshes are at most once a second
        _, sha2, _ = self.add_file("imds/b.bin", 3000)
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("imds/a.bin", sha), ("imds/b.bin", sha2)])
        self.assertGreaterEqual(imds.calls, 2, "credentials expiring in 4 min were not refreshed")
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            log = f.read()
        self.assertNotIn(self.moto.secret_key, log)

    def test_shared_credentials_file(self):
        """AWS_PROFILE picks a profile of the shared credentials file."""
        creds = os.path.join(self.dir, "credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
                    "# ours\n[gw]\naws_access_key_id = %s\naws_secret_access_key=%s\n"
                    % (self.moto.access_key, self.moto.secret_key))
        self.config()
        _, sha, _ = self.add_file("ini/a.bin", 777)
        p = self.start_uploader({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                                 "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_PROFILE": "gw",
                                 "AWS_CONFIG_FILE": os.path.join(self.dir, "none")})
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("ini/a.bin", sha)])


class TestWebIdentity(UploaderCase):
    """moto without IAM auth here: the credentials STS makes up are not IAM users."""

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-up-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.moto = H.Moto(os.path.join(cls._tmp.name), auth=False).start()
        cls.addClassCleanup(cls.moto.stop)

    def test_web_identity(self):
        """AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: STS AssumeRoleWithWebIdentity gives the credentials."""
        tok = os.path.join(self.dir, "token")
        with open(tok, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzbHVpY2UifQ.c2ln\n")
        self.config()
        _, sha, _ = self.add_file("webid/a.bin", 4321)
        p = self.start_uploader({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                                 "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.dir, "none"),
                                 "AWS_CONFIG_FILE": os.path.join(self.dir, "none"),
                                 "AWS_WEB_IDENTITY_TOKEN_FILE": tok,
                                 "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/sluice",
                                 "AWS_ENDPOINT_URL_STS": self.moto.endpoint})
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("webid/a.bin", sha)])
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("S3 credentials from web identity (STS)", log)
        self.assertNotIn("eyJhbGciOiJSUzI1NiJ9", log)


class TestExpiredEnvCredentials(UploaderCase):

    def test_clock_skew_corrected(self):
        """The store's clock is an hour ahead: the first requests are refused (a HEAD's 403 has no
        body, only a Date), the uploader signs with the store's time from then on, for every
        worker, and nothing is held."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        proxy.clock_ahead = 3600
        self.config(endpoint=proxy.endpoint, uploader=["workers: 4", "max_backoff: 1s",
                                                       "multipart_threshold: 6MiB", "part_size: 5MiB"])
        # the multipart file first: its first request is the HEAD
        files = [("skew/big.bin", self.add_file("skew/big.bin", 12 * MiB)[1])]
        files += [("skew/s%d.bin" % i, self.add_file("skew/s%d.bin" % i, 1000 + i)[1]) for i in range(6)]
        p = self.start_uploader()
        self.wait_states({"removed"}, 90)
        self.stop(p)
        self.assert_objects(files)
        self.assertGreaterEqual(proxy.stats["skewed"], 1)
        # the 4 workers and the stale-upload sweep start at once; none learns it anew later
        self.assertLessEqual(proxy.stats["skewed"], 5, proxy.requests)
        self.assertIn("off from the store's", self.log())
        self.assertFalse([r for r in H.read_audit(self.audit) if r.get("event") == "file.held"])

    def test_expired_env_credentials_held(self):
        """ExpiredToken on and on with environment credentials: after one refresh finds the same
        ones, the files are held (not retried forever) with a message saying what to do."""
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()
        self.addCleanup(proxy.stop)
        self.config(endpoint=proxy.endpoint)
        proxy.expire_next = 10 ** 6
        _, sha, _ = self.add_file("expenv/a.bin", 2345)
        # multipart: the HEAD first, whose 400 carries no error code
        _, sha2, _ = self.add_file("expenv/big.bin", 20 * MiB)
        p = self.start_uploader()
        self.wait_states({"held"}, 60)
        rows = self.rows()
        self.assertIn("ExpiredToken", rows[0][4])
        for row in rows:
            self.assertIn("the credentials in the environment have expired: restart the uploader "
                          "with fresh ones or use instance credentials", row[4])
            self.assertEqual(row[5], 1, "retried instead of held")
        # the first request, and one more after the refresh
        for m, key in (("PUT", "/expenv/a.bin"), ("HEAD", "/expenv/big.bin")):
            sent = [r for r in proxy.requests if r[0] == m and r[1].endswith(key)]
            self.assertEqual(len(sent), 2, [r[:2] for r in proxy.requests])
        held = [r for r in H.read_audit(self.audit) if r.get("event") == "file.held"]
        self.assertEqual(len(held), 2)
        self.assertIn("have expired", held[0]["error"])
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])
        self.assertEqual(rc, 0, err)
        self.assertIn("held", out)
        self.assertIn("have expired", out)
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("is HELD", log)
        self.assertNotIn(self.moto.secret_key, log)
        # Credentials that work again, and a `queue retry --all`: stored.
        proxy.expire_next = 0
        rc, out, err = H.run_sluice(["queue", "retry", "-c", self.cfg, "--all"])
        self.assertEqual(rc, 0, out + err)
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("expenv/a.bin", sha), ("expenv/big.bin", sha2)])


class PagingProxy:
    """Forwards every request to moto unchanged, but cuts ListMultipartUploads
    answers into pages as S3 does (moto ignores max-uploads and the markers):
    at most `page` uploads after key-marker/upload-id-marker, in (key, upload
    id) order, with IsTruncated, NextKeyMarker and NextUploadIdMarker. Uploads
    whose id is in `fresh` are reported as initiated now (moto says 2010 for
    all)."""

    NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

    def __init__(self, upstream, page):
        import urllib.parse
        u = urllib.parse.urlsplit(upstream)
        self.up = (u.hostname, u.port)
        self.page = page
        self.lists = []  # the query of every ListMultipartUploads request
        self.fresh = set()
        self.server = None

    def paged(self, query, body):
        import urllib.parse
        import xml.etree.ElementTree as ET
        from xml.sax.saxutils import escape
        q = {k: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        self.lists.append(q)
        root = ET.fromstring(body)
        ups = sorted((u.findtext(self.NS + "Key"), u.findtext(self.NS + "UploadId"),
                      u.findtext(self.NS + "Initiated")) for u in root.iter(self.NS + "Upload"))
        km, im = q.get("key-marker", ""), q.get("upload-id-marker", "")
        if km:
            ups = [u for u in ups if u[0] > km or (u[0] == km and im and u[1] > im)]
        n = min(self.page, int(q.get("max-uploads", "1000")))
        page, more = ups[:n], len(ups) > n
        x = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
             "<Bucket>%s</Bucket>" % escape(root.findtext(self.NS + "Bucket") or ""),
             "<KeyMarker>%s</KeyMarker><UploadIdMarker>%s</UploadIdMarker>" % (escape(km), escape(im))]
        if more:
            x.append("<NextKeyMarker>%s</NextKeyMarker><NextUploadIdMarker>%s</NextUploadIdMarker>"
                     % (escape(page[-1][0]), escape(page[-1][1])))
        x.append("<MaxUploads>%d</MaxUploads><IsTruncated>%s</IsTruncated>"
                 % (n, "true" if more else "false"))
        for k, i, t in page:
            if i in self.fresh:
                t = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            x.append("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated>"
                     "<StorageClass>STANDARD</StorageClass></Upload>" % (escape(k), escape(i), escape(t)))
        x.append("</ListMultipartUploadsResult>")
        return "".join(x).encode()

    def start(self):
        import http.client
        import http.server
        import threading
        import urllib.parse
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                conn = http.client.HTTPConnection(*proxy.up, timeout=120)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True,
                                    skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if k.lower() not in ("expect", "connection", "content-length"):
                            conn.putheader(k, v)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body if body else None)
                    resp = conn.getresponse()
                    data = resp.read()
                    hdrs = [(k, v) for k, v in resp.getheaders()
                            if k.lower() not in ("content-length", "transfer-encoding", "connection")]
                finally:
                    conn.close()
                query = urllib.parse.urlsplit(self.path).query
                if (self.command == "GET" and resp.status == 200 and
                        "uploads" in urllib.parse.parse_qs(query, keep_blank_values=True)):
                    data = proxy.paged(query, data)
                self.send_response(resp.status)
                for k, v in hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer((H.LOCALHOST, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = "http://%s:%d" % (H.LOCALHOST, self.server.server_address[1])
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class TestStaleSweepPages(UploaderCase):

    def test_stale_sweep_follows_pages(self):
        """The stale multipart sweep follows IsTruncated/NextKeyMarker/NextUploadIdMarker
        through every page (2 uploads a page here), not just the first."""
        # flat keys: moto refuses signatures of queries holding '/' (a key-marker)
        mine = [self.moto.s3.create_multipart_upload(Bucket=self.moto.bucket, Key=k)["UploadId"]
                for k in ("stale-a", "stale-b", "stale-b", "stale-c", "stale-d")]
        proxy = PagingProxy(self.moto.endpoint, page=2).start()
        self.addCleanup(proxy.stop)
        self.config(endpoint=proxy.endpoint)
        p = self.start_uploader()

        def left():
            r = self.moto.s3.list_multipart_uploads(Bucket=self.moto.bucket)
            return {u["UploadId"] for u in r.get("Uploads", [])} & set(mine)
        ok = H.poll(lambda: not left(), 30)
        self.stop(p)
        self.assertTrue(ok, "not aborted: %r\n%s" % (left(), self.log()))
        self.assertGreaterEqual(len(proxy.lists), 3, proxy.lists)
        self.assertEqual(proxy.lists[0].get("max-uploads"), "100")
        self.assertNotIn("key-marker", proxy.lists[0])
        self.assertTrue(all(q.get("key-marker") and q.get("upload-id-marker") for q in proxy.lists[1:]),
                        proxy.lists)
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            self.assertEqual(f.read().count("aborted the stale multipart upload"), 5)

    def test_young_upload_kept(self):
        """An upload under the prefix that is not ours but younger than a day (another writer's,
        under way) is left alone; one over a day old is aborted."""
        young = self.moto.s3.create_multipart_upload(Bucket=self.moto.bucket, Key="young-a")["UploadId"]
        old = self.moto.s3.create_multipart_upload(Bucket=self.moto.bucket, Key="old-b")["UploadId"]
        proxy = PagingProxy(self.moto.endpoint, page=100).start()
        self.addCleanup(proxy.stop)
        proxy.fresh.add(young)
        self.config(endpoint=proxy.endpoint)
        p = self.start_uploader()

        def ids():
            r = self.moto.s3.list_multipart_uploads(Bucket=self.moto.bucket)
            return {u["UploadId"] for u in r.get("Uploads", [])}
        ok = H.poll(lambda: old not in ids(), 30)
        self.stop(p)
        self.assertTrue(ok, "stale upload not aborted\n" + self.log())
        self.assertIn(young, ids(), "a young upload was aborted")
        self.moto.s3.abort_multipart_upload(Bucket=self.moto.bucket, Key="young-a", UploadId=young)


class TestFileStoreCollision(UploaderCase):
    """store.collision with a file:// store, through the uploader and the state database."""

    def file_config(self, collision=None):
        self.objects = os.path.join(self.dir, "objects")
        os.makedirs(os.path.join(self.objects, "coll"), exist_ok=True)
        text = H.render_config(H.free_port(), [os.path.join(self.dir, "hostkey")], self.state,
                               self.audit, {"url": "file://" + self.objects},
                               [{"name": "acme", "password_hash": H.password_hash("x")}])
        if collision:
            text = text.replace("\npartners:\n", "\n  collision: %s\npartners:\n" % collision, 1)
        self.cfg = os.path.join(self.dir, "cfg.yaml")
        with open(self.cfg, "w") as f:
            f.write(text)
        rc, out, err = H.run_sluice(["queue", "list", "-c", self.cfg])
        self.assertEqual(rc, 0, out + err)

    def test_suffix_and_reject(self):
        """suffix (default): the different file stays, ours lands at KEY.1 and the database
        records KEY.1; reject: held; version: as suffix, said once in the log."""
        self.file_config()
        with open(os.path.join(self.objects, "coll", "a.txt"), "wb") as f:
            f.write(b"someone else's")
        _, sha, path = self.add_file("coll/a.txt", 1000)
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assertEqual([r[2] for r in self.rows()], ["coll/a.txt.1"])
        self.assertEqual(H.sha256_file(os.path.join(self.objects, "coll", "a.txt.1")), sha)
        with open(os.path.join(self.objects, "coll", "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"someone else's")
        stored = [r for r in H.read_audit(self.audit) if r.get("event") == "file.stored"]
        self.assertEqual(stored[0]["key"], "coll/a.txt.1")
        rc, out, err = H.run_sluice(["reconcile", "-c", self.cfg], timeout=60)
        self.assertEqual(rc, 0, out + err)

        self.setUp()
        self.file_config("reject")
        with open(os.path.join(self.objects, "coll", "a.txt"), "wb") as f:
            f.write(b"someone else's")
        self.add_file("coll/a.txt", 1000)
        p = self.start_uploader()
        self.wait_states({"held"}, 60)
        self.stop(p)
        self.assertIn("collision: reject", self.rows()[0][4])
        self.assertEqual(sorted(os.listdir(os.path.join(self.objects, "coll"))), ["a.txt"])

        self.setUp()
        self.file_config("version")
        with open(os.path.join(self.objects, "coll", "a.txt"), "wb") as f:
            f.write(b"someone else's")
        _, sha, _ = self.add_file("coll/a.txt", 1000)
        p = self.start_uploader()
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assertEqual([r[2] for r in self.rows()], ["coll/a.txt.1"])
        self.assertEqual(H.sha256_file(os.path.join(self.objects, "coll", "a.txt.1")), sha)
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            self.assertEqual(f.read().count("a directory keeps no versions"), 1)


if __name__ == "__main__":
    unittest.main()
