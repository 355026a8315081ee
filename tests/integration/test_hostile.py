"""
The negative matrix of ../../../shared/REFERENCE.md ("Bad input and faults"),
sent as hand-made SFTP packets over a real SSH channel.

The raw client is a small paramiko script (RAW_CLIENT below) run with the
system /usr/bin/python3 (Debian's python3-paramiko; the pyenv interpreter
that runs this file has boto3/moto, not paramiko). It opens the "sftp"
subsystem and relays bytes: the test writes JSON commands on its stdin
({"send": hex} / {"recv": seconds}) and reads one JSON line per command
({"pkt": hex} / {"eof": true} / {"timeout": true}). Packets are built and
parsed here.

After each case: the gateway still serves a normal OpenSSH `sftp` upload,
and nothing was created outside landing/acme (acmex is a root-prefix twin).

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_hostile
"""

import json
import os
import select
import struct
import subprocess
import tempfile
import time
import unittest
import uuid

import harness as H

SYS_PYTHON = "/usr/bin/python3"
INSTALL_PARAMIKO = "install python3-paramiko for /usr/bin/python3 (deploy/install-deps.sh --test)"

# SFTP v3 (draft-ietf-secsh-filexfer-02)
INIT, VERSION, OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT, SETSTAT, FSETSTAT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME, READLINK, SYMLINK = range(11, 21)
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
EXTENDED, EXTENDED_REPLY = 200, 201
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE, FX_BAD_MESSAGE = 0, 1, 2, 3, 4, 5
FX_OP_UNSUPPORTED = 8
FXF_READ, FXF_WRITE, FXF_APPEND, FXF_CREAT, FXF_TRUNC, FXF_EXCL = 1, 2, 4, 8, 0x10, 0x20
FX_NAMES = {0: "OK", 1: "EOF", 2: "NO_SUCH_FILE", 3: "PERMISSION_DENIED", 4: "FAILURE",
            5: "BAD_MESSAGE", 6: "NO_CONNECTION", 7: "CONNECTION_LOST", 8: "OP_UNSUPPORTED"}
MAX_MSG = 256 * 1024  # server/sftp.h SFTP_MAX_MSG_LENGTH

RAW_CLIENT = r'''
import binascii, json, socket, sys, select, time
import paramiko

host, port, user, keyfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def out(d):
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()

def load_key(path):
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path)
        except Exception:
            pass
    raise SystemExit("cannot load key %s" % path)

try:
    sock = socket.create_connection((host, port), timeout=10)
    t = paramiko.Transport(sock)
    t.start_client(timeout=15)
    t.auth_publickey(user, load_key(keyfile))
    ch = t.open_session(timeout=15)
    ch.invoke_subsystem("sftp")
except Exception as e:
    out({"error": "%s: %s" % (type(e).__name__, e)})
    sys.exit(1)
out({"ready": True})

buf = b""
eof = False

def fill(deadline):
    global buf, eof
    while not eof:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ch.settimeout(left)
        try:
            d = ch.recv(1 << 20)
        except socket.timeout:
            return
        except Exception:
            eof = True
            return
        if not d:
            eof = True
            return
        buf += d
        if len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
            return

for line in sys.stdin:
    cmd = json.loads(line)
    if "send" in cmd:
        try:
            ch.sendall(binascii.unhexlify(cmd["send"]))
            out({"sent": True})
        except Exception as e:
            out({"eof": True, "error": "%s: %s" % (type(e).__name__, e)})
    elif "recv" in cmd:
        deadline = time.monotonic() + cmd["recv"]
        while True:
            if len(buf) >= 4:
                n = int.from_bytes(buf[:4], "big")
                if len(buf) >= 4 + n:
                    pkt, buf = buf[4:4 + n], buf[4 + n:]
                    out({"pkt": pkt.hex()})
                    break
            if eof or time.monotonic() >= deadline:
                if eof:
                    out({"eof": True, "pending": len(buf),
                         "closed": ch.closed or not t.is_active()})
                else:
                    out({"timeout": True, "pending": len(buf)})
                break
            fill(deadline)
    elif "alive" in cmd:
        out({"alive": t.is_active() and not ch.closed and not ch.eof_received})
    elif "close" in cmd:
        break
try:
    ch.close()
    t.close()
except Exception:
    pass
'''


# ---------------------------------------------------------------------------
# packet encoding

