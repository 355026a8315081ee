#!/usr/bin/env python3
"""
sftp_bench.py - sluice's SFTP server role against OpenSSH's internal-sftp,
with the same OpenSSH `sftp` client and cipher, on loopback. NOT a test
(never in ctest); see bench/README.md.

    sudo bench/sftp_bench.py [--sluice build/sluice] [--big-mib 1024] [--small 2000]
                             [--conc 8 --conc-mib 128] [--idle 200] [--reps 3]

Starts /usr/sbin/sshd (own config, host key, port, authorized key; root
login by key only, ForceCommand internal-sftp) and sluice with a file://
store (so an S3 uploader does not dominate), then alternates runs and
prints a table with ratios. Needs root (sshd). Standard library only.

--roles serve (default) runs every role (`sluice serve`): the intake and
uploader work through the files while the client uploads, on the same 2
cores and disk. --roles server runs only the SFTP server role (`sluice
server`), the front door the issue's goal is about: every CLOSE is still
hashed, fsynced and receipted; files wait in the spool for the intake.

--workdir DIR puts the run's temp dir (both servers' data: OpenSSH's
upload dir, sluice's state_dir and store) under DIR, e.g. a mounted file
system to compare (bench/run's journal row). --only csmall sends
--csmall-sessions x --csmall-files small files over concurrent sessions.
--count-fsyncs runs both servers under strace and, after the reps, prints
the fsyncs and fdatasyncs per small file by process name; strace slows the
servers, so give it --reps 0 (bench/run does) and time in another run.
"""
import argparse, errno, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

CIPHER = "aes128-gcm@openssh.com"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("%s did not listen on %d" % (what, port))


def descendants(root):
    kids = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/stat" % e) as f:
                    st = f.read()
                ppid = int(st[st.rfind(")") + 2:].split()[1])
                kids.setdefault(ppid, []).append(int(e))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_uss_kib(pid):
    """(PSS, USS) from smaps_rollup: PSS shares each page among the processes
    mapping it (a library mapped by every session counts 1/n in each), USS is
    the process's private pages (what one more session costs)."""
    pss = uss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                    uss += int(line.split()[1])
    except OSError:
        pass
    return pss, uss


def by_mapping_kib(pid, into):
    """Adds pid's RSS and private (USS) KiB by what is mapped to into:
    {name: [rss, uss]}, name a file's basename (a library, the program) or
    [heap], [stack], [anon] ... (/proc/PID/smaps)."""
    name = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                if not parts[0].endswith(":"):  # a mapping's first line
                    name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
                    into.setdefault(name, [0, 0])
                elif parts[0] == "Rss:":
                    into[name][0] += int(parts[1])
                elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                    into[name][1] += int(parts[1])
    except (OSError, IndexError, KeyError, ValueError):
        pass


class Sampler:
    """Peak of (sum of RSS of the server's new descendants) during a phase;
    with shares=True also the sums of their PSS and USS at that peak, and
    of their RSS and USS by mapping (by_mapping_kib)."""
    def __init__(self, root, shares=False):
        self.root = root
        self.base = set(descendants(root))
        self.peak = 0
        self.peak_n = 0
        self.shares = shares
        self.pss = self.uss = 0
        self.maps = {}

    def sample(self):
        new = [p for p in descendants(self.root) if p not in self.base]
        total = sum(rss_kib(p) for p in new)
        if total > self.peak:
            self.peak, self.peak_n = total, len(new)
            if self.shares:
                pu = [pss_uss_kib(p) for p in new]
                self.pss = sum(x[0] for x in pu)
                self.uss = sum(x[1] for x in pu)
                self.maps = {}
                for p in new:
                    by_mapping_kib(p, self.maps)


