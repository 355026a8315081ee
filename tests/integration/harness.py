"""
harness.py - reusable helpers for sluice's integration tests.

Drives the real binary (SLUICE_BIN, default <repo>/build/sluice), the real
OpenSSH sftp client and moto's S3 server (IAM auth on), using only the
standard library, boto3 and moto.

Everything started here is registered and torn down at exit even if a test
forgets to (atexit), and every process group is killed on stop, so no run
leaves processes behind.

Quick self-check of the pieces that do not need the binary:
    python3 harness.py
"""

import atexit
import errno
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

import boto3
import botocore.config
import botocore.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("SLUICE_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
SLUICE_BIN = os.environ.get("SLUICE_BIN") or os.path.join(REPO, "build", "sluice")
NOT_BUILT = "build/sluice not found: run cmake --build build (looked for %s)" % SLUICE_BIN

LOCALHOST = "127.0.0.1"
BUCKET = "sluice-test"


# ---------------------------------------------------------------------------
# small utilities

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def port_open(port, host=LOCALHOST, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def write_random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    return sha256_file(path)


def tail(path, n=50):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(no log %s: %s)" % (path, e)
    return "\n".join(lines[-n:])


def tree(root, limit=200):
    """A listing of every file under root (for failure messages)."""
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                size = os.lstat(p).st_size
            except OSError:
                size = "?"
            out.append("  %s (%s)" % (os.path.relpath(p, root), size))
            if len(out) >= limit:
                out.append("  ...")
                return "\n".join(out)
    return "\n".join(out) or "  (empty)"


def find_named(root, name):
    """Every path under root whose basename is name (no symlinks followed)."""
    hits = []
    for d, dirs, files in os.walk(root):
        for f in files + dirs:
            if f == name:
                hits.append(os.path.join(d, f))
    return hits


def poll(fn, timeout, interval=0.2):
    """Calls fn until it returns something truthy or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def yaml_str(s):
    """A YAML double-quoted scalar (JSON's escaping is valid YAML for these)."""
    return json.dumps(str(s))


# ---------------------------------------------------------------------------
# process bookkeeping: whatever is still alive at exit gets killed

_live = set()


def _kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _reap_all():
    for proc in list(_live):
        if proc.poll() is None:
            _kill_group(proc)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(proc)
    _live.clear()


def group_members(pgid):
    """PIDs (not zombies) whose process group is pgid."""
    pids = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % ent) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces/parens
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) >= 3 and rest[0] != "Z" and int(rest[2]) == pgid:
            pids.append(int(ent))
    return pids


def procs_by_comm(pgid):
    """{pid: comm} of the live processes in process group pgid."""
    out = {}
    for pid in group_members(pgid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                out[pid] = f.read().strip()
        except OSError:
            pass
    return out


def role_pid(pgid, comm, timeout=20):
    """The pid of the process named comm (sluice-intake, ...) in process
    group pgid, waiting up to timeout seconds for it: a serve accepts on its
    port before every role has started (slowly so under ASan on a busy
    machine). None if it never appears."""
    def find():
        return next((p for p, c in procs_by_comm(pgid).items() if c == comm), None)
    return poll(find, timeout)


# ---------------------------------------------------------------------------
# keys and passwords

def ssh_keygen(path, comment="sluice-test"):
    """Generates an unencrypted ed25519 key pair at path / path.pub; returns the public line."""
    for p in (path, path + ".pub"):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    os.chmod(path, 0o600)
    with open(path + ".pub") as f:
        return f.read().strip()


def password_hash(password):
    """A SHA-512 crypt(3) hash ("$6$...") of password."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # deprecated, still in 3.11
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
        if h and h.startswith("$6$"):
            return h
    except ImportError:
        pass
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                       capture_output=True, text=True, check=True, timeout=30)
    return r.stdout.strip()


def password_matches(password, hashed):
    """Checks a crypt(3) hash (via the crypt module or openssl)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(password, hashed) == hashed
    except ImportError:
        salt = hashed.split("$")[2]
        r = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
                           input=password + "\n", capture_output=True, text=True, timeout=30)
        return r.stdout.strip() == hashed


class Keys:
    """Partner key pairs generated at run time into dir (never committed)."""

    def __init__(self, dir):
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o700)
        self.dir = dir
        self._pub = {}

    def get(self, name):
        """Private key path for name (generated on first use)."""
        path = os.path.join(self.dir, "id_" + name)
        if name not in self._pub:
            self._pub[name] = ssh_keygen(path, "sluice-test-" + name)
        return path

    def pub(self, name):
        self.get(name)
        return self._pub[name]