def u8(v):
    return struct.pack(">B", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def sstr(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


def packet(type_, body=b""):
    payload = u8(type_) + body
    return u32(len(payload)) + payload


NO_ATTRS = u32(0)


class Reply:
    """One parsed server packet."""

    def __init__(self, raw):
        self.raw = raw
        self.type = raw[0]
        self.id = struct.unpack(">I", raw[1:5])[0] if len(raw) >= 5 else None
        self.status = self.msg = self.handle = self.data = None
        self.names = []
        body = raw[5:]
        if self.type == STATUS and len(body) >= 4:
            self.status = struct.unpack(">I", body[:4])[0]
            if len(body) >= 8:
                n = struct.unpack(">I", body[4:8])[0]
                self.msg = body[8:8 + n].decode("utf-8", "replace")
        elif self.type == HANDLE:
            n = struct.unpack(">I", body[:4])[0]
            self.handle = body[4:4 + n]
        elif self.type == DATA:
            n = struct.unpack(">I", body[:4])[0]
            self.data = body[4:4 + n]
        elif self.type == NAME:
            count = struct.unpack(">I", body[:4])[0]
            off = 4
            for _ in range(count):
                n = struct.unpack(">I", body[off:off + 4])[0]
                self.names.append(body[off + 4:off + 4 + n])
                off += 4 + n
                n = struct.unpack(">I", body[off:off + 4])[0]  # longname
                off += 4 + n
                flags = struct.unpack(">I", body[off:off + 4])[0]
                off += 4
                if flags & 1:
                    off += 8
                if flags & 2:
                    off += 8
                if flags & 4:
                    off += 4
                if flags & 8:
                    off += 8
                if flags & 0x80000000:
                    ext = struct.unpack(">I", body[off:off + 4])[0]
                    off += 4
                    for _ in range(2 * ext):
                        n = struct.unpack(">I", body[off:off + 4])[0]
                        off += 4 + n

    def __repr__(self):
        if self.type == STATUS:
            return "STATUS(id=%s, %s, %r)" % (self.id, FX_NAMES.get(self.status, self.status), self.msg)
        if self.type == HANDLE:
            return "HANDLE(id=%s, %s)" % (self.id, self.handle.hex())
        if self.type == DATA:
            return "DATA(id=%s, %d bytes)" % (self.id, len(self.data))
        if self.type == NAME:
            return "NAME(id=%s, %r)" % (self.id, self.names)
        return "packet(type=%d, id=%s, %d bytes)" % (self.type, self.id, len(self.raw))


class Closed:
    """The server ended the channel/session instead of answering."""
    type = None

    def __init__(self, info):
        self.info = info

    def __repr__(self):
        return "Closed(%r)" % (self.info,)


class TimedOut(Closed):
    def __repr__(self):
        return "TimedOut(%r)" % (self.info,)


class RawSftp:
    """A raw SFTP channel to the gateway (see RAW_CLIENT)."""

    def __init__(self, script, port, user, key):
        self.next_id = 1
        self.proc = subprocess.Popen([SYS_PYTHON, script, H.LOCALHOST, str(port), user, key],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        H._live.add(self.proc)
        first = self._line(30)
        if not first.get("ready"):
            err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() is not None else ""
            self.close()
            raise AssertionError("raw sftp client could not connect as %s: %s %s" % (user, first, err))

    def _line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return {"client-timeout": True}
        line = self.proc.stdout.readline()
        if not line:
            return {"client-exited": self.proc.poll()}
        return json.loads(line)

    def _cmd(self, d, timeout=30):
        try:
            self.proc.stdin.write((json.dumps(d) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            return {"eof": True, "error": str(e)}
        return self._line(timeout)

    def send(self, raw):
        return self._cmd({"send": raw.hex()})

    def recv(self, timeout=10):
        d = self._cmd({"recv": timeout}, timeout + 20)
        if "pkt" in d:
            return Reply(bytes.fromhex(d["pkt"]))
        if d.get("timeout"):
            return TimedOut(d)
        return Closed(d)

    def alive(self):
        return bool(self._cmd({"alive": True}).get("alive"))

    def init(self):
        self.send(packet(INIT, u32(3)))
        r = self.recv()
        assert r.type == VERSION, "no VERSION reply to INIT: %r" % (r,)
        self.extensions = {}
        body = r.raw[5:]
        while len(body) >= 8:
            n = struct.unpack(">I", body[:4])[0]
            name = body[4:4 + n]
            body = body[4 + n:]
            n = struct.unpack(">I", body[:4])[0]
            self.extensions[name.decode()] = body[4:4 + n].decode()
            body = body[4 + n:]
        return r

    def request(self, type_, body=b"", timeout=10):
        """Sends one request with a fresh id; returns the reply (checked to carry that id)."""
        rid = self.next_id
        self.next_id += 1
        self.send(packet(type_, u32(rid) + body))
        r = self.recv(timeout)
        if isinstance(r, Reply) and r.id != rid:
            raise AssertionError("reply for id %s arrived for request id %d: %r" % (r.id, rid, r))
        return r

    def open(self, path, flags, attrs=NO_ATTRS):
        return self.request(OPEN, sstr(path) + u32(flags) + attrs)

    def close_handle(self, handle):
        return self.request(CLOSE, sstr(handle))

    def write(self, handle, offset, data):
        return self.request(WRITE, sstr(handle) + u64(offset) + sstr(data))

    def read(self, handle, offset, length):
        return self.request(READ, sstr(handle) + u64(offset) + u32(length))

    def extended(self, name, body=b""):
        return self.request(EXTENDED, sstr(name) + body)

    def close(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.write(b'{"close": true}\n')
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            H._kill_group(self.proc)
            self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        H._live.discard(self.proc)
        self.proc = None

    def kill(self):
        """Drops the connection abruptly (the client process dies)."""
        if self.proc is not None:
            H._kill_group(self.proc)
            self.proc.wait(5)
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                f.close()
            H._live.discard(self.proc)
            self.proc = None


# ---------------------------------------------------------------------------

class TestHostile(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        if not os.path.exists(SYS_PYTHON) or subprocess.run(
                [SYS_PYTHON, "-c", "import paramiko"], capture_output=True).returncode != 0:
            raise AssertionError(INSTALL_PARAMIKO)
        d = tempfile.TemporaryDirectory(prefix="sluice-hostile-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.script = os.path.join(cls.tmp, "raw_sftp.py")
        with open(cls.script, "w") as f:
            f.write(RAW_CLIENT)
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        # an outside directory with a file the symlinks point at
        cls.outside = os.path.join(cls.tmp, "outside")
        os.makedirs(cls.outside)
        cls.secret = os.path.join(cls.outside, "secret.txt")
        with open(cls.secret, "w") as f:
            f.write("outside, must stay unchanged\n")
        cls.gw = H.Sluice(os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
                          partners=[{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]},
                                    {"name": "acmex", "authorized_keys": [cls.keys.pub("acmex")]}])
        # pre-planted: acmex's landing with a file, symlinks inside acme's root
        cls.twin_file = os.path.join(cls.gw.landing("acmex"), "twin.txt")
        os.makedirs(cls.gw.landing("acmex"), exist_ok=True)
        with open(cls.twin_file, "w") as f:
            f.write("acmex's own file\n")
        acme = cls.gw.landing("acme")
        os.makedirs(acme, exist_ok=True)
        os.symlink(cls.outside, os.path.join(acme, "linkdir"))
        os.symlink(cls.secret, os.path.join(acme, "linkfile"))
        os.symlink("/etc", os.path.join(acme, "etc"))
        os.symlink("../acmex", os.path.join(acme, "twinlink"))
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)
        cls.snapshot = cls._outside_snapshot()

    @classmethod
    def _outside_snapshot(cls):
        """What no case may change: the outside dir, acmex's landing, /etc/passwd."""
        snap = {}
        for root in (cls.outside, cls.gw.landing("acmex")):
            for d, dirs, files in os.walk(root):
                for name in files + dirs:
                    p = os.path.join(d, name)
                    st = os.lstat(p)
                    snap[p] = (st.st_size, st.st_mtime_ns, st.st_mode)
        st = os.stat("/etc/passwd")
        snap["/etc/passwd"] = (st.st_size, st.st_mtime_ns, st.st_mode)
        return snap

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running (exit %s)\n%s"
                      % (self.gw.proc and self.gw.proc.returncode, self.gw.log_tail()))
        self.marker = "hostile-%s" % uuid.uuid4().hex[:8]

    def tearDown(self):
        # after each case: still serving, and nothing escaped
        self.assertTrue(self.gw.alive(), "sluice serve died\n%s" % self.gw.log_tail())
        f = os.path.join(self.tmp, "keys", "after.txt")
        sha = H.write_random_file(f, 4096 + 3)
        name = "after-%s.bin" % self.marker
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["put %s %s" % (f, name)])
        self.assertEqual(res.rc, 0, "a normal sftp upload failed after the case: %r\n%s"
                         % (res, self.gw.log_tail()))
        stored = os.path.join(self.objects, "acme", name)
        self.assertTrue(H.poll(lambda: os.path.isfile(stored) and H.sha256_file(stored) == sha, 30),
                        "the upload after the case was not stored\n%s" % self.gw.diagnostics())
        now = self._outside_snapshot()
        changed = sorted(p for p in set(now) | set(self.snapshot)
                         if now.get(p) != self.snapshot.get(p))
        self.assertEqual(changed, [], "something changed outside landing/acme\n%s" % self.gw.diagnostics())
        with open(self.secret) as fh:
            self.assertEqual(fh.read(), "outside, must stay unchanged\n")
        for root in ("/", "/tmp", "/etc"):
            for n in os.listdir(root):
                self.assertNotIn(self.marker, n, "%s/%s was created outside landing/acme" % (root, n))
        # inside the test's tree a name with this case's marker may only be in
        # acme's landing, acme's objects, or the spool (copies of accepted files)
        allowed = [os.path.realpath(p) + os.sep for p in (
            self.gw.landing("acme"), os.path.join(self.objects, "acme"),
            os.path.join(self.gw.state_dir, "spool"))]
        escaped = []
        for d, dirs, files in os.walk(self.tmp):
            for n in files + dirs:
                p = os.path.join(os.path.realpath(d), n)
                if self.marker in n and not any(p.startswith(a) for a in allowed):
                    escaped.append(p)
        self.assertEqual(escaped, [], "files of this case outside landing/acme\n%s" % self.gw.diagnostics())

    def raw(self, user="acme"):
        c = RawSftp(self.script, self.gw.port, user, self.keys.get(user))
        self.addCleanup(c.close)
        c.init()
        return c

    def assertStatus(self, reply, code, what):
        self.assertIsInstance(reply, Reply, "%s: no reply (%r)\n%s" % (what, reply, self.gw.log_tail(20)))
        self.assertEqual(reply.type, STATUS, "%s: want STATUS %s, got %r" % (what, FX_NAMES[code], reply))
        self.assertEqual(reply.status, code, "%s: want %s, got %r" % (what, FX_NAMES[code], reply))

    def assertSessionEnds(self, c, what):
        r = c.recv(15)
        self.assertIsInstance(r, Closed, "%s: the session answered %r instead of ending" % (what, r))
        self.assertNotIsInstance(r, TimedOut, "%s: the session neither answered nor ended within 15s"
                                 % what)

    def landing_has(self, name):
        return H.find_named(self.gw.landing("acme"), name)

    # -- traversal

    def test_dotdot_refused(self):
        c = self.raw()
        for path in ("../%s" % self.marker, "../../%s" % self.marker, "/../../tmp/%s" % self.marker,
                     "a/../../%s" % self.marker, "//..//%s" % self.marker, "/./../%s" % self.marker):
            r = c.open(path, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
            self.assertStatus(r, FX_PERMISSION_DENIED, "OPEN(write) %r" % path)
        for path in ("/../../etc/passwd", "../../../../../../etc/passwd"):
            self.assertStatus(c.open(path, FXF_READ), FX_PERMISSION_DENIED, "OPEN(read) %r" % path)
            self.assertStatus(c.request(STAT, sstr(path)), FX_PERMISSION_DENIED, "STAT %r" % path)
        self.assertStatus(c.request(OPENDIR, sstr("..")), FX_PERMISSION_DENIED, "OPENDIR ..")
        self.assertStatus(c.request(MKDIR, sstr("../" + self.marker) + NO_ATTRS), FX_PERMISSION_DENIED,
                          "MKDIR ../x")
        # REALPATH clamps at the root, as a chroot does
        r = c.request(REALPATH, sstr("../../.."))
        self.assertEqual(r.type, NAME, "REALPATH ../../..: %r" % r)
        self.assertEqual(r.names, [b"/"], "REALPATH ../../.. must be / (the partner root): %r" % r)
        self.assertTrue(c.alive(), "the session ended after refused traversals")

    def test_backslashes_refused(self):
        c = self.raw()
        for path in ("..\\%s" % self.marker, "..\\..\\%s" % self.marker, "a\\b-%s" % self.marker,
                     "\\etc\\passwd"):
            r = c.open(path, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
            self.assertIsInstance(r, Reply, "OPEN %r: %r" % (path, r))
            self.assertIn(r.status, (FX_PERMISSION_DENIED, FX_FAILURE), "OPEN %r: %r" % (path, r))
        self.assertEqual(self.landing_has("..\\%s" % self.marker), [], "a backslash name was created")

    def test_root_prefix_twin(self):
        c = self.raw()
        for path in ("../acmex/twin.txt", "/../acmex/twin.txt", "../acmex/%s" % self.marker):
            self.assertStatus(c.open(path, FXF_READ), FX_PERMISSION_DENIED, "OPEN(read) %r" % path)
            self.assertStatus(c.open(path, FXF_WRITE | FXF_CREAT | FXF_TRUNC), FX_PERMISSION_DENIED,
                              "OPEN(write) %r" % path)
        self.assertStatus(c.request(OPENDIR, sstr("../acmex")), FX_PERMISSION_DENIED, "OPENDIR ../acmex")
        self.assertStatus(c.request(REMOVE, sstr("../acmex/twin.txt")), FX_PERMISSION_DENIED,
                          "REMOVE ../acmex/twin.txt")
        self.assertStatus(c.request(RENAME, sstr("../acmex/twin.txt") + sstr("stolen-" + self.marker)),
                          FX_PERMISSION_DENIED, "RENAME ../acmex/twin.txt")
        with open(self.twin_file) as f:
            self.assertEqual(f.read(), "acmex's own file\n")

    # -- pre-planted symlinks

    def test_preplanted_symlinks(self):
        c = self.raw()
        cases = [
            ("OPEN(read) linkfile", lambda: c.open("linkfile", FXF_READ)),
            ("OPEN(write,trunc) linkfile", lambda: c.open("linkfile", FXF_WRITE | FXF_CREAT | FXF_TRUNC)),
            ("OPEN(write) linkdir/new", lambda: c.open("linkdir/%s" % self.marker,
                                                       FXF_WRITE | FXF_CREAT | FXF_TRUNC)),
            ("OPEN(read) linkdir/secret.txt", lambda: c.open("linkdir/secret.txt", FXF_READ)),
            ("OPEN(read) etc/passwd", lambda: c.open("etc/passwd", FXF_READ)),
            ("OPEN(write) twinlink/new", lambda: c.open("twinlink/%s" % self.marker,
                                                        FXF_WRITE | FXF_CREAT | FXF_TRUNC)),
            ("OPEN(read) twinlink/twin.txt", lambda: c.open("twinlink/twin.txt", FXF_READ)),
            ("OPENDIR linkdir", lambda: c.request(OPENDIR, sstr("linkdir"))),
            ("OPENDIR etc", lambda: c.request(OPENDIR, sstr("etc"))),
            ("STAT linkdir/secret.txt", lambda: c.request(STAT, sstr("linkdir/secret.txt"))),
            ("MKDIR linkdir/sub", lambda: c.request(MKDIR, sstr("linkdir/%s" % self.marker) + NO_ATTRS)),
        ]
        for what, fn in cases:
            self.assertStatus(fn(), FX_PERMISSION_DENIED, what)
        # SETSTAT (mode + times) on the link: acting on the link itself (as
        # lsetstat does) is fine, following it is not: tearDown checks that the
        # outside file's mode and mtime are unchanged
        for path in ("linkfile", "linkdir", "linkdir/secret.txt"):
            r = c.request(SETSTAT, sstr(path) + u32(4 | 8) + u32(0o777) + u32(1) + u32(1))
            self.assertIsInstance(r, Reply, "SETSTAT %s: %r" % (path, r))
            self.assertIn(r.status, (FX_OK, FX_PERMISSION_DENIED), "SETSTAT %s: %r" % (path, r))
            if path == "linkdir/secret.txt":
                self.assertEqual(r.status, FX_PERMISSION_DENIED, "SETSTAT through linkdir: %r" % r)
        # a new file renamed onto a path through the link
        h = c.open("mine-%s" % self.marker, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN of a plain new file: %r" % h)
        self.assertStatus(c.write(h.handle, 0, b"x" * 10), FX_OK, "WRITE")
        self.assertStatus(c.close_handle(h.handle), FX_OK, "CLOSE")
        self.assertStatus(c.request(RENAME, sstr("mine-%s" % self.marker) + sstr("linkdir/" + self.marker)),
                          FX_PERMISSION_DENIED, "RENAME into linkdir")
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret.txt"], "a file appeared in the outside dir")

    # -- names

    def test_bad_names_refused(self):
        c = self.raw()
        m = self.marker
        for what, name in (("NUL", "nul-%s\x00.txt" % m), ("NUL first", "\x00" + m),
                           ("newline", "nl-%s\n.txt" % m), ("ESC", "esc-%s\x1b[31m.txt" % m),
                           ("DEL", "del-%s\x7f" % m), ("not UTF-8", b"bad-" + m.encode() + b"\xff\xfe.txt"),
                           ("overlong UTF-8 slash", b"ov-" + m.encode() + b"\xc0\xaf..\xc0\xaf"),
                           ("256-byte component", m + "a" * (256 - len(m))),
                           ("8 KiB path", "/".join(["d" * 200] * 40) + "/" + m)):
            r = c.open(name, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
            # OpenSSH's sftp-server answers FAILURE for names the kernel refuses
            # (ENAMETOOLONG, EINVAL); sluice refuses these names itself, the same way.
            self.assertStatus(r, FX_FAILURE, "OPEN with a %s name" % what)
        for what, name in (("NUL", "\x00"), ("control", "\x01\x02")):
            self.assertStatus(c.request(MKDIR, sstr(name + m) + NO_ATTRS), FX_FAILURE, "MKDIR %s" % what)
        # a 255-byte name is legal and must work (boundary)
        ok = m + "b" * (255 - len(m))
        h = c.open(ok, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN with a 255-byte name: %r" % h)
        self.assertStatus(c.write(h.handle, 0, b"255"), FX_OK, "WRITE 255-byte name")
        self.assertStatus(c.close_handle(h.handle), FX_OK, "CLOSE 255-byte name")
        d = c.request(OPENDIR, sstr("/"))
        self.assertEqual(d.type, HANDLE, "OPENDIR /: %r" % d)
        names = []
        for _ in range(100):
            r = c.request(READDIR, sstr(d.handle))
            if r.type != NAME:
                self.assertStatus(r, FX_EOF, "READDIR end")
                break
            names += r.names
        c.close_handle(d.handle)
        self.assertIn(ok.encode(), names, "the 255-byte name is not listed")
        self.assertEqual([n for n in os.listdir(self.gw.landing("acme")) if m in n and n != ok], [],
                         "a bad name was created in landing/acme")

    # -- handles

    def test_forged_and_closed_handles(self):
        c = self.raw()
        h = c.open("h-%s" % self.marker, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN: %r" % h)
        self.assertStatus(c.write(h.handle, 0, b"hello"), FX_OK, "WRITE")
        self.assertStatus(c.close_handle(h.handle), FX_OK, "CLOSE")
        # OpenSSH's sftp-server answers FAILURE for a handle it does not know
        self.assertStatus(c.write(h.handle, 5, b"again"), FX_FAILURE, "WRITE to a closed handle")
        self.assertStatus(c.read(h.handle, 0, 10), FX_FAILURE, "READ from a closed handle")
        self.assertStatus(c.close_handle(h.handle), FX_FAILURE, "CLOSE twice")
        self.assertStatus(c.request(FSTAT, sstr(h.handle)), FX_FAILURE, "FSTAT closed handle")
        for forged in (b"", b"\x00", b"\xff" * 4, b"\x00\x00\x00\x07", h.handle + b"x", b"A" * 256,
                       bytes(len(h.handle)), b"\xff" * len(h.handle)):
            self.assertStatus(c.write(forged, 0, b"x"), FX_FAILURE, "WRITE forged handle %r" % forged)
            self.assertStatus(c.close_handle(forged), FX_FAILURE, "CLOSE forged handle %r" % forged)
            self.assertStatus(c.request(READDIR, sstr(forged)), FX_FAILURE, "READDIR forged %r" % forged)
        # a directory handle used as a file handle and the reverse
        d = c.request(OPENDIR, sstr("/"))
        self.assertEqual(d.type, HANDLE, "OPENDIR: %r" % d)
        self.assertStatus(c.write(d.handle, 0, b"x"), FX_FAILURE, "WRITE to a directory handle")
        c.close_handle(d.handle)
        with open(os.path.join(self.gw.landing("acme"), "h-%s" % self.marker), "rb") as f:
            self.assertEqual(f.read(), b"hello", "the closed file changed")

    def test_handle_table_exhaustion(self):
        c = self.raw()
        lim = c.extended("limits@openssh.com") if "limits@openssh.com" in c.extensions else None
        max_handles = 0
        if isinstance(lim, Reply) and lim.type == EXTENDED_REPLY and len(lim.raw) >= 5 + 32:
            max_handles = struct.unpack(">Q", lim.raw[5 + 24:5 + 32])[0]
        cap = max_handles if 0 < max_handles <= 4096 else 4096
        handles = []
        refused = None
        for i in range(cap + 1):
            r = c.request(OPENDIR, sstr("/"))
            if r.type != HANDLE:
                refused = r
                break
            handles.append(r.handle)
        self.assertIsNotNone(refused, "%d OPENDIRs all succeeded: no handle limit" % (cap + 1))
        self.assertStatus(refused, FX_FAILURE, "OPENDIR past the handle limit (%d open)" % len(handles))
        if max_handles:
            self.assertEqual(len(handles), max_handles,
                             "limits@openssh.com says %d handles, the table held %d" % (max_handles,
                                                                                         len(handles)))
        self.assertStatus(c.open("ex-%s" % self.marker, FXF_WRITE | FXF_CREAT), FX_FAILURE,
                          "OPEN(write) with a full table")
        self.assertEqual(self.landing_has("ex-%s" % self.marker), [],
                         "OPEN refused for a full table still created the file")
        self.assertStatus(c.close_handle(handles.pop()), FX_OK, "CLOSE one")
        r = c.open("ex-%s" % self.marker, FXF_WRITE | FXF_CREAT)
        self.assertEqual(r.type, HANDLE, "OPEN after freeing one handle: %r" % r)
        self.assertStatus(c.close_handle(r.handle), FX_OK, "CLOSE the new file")
        # other sessions are not affected while this one is full
        c2 = self.raw()
        self.assertEqual(c2.request(OPENDIR, sstr("/")).type, HANDLE, "a second session cannot OPENDIR")
        c2.close()

    # -- lengths and offsets

    def test_read_4gib_length(self):
        c = self.raw()
        name = "r-%s" % self.marker
        h = c.open(name, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN: %r" % h)
        self.assertStatus(c.write(h.handle, 0, b"z" * 100000), FX_OK, "WRITE")
        # on a write-only handle: OpenSSH answers FAILURE (read(2) gets EBADF);
        # sluice refuses the read (dropbox role) - never a 4 GiB allocation
        r = c.read(h.handle, 0, 0xFFFFFFFF)
        self.assertIsInstance(r, Reply, "READ 0xFFFFFFFF on a write handle: %r" % r)
        if r.type == DATA:
            self.assertLessEqual(len(r.data), MAX_MSG, "READ 0xFFFFFFFF returned %d bytes" % len(r.data))
        else:
            self.assertIn(r.status, (FX_PERMISSION_DENIED, FX_FAILURE), "READ 0xFFFFFFFF: %r" % r)
        self.assertStatus(c.close_handle(h.handle), FX_OK, "CLOSE")
        # on a read handle of the uploaded file (if the role may read it back)
        rh = c.open(name, FXF_READ)
        if rh.type == HANDLE:
            r = c.read(rh.handle, 0, 0xFFFFFFFF)
            self.assertEqual(r.type, DATA, "READ 0xFFFFFFFF on a read handle: %r" % r)
            self.assertGreater(len(r.data), 0)
            self.assertLessEqual(len(r.data), MAX_MSG, "READ 0xFFFFFFFF returned %d bytes" % len(r.data))
            self.assertEqual(r.data, b"z" * len(r.data))
            self.assertStatus(c.read(rh.handle, 1 << 62, 0xFFFFFFFF), FX_EOF, "READ past the end")
            c.close_handle(rh.handle)
        else:
            self.assertStatus(rh, FX_PERMISSION_DENIED, "OPEN(read) of an own file under role dropbox")
        self.assertTrue(c.alive())

    def test_write_at_2_63(self):
        c = self.raw()
        name = "w-%s" % self.marker
        h = c.open(name, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN: %r" % h)
        # OpenSSH: lseek(2) to a negative off_t fails with EINVAL -> FAILURE
        for off in (1 << 63, (1 << 64) - 1, (1 << 63) - 1):
            self.assertStatus(c.write(h.handle, off, b"x" * 16), FX_FAILURE, "WRITE at offset %#x" % off)
        self.assertStatus(c.write(h.handle, 0, b"ok"), FX_OK, "WRITE at 0 after the refusals")
        r = c.close_handle(h.handle)
        p = os.path.join(self.gw.landing("acme"), name)
        self.assertEqual(os.path.getsize(p), 2, "the file is not 2 bytes (sparse giant?)")
        # OpenSSH closes it OK; sluice may instead refuse to complete a file a
        # write to which failed (nothing half-kept as complete): then it must
        # stay incomplete and unshipped
        self.assertIsInstance(r, Reply, "CLOSE: %r" % r)
        if r.status != FX_OK:
            self.assertStatus(r, FX_FAILURE, "CLOSE after refused writes")
            self.assertEqual(os.stat(p).st_mode & 0o777, 0o640, "a failed upload is not kept incomplete")
            time.sleep(2)
            self.assertFalse(H.find_named(self.objects, name), "a failed upload was shipped")

    # -- protocol

    def test_repeated_init_ends_session(self):
        c = self.raw()
        c.send(packet(INIT, u32(3)))
        # OpenSSH's sftp-server: fatal("Received duplicate INIT message")
        self.assertSessionEnds(c, "second INIT")

    def test_request_before_init_ends_session(self):
        c = RawSftp(self.script, self.gw.port, "acme", self.keys.get("acme"))
        self.addCleanup(c.close)
        c.send(packet(OPENDIR, u32(1) + sstr("/")))
        self.assertSessionEnds(c, "OPENDIR before INIT")

    def test_unknown_opcodes(self):
        c = self.raw()
        for t in (0, 21, 99, 100, 101, 150, 199, 202, 255):
            # OpenSSH: "Unknown message" -> SSH2_FX_OP_UNSUPPORTED
            self.assertStatus(c.request(t, b"junk"), FX_OP_UNSUPPORTED, "request type %d" % t)
        self.assertStatus(c.extended("no-such-ext@example.com"), FX_OP_UNSUPPORTED, "unknown EXTENDED")
        self.assertStatus(c.request(SYMLINK, sstr("s-" + self.marker) + sstr("/etc/passwd")),
                          FX_PERMISSION_DENIED, "SYMLINK (refused)")
        self.assertEqual(self.landing_has("s-" + self.marker), [], "SYMLINK created something")
        self.assertStatus(c.extended("hardlink@openssh.com", sstr("linkfile") + sstr("hl-" + self.marker)),
                          FX_PERMISSION_DENIED, "hardlink@openssh.com (refused)")
        self.assertTrue(c.alive())

    def test_truncated_packets_end_session(self):
        # a request whose fields run past the packet end: OpenSSH fatal()s on parse errors
        for what, pkt in (("OPEN without flags", packet(OPEN, u32(1) + sstr("x"))),
                          ("OPEN with a string longer than the packet", packet(OPEN, u32(1) + u32(1000) + b"ab")),
                          ("WRITE without data", packet(WRITE, u32(1) + sstr(b"\0\0\0\0") + u64(0))),
                          ("READ without length", packet(READ, u32(1) + sstr(b"\0\0\0\0") + u64(0))),
                          ("request without id", packet(STAT, b"\x00\x01"))):
            c = self.raw()
            c.send(pkt)
            self.assertSessionEnds(c, what)
            c.close()

    def test_length_below_5_ends_session(self):
        for n in (0, 1, 4):
            c = self.raw()
            c.send(u32(n) + b"\x11" * n)
            self.assertSessionEnds(c, "packet length %d" % n)
            c.close()

    def test_split_packets_are_reassembled(self):
        c = self.raw()
        pkt = packet(REALPATH, u32(77) + sstr("."))
        for i in range(len(pkt)):  # one byte per channel packet
            c.send(pkt[i:i + 1])
        r = c.recv()
        self.assertEqual(r.type, NAME, "REALPATH sent one byte at a time: %r" % r)
        self.assertEqual(r.id, 77)

    def test_length_above_cap_ends_session(self):
        c = self.raw()
        # a header announcing more than the cap: the session ends without waiting for the body
        c.send(u32(MAX_MSG + 1) + u8(WRITE) + u32(1))
        self.assertSessionEnds(c, "packet length %d" % (MAX_MSG + 1))
        c.close()
        c = self.raw()
        c.send(u32(0xFFFFFFFF) + u8(WRITE))
        self.assertSessionEnds(c, "packet length 0xFFFFFFFF")
        c.close()
        # exactly at the cap is legal
        c = self.raw()
        h = c.open("cap-%s" % self.marker, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN: %r" % h)
        hdr = 1 + 4 + 4 + len(h.handle) + 8 + 4
        r = c.write(h.handle, 0, b"c" * (MAX_MSG - hdr))
        self.assertStatus(r, FX_OK, "WRITE in a packet of exactly %d bytes" % MAX_MSG)
        self.assertStatus(c.close_handle(h.handle), FX_OK, "CLOSE")

    def test_data_after_close(self):
        c = self.raw()
        h = c.open("dc-%s" % self.marker, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertStatus(c.write(h.handle, 0, b"1234"), FX_OK, "WRITE")
        # CLOSE and a WRITE pipelined behind it
        c.send(packet(CLOSE, u32(500) + sstr(h.handle)) + packet(WRITE, u32(501) + sstr(h.handle) +
                                                                u64(4) + sstr(b"late")))
        r1, r2 = c.recv(), c.recv()
        self.assertStatus(r1, FX_OK, "CLOSE")
        self.assertStatus(r2, FX_FAILURE, "WRITE after CLOSE")
        with open(os.path.join(self.gw.landing("acme"), "dc-%s" % self.marker), "rb") as f:
            self.assertEqual(f.read(), b"1234")

    # -- faults

    def test_disconnect_mid_write(self):
        c = self.raw()
        name = "mid-%s.bin" % self.marker
        h = c.open(name, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        self.assertEqual(h.type, HANDLE, "OPEN: %r" % h)
        for i in range(8):
            self.assertStatus(c.write(h.handle, i * 32768, os.urandom(32768)), FX_OK, "WRITE %d" % i)
        # half a WRITE packet, then the connection drops
        c.send(u32(1 + 4 + 4 + len(h.handle) + 8 + 4 + 32768) + u8(WRITE) + u32(999) + sstr(h.handle)
               + u64(8 * 32768) + u32(32768) + b"x" * 1000)
        time.sleep(0.3)
        c.kill()
        p = os.path.join(self.gw.landing("acme"), name)
        # the partial file stays incomplete (0600) and is never shipped
        time.sleep(3)
        if os.path.exists(p):
            self.assertEqual(os.stat(p).st_mode & 0o777, 0o640,
                             "a file cut mid-upload is not marked incomplete (0640)")
        self.assertFalse(H.find_named(self.objects, name), "a file cut mid-upload was shipped")
        recs = [r for r in self.gw.audit_records() if r.get("event") == "file.received"
                and name in str(r.get("path"))]
        self.assertEqual(recs, [], "a file cut mid-upload was recorded as received")


if __name__ == "__main__":
    unittest.main(verbosity=2)
