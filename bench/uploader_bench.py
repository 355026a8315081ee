#!/usr/bin/env python3
"""
uploader_bench.py - sluice's uploader against `aws s3 cp` and
`curl --aws-sigv4` to the same moto S3 server (IAM auth on) in one run.
NOT a test (never in ctest).

    bench/uploader_bench.py [--sluice build/sluice] [--big-mib 256] [--small 2000]
                            [--small-kib 16] [--latency 50] [--workers N]

  1. one big file (default 256 MiB: moto keeps objects in memory and grows
     to several GiB with a 1 GiB object; --big-mib 1024 for the full size)
  2. N small files (default 2,000 x 16 KiB), also by "sdk": boto3 with 10
     threads doing what sluice does per file (PUT with x-amz-checksum-sha256
     and If-None-Match, then HEAD with checksum mode and compare), the
     baseline for the same work; the CLI sends one PUT per file and checks
     nothing afterwards
  3. CLOSE->stored latency of 64 KiB files at idle: `sluice serve`, the
     OpenSSH sftp client puts one file at a time; latency is the audit
     trail's file.stored ts minus file.received ts (p50, p99)
and peak RSS of each uploader, moto's CPU time and requests per file (moto
is the bottleneck on 2 cores: its CPU per request is the price of a request)
and the ratio within each repetition (the clients take turns going first;
this VM's speed drifts within minutes). sluice's runs feed files straight into the
spool as the intake leaves them ("accepted") and time until all are
stored. curl gets x-amz-content-sha256 precomputed (curl 7.88 does not add
it); its small files go 4 at a time (sluice's old default workers), the AWS
CLI uses its default of 10 concurrent requests.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness as H  # noqa: E402

MiB = 1024 * 1024


def run_rss(argv, env=None):
    """Runs argv to completion: (seconds, peak RSS KiB). GNU time measures the
    RSS (a fork of this Python process would count its own RSS)."""
    fd, out = tempfile.mkstemp()
    os.close(fd)
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    elapsed = time.monotonic() - t
    if p.returncode != 0:
        sys.exit("%s failed: %s" % (argv[0], p.stderr.decode(errors="replace")[-2000:]))
    with open(out) as f:
        rss = int(f.read().split()[-1])
    os.unlink(out)
    return elapsed, rss


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class SluiceUploader:
    workers = 0

    def __init__(self, sluice, moto, work, name):
        self.sluice, self.moto, self.dir = sluice, moto, os.path.join(work, name)
        self.state = os.path.join(self.dir, "state")
        for d in ("spool/ready", "spool/incoming", "landing", "quarantine"):
            os.makedirs(os.path.join(self.state, d), exist_ok=True)
        self.cfg = os.path.join(self.dir, "cfg.yaml")
        with open(self.cfg, "w") as f:
            f.write(H.render_config(H.free_port(), [os.path.join(self.dir, "hk")], self.state,
                                    os.path.join(self.dir, "audit.jsonl"),
                                    {"url": "s3://%s/" % moto.bucket, "region": "us-east-1",
                                     "endpoint": moto.endpoint, "path_style": True},
                                    [{"name": "acme", "password_hash": H.password_hash("x")}],
                                    extra="uploader:\n  workers: %d" % self.workers
                                    if self.workers else ""))
        # run as root, sluice's roles run as its service user: give them the
        # work dir as the integration tests do
        H.share_with_gateway(self.dir)
        subprocess.run([sluice, "queue", "list", "-c", self.cfg], check=True,
                       stdout=subprocess.DEVNULL)
        self.db = os.path.join(self.state, "sluice.db")

    def add(self, src, key):
        fid = secrets.token_hex(16)
        dst = os.path.join(self.state, "spool", "ready", fid)
        os.link(src, dst)
        with open(src, "rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        return (fid, "acme", key, os.path.getsize(src), sha, "accepted", key)

    def run(self, rows):
        db = sqlite3.connect(self.db, timeout=30)
        now = int(time.time() * 1000)
        db.executemany("INSERT INTO files (fid, partner, path, size, sha256, state, object_key, "
                       "received_ms, updated_ms) VALUES (?,?,?,?,?,?,?,%d,%d)" % (now, now), rows)
        db.commit()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.moto.env())
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        t = time.monotonic()
        p = subprocess.Popen([self.sluice, "uploader", "-c", self.cfg], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.dir, "log"), "w"), env=env)
        rss = 0
        while True:
            rss = max(rss, peak_rss_kib(p.pid))
            n = db.execute("SELECT count(*) FROM files WHERE state != 'removed'").fetchone()[0]
            if n == 0:
                break
            if p.poll() is not None:
                sys.exit("sluice uploader exited; see %s/log" % self.dir)
            time.sleep(0.02)
        elapsed = time.monotonic() - t
        rss = max(rss, peak_rss_kib(p.pid))
        p.terminate()
        p.wait(30)
        db.close()
        return elapsed, rss


def sdk_put_verify(moto, paths, prefix, threads=10):
    """The same work as sluice's per file, with boto3 (one client, 10 threads):
    conditional PUT with the SHA-256 checksum, then HEAD with checksum mode
    and compare. Returns (seconds, peak RSS KiB of this process)."""
    import base64
    import botocore.config
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                      aws_access_key_id=moto.access_key, aws_secret_access_key=moto.secret_key,
                      config=botocore.config.Config(s3={"addressing_style": "path"},
                                                    max_pool_connections=threads,
                                                    retries={"mode": "standard"}))
    def one(path):
        with open(path, "rb") as f:
            body = f.read()
        b64 = base64.b64encode(hashlib.sha256(body).digest()).decode()
        key = prefix + os.path.basename(path)
        s3.put_object(Bucket=moto.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256",
                      ChecksumSHA256=b64, IfNoneMatch="*")
        h = s3.head_object(Bucket=moto.bucket, Key=key, ChecksumMode="ENABLED")
        if h.get("ChecksumSHA256") != b64:
            raise RuntimeError("checksum differs at %s" % key)
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, paths))
    return time.monotonic() - t, peak_rss_kib(os.getpid())


class MotoMeter:
    """moto's CPU seconds and logged requests between two points."""

    def __init__(self, moto):
        self.moto = moto

    def _cpu(self):
        with open("/proc/%d/stat" % self.moto.proc.pid) as f:
            x = f.read().rsplit(")", 1)[1].split()
        return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")

    def _requests(self):
        with open(self.moto.log, errors="replace") as f:
            return sum(1 for line in f if '" 2' in line or '" 4' in line or '" 5' in line)

    def __enter__(self):
        self.c0, self.r0 = self._cpu(), self._requests()
        return self

    def __exit__(self, *exc):
        self.cpu, self.requests = self._cpu() - self.c0, self._requests() - self.r0