# ---------------------------------------------------------------------------
# moto's S3 server

class Moto:
    """
    moto's server on a free port. With auth=True (the default) IAM auth is
    switched on: the first 3 calls (unauthenticated) create an IAM user, its
    access key and an allow-all inline policy, and everything after must be
    signed with that key. The bucket is created with the new credentials.
    """

    def __init__(self, workdir, auth=True, bucket=BUCKET, region="us-east-1"):
        self.workdir = workdir
        self.auth = auth
        self.bucket = bucket
        self.region = region
        self.port = free_port()
        self.endpoint = "http://%s:%d" % (LOCALHOST, self.port)
        self.log = os.path.join(workdir, "moto.log")
        self.proc = None
        self.access_key = "testing"
        self.secret_key = "testing"
        self.s3 = None

    def client(self, service="s3", access_key=None, secret_key=None):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1, "mode": "standard"},
                                          connect_timeout=5, read_timeout=60))

    def server_args(self):
        """Extra moto.server arguments (TLS in tlsutil.TlsMoto)."""
        return []

    def start(self, timeout=30):
        # no proxy either: a test's HTTPS_PROXY is for sluice, not for moto
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("AWS_") or k.startswith("MOTO_") or k.lower().endswith("_proxy"))}
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOCALHOST, "-p", str(self.port)]
            + self.server_args(),
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        logf.close()
        _live.add(self.proc)
        try:
            self._wait_ready(timeout)
            if self.auth:
                self._make_user()
            self.s3 = self.client()
            self.s3.create_bucket(Bucket=self.bucket)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        # A plain TCP probe first: it reaches no moto backend, so it does not
        # use up one of the 3 unauthenticated actions.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto exited with %s:\n%s" % (self.proc.returncode, tail(self.log)))
            if port_open(self.port):
                try:  # /moto-api/ is not an AWS action either
                    urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2).read()
                    return
                except Exception:
                    pass
            time.sleep(0.1)
        raise RuntimeError("moto did not answer on %s within %ss:\n%s" % (self.endpoint, timeout, tail(self.log)))

    def _make_user(self):
        iam = self.client("iam", "bootstrap-id", "bootstrap")
        iam.create_user(UserName="sluice")
        key = iam.create_access_key(UserName="sluice")["AccessKey"]
        iam.put_user_policy(UserName="sluice", PolicyName="allow-all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.access_key = key["AccessKeyId"]
        self.secret_key = key["SecretAccessKey"]

    def env(self):
        """Environment variables that give a process these credentials."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc)
                self.proc.wait(10)
        _kill_group(self.proc)
        _live.discard(self.proc)
        self.proc = None

    # -- object helpers

    def wait_for_object(self, bucket, key, timeout=30):
        """head_object's answer once bucket/key exists (bucket None: self.bucket), or None after timeout."""
        return wait_for_object(self.s3, bucket or self.bucket, key, timeout)

    def get_bytes(self, key, bucket=None):
        return self.s3.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()

    def keys(self, bucket=None):
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket or self.bucket):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out


def wait_for_object(s3, bucket, key, timeout=30):
    """Polls head_object on any boto3 client; the head answer or None."""
    def probe():
        try:
            return s3.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
    return poll(probe, timeout, 0.25)


# ---------------------------------------------------------------------------
# configuration

