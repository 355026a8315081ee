#!/usr/bin/env python3
"""
stored_bench.py - the whole job, from an SFTP client's first byte until the
objects are in S3, on one moto server (IAM auth on) on loopback. NOT a test
(never asserted in ctest); bench/run drives it (see bench/README.md).

    bench/stored_bench.py rclone [--big-mib 256] [--small 300] [--small-kib 16] [--reps 3]
    bench/stored_bench.py load [--rate 50] [--seconds 60] [--kib 16] [--perf]

rclone: put-until-stored, `sluice serve` (S3 store) against `rclone serve
sftp` with an S3 remote on the same moto, the same OpenSSH `sftp` client
and key for both; one big file, then many small ones in one session. The
clock runs from the client's start until every object is in the bucket
(sluice: its audit trail holds a file.stored per file; rclone: a
listing, polled after the client exits). moto runs without IAM auth here:
it refuses rclone's correct signatures of listings (delimiter=/). The two take
turns going first. Prints a JSON line "RESULT {...}" at the end.

load: `sluice serve` with one OpenSSH sftp session fed a `put` every
1/rate s for `seconds`; from the audit trail, per file: CLOSE (the
receipt's received_at) -> imported by the intake (file.received ts) ->
accepted (file.accepted ts) -> stored (file.stored ts): p50/p99 of each
stage and of CLOSE->stored. --perf also records a CPU profile of the whole
gateway's and moto's processes (`perf record -g -p`, children
inherit) while it runs and sorts sluice's samples into
stages by the functions on their stacks. Prints "RESULT {...}".
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness as H  # noqa: E402

MiB = 1024 * 1024
KEEP = os.environ.get("BENCH_KEEP") == "1"


def ts_ms(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


def count_objects(s3, bucket, prefix):
    n, tok = 0, None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix}
        if tok:
            kw["ContinuationToken"] = tok
        r = s3.list_objects_v2(**kw)
        n += r.get("KeyCount", 0)
        if not r.get("IsTruncated"):
            return n
        tok = r["NextContinuationToken"]


def stored_count(audit_path):
    n = 0
    for r in H.read_audit(audit_path):
        if r.get("event") == "file.stored":
            n += 1
    return n


def sftp_put(port, key, lines, timeout=3600, who="", log=None):
    r = H.sftp(port, "acme", key, lines, timeout=timeout)
    if r.rc != 0:
        sys.exit("sftp to %s failed: %r\n%s" % (who, r, log() if log else ""))


def start_gateway(d, moto, keys, prefix, extra=""):
    gw = H.Sluice(d, {"url": "s3://%s/%s/" % (moto.bucket, prefix), "region": "us-east-1",
                      "endpoint": moto.endpoint, "path_style": True},
                  [{"name": "acme", "authorized_keys": [keys.pub("acme")]}], env=moto.env(),
                  extra_config=extra)
    return gw.start()


class Rclone:
    def __init__(self, work, moto, keys):
        self.port = H.free_port()
        ak = os.path.join(work, "rclone_authorized_keys")
        with open(ak, "w") as f:
            f.write(keys.pub("acme").strip() + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"RCLONE_CONFIG_MOTO_TYPE": "s3", "RCLONE_CONFIG_MOTO_PROVIDER": "Other",
                    "RCLONE_CONFIG_MOTO_ACCESS_KEY_ID": moto.access_key,
                    "RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY": moto.secret_key,
                    "RCLONE_CONFIG_MOTO_ENDPOINT": moto.endpoint,
                    "RCLONE_CONFIG_MOTO_REGION": "us-east-1",
                    "RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE": "true",
                    # moto sends "x-amz-version-id: null" for an unversioned
                    # bucket; after a multipart upload rclone then HEADs
                    # ?versionId=null, which moto refuses with 400 and the
                    # CLOSE fails. no_head skips that verifying HEAD (as
                    # sluice skips its own when the PUT echoes the checksum):
                    # if anything it makes rclone faster
                    "RCLONE_CONFIG_MOTO_NO_HEAD": "true",
                    "RCLONE_CACHE_DIR": os.path.join(work, "rclone-cache")})
        self.log = os.path.join(work, "rclone.log")
        self.proc = subprocess.Popen(
            ["rclone", "--config", "/dev/null", "serve", "sftp", "moto:%s/rclone" % moto.bucket,
             "--addr", "127.0.0.1:%d" % self.port, "--authorized-keys", ak,
             "--vfs-cache-mode", "writes", "--vfs-write-back", "0s"],
            stdin=subprocess.DEVNULL, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            env=env, start_new_session=True)
        end = time.monotonic() + 30
        while not H.port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > end:
                sys.exit("rclone serve sftp did not start:\n" + H.tail(self.log))
            time.sleep(0.1)

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def cmd_rclone(a):
    if not shutil.which("rclone"):
        print("RESULT " + json.dumps({"skipped": "rclone is not installed"}))
        return
    work = tempfile.mkdtemp(prefix="sluice-storedbench-")
    # IAM auth off: moto refuses rclone's correct signatures of listings
    # (delimiter=/, REFERENCE.md); both gateways use this one moto
    moto = H.Moto(work, auth=False).start()
    keys = H.Keys(os.path.join(work, "keys"))
    key = keys.get("acme")
    gw = rc = None
    runs = []
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        big = os.path.join(data, "big.bin")
        H.write_random_file(big, a.big_mib * MiB)
        smalls = []
        for i in range(a.small):
            p = os.path.join(data, "s%05d.bin" % i)
            H.write_random_file(p, a.small_kib * 1024)
            smalls.append(p)
        gw = start_gateway(os.path.join(work, "gw"), moto, keys, "sluice")
        rc = Rclone(work, moto, keys)
        stored0 = [0]

        def sluice_job(lines, n):
            t = time.monotonic()
            sftp_put(gw.port, key, lines, who="sluice", log=gw.log_tail)
            want = stored0[0] + n
            while stored_count(gw.audit_path) < want:
                if time.monotonic() - t > 3600:
                    sys.exit("sluice did not store everything:\n" + gw.log_tail())
                time.sleep(0.05)
            dt = time.monotonic() - t
            stored0[0] = want
            return dt

        def rclone_job(lines, n, prefix):
            t = time.monotonic()
            sftp_put(rc.port, key, lines, who="rclone serve sftp", log=lambda: H.tail(rc.log))
            while count_objects(moto.s3, moto.bucket, prefix) < n:
                if time.monotonic() - t > 3600:
                    sys.exit("rclone did not store everything:\n" + H.tail(rc.log))
                time.sleep(0.1)
            return time.monotonic() - t

        for rep in range(a.reps):
            res = {}
            jobs = [
                ("big", "sluice", lambda: sluice_job(["put %s big%d.bin" % (big, rep)], 1)),
                ("big", "rclone", lambda: rclone_job(["put %s big%d.bin" % (big, rep)], 1,
                                                     "rclone/big%d.bin" % rep)),
                ("small", "sluice", lambda: sluice_job(
                    ["mkdir s%d" % rep] + ["put %s s%d/" % (p, rep) for p in smalls], len(smalls))),
                ("small", "rclone", lambda: rclone_job(
                    ["mkdir s%d" % rep] + ["put %s s%d/" % (p, rep) for p in smalls], len(smalls),
                    "rclone/s%d/" % rep)),
            ]
            for what in ("big", "small"):
                pair = [j for j in jobs if j[0] == what]
                if rep % 2:
                    pair.reverse()
                for _, who, fn in pair:
                    res["%s %s" % (what, who)] = fn()
            # keep moto's memory down: drop the big objects
            for k in [o["Key"] for o in moto.s3.list_objects_v2(Bucket=moto.bucket).get("Contents", [])
                      if "big" in o["Key"]]:
                moto.s3.delete_object(Bucket=moto.bucket, Key=k)
            runs.append(res)
            print("rep %d: %s" % (rep, ", ".join("%s %.2fs" % kv for kv in res.items())), flush=True)
    finally:
        for x in (gw, rc):
            if x:
                x.stop()
        moto.stop()
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work dir kept:", work)
    print("RESULT " + json.dumps({"big_mib": a.big_mib, "small": a.small, "small_kib": a.small_kib,
                                  "runs": runs}))


# ---- load: CLOSE -> stored under a steady rate, stages, profile ------------

STAGES = [  # (stage, substrings of a frame's symbol), first match from the leaf wins
    ("fsync, disk I/O", ("fsync", "fdatasync", "ext4_sync_file", "jbd2", "file_write_and_wait",
                         "iowrite16", "virtio", "blk_")),
    ("SHA-256", ("sha256", "SHA256", "EVP_Digest", "sha256_block")),
    ("PUT", ("s3_put_single", "s3_put_multipart", "mp_part")),
    ("HEAD", ("s3_verify", "s3_head")),
    ("HTTP, TLS, SigV4 (other)", ("curl", "Curl_", "SSL_", "ssl3_", "tls_", "s3_")),
    ("SSH transport (ciphers, channel)", ("aes", "gcm", "ghash", "ssh_", "chacha", "poly1305")),
    ("receipt", ("receipt", "xattr")),
    ("state db (SQLite)", ("sqlite3",)),
    ("intake", ("intake", "gpgme", "completion")),
    ("audit", ("audit_", "hmac", "HMAC")),
    ("SFTP engine", ("sftp_",)),
    ("process start (exec, sandbox)", ("execve", "landlock", "seccomp", "do_exit", "mmap",
                                       "_dl_", "do_lookup_x", "page_fault")),
    ("file metadata (open, link, rename, unlink, stat)", (
        "openat", "rename", "unlink", "linkat", "mkdir", "statx", "getdents", "dentry", "d_lookup",
        "recently_deleted", "find_inode")),
    ("file reads and writes", ("sys_write", "sys_read", "pwrite", "pread", "filemap_", "ext4_")),
    ("sockets", ("tcp_", "sock_", "inet_", "unix_", "sendmsg", "recvmsg")),
    ("waiting, scheduling, wake-ups", ("finish_task_switch", "schedule", "futex", "poll", "epoll",
                                       "spin_unlock_irq", "softirq")),
]


def classify(frames):
    for sym in frames:
        for stage, needles in STAGES:
            if any(n in sym for n in needles):
                return stage
    return "other"


def perf_stages(data):
    """{stage: samples} of processes whose comm starts with "sluice", and
    {comm: samples} of every process (the whole machine was recorded)."""
    p = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,ip,sym"], capture_output=True,
                       text=True, errors="replace")
    stages, comms = {}, {}
    comm, frames = None, []

    def flush():
        if comm is None:
            return
        comms[comm] = comms.get(comm, 0) + 1
        if comm.startswith("sluice"):
            st = classify(frames)
            stages[st] = stages.get(st, 0) + 1
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        if line[0] == "\t":
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "")
        else:
            flush()
            comm, frames = line.rsplit(None, 1)[0].strip(), []
    flush()
    return stages, comms


def descendants(root):
    kids = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/stat" % e) as f:
                    st = f.read()
                kids.setdefault(int(st[st.rfind(")") + 2:].split()[1]), []).append(int(e))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cmd_load(a):
    work = tempfile.mkdtemp(prefix="sluice-loadbench-")
    moto = H.Moto(work).start()
    keys = H.Keys(os.path.join(work, "keys"))
    key = keys.get("acme")
    gw = perf = None
    n = int(a.rate * a.seconds)
    out = {"rate": a.rate, "seconds": a.seconds, "kib": a.kib, "files": n}
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        for i in range(n):
            H.write_random_file(os.path.join(data, "f%05d" % i), a.kib * 1024)
        gw = start_gateway(os.path.join(work, "gw"), moto, keys, "load")
        if a.perf:
            pdata = os.path.join(work, "perf.data")
            # the gateway's processes and moto's, not the whole machine
            # (other work shares it); sessions forked later inherit
            pids = [gw.proc.pid, moto.proc.pid] + descendants(gw.proc.pid)
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "499", "-o", pdata, "-p",
                                     ",".join(map(str, pids))],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        cmd = ["sftp", "-b", "-", "-P", str(gw.port), "-i", key] + H.SSH_COMMON + [
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "acme@127.0.0.1"]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        for i in range(n):
            delay = t0 + i / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            p.stdin.write("put %s f%05d\n" % (os.path.join(data, "f%05d" % i), i))
            p.stdin.flush()
        p.stdin.close()
        if p.wait(600) != 0:
            sys.exit("sftp failed: " + p.stderr.read()[-2000:])
        out["client_seconds"] = time.monotonic() - t0
        end = time.monotonic() + 600
        while stored_count(gw.audit_path) < n and time.monotonic() < end:
            time.sleep(0.2)
        out["drain_seconds"] = time.monotonic() - t0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(120)
        recs = gw.audit_records()
        byfid = {}
        for r in recs:
            if r.get("event") in ("file.received", "file.accepted", "file.stored") and r.get("fid"):
                byfid.setdefault(r["fid"], {})[r["event"]] = r
        lat = {"close_to_stored": [], "close_to_imported": [], "imported_to_accepted": [],
               "accepted_to_stored": []}
        for f in byfid.values():
            if not all(k in f for k in ("file.received", "file.accepted", "file.stored")):
                continue
            close = ts_ms(f["file.received"]["received_at"])
            imp, acc, sto = (ts_ms(f[k]["ts"]) for k in ("file.received", "file.accepted",
                                                          "file.stored"))
            lat["close_to_stored"].append(sto - close)
            lat["close_to_imported"].append(imp - close)
            lat["imported_to_accepted"].append(acc - imp)
            lat["accepted_to_stored"].append(sto - acc)
        out["stored"] = len(lat["close_to_stored"])
        out["stages_ms"] = {k: {"p50": pct(v, 50), "p99": pct(v, 99),
                                "mean": sum(v) / len(v) if v else None} for k, v in lat.items()}
        if perf:
            stages, comms = perf_stages(pdata)
            out["profile"] = {"stages": stages, "comms": comms}
    finally:
        if perf and perf.poll() is None:
            perf.send_signal(signal.SIGINT)
            perf.wait(120)
        if gw:
            gw.stop()
        moto.stop()
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work dir kept:", work)
    print("RESULT " + json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(HERE, "..", "build", "sluice"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rclone")
    r.add_argument("--big-mib", type=int, default=256)
    r.add_argument("--small", type=int, default=300)
    r.add_argument("--small-kib", type=int, default=16)
    r.add_argument("--reps", type=int, default=3)
    lo = sub.add_parser("load")
    lo.add_argument("--rate", type=float, default=50)
    lo.add_argument("--seconds", type=float, default=60)
    lo.add_argument("--kib", type=int, default=16)
    lo.add_argument("--perf", action="store_true")
    a = ap.parse_args()
    H.SLUICE_BIN = os.path.abspath(a.sluice)
    {"rclone": cmd_rclone, "load": cmd_load}[a.cmd](a)


if __name__ == "__main__":
    main()
