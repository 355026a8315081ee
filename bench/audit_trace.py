#!/usr/bin/env python3
"""
The time `sluice audit trace` takes for one file in a trail of N audit records
(default 1,000,000, about 400 MB), spread over sealed segments and the live file.

The trail is generated in the real record format (seq, ts with microseconds,
host, event, the event's fields, prev, kid, hash, mac): sessions that log in
(auth.success), send files (file.received), some SFTP noise (sftp.op), and the
intake's and uploader's records for each file (file.accepted, upload.retry,
file.stored, file.removed). The hash chain is real; the MACs are random (trace
does not verify). The traced file sits in the middle of the trail.

    python3 bench/audit_trace.py [--records N] [--segments K] [--keep DIR]

Prints the time of each query form (fid, sha256, partner:path), best of 3
with the files in the page cache (and with --cold once after dropping the
cache, as root).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SLUICE = os.environ.get("SLUICE_BIN", os.path.join(HERE, "..", "build", "sluice"))


# any complete crypt(3) hash: the config must load (openssl passwd -6 bench)
HASH = "$6$benchsalt$0kQCiHldjG5kuj8v4yzRhjGa58r4Kq.bbzhE43OQbldhEO7AGV.3.DNU3G9BMAIW5y72HXigxRHEilIdGP80o0"


def hexid(n=32):
    return "%0*x" % (n, random.getrandbits(n * 4))


class Trail:
    def __init__(self, segdir, live, nseg, total):
        self.segdir, self.live = segdir, live
        self.per = total // (nseg + 1) if nseg else total
        self.nseg, self.seq, self.prev = nseg, 0, "0" * 64
        self.t = 1795000000.0
        self.out, self.first = None, 1
        self.sealed = 0
        self.open_next()

    def open_next(self):
        self.out = open(self.live if self.sealed >= self.nseg else
                        os.path.join(self.segdir, "tmp.jsonl"), "w")
        self.first = self.seq + 1

    def emit(self, event, **fields):
        self.seq += 1
        self.t += 0.0004
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.t)) + \
            ".%06dZ" % int((self.t % 1) * 1e6)
        rec = {"seq": self.seq, "ts": ts, "host": "gw1", "event": event}
        rec.update(fields)
        rec["prev"] = self.prev
        rec["kid"] = "92e1dbd5"
        line = json.dumps(rec, separators=(",", ":"))[:-1]
        h = hashlib.sha256(line.encode()).hexdigest()
        self.out.write('%s,"hash":"%s","mac":"%s"}\n' % (line, h, hexid(64)))
        self.prev = h
        if event != "audit.seal" and self.sealed < self.nseg and \
                self.seq - self.first + 1 >= self.per:
            self.seal()

    def seal(self):
        name = "audit-%012d-%012d.jsonl" % (self.first, self.seq + 1)
        self.emit("audit.seal", segment=name, count=self.seq + 1 - self.first + 1,
                  first_seq=self.first, last_seq=self.seq, final_mac=hexid(64),
                  opened_at="2026-11-22T00:00:00.000000Z", reason="size")
        self.sealed += 1
        self.out.close()
        os.rename(os.path.join(self.segdir, "tmp.jsonl"), os.path.join(self.segdir, name))
        self.open_next()
        self.emit("audit.open", after=name, seal_seq=self.seq)


def generate(d, total, nseg):
    random.seed(11)
    segdir = os.path.join(d, "segments")
    os.makedirs(segdir)
    tr = Trail(segdir, os.path.join(d, "audit.jsonl"), nseg, total)
    target = None
    nfile = 0
    while tr.seq < total:
        sid, remote = hexid(), "10.0.%d.%d" % (random.randrange(256), random.randrange(256))
        partner = "bank%02d" % random.randrange(40)
        tr.emit("auth.success", session=sid, remote=remote, partner=partner,
                method="publickey", key="SHA256:" + hexid(43), kex="curve25519-sha256",
                cipher="aes256-gcm@openssh.com", client="SSH-2.0-OpenSSH_9.2p1")
        for _ in range(random.randrange(1, 6)):
            nfile += 1
            fid, sha = hexid(), hexid(64)
            path = "in/%s/tx-%07d.csv.gpg" % (partner, nfile)
            size = random.randrange(1, 1 << 30)
            base = dict(partner=partner, fid=fid, path=path, size=size, sha256=sha)
            tr.emit("sftp.op", session=sid, remote=remote, partner=partner, op="setstat",
                    path=path, status="ok")
            tr.emit("file.received", session=sid, remote=remote, partner=partner, fid=fid,
                    path=path, size=size, sha256=sha, id=nfile,
                    received_at="2026-11-22T03:04:05.120Z")
            if target is None and tr.seq > total // 2:
                target = (fid, sha, partner, path)
            key = "%s/%s" % (partner, path)
            tr.emit("file.accepted", rule="signature", key=key, signer=hexid(40).upper(),
                    signed_at="2026-11-22T03:04:00Z", **base)
            if random.random() < 0.1:
                tr.emit("upload.retry", key=key, error="HTTP 503 SlowDown", attempt=1,
                        retry_in_ms=812, budget_exhausted=False, **base)
            tr.emit("file.stored", key=key, store="s3://bench", bucket="bench",
                    etag='"%s"' % hexid(), version_id=hexid(), checksum="47DE=", parts=0,
                    existed=False, attempts=1, **base)
            tr.emit("file.removed", key=key, **base)
        tr.emit("session.end", session=sid, remote=remote, partner=partner, files=1, bytes=1)
    tr.out.close()
    return target


def config(d):
    p = os.path.join(d, "sluice.yaml")
    with open(p, "w") as f:
        f.write("listen: 127.0.0.1:2222\nstate_dir: %s\naudit:\n  path: %s/audit.jsonl\n"
                "store:\n  url: file://%s/objects\npartners:\n  - name: bank00\n"
                "    password_hash: \"%s\"\n" % (d, d, d, HASH))
    return p


def run(cfg, q):
    t0 = time.perf_counter()
    r = subprocess.run([SLUICE, "audit", "trace", "-c", cfg, q], capture_output=True, text=True)
    return time.perf_counter() - t0, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--segments", type=int, default=9)
    ap.add_argument("--cold", action="store_true",
                    help="also time once after dropping the page cache (root; slows others)")
    ap.add_argument("--keep", help="generate into (or reuse) this directory")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="sluice-trace-bench-")
    tpath = os.path.join(d, "target.json")
    try:
        if os.path.exists(tpath):
            target = json.load(open(tpath))
        else:
            t0 = time.perf_counter()
            target = generate(d, a.records, a.segments)
            json.dump(target, open(tpath, "w"))
            print("generated %d records in %.1f s" % (a.records, time.perf_counter() - t0))
        cfg = config(d)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d)
                   for f in fs if f.endswith(".jsonl"))
        print("trail: %.0f MB in %d segments + the live file" % (size / 1e6, a.segments))
        fid, sha, partner, path = target
        for label, q in (("fid", fid), ("sha256", sha), ("partner:path", partner + ":" + path)):
            best, r = min(run(cfg, q) for _ in range(3))
            print("%-13s %.3f s (exit %d, %d lines)" % (label, best, r.returncode,
                                                         len(r.stdout.splitlines())))
            if r.returncode != 0:
                print(r.stdout, r.stderr, file=sys.stderr)
        if a.cold and os.geteuid() == 0:
            subprocess.run(["sync"])
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            t, r = run(cfg, fid)
            print("fid, cold cache: %.3f s (exit %d)" % (t, r.returncode))
    finally:
        if not a.keep:
            shutil.rmtree(d)


if __name__ == "__main__":
    main()