def render_config(listen_port, host_keys, state_dir, audit_path, store, partners,
                  listen_host=LOCALHOST, extra="", control_socket=None):
    """
    The YAML text of a sluice config. control_socket: the gateway's control
    socket (default: control.sock beside state_dir, so gateways of parallel
    tests never share one).
      store:    {"url": ..., "region": ..., "endpoint": ..., "path_style": True}
      partners: [{"name": ..., "authorized_keys": [...], "password_hash": ...,
                  "allow_from": [...], "object_key": ...}]  (all but name optional)
    """
    L = ["# generated by tests/integration/harness.py",
         "listen: %s:%d" % (listen_host, listen_port),
         "host_keys:"]
    L += ["  - %s" % yaml_str(k) for k in host_keys]
    L += ["state_dir: %s" % yaml_str(state_dir),
          "audit:",
          "  path: %s" % yaml_str(audit_path),
          "control:",
          "  socket: %s" % yaml_str(control_socket or os.path.join(
              os.path.dirname(os.path.abspath(state_dir)), "control.sock")),
          "store:",
          "  url: %s" % yaml_str(store["url"])]
    for k in ("region", "endpoint"):
        if store.get(k):
            L.append("  %s: %s" % (k, yaml_str(store[k])))
    if "path_style" in store:
        L.append("  path_style: %s" % ("true" if store["path_style"] else "false"))
    L.append("partners:")
    for p in partners:
        L.append("  - name: %s" % yaml_str(p["name"]))
        if p.get("authorized_keys"):
            L.append("    authorized_keys:")
            L += ["      - %s" % yaml_str(k) for k in p["authorized_keys"]]
        if p.get("password_hash"):
            L.append("    password_hash: %s" % yaml_str(p["password_hash"]))
        if p.get("allow_from"):
            L.append("    allow_from: [%s]" % ", ".join(yaml_str(c) for c in p["allow_from"]))
        if p.get("object_key"):
            L.append("    object_key: %s" % yaml_str(p["object_key"]))
    if extra:
        L.append(extra)
    return "\n".join(L) + "\n"