def curl_put(moto, path, key, sha):
    return ["curl", "-sS", "-f", "-o", "/dev/null", "-T", path,
            "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "%s:%s" % (moto.access_key, moto.secret_key),
            "-H", "x-amz-content-sha256: " + sha,
            "%s/%s/%s" % (moto.endpoint, moto.bucket, key)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(HERE, "..", "build", "sluice"))
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--small-kib", type=int, default=16)
    ap.add_argument("--latency", type=int, default=50)
    ap.add_argument("--workers", type=int, default=0, help="uploader.workers (default: 10)")
    ap.add_argument("--reps", type=int, default=1, help="repetitions of phases 1-2 (median)")
    a = ap.parse_args()
    SluiceUploader.workers = a.workers
    sluice = os.path.abspath(a.sluice)
    H.SLUICE_BIN = sluice
    work = tempfile.mkdtemp(prefix="sluice-upbench-")
    moto = H.Moto(work).start()
    runs = []
    try:
        big = os.path.join(work, "big.bin")
        H.write_random_file(big, a.big_mib * MiB)
        small_dir = os.path.join(work, "small")
        os.makedirs(small_dir)
        smalls = []
        for i in range(a.small):
            pth = os.path.join(small_dir, "s%05d.bin" % i)
            H.write_random_file(pth, a.small_kib * 1024)
            smalls.append(pth)
        awsenv = dict(os.environ, AWS_ACCESS_KEY_ID=moto.access_key,
                      AWS_SECRET_ACCESS_KEY=moto.secret_key, AWS_DEFAULT_REGION="us-east-1",
                      AWS_EC2_METADATA_DISABLED="true")
        for k in list(awsenv):
            if k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
                del awsenv[k]

        for rep in range(a.reps):
            res = {}
            runs.append(res)

            def big_sluice():
                s = SluiceUploader(sluice, moto, work, "big%d" % rep)
                return s.run([s.add(big, "sluice/big.bin")])

            def small_sluice():
                s = SluiceUploader(sluice, moto, work, "small%d" % rep)
                return s.run([s.add(p, "sluice/small%d/" % rep + os.path.basename(p))
                              for p in smalls])

            def small_curl():
                shas = {p: H.sha256_file(p) for p in smalls}
                t = time.monotonic()
                rss = 0
                with concurrent.futures.ThreadPoolExecutor(4) as ex:
                    for r in ex.map(lambda p: run_rss(curl_put(moto, p, "curl/small%d/" % rep +
                                                               os.path.basename(p), shas[p])), smalls):
                        rss = max(rss, r[1])
                return time.monotonic() - t, rss

            phases = [
                ("big", [
                    ("sluice", big_sluice),
                    ("aws", lambda: run_rss(["aws", "s3", "cp", "--only-show-errors", "--endpoint-url",
                                             moto.endpoint, big, "s3://%s/aws/big.bin" % moto.bucket],
                                            awsenv)),
                    ("curl", lambda: run_rss(curl_put(moto, big, "curl/big.bin", H.sha256_file(big)))),
                ]),
                ("small", [
                    ("sluice", small_sluice),
                    ("aws", lambda: run_rss(["aws", "s3", "cp", "--only-show-errors", "--recursive",
                                             "--endpoint-url", moto.endpoint, small_dir,
                                             "s3://%s/aws/small%d/" % (moto.bucket, rep)], awsenv)),
                    ("sdk", lambda: sdk_put_verify(moto, smalls, "sdk/small%d/" % rep)),
                    ("curl", small_curl),
                ]),
            ]
            for what, clients in phases:
                k = rep % len(clients)		# who goes first takes turns
                for who, fn in clients[k:] + clients[:k]:
                    with MotoMeter(moto) as m:
                        sec, rss = fn()
                    res["%s %s" % (what, who)] = (sec, rss, m.cpu, m.requests)
                if what == "big":
                    for who in ("sluice", "aws", "curl"):
                        moto.s3.delete_object(Bucket=moto.bucket, Key="%s/big.bin" % who)
            print("rep %d: %s" % (rep + 1, ", ".join("%s %.2fs" % (k, v[0]) for k, v in res.items())),
                  flush=True)

        # 3. CLOSE -> stored latency through sluice serve and sftp
        lat = latency(sluice, moto, work, a.latency)
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)	# gigabytes otherwise

    print("\nsluice uploader vs aws s3 cp, boto3 doing the same work, curl --aws-sigv4; moto on "
          "loopback (median of %d reps)" % len(runs))
    print("%-26s %9s %13s %13s %14s %14s" % ("run", "seconds", "MB/s|files/s", "peak RSS MiB",
                                              "moto ms/file", "requests/file"))
    units = (("big", "MB/s", a.big_mib * MiB / 1e6, 1), ("small", "files/s", a.small, a.small))
    for what, unit, amount, nfiles in units:
        for who in ("sluice", "aws", "sdk", "curl"):
            key = "%s %s" % (what, who)
            if key not in runs[0]:
                continue
            sec = statistics.median(r[key][0] for r in runs)
            rss = max(r[key][1] for r in runs)
            cpu = statistics.median(r[key][2] for r in runs)
            req = statistics.median(r[key][3] for r in runs)
            print("%-26s %9.2f %13.1f %13.1f %14.1f %14.2f" % (
                "%s (%s) %s" % (what, unit, who), sec, amount / sec, rss / 1024,
                cpu * 1000 / nfiles, req / nfiles))
        for who in ("aws", "sdk", "curl"):
            key = "%s %s" % (what, who)
            if key not in runs[0]:
                continue
            per = sorted(r[key][0] / r[what + " sluice"][0] for r in runs)
            med = statistics.median(r[key][0] for r in runs) / statistics.median(
                r[what + " sluice"][0] for r in runs)
            print("  %-5s sluice's throughput / %-4s's: %.2fx (median of per-rep ratios %.2fx: %s)"
                  % (what, who, med, statistics.median(per), " ".join("%.2f" % x for x in per)))
    if lat:
        lat.sort()
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print("CLOSE->stored, %d x 64 KiB at idle: p50 %.0f ms, p99 %.0f ms" % (len(lat), p50, p99))


