#!/usr/bin/env python3
"""
soak.py - soak and chaos run of a whole sluice gateway (issue #13).

Many concurrent OpenSSH sftp sessions from several partners (keys and a
password) upload a mix of sizes under every completion rule (temp-name
renames, .done markers, manifests, detached signatures, sign-then-encrypt
with real gpg keys made at run time, uploads resumed after a cut
connection), while a chaos loop SIGKILLs sessions and the intake, uploader
and audit writer, puts S3 faults between the uploader and moto (outage,
503 storm, resets, slow answers, flipped bytes, clock skew) and fills the
spool file system (a tmpfs) to its server.min_free_space floor, then frees
it. At the end it checks:

  - every acknowledged file is in S3 byte-identical, exactly once, and
    `sluice reconcile` proves every stored file;
  - nothing unfinished or unverified was shipped (bad signatures and
    tampered ciphertext are quarantined: file.rejected);
  - `sluice audit verify -c` passes;
  - a full disk failed writes with a reason (client, log, audit) and the
    gateway took uploads again by itself once space returned;
  - RSS and open fds of the long-lived roles are back near their
    warm-up baseline after a quiet period;

and prints files/s, MB/s, CLOSE-to-stored latency (p50/p99), peak RSS,
upload retries and kills survived. Exit status 0 only if every check held.

    tests/soak/soak.py                          # 2 minutes, 24 sessions (ctest soak.short)
    tests/soak/soak.py --duration 3h --sessions 200 --max-size 1GiB

Uses tests/integration/harness.py (moto with IAM auth, keys, configs, the
gateway) and faultproxy.py; SLUICE_BIN picks the binary. Needs root for the
tmpfs (without it the disk-full phase is skipped and says so).
"""

import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as H  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PASSWORD = "soak-" + os.urandom(9).hex()   # made at run time, never logged
ROLE_COMMS = {"supervisor": "sluice", "audit": "sluice-audit", "listener": "sluice-listener",
              "intake": "sluice-intake", "uploader": "sluice-uploader", "control": "sluice-control"}
KILLABLE = ("intake", "uploader", "audit")
LONG_LIVED = ("supervisor", "listener", "intake", "uploader", "audit")


def parse_size(s):
    m = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("size like 4MiB: %r" % s)
    mult = {"": 1, "K": KiB, "M": MiB, "G": GiB}[(m.group(2) or "")[:1].upper()]
    return int(m.group(1)) * mult


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", s.strip())
    if not m:
        raise argparse.ArgumentTypeError("duration like 120, 90s, 30m, 3h: %r" % s)
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def log(fmt, *a):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), fmt % a if a else fmt), flush=True)


def gpg(home, *args, **kw):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--yes", "--quiet",
                           "--pinentry-mode", "loopback", "--passphrase", ""] + list(args),
                          check=True, capture_output=True, timeout=120, **kw)


def fingerprint(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]


def is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------------------
# processes of the gateway

def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def proc_usage(pid):
    """(rss bytes, open fds) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = [int(l.split()[1]) * KiB for l in f if l.startswith("VmRSS:")]
        return (rss[0] if rss else 0), len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, IndexError):
        return None


def proc_fds(pid):
    """What each fd of pid points at (for a report of what grew)."""
    out = []
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass
    except OSError:
        pass
    return sorted(out)


def fd_kinds(links):
    c = collections.Counter()
    for l in links:
        c[re.sub(r"\[\d+\]", "", l) if ":" in l and not l.startswith("/") else l] += 1
    return c


class Gateway:
    """The gateway's process group: its roles by process title."""

    def __init__(self, gw):
        self.gw = gw

    def members(self):
        out = collections.defaultdict(list)
        if not self.gw.alive():
            return out
        sup = self.gw.proc.pid
        for pid in H.group_members(sup):
            comm = proc_comm(pid)
            if pid == sup:
                out["supervisor"].append(pid)
                continue
            for role, c in ROLE_COMMS.items():
                if comm == c and role != "supervisor":
                    out[role].append(pid)
            if comm == "sluice-session":
                out["session"].append(pid)
        return out

    def role_pid(self, role):
        pids = self.members().get(role) or []
        return pids[0] if len(pids) == 1 else None


# ---------------------------------------------------------------------------
# a bare SFTP v3 writer (OpenSSH's sftp prints "Failure" and drops the
# server's message: this reads the status code and its text)

SSH_FX_OK, SSH_FX_FAILURE = 0, 4
NO_SESSION = "no session"   # sftp_raw_write's why when ssh ended before INIT's reply
RESUME_ROOM = 64 * MiB      # above the floor before and after a 4 MiB put: room enough for it
UPLOADER_WORKERS = 10       # uploader.workers, the default, set explicitly: the fd check counts them