def sftp_cmd(srv, batch):
    return ["sftp", "-q", "-b", batch, "-P", str(srv.port), "-i", srv.key, "-c", CIPHER,
            "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "%s@127.0.0.1" % srv.user]


def run_batch(srv, lines, tmp):
    b = os.path.join(tmp, "batch-%d.txt" % os.getpid())
    with open(b, "w") as f:
        f.write("\n".join(lines) + "\n")
    t = time.monotonic()
    r = subprocess.run(sftp_cmd(srv, b), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit("%s: sftp failed rc=%s\n%s%s" % (srv.name, r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
    return dt


def jbd2_info(path):
    """/proc/fs/jbd2/DEV-N/info of the file system holding path, or None
    (no journal: ext4 without one, tmpfs, ...)."""
    d = os.stat(path).st_dev
    try:
        dev = os.path.basename(os.readlink("/sys/dev/block/%d:%d" % (os.major(d), os.minor(d))))
        for n in os.listdir("/proc/fs/jbd2"):
            if n.rsplit("-", 1)[0] == dev:
                return os.path.join("/proc/fs/jbd2", n, "info")
    except OSError:
        pass
    return None


def jbd2_commits(info):
    """Transactions the journal has committed so far (first line of info:
    "N transactions (M requested), each up to B blocks")."""
    if not info:
        return None
    try:
        with open(info) as f:
            return int(f.readline().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def traced(argv, out):
    """argv under strace, counting fsync/fdatasync with the time and the
    process name (-Y) of each call, for fsyncs_between()."""
    if not out:
        return argv
    return ["strace", "-f", "-qq", "--seccomp-bpf", "-Y", "-ttt", "-e", "signal=none",
            "-e", "trace=fsync,fdatasync", "-o", out] + argv


def fsyncs_between(path, t0, t1):
    """{process name: calls} of the fsync/fdatasync calls started in [t0, t1]."""
    by = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"^\d+<([^>]*)> ([\d.]+) (fsync|fdatasync)\(", line)
                if m and t0 <= float(m.group(2)) <= t1:
                    by[m.group(1)] = by.get(m.group(1), 0) + 1
    except OSError:
        pass
    return by


class OpenSSH:
    name = "openssh"

    def __init__(self, tmp, key, strace=False):
        self.dir = os.path.join(tmp, "openssh")
        self.up = os.path.join(self.dir, "upload")
        os.makedirs(self.up)
        self.port, self.key, self.user = free_port(), key, "root"
        hk = os.path.join(self.dir, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk], check=True)
        ak = os.path.join(self.dir, "authorized_keys")
        shutil.copy(key + ".pub", ak)
        cfg = os.path.join(self.dir, "sshd_config")
        with open(cfg, "w") as f:
            f.write("""Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 400
MaxSessions 10
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d %s
""" % (self.port, hk, self.dir, ak, self.up))
        os.makedirs("/run/sshd", exist_ok=True)
        self.strace = os.path.join(self.dir, "strace.txt") if strace else None
        self.proc = subprocess.Popen(traced(["/usr/sbin/sshd", "-D", "-e", "-f", cfg], self.strace),
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "sshd.log"), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, self.proc, "sshd")
        self.root = self.proc.pid

    def clean(self):
        for n in os.listdir(self.up):
            p = os.path.join(self.up, n)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)

    def settle(self):
        pass

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


def _gone_ok(func, path, exc):
    """rmtree's onerror: a file that vanished meanwhile is gone already, and
    a directory the gateway wrote into meanwhile (its receipts/) may stay."""
    if not isinstance(exc[1], OSError) or exc[1].errno not in (errno.ENOENT, errno.ENOTEMPTY):
        raise exc[1]


class Sluice:
    name = "sluice"

    def __init__(self, tmp, key, binary, extra, roles="serve", strace=False):
        self.dir = os.path.join(tmp, "sluice")
        self.objects = os.path.join(self.dir, "objects")
        os.makedirs(self.objects)
        self.port, self.key, self.user = free_port(), key, "bench"
        with open(key + ".pub") as f:
            pub = f.read().strip()
        cfg = os.path.join(self.dir, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write("""listen: 127.0.0.1:%d
host_keys: ["%s/hostkey"]
state_dir: "%s/state"
audit:
  path: "%s/audit/audit.jsonl"
store:
  url: "file://%s"
partners:
  - name: bench
    authorized_keys: ["%s"]
%s""" % (self.port, self.dir, self.dir, self.dir, self.objects, pub, extra))
        self.log = os.path.join(self.dir, "sluice.log")
        self.roles = roles
        # started as root, sluice runs its roles as "sluice" and sessions as
        # "sluice-session" (deploy/create-users.sh): let them in, as an
        # operator would with /var/lib/sluice
        try:
            import pwd
            svc = pwd.getpwnam("sluice")
            os.chmod(tmp, 0o711)
            os.chmod(self.dir, 0o711)
            os.chown(self.objects, svc.pw_uid, svc.pw_gid)
        except KeyError:
            sys.exit("user sluice missing: run deploy/create-users.sh")
        self.strace = os.path.join(self.dir, "strace.txt") if strace else None
        self.proc = subprocess.Popen(traced([binary, roles, "-c", cfg], self.strace),
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True)
        wait_port(self.port, self.proc, "sluice")
        self.root = self.proc.pid
        self.up = os.path.join(self.dir, "state", "landing", "bench")

    def settle(self, timeout=600):
        """Waits until the intake/uploader have shipped everything (not timed)."""
        spool = os.path.join(self.dir, "state", "spool")
        if self.roles == "server":  # no intake: drop what the sessions left
            inc = os.path.join(spool, "incoming")
            for n in os.listdir(inc):
                os.unlink(os.path.join(inc, n))
            return
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = sum(len(fs) for _, _, fs in os.walk(spool))
            if n == 0:
                return
            time.sleep(0.5)

    def clean(self):
        self.settle()
        for root in (self.up, self.objects):
            for n in os.listdir(root) if os.path.isdir(root) else []:
                p = os.path.join(root, n)
                # the store may still be renaming a .tmp of the last object
                try:
                    if os.path.isdir(p):
                        shutil.rmtree(p, onerror=_gone_ok)
                    else:
                        os.unlink(p)
                except FileNotFoundError:
                    pass

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def big(srv, tmp, path, rep):
    srv.clean()
    return run_batch(srv, ["put %s big-%d.bin" % (path, rep)], tmp)


def small(srv, tmp, files, rep):
    srv.clean()
    lines = ["mkdir s%d" % rep] + ["put %s s%d/f%05d" % (p, rep, i) for i, p in enumerate(files)]
    return len(files) / run_batch(srv, lines, tmp)


def csmall(srv, tmp, files, nsess, rep):
    """len(files) small files spread over nsess concurrent sessions, each in
    its own directory: files/s from the first start to the last exit."""
    srv.clean()
    per = len(files) // nsess
    procs = []
    t = time.monotonic()
    for i in range(nsess):
        b = os.path.join(tmp, "csb-%d.txt" % i)
        with open(b, "w") as f:
            f.write("mkdir cs%d-%d\n" % (rep, i))
            for j, p in enumerate(files[i * per:(i + 1) * per]):
                f.write("put %s cs%d-%d/f%05d\n" % (p, rep, i, j))
        # stderr to a file: a pipe nobody reads until the end could fill
        err = open(b + ".err", "w+")
        procs.append((subprocess.Popen(sftp_cmd(srv, b), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=err), err))
    for p, _ in procs:
        p.wait()
    dt = time.monotonic() - t
    for p, err in procs:
        err.seek(0)
        msg = err.read()
        err.close()
        if p.returncode != 0:
            sys.exit("%s: concurrent small sftp failed: %s" % (srv.name, msg[-1000:]))
    return per * nsess / dt


def count_fsyncs(srv, tmp, files, nsess, rep):
    """fsyncs per file while srv takes files (over nsess sessions) and, for
    sluice, while its roles ship them: {process name: calls per file}."""
    srv.clean()
    t0 = time.time()
    if nsess > 1:
        csmall(srv, tmp, files, nsess, rep)
    else:
        small(srv, tmp, files, rep)
    srv.settle()
    time.sleep(1)  # the audit records of the last files
    by = fsyncs_between(srv.strace, t0, time.time())
    n = len(files) // nsess * nsess
    return {k: v / n for k, v in by.items()}


def connects(srv, tmp, n):
    """n sessions one after another, each logging in and asking "pwd": what
    a partner's script that connects per file pays (sluice starts a fresh,
    re-exec'd and sandboxed process per connection, as sshd does)."""
    t = 0.0
    for _ in range(n):
        t += run_batch(srv, ["pwd"], tmp)
    return n / t


def concurrent(srv, tmp, path, n, rep):
    srv.clean()
    s = Sampler(srv.root)
    procs = []
    t = time.monotonic()
    for i in range(n):
        b = os.path.join(tmp, "cb-%d.txt" % i)
        with open(b, "w") as f:
            f.write("put %s c%d-%d.bin\n" % (path, rep, i))
        procs.append(subprocess.Popen(sftp_cmd(srv, b), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    while any(p.poll() is None for p in procs):
        s.sample()
        time.sleep(0.1)
    dt = time.monotonic() - t
    for p in procs:
        if p.returncode != 0:
            sys.exit("%s: concurrent sftp failed: %s" % (srv.name, p.stderr.read()[-1000:]))
    return dt, s.peak / max(n, 1)


def logged_in(p, timeout=20):
    """True once sftp answered the "pwd" it was sent (stdout is line-buffered)."""
    import select
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], end - time.monotonic())
        if not r:
            break
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith(b"Remote working directory"):
            return True
    return False


def idle(srv, n):
    s = Sampler(srv.root, shares=True)
    procs = []
    ok = 0
    cmd = None
    for i in range(n):
        cmd = sftp_cmd(srv, "-")
        # unbuffered: select() must see what readline() has not consumed
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, bufsize=0)
        p.stdin.write(b"pwd\n")
        p.stdin.flush()
        procs.append(p)
        if len(procs) % 8 == 0:  # stay under pre-auth per-address caps
            ok += sum(logged_in(q) for q in procs[-8:])
    ok += sum(logged_in(q) for q in procs[len(procs) - len(procs) % 8:])
    time.sleep(1)
    for _ in range(5):
        s.sample()
        time.sleep(0.2)
    for p in procs:
        p.stdin.close()
    for p in procs:
        p.wait(30)
    per = {k: [v[0] / max(ok, 1), v[1] / max(ok, 1)] for k, v in s.maps.items()}
    return ok, s.peak / max(ok, 1), s.peak_n, s.pss / max(ok, 1), s.uss / max(ok, 1), per


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--sluice", default=os.path.join(here, "..", "build", "sluice"))
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--conc-mib", type=int, default=128)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--connects", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sluice-extra", default="", help="YAML appended to sluice's config (e.g. a server: block)")
    ap.add_argument("--only", default="big,small,conc,connect,idle")
    ap.add_argument("--roles", choices=("serve", "server"), default="serve",
                    help="sluice serve (all roles) or sluice server (the SFTP role only)")
    ap.add_argument("--workdir", default=None,
                    help="make the run's temp dir (both servers' data) under DIR (default: $TMPDIR or /tmp)")
    ap.add_argument("--csmall-sessions", type=int, default=8,
                    help="--only csmall: concurrent sessions sharing the small files")
    ap.add_argument("--csmall-files", type=int, default=250, help="--only csmall: files per session")
    ap.add_argument("--rep-offset", type=int, default=0,
                    help="number the reps from N (who goes first alternates with the number)")
    ap.add_argument("--count-fsyncs", action="store_true",
                    help="run both servers under strace; after the timed reps, count fsyncs per "
                         "small file (one session and --csmall-sessions)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (sshd needs it)")
    if a.count_fsyncs and not shutil.which("strace"):
        sys.exit("--count-fsyncs: strace is not installed")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-", dir=a.workdir)
    key = os.path.join(tmp, "id_bench")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    only = a.only.split(",")
    big_f = os.path.join(data, "big.bin")
    conc_f = os.path.join(data, "conc.bin")
    for path, mib, phase in ((big_f, a.big_mib, "big"), (conc_f, a.conc_mib, "conc")):
        if phase in only:
            with open(path, "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
    smalls = []
    nsmall = a.small
    if "csmall" in only:
        nsmall = max(nsmall, a.csmall_sessions * a.csmall_files)
    for i in range(nsmall):
        p = os.path.join(data, "s%05d" % i)
        with open(p, "wb") as f:
            f.write(os.urandom(16384))
        smalls.append(p)
    servers = [OpenSSH(tmp, key, a.count_fsyncs),
               Sluice(tmp, key, os.path.abspath(a.sluice), a.sluice_extra, a.roles, a.count_fsyncs)]
    conc_smalls = smalls[:a.csmall_sessions * a.csmall_files]
    smalls = smalls[:a.small]
    res = {s.name: {} for s in servers}
    try:
        # a journalled file system's commits per file (jbd2 shares one commit
        # among the fsyncs that come while it runs: a group commit)
        jinfo = jbd2_info(tmp)
        for rep in range(a.rep_offset, a.rep_offset + a.reps):
            order = servers if rep % 2 == 0 else servers[::-1]  # alternate who goes first
            for srv in order:
                r = res[srv.name]
                # sluice's roles finish the last phase's files (hash, copy,
                # fsync, audit) before the other server's phase starts, not
                # during it: untimed, as each phase's own wait
                for x in servers:
                    x.settle()
                if "big" in only:
                    r.setdefault("big", []).append(big(srv, tmp, big_f, rep))
                if "small" in only:
                    srv.clean()
                    j0 = jbd2_commits(jinfo)
                    r.setdefault("small", []).append(small(srv, tmp, smalls, rep))
                    if j0 is not None:
                        r.setdefault("small_jtx", []).append(
                            (jbd2_commits(jinfo) - j0) / max(len(smalls), 1))
                if "csmall" in only:
                    srv.clean()
                    j0 = jbd2_commits(jinfo)
                    r.setdefault("csmall", []).append(
                        csmall(srv, tmp, conc_smalls, a.csmall_sessions, rep))
                    if j0 is not None:
                        r.setdefault("csmall_jtx", []).append(
                            (jbd2_commits(jinfo) - j0) / max(len(conc_smalls), 1))
                if "connect" in only:
                    r.setdefault("connect", []).append(connects(srv, tmp, a.connects))
                if "conc" in only:
                    dt, rss = concurrent(srv, tmp, conc_f, a.conc, rep)
                    r.setdefault("conc", []).append(dt)
                    r.setdefault("conc_rss", []).append(rss)
                print("rep %d %s: %s" % (rep, srv.name, {k: round(v[-1], 2) for k, v in r.items()}),
                      flush=True)
        if "idle" in only:
            for srv in servers:
                srv.clean()
                ok, rss, nproc, pss, uss, maps = idle(srv, a.idle)
                res[srv.name]["idle_maps"] = maps
                res[srv.name]["idle_ok"] = [ok]
                res[srv.name]["idle_rss"] = [rss]
                res[srv.name]["idle_nproc"] = [nproc]
                res[srv.name]["idle_pss"] = [pss]
                res[srv.name]["idle_uss"] = [uss]
        if a.count_fsyncs:
            for srv in servers:
                for what, files, nsess in (("one session", smalls, 1),
                                           ("%d sessions" % a.csmall_sessions, conc_smalls,
                                            a.csmall_sessions)):
                    if not files or ("csmall" not in only and nsess > 1):
                        continue
                    by = count_fsyncs(srv, tmp, files, nsess, a.rep_offset + a.reps + nsess)
                    print("fsyncs per file %s %s: %.2f %s" % (
                        srv.name, what, sum(by.values()),
                        {k: round(v, 2) for k, v in sorted(by.items())}), flush=True)
    finally:
        for s in servers:
            s.stop()
        # keep the logs, not the gigabytes
        for d in [data] + [getattr(s, "up", None) for s in servers] + \
                [getattr(s, "objects", None) for s in servers]:
            if d and os.path.isdir(d):
                shutil.rmtree(d, ignore_errors=True)

    def med(name, k):
        v = sorted(res[name].get(k, []))
        return v[len(v) // 2] if v else float("nan")
    rows = [("1 file of %d MiB: seconds (median of %d)" % (a.big_mib, a.reps), "big", "lower"),
            ("%d x 16 KiB: files/s" % a.small, "small", "higher"),
            ("%d sessions x %d x 16 KiB: files/s" % (a.csmall_sessions, a.csmall_files), "csmall",
             "higher"),
            ("%d sessions x %d MiB: seconds" % (a.conc, a.conc_mib), "conc", "lower"),
            ("%d sessions one after another: sessions/s" % a.connects, "connect", "higher"),
            ("  peak RSS per session, KiB", "conc_rss", "lower"),
            ("%d idle sessions: logged in" % a.idle, "idle_ok", ""),
            ("  peak RSS per session, KiB", "idle_rss", "lower"),
            ("  PSS per session, KiB", "idle_pss", "lower"),
            ("  private (USS) per session, KiB", "idle_uss", "lower"),
            ("  session processes (all)", "idle_nproc", "")]
    print()
    print("%-44s %12s %12s %16s" % ("", "openssh", "sluice", "sluice/openssh"))
    for label, k, better in rows:
        o, s = med("openssh", k), med("sluice", k)
        if o != o and s != s:
            continue        # not measured in this run (--only)
        ratio = s / o if o == o and o else float("nan")
        print("%-44s %12.2f %12.2f %12.2f %s" % (label, o, s, ratio, "(%s is better)" % better if better else ""))
    # The machine's speed drifts (a shared VM): the ratio within each rep,
    # whose two runs were back to back, is steadier than a ratio of medians.
    for k, label in (("small", "files/s"), ("csmall", "files/s"), ("big", "seconds"),
                     ("connect", "sessions/s")):
        o, sl = res["openssh"].get(k, []), res["sluice"].get(k, [])
        if len(o) == len(sl) and len(o) > 1:
            pr = sorted(x / y for x, y in zip(sl, o))
            print("%s: per-rep ratios sluice/openssh %s, median %.2f"
                  % (k, " ".join("%.2f" % x for x in pr), pr[len(pr) // 2]))
    if "big" in only:
        print("\nthroughput 1 file: openssh %.0f MiB/s, sluice %.0f MiB/s"
              % (a.big_mib / med("openssh", "big"), a.big_mib / med("sluice", "big")))
    if jinfo:
        print("journal: %s" % jinfo)
    # what an idle session's memory is: per session, RSS and USS by mapping
    for name in ("openssh", "sluice"):
        maps = res[name].get("idle_maps")
        if maps:
            libs = sorted(k for k in maps if ".so" in k)
            print("idle session memory by mapping, %s (KiB per session: rss/uss; %d libraries "
                  "mapped): %s" % (name, len(libs), ", ".join(
                      "%s %.0f/%.0f" % (k, v[0], v[1])
                      for k, v in sorted(maps.items(), key=lambda kv: -kv[1][1]) if v[0] or v[1])))
    print("work dir (logs):", tmp)


if __name__ == "__main__":
    main()