def ts_ms(s):
    import datetime
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000


def latency(sluice, moto, work, n):
    d = os.path.join(work, "serve")
    keys = H.Keys(os.path.join(d, "keys"))
    gw = H.Sluice(d, {"url": "s3://%s/lat/" % moto.bucket, "region": "us-east-1",
                      "endpoint": moto.endpoint, "path_style": True},
                  [{"name": "acme", "authorized_keys": [keys.pub("acme")]}], env=moto.env())
    gw.start()
    try:
        src = os.path.join(d, "f.bin")
        for i in range(n):
            H.write_random_file(src, 64 * 1024)
            r = H.sftp(gw.port, "acme", keys.get("acme"), ["put %s l%03d.bin" % (src, i)])
            if r.rc != 0:
                sys.exit("sftp failed: %r" % (r,))
            time.sleep(0.3)
        H.poll(lambda: sum(1 for r in gw.audit_records() if r.get("event") == "file.stored") >= n, 60)
        recs = gw.audit_records()
        got = {r["fid"]: ts_ms(r["ts"]) for r in recs if r.get("event") == "file.received" and "fid" in r}
        out = [ts_ms(r["ts"]) - got[r["fid"]] for r in recs
               if r.get("event") == "file.stored" and r.get("fid") in got]
        return out
    finally:
        gw.stop()


if __name__ == "__main__":
    main()