def sftp_raw_write(port, user, key, name, size, timeout=60):
    """Opens name for writing and writes size bytes in 32 KiB WRITEs, one at
    a time, until a WRITE is refused. (code, message) of the first status
    other than OK (CLOSE's if every WRITE passed), or (None, why); why
    starts with NO_SESSION when ssh ended before the SFTP INIT's reply
    (e.g. ssh's ConnectTimeout on a machine at load 60: nothing was asked)."""
    import struct
    import tempfile
    cmd = (["ssh", "-s", "-p", str(port), "-i", key] + H.SSH_COMMON +
           ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "%s@%s" % (user, H.LOCALHOST), "sftp"])
    errf = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=errf, start_new_session=True)
    H._live.add(p)

    def send(t, body):
        p.stdin.write(struct.pack(">IB", len(body) + 1, t) + body)
        p.stdin.flush()

    def recv():
        hdr = p.stdout.read(5)
        if len(hdr) < 5:
            raise EOFError("the session ended")
        n, t = struct.unpack(">IB", hdr)
        return t, p.stdout.read(n - 1)

    def sstr(b):
        return struct.pack(">I", len(b)) + b

    def status(body):
        code, = struct.unpack(">I", body[4:8])
        n, = struct.unpack(">I", body[8:12])
        return code, body[12:12 + n].decode("utf-8", "replace")
    def ssh_said():
        errf.seek(0)
        return errf.read().decode("utf-8", "replace").strip()[-300:]
    timer = threading.Timer(timeout, H._kill_group, (p,))
    timer.start()
    try:
        try:
            send(1, struct.pack(">I", 3))                              # INIT
            recv()
        except (EOFError, OSError) as e:
            H._kill_group(p)        # ssh has said what it will; wait() cannot hang
            p.wait(10)
            return None, "%s: %r; ssh: %s" % (NO_SESSION, e, ssh_said())
        send(3, struct.pack(">I", 1) + sstr(name.encode()) + struct.pack(">II", 0x1a, 0))  # OPEN
        t, body = recv()
        if t != 102:                                                   # HANDLE
            return status(body)
        handle = body[8:8 + struct.unpack(">I", body[4:8])[0]]
        chunk = os.urandom(32 * KiB)
        off, rid = 0, 2
        while off < size:
            send(6, struct.pack(">I", rid) + sstr(handle) + struct.pack(">Q", off) + sstr(chunk))
            code, msg = status(recv()[1])
            if code != SSH_FX_OK:
                send(4, struct.pack(">I", rid + 1) + sstr(handle))     # CLOSE
                return code, msg
            off += len(chunk)
            rid += 1
        send(4, struct.pack(">I", rid) + sstr(handle))
        return status(recv()[1])
    except (EOFError, OSError, struct.error) as e:
        return None, "%r; ssh: %s" % (e, ssh_said())
    finally:
        timer.cancel()
        H._kill_group(p)
        p.wait(10)
        H._live.discard(p)
        errf.close()


# ---------------------------------------------------------------------------
# the run