def run_sluice(args, timeout=30, env=None):
    """Runs `sluice ARGS` to completion: (rc, stdout, stderr)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([SLUICE_BIN] + list(args), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout, env=e, errors="replace")
    return r.returncode, r.stdout, r.stderr


def require_binary():
    """Raises AssertionError (a test failure, not a skip) when the binary is missing."""
    global _told
    if not (os.path.isfile(SLUICE_BIN) and os.access(SLUICE_BIN, os.X_OK)):
        if not _told:
            print(NOT_BUILT, file=sys.stderr)
            _told = True
        raise AssertionError(NOT_BUILT)


_told = False


_verbose = None


def verbose_supported():
    """True if `sluice --help` documents a global -v/--verbose (debug logs in sluice.log)."""
    global _verbose
    if _verbose is None:
        try:
            rc, out, err = run_sluice(["--help"], timeout=10)
            _verbose = rc == 0 and re.search(r"sluice \[-v\]|-v, --verbose", out + err) is not None
        except (OSError, subprocess.SubprocessError):
            _verbose = False
    return _verbose


# ---------------------------------------------------------------------------
# the gateway's users

SERVICE_USER = "sluice"
SESSION_USER = "sluice-session"


def service_ids():
    """(uid, gid) of the service user, or None when not root (no separation)."""
    if os.geteuid() != 0:
        return None
    import pwd
    try:
        pw = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise AssertionError("user %s missing: run deploy/create-users.sh (tests/run.sh does)"
                             % SERVICE_USER)
    return pw.pw_uid, pw.pw_gid


def share_with_gateway(path):
    """
    Started as root, sluice's roles run as the service user and its sessions
    as the session user: give the service user what a test made for the
    gateway under path (keys, keyrings, a file:// store), and let both users
    through path's ancestors, as an operator would with /etc/sluice and
    /var/lib/sluice. Files made by the test after this call stay root's.
    """
    ids = service_ids()
    if ids is None:
        return
    uid, gid = ids
    path = os.path.abspath(path)
    for d, dirs, files in os.walk(path):
        # a gateway's state_dir is the gateway's to fix (it gives what root
        # left there to the right user: landing files to the session user)
        if "landing" in dirs:
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(d, n)
            if os.path.islink(p):
                continue
            st = os.lstat(p)
            if st.st_uid == 0:
                os.lchown(p, uid, gid)
    if os.lstat(path).st_uid == 0:
        os.chown(path, uid, gid)
    d = path
    while d not in ("/", ""):
        st = os.stat(d)
        if not st.st_mode & 0o001:
            os.chmod(d, (st.st_mode & 0o7777) | 0o011)
        d = os.path.dirname(d)


def as_session_file(path):
    """Gives a file a test planted in a landing directory to the session
    user, as if a session had written it (a no-op when not root)."""
    if os.geteuid() != 0:
        return
    import pwd
    ses = pwd.getpwnam(SESSION_USER)
    os.lchown(path, ses.pw_uid, pwd.getpwnam(SERVICE_USER).pw_gid)


# ---------------------------------------------------------------------------
# the gateway

class Sluice:
    """
    One `sluice serve -c cfg.yaml` in the foreground, in its own process group.
    workdir gets cfg.yaml, sluice.log, state/, audit.jsonl and the host key
    (generated by sluice on first start).
    """

    def __init__(self, workdir, store, partners, env=None, port=None, extra_args=None,
                 extra_config=""):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = port or free_port()
        self.state_dir = os.path.join(workdir, "state")
        self.audit_path = os.path.join(workdir, "audit.jsonl")
        self.host_key = os.path.join(workdir, "hostkey", "ssh_host_ed25519_key")
        os.makedirs(os.path.dirname(self.host_key), exist_ok=True)
        self.config_path = os.path.join(workdir, "cfg.yaml")
        self.log = os.path.join(workdir, "sluice.log")
        self.env = dict(env or {})
        self.extra_args = list(extra_args or [])
        self.proc = None
        self.returncode = None
        self.config_text = render_config(self.port, [self.host_key], self.state_dir,
                                         self.audit_path, store, partners, extra=extra_config)
        with open(self.config_path, "w") as f:
            f.write(self.config_text)

    def landing(self, partner):
        return os.path.join(self.state_dir, "landing", partner)

    def log_tail(self, n=50):
        return "--- last %d lines of %s ---\n%s" % (n, self.log, tail(self.log, n))

    def diagnostics(self):
        return "%s\n--- files under %s ---\n%s" % (self.log_tail(), self.state_dir, tree(self.state_dir))

    def start(self, timeout=20):
        require_binary()
        # nor systemd's sockets, should the tests run inside a unit: only a
        # test that asks for them (test_package.py) gets them
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")
               and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env["AWS_EC2_METADATA_DISABLED"] = "true"  # never probe IMDS from a test
        env.update(self.env)
        extra = self.extra_args + os.environ.get("SLUICE_TEST_ARGS", "").split()
        pre = ["-v"] if verbose_supported() else []
        # the test's whole temporary tree: a file:// store or keyrings
        # often sit beside the gateway's workdir
        parent = os.path.dirname(os.path.abspath(self.workdir))
        share_with_gateway(parent if parent.startswith(tempfile.gettempdir() + "/")
                           else self.workdir)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([SLUICE_BIN] + pre + ["serve", "-c", self.config_path] + extra,
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     env=env, cwd=self.workdir, start_new_session=True)
        logf.close()
        _live.add(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._cleanup_group()
                raise AssertionError("sluice serve exited with %s before listening on %d\n%s"
                                     % (rc, self.port, self.log_tail()))
            if port_open(self.port):
                return self
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError("sluice serve did not accept on 127.0.0.1:%d within %ss\n%s"
                                     % (self.port, timeout, self.log_tail()))
            time.sleep(0.1)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM; returns the exit code. Raises AssertionError (with the log) if it
        takes over timeout seconds or leaves processes of its group behind."""
        if self.proc is None:
            return self.returncode
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("sluice serve did not exit within %ss of SIGTERM\n%s"
                                     % (timeout, self.log_tail()))
        self.returncode = proc.returncode
        # every role and session shares the supervisor's process group
        poll(lambda: not group_members(proc.pid), 3)
        leftovers = group_members(proc.pid)
        self._cleanup_group()
        self.proc = None
        if leftovers:
            raise AssertionError("sluice serve exited (%s) but left processes %s of its group running\n%s"
                                 % (self.returncode, leftovers, self.log_tail()))
        return self.returncode

    def kill(self):
        """Best effort, never raises: for cleanups after a failure."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.returncode = self.proc.returncode
        self._cleanup_group()
        self.proc = None

    def _cleanup_group(self):
        _kill_group(self.proc, signal.SIGKILL)
        _live.discard(self.proc)
        # The roles die a moment after the supervisor: until the last one is
        # gone the old listener may still hold the port, and a restart would
        # take it for the new one.
        deadline = time.monotonic() + 10
        while group_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- audit

    def audit_records(self):
        return read_audit(self.audit_path)

    def wait_audit(self, pred, timeout=15):
        """The first audit record for which pred(record) is true, or None."""
        def probe():
            for r in self.audit_records():
                if pred(r):
                    return r
            return None
        return poll(probe, timeout, 0.2)


def audit_segments(path):
    """The sealed segments of the trail whose live file is path (in the
    default audit.segments_dir beside it), oldest first."""
    d = os.path.join(os.path.dirname(path), "segments")
    try:
        names = sorted(n for n in os.listdir(d)
                       if n.startswith("audit-") and n.endswith(".jsonl"))
    except FileNotFoundError:
        return []
    return [os.path.join(d, n) for n in names]


def read_audit(path, segments=True):
    """The parsed records of a JSON Lines audit file (unparsable lines
    skipped), after those of its sealed segments unless segments=False."""
    out = []
    for p in (audit_segments(path) if segments else []) + [path]:
        try:
            with open(p, "rb") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
    return out


def norm_path(p):
    return (p or "").lstrip("/")


# ---------------------------------------------------------------------------
# the OpenSSH sftp client

class SftpResult:
    def __init__(self, rc, out, err, cmd):
        self.rc, self.out, self.err, self.cmd = rc, out, err, cmd

    def __iter__(self):  # rc, out, err = sftp(...)
        return iter((self.rc, self.out, self.err))

    def __repr__(self):
        return "sftp rc=%s\n$ %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.rc, " ".join(self.cmd), self.out, self.err)


SSH_COMMON = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
              "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=10",
              "-F", "/dev/null"]


def _batch_file(lines):
    fd, path = tempfile.mkstemp(prefix="sftp-batch-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def sftp(port, user, key, commands, timeout=60, extra_opts=(), host=LOCALHOST):
    """Runs the batch `commands` (list of sftp commands) with key auth."""
    batch = _batch_file(commands)
    cmd = (["sftp", "-b", batch, "-P", str(port), "-i", key] + SSH_COMMON +
           ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no"] + list(extra_opts) + ["%s@%s" % (user, host)])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=timeout, errors="replace")
        return SftpResult(r.returncode, r.stdout, r.stderr, cmd)
    except subprocess.TimeoutExpired as e:
        return SftpResult(-9, _s(e.stdout), _s(e.stderr) + "\n(timed out after %ss)" % timeout, cmd)
    finally:
        os.unlink(batch)


def sftp_open(port, user, key, host=LOCALHOST):
    """An sftp session that stays open, reading batch commands from its stdin
    (a pipe: write commands, close it to end). Returns the Popen; the caller
    must close stdin and wait (or kill)."""
    cmd = (["sftp", "-b", "-", "-P", str(port), "-i", key] + SSH_COMMON +
           ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no",
            "%s@%s" % (user, host)])
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    _live.add(p)
    return p


def sftp_close(p):
    """Ends an sftp_open session: closes its pipes, waits for it (killing
    its group if it does not end) and forgets it."""
    for f in (p.stdin, p.stdout, p.stderr):
        try:
            f.close()
        except OSError:
            pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        _kill_group(p)
        p.wait(5)
    _live.discard(p)


def _s(b):
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def sftp_password(port, user, password, commands, timeout=60, extra_opts=(), host=LOCALHOST):
    """
    Runs the batch `commands` with password auth. Uses sshpass when installed,
    otherwise runs sftp on a pty and answers its "password:" prompt. Under a
    pty stdout and stderr arrive merged (both in .out and .err).
    """
    batch = _batch_file(commands)
    # sftp -b appends "-oBatchMode yes" to ssh's arguments, which disables
    # password prompts; ssh keeps the first value it sees, so ours goes first.
    opts = (["-o", "BatchMode=no", "-b", batch, "-P", str(port)] + SSH_COMMON +
            ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
             "-o", "NumberOfPasswordPrompts=1", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null"]
            + list(extra_opts) + ["%s@%s" % (user, host)])
    try:
        if shutil.which("sshpass"):
            cmd = ["sshpass", "-e", "sftp"] + opts
            env = dict(os.environ, SSHPASS=password)
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                   timeout=timeout, env=env, errors="replace")
                return SftpResult(r.returncode, r.stdout, r.stderr, cmd)
            except subprocess.TimeoutExpired as e:
                return SftpResult(-9, _s(e.stdout), _s(e.stderr) + "\n(timed out)", cmd)
        return _pty_run(["sftp"] + opts, password, timeout)
    finally:
        os.unlink(batch)


_PROMPT = re.compile(rb"password: ?$", re.I)


def _pty_run(cmd, password, timeout):
    env = dict(os.environ)
    for k in ("SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "SSH_AUTH_SOCK"):
        env.pop(k, None)
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        try:
            os.execvpe(cmd[0], cmd, env)
        finally:
            os._exit(127)
    buf = b""
    seen = 0
    answered = 0
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError as e:
                if e.errno == errno.EIO:  # the child closed the pty
                    break
                raise
            if not data:
                break
            buf += data
            if _PROMPT.search(buf[seen:][-200:]):
                if answered >= 1:  # a second prompt means the first answer was refused
                    os.kill(pid, signal.SIGKILL)
                    break
                os.write(fd, password.encode() + b"\n")
                answered += 1
                seen = len(buf)  # only output after this answer can prompt again
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    rc = os.waitstatus_to_exitcode(status)
    text = buf.decode("utf-8", "replace").replace("\r\n", "\n")
    if timed_out:
        text += "\n(timed out after %ss)" % timeout
        rc = -9
    return SftpResult(rc, text, text, cmd)


# ---------------------------------------------------------------------------
# self-check: python3 harness.py

def _selfcheck():
    with tempfile.TemporaryDirectory(prefix="sluice-harness-") as tmp:
        keys = Keys(os.path.join(tmp, "keys"))
        pub = keys.pub("acme")
        assert pub.startswith("ssh-ed25519 AAAA"), pub
        assert oct(os.stat(keys.get("acme")).st_mode & 0o777) == "0o600"
        assert keys.pub("wrong") != pub
        print("keys: ok", pub[:40] + "...")

        h = password_hash("s3cret pass")
        assert h.startswith("$6$") and password_matches("s3cret pass", h) and not password_matches("x", h), h
        print("password hash: ok", h[:20] + "...")

        m = Moto(tmp).start()
        try:
            m.s3.put_object(Bucket=m.bucket, Key="a/b.txt", Body=b"hello")
            assert m.wait_for_object(m.bucket, "a/b.txt", 5)["ContentLength"] == 5
            assert m.get_bytes("a/b.txt") == b"hello"
            bad = m.client("s3", m.access_key, m.secret_key[:-1] + ("A" if m.secret_key[-1] != "A" else "B"))
            try:
                bad.put_object(Bucket=m.bucket, Key="x", Body=b"x")
                raise AssertionError("moto accepted a wrong secret: auth is off")
            except botocore.exceptions.ClientError as e:
                code = e.response["Error"]["Code"]
                assert code == "SignatureDoesNotMatch", code
            unknown = m.client("s3", "NOTAKEYID000000000", "x")
            try:
                unknown.list_objects_v2(Bucket=m.bucket)
                raise AssertionError("moto accepted an unknown key id: auth is off")
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] in ("InvalidAccessKeyId", "InvalidClientTokenId"), e
            print("moto with IAM auth: ok", m.endpoint, m.access_key)
        finally:
            m.stop()
        m = Moto(tmp, auth=False).start()
        try:
            m.s3.put_object(Bucket=m.bucket, Key="a b+c.txt", Body=b"x")
            assert m.keys() == ["a b+c.txt"]
            print("moto without auth: ok")
        finally:
            m.stop()
        print("sluice binary:", SLUICE_BIN, "present" if os.path.exists(SLUICE_BIN) else "MISSING")


if __name__ == "__main__":
    _selfcheck()