class Soak:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.files = {}          # object key -> record (see note())
        self.failures = []       # check failures (strings)
        self.stats = collections.Counter()
        self.kills = collections.Counter()
        self.peak = {}           # role -> peak rss
        self.stop_load = threading.Event()
        self.stop_chaos = threading.Event()
        self.disk_full = threading.Event()
        self.seq = 0
        self.fail_samples = []
        self.space_reasons = set()
        self.asan = is_asan(H.SLUICE_BIN)

    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)
        log("FAIL: %s", msg)

    # -- setup

    def setup(self):
        H.require_binary()
        self.tmp = tempfile.mkdtemp(prefix="sluice-soak-")
        t = self.tmp
        self.keys = H.Keys(os.path.join(t, "ssh"))
        log("gpg keys (partner signing key, gateway decryption key)")
        self.pgp, self.gwhome = os.path.join(t, "pgp-partner"), os.path.join(t, "pgp-gateway")
        for d in (self.pgp, self.gwhome):
            os.makedirs(d, mode=0o700)
        gpg(self.pgp, "--quick-gen-key", "Acme <ops@acme.test>", "ed25519", "sign", "never")
        self.fpr = fingerprint(self.pgp, "ops@acme.test")
        gpg(self.gwhome, "--quick-gen-key", "Gateway <gw@sluice.test>", "default", "default", "never")
        self.gwfpr = fingerprint(self.gwhome, "gw@sluice.test")
        keyring = os.path.join(t, "partner.asc")
        with open(keyring, "wb") as f:
            f.write(gpg(self.pgp, "--export", "--armor", self.fpr).stdout)
        seckey = os.path.join(t, "gateway.sec.asc")
        with os.fdopen(os.open(seckey, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(gpg(self.gwhome, "--export-secret-keys", "--armor", self.gwfpr).stdout)
        gpg(self.pgp, "--import", input=gpg(self.gwhome, "--export", "--armor", self.gwfpr).stdout)

        # the spool: a small tmpfs, so the disk-full phase fills it fast
        self.spool = os.path.join(t, "spoolfs")
        os.makedirs(self.spool)
        self.floor = self.a.floor
        self.tmpfs = False
        if os.geteuid() == 0 and not self.a.no_tmpfs:
            size = self.a.spool_size or max(512 * MiB, 4 * self.a.max_size + 128 * MiB)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size,
                                "sluice-soak", self.spool], capture_output=True, text=True)
            if r.returncode == 0:
                self.tmpfs = True
            else:
                log("no tmpfs (%s): the disk-full phase is skipped", r.stderr.strip())
        else:
            log("not root or --no-tmpfs: the disk-full phase is skipped")

        self.moto = H.Moto(t).start()
        self.proxy = FaultProxy(self.moto.endpoint, rate=0, seed=self.a.seed).start()
        # a reset or a client gone mid-answer is the point here, not news
        self.proxy.server.handle_error = lambda request, address: None
        store = {"url": "s3://%s" % H.BUCKET, "region": "us-east-1",
                 "endpoint": self.proxy.endpoint, "path_style": True}
        sig = ('    signature:\n      mode: %%s\n      signers: ["%s"]\n      keyring: %s\n'
               '      wait: 60s\n' % (self.fpr, H.yaml_str(keyring)))
        self.partners = {
            "alpha": "",                                    # keys: plain, temp names, resumes
            "bravo": "",                                    # key and password
            "mark": '    completion:\n      marker: ".done"\n',
            "mani": '    completion:\n      manifest: "*.manifest"\n      manifest_timeout: 1h\n',
            "sig": sig % "detached",
            "enc": (sig % "encrypted") + "      decryption_key: %s\n" % H.yaml_str(seckey),
        }
        plist = []
        for n in self.partners:
            p = {"name": n, "authorized_keys": [self.keys.pub(n)]}
            if n == "bravo":
                p["password_hash"] = H.password_hash(PASSWORD)
            plist.append(p)
        n = max(64, 2 * self.a.sessions + 16)
        # every client here is 127.0.0.1: the chaos (kills, a machine at
        # load 60) must not get the soak's own address banned, so only 64
        # failures within a second ban it, for a second
        extra = ("server:\n  max_sessions: %d\n  max_sessions_per_partner: %d\n"
                 "  max_sessions_per_address: %d\n  max_startups: %d\n"
                 "  max_startups_per_address: %d\n  min_free_space: %d\n"
                 "  visible_for: 5s\n  ban:\n    failures: 64\n    window: 1s\n    duration: 1s\n"
                 "uploader:\n  max_backoff: 2s\n  workers: %d\n"
                 % (n, n, n, n, n, self.floor, UPLOADER_WORKERS))
        gw = H.Sluice(os.path.join(t, "gw"), store, plist, env=self.moto.env(), extra_config=extra)
        # state_dir on the tmpfs; the audit trail stays on the real disk
        gw.state_dir = os.path.join(self.spool, "state")
        gw.config_text = H.render_config(gw.port, [gw.host_key], gw.state_dir, gw.audit_path, store,
                                         plist, extra=extra,
                                         control_socket=os.path.join(gw.workdir, "control.sock"))
        lines = []
        for line in gw.config_text.splitlines():
            lines.append(line)
            for name, block in self.partners.items():
                if line == "  - name: %s" % H.yaml_str(name) and block:
                    lines.append(block.rstrip("\n"))
        gw.config_text = "\n".join(lines) + "\n"
        with open(gw.config_path, "w") as f:
            f.write(gw.config_text)
        self.gw = gw
        gw.start(timeout=60 if self.asan else 20)
        self.gp = Gateway(gw)
        log("gateway on port %d (%s), state_dir %s%s, moto %s via fault proxy %s",
            gw.port, H.SLUICE_BIN, gw.state_dir, " (tmpfs)" if self.tmpfs else "",
            self.moto.endpoint, self.proxy.endpoint)

    def cleanup(self):
        try:
            self.gw.kill()
        except Exception:
            pass
        for stop in (self.proxy.stop, self.moto.stop):
            try:
                stop()
            except Exception:
                pass
        for d in (self.pgp, self.gwhome):
            subprocess.run(["gpgconf", "--homedir", d, "--kill", "all"], capture_output=True)
        if self.a.keep:
            log("kept %s%s", self.tmp, " (umount %s when done)" % self.spool if self.tmpfs else "")
            return
        if self.tmpfs:
            subprocess.run(["umount", "-l", self.spool], capture_output=True)
        if False:
            pass
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- bookkeeping of what was sent

    def note(self, partner, path, sha, size, expect, acked):
        """expect: "ship" (a complete, valid file: must be stored once acked)
        or "never" (unfinished or unverified: must never be stored)."""
        key = "%s/%s" % (partner, path)
        with self.lock:
            self.files[key] = {"partner": partner, "path": path, "sha": sha, "size": size,
                               "expect": expect, "acked": acked}

    def name(self, wid, ext=".bin"):
        with self.lock:
            self.seq += 1
            return "w%d-%06d%s" % (wid, self.seq, ext)

    def size(self):
        r = self.rng.random()
        if r < 0.55:
            return self.rng.randint(1 * KiB, 64 * KiB)
        if r < 0.85:
            return self.rng.randint(64 * KiB, 1 * MiB)
        if r < 0.98 or self.a.max_size <= 16 * MiB:
            return self.rng.randint(1 * MiB, min(4 * MiB, self.a.max_size))
        return self.rng.randint(16 * MiB, self.a.max_size)

    # -- the load

    def local(self, wid, name, size=None, data=None):
        d = os.path.join(self.tmp, "local", str(wid))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, name)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
            return p, hashlib.sha256(data).hexdigest()
        return p, H.write_random_file(p, size)

    def sftp(self, partner, cmds, timeout=None):
        timeout = timeout or (600 if self.asan else 300)
        if partner == "bravo" and self.rng.random() < 0.5:
            self.stats["password_sessions"] += 1
            r = H.sftp_password(self.gw.port, partner, PASSWORD, cmds, timeout=timeout)
        else:
            r = H.sftp(self.gw.port, partner, self.keys.get(partner), cmds, timeout=timeout)
        self.stats["sessions"] += 1
        if r.rc != 0:
            self.stats["sessions_failed"] += 1
            if self.disk_full.is_set() or re.search(r"space", r.err + r.out):
                self.stats["failed_while_disk_full"] += 1
            with self.lock:
                self.fail_samples.append("%s rc %d: %s" % (time.strftime("%H:%M:%S"), r.rc,
                                                           " | ".join(r.err.strip().splitlines()[-3:])))
        return r.rc == 0, r

    def sc_plain(self, wid):
        partner = self.rng.choice(("alpha", "bravo"))
        n = self.name(wid)
        p, sha = self.local(wid, n, self.size())
        ok, _ = self.sftp(partner, ["put %s %s" % (p, n)])
        self.note(partner, n, sha, os.path.getsize(p), "ship", ok)
        os.unlink(p)

    def sc_temp(self, wid):
        n = self.name(wid, ".csv")
        p, sha = self.local(wid, n, self.size())
        ok, _ = self.sftp("alpha", ["put %s %s.part" % (p, n), "rename %s.part %s" % (n, n)])
        self.note("alpha", n, sha, os.path.getsize(p), "ship", ok)
        self.note("alpha", n + ".part", sha, 0, "never", False)
        os.unlink(p)

    def sc_unfinished(self, wid):
        """An upload that must wait forever: a temp name never renamed, a
        marked-partner file whose marker never comes."""
        n = self.name(wid, ".csv")
        p, sha = self.local(wid, n, self.rng.randint(KiB, 64 * KiB))
        if self.rng.random() < 0.5:
            ok, _ = self.sftp("alpha", ["put %s %s.part" % (p, n)])
            self.note("alpha", n + ".part", sha, 0, "never", ok)
        else:
            ok, _ = self.sftp("mark", ["put %s %s" % (p, n)])
            self.note("mark", n, sha, 0, "never", ok)
        os.unlink(p)

    def sc_marker(self, wid):
        n = self.name(wid, ".csv")
        p, sha = self.local(wid, n, self.size())
        m, _ = self.local(wid, n + ".done", data=b"")
        ok, _ = self.sftp("mark", ["put %s %s" % (p, n), "put %s %s.done" % (m, n)])
        self.note("mark", n, sha, os.path.getsize(p), "ship", ok)
        self.note("mark", n + ".done", "", 0, "never", False)
        os.unlink(p)
        os.unlink(m)

    def sc_manifest(self, wid):
        names, cmds, lines, locs = [], [], [], []
        for _ in range(self.rng.randint(2, 4)):
            n = self.name(wid, ".dat")
            p, sha = self.local(wid, n, self.rng.randint(KiB, 256 * KiB))
            names.append((n, sha, os.path.getsize(p)))
            cmds.append("put %s %s" % (p, n))
            lines.append("%s %d %s" % (sha, os.path.getsize(p), n))
            locs.append(p)
        mn = self.name(wid, ".manifest")
        mp, _ = self.local(wid, mn, data=("\n".join(lines) + "\n").encode())
        ok, _ = self.sftp("mani", cmds + ["put %s %s" % (mp, mn)])
        for n, sha, size in names:
            self.note("mani", n, sha, size, "ship", ok)
        self.note("mani", mn, "", 0, "never", False)
        for p in locs + [mp]:
            os.unlink(p)

    def sc_signed(self, wid):
        n = self.name(wid, ".csv")
        p, sha = self.local(wid, n, self.size())
        bad = self.rng.random() < 0.2
        signed = p
        if bad:   # a signature over other bytes
            signed, _ = self.local(wid, n + ".other", self.rng.randint(100, 1000))
        gpg(self.pgp, "-u", self.fpr, "--detach-sign", "-o", p + ".sig", signed)
        order = ["put %s %s" % (p, n), "put %s.sig %s.sig" % (p, n)]
        if self.rng.random() < 0.3:
            order.reverse()
        ok, _ = self.sftp("sig", order)
        self.note("sig", n, sha, os.path.getsize(p), "never" if bad else "ship", ok)
        self.note("sig", n + ".sig", "", 0, "never", False)
        for f in (p, p + ".sig") + ((signed,) if bad else ()):
            os.unlink(f)
        if bad and ok:
            self.stats["bad_signatures_acked"] += 1

    def sc_encrypted(self, wid):
        n = self.name(wid, ".pgp")
        p, _ = self.local(wid, n + ".plain", self.rng.randint(KiB, 2 * MiB))
        gpg(self.pgp, "-u", self.fpr, "--trust-model", "always", "-r", self.gwfpr,
            "--sign", "--encrypt", "-o", p + ".pgp", p)
        with open(p + ".pgp", "rb") as f:
            cipher = bytearray(f.read())
        bad = self.rng.random() < 0.2
        if bad:
            cipher[len(cipher) // 2] ^= 0xff
        c, sha = self.local(wid, n, data=bytes(cipher))
        ok, _ = self.sftp("enc", ["put %s %s" % (c, n)])
        self.note("enc", n, sha, len(cipher), "never" if bad else "ship", ok)
        for f in (p, p + ".pgp", c):
            os.unlink(f)
        if bad and ok:
            self.stats["tampered_acked"] += 1

    def sc_resume(self, wid):
        """A throttled upload cut off midway (the client killed), then
        finished with reput (an append from where the file ends)."""
        n = self.name(wid)
        size = max(2 * MiB, min(self.size(), 8 * MiB))
        p, sha = self.local(wid, n, size)
        cmd = (["sftp", "-l", "8000", "-b", "-", "-P", str(self.gw.port), "-i", self.keys.get("alpha")]
               + H.SSH_COMMON + ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                 "alpha@%s" % H.LOCALHOST])
        c = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        H._live.add(c)
        try:
            c.stdin.write(("put %s %s\n" % (p, n)).encode())
            c.stdin.flush()
        except OSError:
            pass
        landed = os.path.join(self.gw.state_dir, "landing", "alpha", n)

        def started():
            try:
                return os.path.getsize(landed) > 256 * KiB
            except OSError:
                return False
        got = H.poll(started, 60)
        H._kill_group(c)
        c.wait(10)
        H._live.discard(c)
        try:
            c.stdin.close()
        except OSError:
            pass
        if got:
            self.stats["cut_connections"] += 1
        time.sleep(0.5)
        ok, _ = self.sftp("alpha", ["reput %s %s" % (p, n)] if got else ["put %s %s" % (p, n)])
        if ok and got:
            self.stats["resumed"] += 1
        self.note("alpha", n, sha, size, "ship", ok)
        os.unlink(p)

    SCENARIOS = (("plain", 30), ("temp", 14), ("marker", 10), ("manifest", 8), ("signed", 12),
                 ("encrypted", 8), ("resume", 4), ("unfinished", 4))

    def worker(self, wid):
        names = [n for n, _ in self.SCENARIOS]
        weights = [w for _, w in self.SCENARIOS]
        while not self.stop_load.is_set():
            sc = self.rng.choices(names, weights)[0]
            try:
                getattr(self, "sc_" + sc)(wid)
                self.stats["scenario_" + sc] += 1
            except Exception as e:  # a broken client step is the script's bug: report it
                self.fail("worker %d scenario %s: %r" % (wid, sc, e))
                time.sleep(1)

    # -- sampling of the roles

    def sample(self):
        usage = {}
        for role, pids in self.gp.members().items():
            if role not in LONG_LIVED or len(pids) != 1:
                continue
            u = proc_usage(pids[0])
            if u:
                usage[role] = (pids[0],) + u
                with self.lock:
                    self.peak[role] = max(self.peak.get(role, 0), u[0])
        return usage

    def sampler(self):
        while not self.stop_chaos.is_set() or not self.stop_load.is_set():
            self.sample()
            time.sleep(2)

    # -- chaos

    def kill_role(self, role):
        pid = self.gp.role_pid(role)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills[role] += 1
        # the supervisor restarts it (with a back-off if it keeps dying)
        back = H.poll(lambda: (self.gp.role_pid(role) or pid) != pid, 60 if self.asan else 30, 0.2)
        if not back:
            self.fail("role %s was not restarted after SIGKILL\n%s" % (role, self.gw.log_tail(30)))
        return True

    def kill_session(self):
        pids = self.gp.members().get("session") or []
        if not pids:
            return False
        try:
            os.kill(self.rng.choice(pids), signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills["session"] += 1
        return True

    S3_MODES = {
        "outage": dict(rate=1.0, faults=("503", "500", "reset")),
        "503-storm": dict(rate=0.7, faults=("503",)),
        "resets": dict(rate=0.3, faults=("reset",)),
        "slow": dict(rate=0.5, faults=("delay",)),
        "corrupt": dict(rate=0.3, faults=("flip",)),
        "skew": dict(clock_ahead=3600),
    }

    def s3_fault(self, mode, hold):
        p = self.proxy
        cfg = self.S3_MODES[mode]
        with p.lock:
            p.rate = cfg.get("rate", 0)
            p.faults = cfg.get("faults", ())
            p.clock_ahead = cfg.get("clock_ahead", 0)
        self.stats["s3_" + mode] += 1
        self.stop_chaos.wait(hold)
        with p.lock:
            p.rate, p.faults, p.clock_ahead = 0, (), 0

    def room(self):
        """Bytes the spool's file system has above server.min_free_space."""
        st = os.statvfs(self.spool)
        return st.f_bavail * st.f_frsize - self.floor

    def spool_usage(self):
        """What holds the spool: MiB per top-level directory of state_dir."""
        use, seen = collections.Counter(), set()
        for top in os.listdir(self.gw.state_dir):
            for d, _, files in os.walk(os.path.join(self.gw.state_dir, top)):
                for name in files:
                    try:
                        st = os.lstat(os.path.join(d, name))
                    except OSError:
                        continue
                    if st.st_ino not in seen:  # a hard link's blocks count once
                        seen.add(st.st_ino)
                        use[top] += st.st_blocks * 512
        return ", ".join("%s %d MiB" % (k, v // MiB) for k, v in use.most_common(4)) or "empty"

    def fill_disk(self, hold):
        """Fill the spool tmpfs to just above the floor, check a write fails
        with a reason, hold, free it, check uploads are taken again."""
        if not self.tmpfs:
            return
        filler = os.path.join(self.spool, "filler")
        f = open(filler, "wb")
        chunk = b"\0" * MiB

        def top_up():
            # the uploader frees space as it stores files: keep the spool
            # at 512 KiB above the floor for as long as the disk is "full"
            st = os.statvfs(self.spool)
            left = st.f_bavail * st.f_frsize - self.floor - 512 * KiB
            while left > 0:
                n = min(left, len(chunk))
                try:
                    f.write(chunk[:n])
                    f.flush()
                except OSError:
                    break
                left -= n

        def keep_full():
            while self.disk_full.is_set():
                top_up()
                time.sleep(0.05)
        top_up()
        self.disk_full.set()
        keeper = threading.Thread(target=keep_full, daemon=True)
        keeper.start()
        self.stats["disk_full"] += 1
        t0 = time.time()
        p, _ = self.local("probe", "probe-%d.bin" % self.stats["disk_full"], 4 * MiB)
        probe = "probe-%d.raw" % self.stats["disk_full"]
        # far more than the 512 KiB left above the floor; again if ssh got no
        # session at all (under 200 sessions some logins time out in the
        # banner exchange): the check is about the WRITE's answer
        for _ in range(3):
            code, msg = sftp_raw_write(self.gw.port, "alpha", self.keys.get("alpha"), probe,
                                       64 * MiB, timeout=120)
            if not (code is None and msg.startswith(NO_SESSION)):
                break
            self.stats["disk_probe_no_session"] += 1
            log("disk-full probe: %s; trying again", msg)
        self.note("alpha", probe, "", 0, "never", False)
        if code == SSH_FX_OK:
            self.fail("a 64 MiB write on a spool at its floor was acknowledged")
        elif code != SSH_FX_FAILURE or not re.search(r"space", msg, re.I):
            self.fail("the write refused at the floor: status %s %r, not SSH_FX_FAILURE "
                      "with a reason about space" % (code, msg))
        else:
            self.stats["disk_full_refusals_with_reason"] += 1
            self.space_reasons.add(msg)
        self.disk_probe_times.append(t0)
        self.stop_chaos.wait(hold)
        self.disk_full.clear()
        keeper.join(10)
        f.close()
        os.unlink(filler)
        # service resumes by itself, once there is room again: the put is
        # tried for 60 s; a try refused while the spool is back at its floor
        # (200 sessions' partial uploads, refused writes left resumable in
        # landing/ until incomplete_ttl) proves nothing either way
        t1 = time.monotonic()
        tries = {"full": 0, "room": 0, "err": ""}

        def resumed():
            before = self.room()
            r = H.sftp(self.gw.port, "alpha", self.keys.get("alpha"),
                       ["put %s %s-after" % (p, os.path.basename(p))], timeout=120)
            if r.rc == 0:
                return True
            if min(before, self.room()) < RESUME_ROOM:
                tries["full"] += 1
            else:
                tries["room"] += 1
                tries["err"] = (r.err or r.out).strip()[-300:]
            return False
        if not H.poll(resumed, 60, 1):
            if tries["room"]:
                self.fail("uploads still fail 60 s after space returned (%d of %d tries with "
                          "over %d MiB above the floor; last: %s)\n%s"
                          % (tries["room"], tries["room"] + tries["full"], RESUME_ROOM // MiB,
                             tries["err"], self.gw.log_tail(30)))
            else:
                self.stats["disk_resume_unchecked"] += 1
                log("disk full: the spool stayed within %d MiB of its floor for 60 s after the "
                    "filler went (%s); resumption not checked this time",
                    RESUME_ROOM // MiB, self.spool_usage())
        else:
            self.stats["disk_resume_s_max"] = max(self.stats["disk_resume_s_max"],
                                                  int(time.monotonic() - t1 + 0.999))
            self.note("alpha", os.path.basename(p) + "-after", H.sha256_file(p),
                      os.path.getsize(p), "ship", True)
        os.unlink(p)

    def chaos(self):
        # every kind of fault once first (in random order), then at random
        first = (["session", "disk"] + ["role:" + r for r in KILLABLE]
                 + ["s3:" + m for m in sorted(self.S3_MODES)])
        self.rng.shuffle(first)
        acts = ["session", "session", "role", "s3", "s3", "disk"]
        last_role = {}
        while not self.stop_chaos.wait(self.rng.uniform(0.5, 1.5) if first
                                       else self.rng.uniform(1, 4)):
            a = first.pop(0) if first else self.rng.choice(acts)
            if a == "session":
                self.kill_session()
            elif a.startswith("role"):
                # each role at most every 15 s (a role that dies right
                # after start is restarted with a back-off)
                now = time.monotonic()
                cand = [r for r in KILLABLE if now - last_role.get(r, 0) > 15]
                if a != "role":
                    cand = [a[5:]]
                if cand:
                    r = self.rng.choice(cand)
                    last_role[r] = now
                    self.kill_role(r)
            elif a.startswith("s3"):
                mode = a[3:] if a != "s3" else self.rng.choice(sorted(self.S3_MODES))
                self.s3_fault(mode, self.rng.uniform(3, 5))
            elif a == "disk":
                self.fill_disk(self.rng.uniform(3, 5))

    # -- the checks at the end

    def wait_drained(self, timeout):
        """Polls the store until every acknowledged good file is there."""
        want = {k for k, f in self.files.items() if f["acked"] and f["expect"] == "ship"}
        deadline = time.monotonic() + timeout
        while True:
            have = set(self.moto.keys())
            missing = want - have
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(3)

    def check_store(self):
        objs = {}
        for page in self.moto.s3.get_paginator("list_objects_v2").paginate(Bucket=H.BUCKET):
            for o in page.get("Contents", []):
                objs[o["Key"]] = o["Size"]
        partner_objs = {k: v for k, v in objs.items() if k.split("/", 1)[0] in self.partners}
        acked = [f for f in self.files.values() if f["acked"] and f["expect"] == "ship"]
        missing = ["%s/%s" % (f["partner"], f["path"]) for f in acked
                   if "%s/%s" % (f["partner"], f["path"]) not in objs]
        if missing:
            self.fail("%d acknowledged files missing from the store: %s" % (len(missing), missing[:10]))
        by_sha = collections.Counter()
        checked = 0
        for key, size in partner_objs.items():
            f = self.files.get(key)
            if f is None:
                self.fail("object %s was never uploaded as a shippable file (a sidecar, a "
                          "probe or a stray name)" % key)
                continue
            if f["expect"] == "never":
                self.fail("object %s must never have been shipped (unfinished or unverified)" % key)
                continue
            h = hashlib.sha256()
            body = self.moto.s3.get_object(Bucket=H.BUCKET, Key=key)["Body"]
            for chunk in iter(lambda: body.read(MiB), b""):
                h.update(chunk)
            checked += 1
            if h.hexdigest() != f["sha"]:
                self.fail("object %s is not byte-identical to what was sent" % key)
            by_sha[f["sha"]] += 1
        dup = [s for s, n in by_sha.items() if n > 1]
        if dup:
            self.fail("the same bytes stored under more than one key: %s" % dup[:5])
        return checked, len(acked)

    def check_audit(self):
        recs = self.gw.audit_records()
        stored = collections.defaultdict(list)
        rejected = set()
        received = {}
        retries = 0
        no_space = 0
        auth_fail = collections.Counter()
        bans = 0
        for r in recs:
            ev = r.get("event")
            if ev == "auth.failure":
                auth_fail[r.get("reason") or "?"] += 1
            elif ev == "auth.ban":
                bans += 1
            key = "%s/%s" % (r.get("partner"), r.get("path"))
            if ev == "file.stored":
                stored[key].append(r)
            elif ev == "file.rejected":
                rejected.add(key)
            elif ev == "file.received":
                received[r.get("fid")] = r
            elif ev == "upload.retry":
                retries += 1
            if ev in ("sftp.denied", "file.failed") and "space" in (r.get("reason") or ""):
                no_space += 1
        for key, rs in stored.items():
            fids = {r.get("fid") for r in rs}
            if len(rs) > 1 and len(fids) == 1:
                # by design after a SIGKILL of the uploader or the audit
                # writer between a batch's records and its commit (see
                # uploader/uploader.c): the batch is done again and the
                # record repeated; it must say the same object and checksum
                self.stats["file_stored_repeats"] += len(rs) - 1
                if len({(r.get("key"), r.get("checksum")) for r in rs}) != 1:
                    self.fail("%s: repeated file.stored records disagree: %s" % (key, rs))
            if len(fids) > 1:
                self.fail("%s stored from %d different uploads" % (key, len(fids)))
        for key, f in self.files.items():
            if f["acked"] and f["expect"] == "ship" and key not in stored:
                self.fail("no file.stored record for acknowledged %s" % key)
            if f["acked"] and f["expect"] == "never" and f["sha"] and \
                    f["partner"] in ("sig", "enc") and key not in rejected:
                self.fail("%s should have been rejected (quarantined): no file.rejected" % key)
        lat = []
        for key, rs in stored.items():
            rec = received.get(rs[0].get("fid"))
            if rec and rec.get("received_at"):
                lat.append(ts(rs[0]["ts"]) - ts(rec["received_at"]))
        lat.sort()
        return {"retries": retries, "latency": lat, "no_space_audit": no_space,
                "rejected": len(rejected), "records": len(recs),
                "auth_failures": auth_fail, "bans": bans}

    def admin(self):
        rc, out, err = H.run_sluice(["reconcile", "-c", self.gw.config_path],
                                    env=self.moto.env(), timeout=600)
        self.reconcile_out = (out + err).strip()
        run = [r for r in self.gw.audit_records() if r.get("event") == "reconcile.run"]
        if rc != 0 or not run or run[-1].get("unproven") != 0:
            self.fail("sluice reconcile did not prove every stored file (rc %d):\n%s"
                      % (rc, self.reconcile_out[-2000:]))
        else:
            self.stats["reconcile_proven"] = run[-1].get("proven", 0)
        rc, out, err = H.run_sluice(["audit", "verify", "-c", self.gw.config_path], timeout=600)
        if rc != 0:
            self.fail("sluice audit verify -c failed (rc %d):\n%s" % (rc, (out + err)[-2000:]))
        self.verify_out = (out + err).strip().splitlines()[-1:] if (out + err).strip() else []

    def check_usage(self, base, base_fds):
        """RSS and fds of the long-lived roles against the warm-up baseline."""
        now = self.sample()
        rows = []
        # Tolerances: the heap of a role that served a burst keeps some pages
        # (glibc does not give every free page back), so RSS may stay up to
        # 1.5x + 24 MiB. Under ASan freed memory stays resident by design in
        # its quarantine (quarantine_size_mb, 256 MiB by default) and its
        # allocator's caches: RSS may grow by that + 128 MiB; leaks are
        # LeakSanitizer's at each role's exit (its report fails the run).
        # fds: each of the uploader's store handles that has sent anything
        # keeps one HTTP connection and libcurl's wakeup socketpair (the easy
        # handle's own multi handle): 3 fds for each of 13 handles (the
        # workers, UPLOADER_WORKERS, the admin handle, audit
        # shipping and receipt shipping). The warm-up baseline may have used
        # only two of them (a restarted uploader is measured against its
        # predecessor's baseline), so the pool may add 33 fds. sqlite,
        # inotify and the role sockets are fixed. A leak grows with the files
        # sent (hundreds here) and goes far past.
        fd_tol = 3 * (UPLOADER_WORKERS + 3) + 3
        for role in LONG_LIVED:
            if role not in base or role not in now:
                rows.append((role, base.get(role), now.get(role), "n/a"))
                continue
            bpid, brss, bfd = base[role]
            pid, rss, nfd = now[role]
            if self.asan:
                q = re.search(r"quarantine_size_mb=(\d+)", os.environ.get("ASAN_OPTIONS", ""))
                lim = brss + (int(q.group(1)) if q else 256) * MiB + 128 * MiB
            else:
                lim = brss * 1.5 + 24 * MiB
            verdict = "ok"
            if rss > lim:
                verdict = "RSS grew"
                self.fail("%s RSS %d KiB after the quiet period, baseline %d KiB (limit %d KiB)"
                          % (role, rss // KiB, brss // KiB, lim // KiB))
            if nfd > bfd + fd_tol:
                verdict = "fds grew"
                grew = fd_kinds(proc_fds(pid)) - fd_kinds(base_fds.get(role, []))
                self.fail("%s has %d open fds after the quiet period, baseline %d; new: %s"
                          % (role, nfd, bfd, dict(grew)))
            rows.append((role, base[role], now[role], verdict + ("" if pid == bpid else " (restarted)")))
        return rows

    # -- main

    def run(self):
        a = self.a
        self.disk_probe_times = []
        self.setup()
        t_start = time.monotonic()
        workers = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                   for i in range(a.sessions)]
        for w in workers:
            w.start()
        threading.Thread(target=self.sampler, daemon=True).start()
        warm = min(max(15.0, a.duration * 0.2), 300.0)
        log("%d sessions uploading; warm-up %ds", a.sessions, warm)
        time.sleep(warm)
        base = self.sample()
        base_fds = {r: proc_fds(v[0]) for r, v in base.items()}
        log("baseline: %s", ", ".join("%s rss %d MiB fds %d" % (r, v[1] // MiB, v[2])
                                      for r, v in sorted(base.items())))
        chaos = threading.Thread(target=self.chaos, daemon=True)
        if not a.no_chaos:
            chaos.start()
        left = a.duration - (time.monotonic() - t_start)
        end = time.monotonic() + max(0, left)
        while time.monotonic() < end:
            time.sleep(min(10, max(0.1, end - time.monotonic())))
            if not self.gw.alive():
                self.fail("the gateway died\n%s" % self.gw.log_tail())
                break
            with self.lock:
                acked = sum(1 for f in self.files.values() if f["acked"])
            log("... %d files acknowledged, %d sessions, kills %s", acked,
                self.stats["sessions"], dict(self.kills))
        self.stop_chaos.set()
        if chaos.is_alive():
            chaos.join(180)
        self.stop_load.set()
        for w in workers:
            w.join(900)
        load_s = time.monotonic() - t_start
        log("load stopped after %.0fs; waiting for the queue to drain", load_s)
        # nothing is in flight from here: all faults off, the disk free
        with self.proxy.lock:
            self.proxy.rate, self.proxy.faults, self.proxy.clock_ahead = 0, (), 0
        missing = self.wait_drained(a.drain)
        if missing:
            self.fail("%d acknowledged files not stored %ds after the load ended: %s\n%s"
                      % (len(missing), a.drain, sorted(missing)[:10], self.gw.log_tail(40)))
        log("quiet period %ds", a.quiet)
        time.sleep(a.quiet)
        usage = self.check_usage(base, base_fds)
        checked, nacked = self.check_store()
        au = self.check_audit()
        self.admin()
        if self.tmpfs and self.stats["disk_full"]:
            if self.stats["disk_resume_unchecked"] == self.stats["disk_full"]:
                self.fail("uploads were never seen to resume after a full disk: each time the "
                          "spool stayed at its floor (--spool-size too small for the load?)")
            with open(self.gw.log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            if not re.search(r"no space|not enough space", text):
                self.fail("the log never says a write failed for lack of space")
            if au["no_space_audit"] == 0:
                self.fail("the audit trail has no record of a write refused for lack of space")
        if not self.gw.alive():
            self.fail("the gateway is not running at the end\n%s" % self.gw.log_tail())
        else:
            try:
                self.gw.stop(timeout=120 if self.asan else 60)
            except AssertionError as e:
                self.fail(str(e))
        # the roles' stderr is the log: a sanitizer report (a leak at a
        # role's exit, a memory error, undefined behaviour) fails the run
        with open(self.gw.log, "rb") as f:
            san = re.findall(rb"ERROR: (?:AddressSanitizer|LeakSanitizer)[^\n]*|runtime error:[^\n]*",
                             f.read())
        if san:
            self.fail("%d sanitizer reports in %s, first: %s"
                      % (len(san), self.gw.log, san[0].decode("utf-8", "replace")))
        self.report(load_s, usage, checked, nacked, au)
        return not self.failures

    def report(self, load_s, usage, checked, nacked, au):
        acked = [f for f in self.files.values() if f["acked"] and f["expect"] == "ship"]
        nbytes = sum(f["size"] for f in acked)
        lat = au["latency"]

        def pct(p):
            return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")
        s = self.stats
        print()
        print("== soak result (%s%s, %d sessions, %.0f s of load, seed %d)"
              % (os.path.basename(H.SLUICE_BIN), " ASan" if self.asan else "",
                 self.a.sessions, load_s, self.a.seed))
        print("files acknowledged (to ship): %d, %.1f MiB; stored and byte-checked: %d objects"
              % (len(acked), nbytes / MiB, checked))
        print("throughput: %.2f files/s, %.2f MB/s" % (len(acked) / load_s, nbytes / 1e6 / load_s))
        print("CLOSE-to-stored latency: p50 %.2f s, p99 %.2f s, max %.2f s (%d files)"
              % (pct(0.5), pct(0.99), lat[-1] if lat else float("nan"), len(lat)))
        print("sessions: %d (%d failed, %d password); cut and resumed: %d/%d; rejected "
              "(quarantined): %d" % (s["sessions"], s["sessions_failed"], s["password_sessions"],
                                     s["resumed"], s["cut_connections"], au["rejected"]))
        why = collections.Counter(re.sub(r"w\d+-\d+\S*|/tmp/\S+|\d+", "N", x.split(": ", 1)[-1])[:110]
                                  for x in self.fail_samples)
        for k, v in why.most_common(6):
            print("  failed sessions: %4d x %s" % (v, k))
        print("upload retries: %d; file.stored repeats (same upload): %d"
              % (au["retries"], s["file_stored_repeats"]))
        print("authentication failures: %d (%s); bans: %d"
              % (sum(au["auth_failures"].values()),
                 ", ".join("%d x %s" % (v, k) for k, v in au["auth_failures"].most_common(4))
                 or "none", au["bans"]))
        print("kills survived: %d (%s)" % (sum(self.kills.values()),
                                           ", ".join("%s %d" % kv for kv in sorted(self.kills.items()))))
        print("S3 faults: %s; disk full: %d times (%d refusals with a reason, resumed within %d s, "
              "%d times not checked: the spool stayed at its floor; probe logins tried again: %d)"
              % (", ".join("%s %d" % (k[3:], v) for k, v in sorted(s.items()) if k.startswith("s3_"))
                 or "none", s["disk_full"], s["disk_full_refusals_with_reason"], s["disk_resume_s_max"],
                 s["disk_resume_unchecked"], s["disk_probe_no_session"]))
        if self.space_reasons:
            print("disk full: writes answered SSH_FX_FAILURE %s; audit records with the reason: %d"
                  % (sorted(self.space_reasons), au["no_space_audit"]))
        print("peak RSS: %s" % ", ".join("%s %.1f MiB" % (r, v / MiB) for r, v in sorted(self.peak.items())))
        print("after quiet period (baseline -> now, rss MiB / fds):")
        for role, b, n, verdict in usage:
            if b and n:
                print("  %-10s %6.1f -> %6.1f   %3d -> %3d   %s"
                      % (role, b[1] / MiB, n[1] / MiB, b[2], n[2], verdict))
            else:
                print("  %-10s %s" % (role, verdict))
        print("reconcile: %s proven; audit verify: %s; audit records: %d"
              % (s["reconcile_proven"], " ".join(self.verify_out) or "-", au["records"]))
        print("scenarios: %s" % ", ".join("%s %d" % (k[9:], v) for k, v in sorted(s.items())
                                          if k.startswith("scenario_")))
        if self.failures:
            print("RESULT: FAIL (%d)" % len(self.failures))
            for f in self.failures[:30]:
                print("  - " + f.splitlines()[0])
        else:
            print("RESULT: PASS")


def ts(s):
    """Seconds since the epoch of an RFC 3339 UTC time with optional fraction."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", s)
    import calendar
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=parse_duration, default=120.0,
                    help="seconds (or 30m, 3h) of load and chaos (default 120)")
    ap.add_argument("--sessions", type=int, default=24, help="concurrent sessions (default 24)")
    ap.add_argument("--max-size", type=parse_size, default=4 * MiB,
                    help="largest file (default 4MiB; e.g. 1GiB by hand)")
    ap.add_argument("--floor", type=parse_size, default=32 * MiB,
                    help="server.min_free_space of the spool (default 32MiB)")
    ap.add_argument("--spool-size", type=parse_size, default=0,
                    help="tmpfs size (default max(512MiB, 4 x max-size + 128MiB))")
    ap.add_argument("--drain", type=int, default=300, help="seconds to wait for the queue at the end")
    ap.add_argument("--quiet", type=int, default=15, help="quiet seconds before RSS/fds are measured")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "0")) or
                    int(time.time()) % 100000)
    ap.add_argument("--no-chaos", action="store_true", help="load only")
    ap.add_argument("--no-tmpfs", action="store_true", help="no tmpfs spool, no disk-full phase")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    s = Soak(a)
    ok = False
    try:
        ok = s.run()
    finally:
        s.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
