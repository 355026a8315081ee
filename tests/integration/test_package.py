"""
test_package.py - the Debian package and the systemd service (issue 12,
"Package and service"):

  - `cmake --build BUILD --target package` makes sluice_<version>_<arch>.deb;
  - `dpkg-deb -I`: Depends from the shared libraries (libssh, libcurl,
    libgpgme, libssl, libseccomp, libsystemd ...), conffiles
    /etc/sluice/sluice.yaml, the maintainer scripts;
  - `dpkg-deb -c`: every file in its place with its mode;
  - unpacked into a throwaway root (`dpkg -x`), its sluice passes
    `check-config` on the shipped example, and serves an upload with its
    sessions run from /usr/libexec/sluice/sluice-session;
  - `systemd-analyze verify` on the unit, and `systemd-analyze security`
    no worse than the figure docs/operator-guide.md records;
  - both man pages render without a warning (`man --warnings -l`);
  - `sluice prepare` fully privileged (the unit's ExecStartPre=+), then
    `sluice serve` with only the unit's CapabilityBoundingSet= (setpriv),
    no_new_privs, RestrictSUIDSGID= and ~@resources (unit_seccomp): it binds
    a port below 1024, takes uploads and stores them, refuses a bare SIGHUP
    that adds a partner and takes the unit's reload (prepare, then SIGHUP),
    and stops cleanly: the privileges are enough;
  - `sluice serve` under a NOTIFY_SOCKET sends READY=1 and STATUS= once its
    roles are up, WATCHDOG=1 when WATCHDOG_USEC asks for it, and
    STOPPING=1 on SIGTERM.

A test skips (with the reason) only when a tool it needs is not installed.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_package
"""
import glob
import gzip
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

import harness as H

BUILD = os.path.dirname(os.path.abspath(H.SLUICE_BIN))
GUIDE = os.path.join(H.REPO, "docs", "operator-guide.md")
UNIT = "lib/systemd/system/sluice.service"
SOCKET = "lib/systemd/system/sluice.socket"


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise unittest.SkipTest("%s not installed (deploy/install-deps.sh --test)"
                                % ", ".join(missing))


def run(cmd, timeout=600, env=None, check=True):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e,
                       stdin=subprocess.DEVNULL, errors="replace")
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                     r.stdout[-3000:], r.stderr[-3000:]))
    return r


class TestPackage(unittest.TestCase):
    """One package build for the class, unpacked once."""

    @classmethod
    def setUpClass(cls):
        need("cmake", "dpkg-deb", "dpkg-shlibdeps")
        H.require_binary()
        for old in glob.glob(os.path.join(BUILD, "sluice_*.deb")):
            os.unlink(old)
        run(["nice", "cmake", "--build", BUILD, "--target", "package"], timeout=1200)
        debs = glob.glob(os.path.join(BUILD, "sluice_*.deb"))
        if len(debs) != 1:
            raise AssertionError("expected one sluice_*.deb in %s, found %s" % (BUILD, debs))
        cls.deb = debs[0]
        cls.tmp = tempfile.mkdtemp(prefix="sluice-pkg-")
        cls.root = os.path.join(cls.tmp, "root")
        run(["dpkg", "-x", cls.deb, cls.root])
        cls.info = run(["dpkg-deb", "-I", cls.deb]).stdout
        cls.listing = run(["dpkg-deb", "-c", cls.deb]).stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()

    def test_control(self):
        self.assertEqual(self.field("Package"), "sluice")
        self.assertRegex(os.path.basename(self.deb), r"^sluice_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        deps = [d.strip().split()[0] for d in self.field("Depends").split(",")]
        for lib in ("libssh-4", "libcurl4", "libgpgme11", "libssl3", "libseccomp2",
                    "libsqlite3-0", "libjansson4", "libyaml-0-2", "libsystemd0", "gnupg"):
            self.assertIn(lib, deps, "Depends: lacks %s (CPACK_DEBIAN_PACKAGE_SHLIBDEPS?): %s"
                          % (lib, deps))
        for script in ("postinst", "prerm", "postrm", "conffiles"):
            self.assertRegex(self.info, r"\b%s\b" % script, self.info)

    def test_conffiles(self):
        ctl = os.path.join(self.tmp, "control")
        run(["dpkg-deb", "-e", self.deb, ctl])
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/sluice/sluice.yaml"])
        for script in ("postinst", "prerm", "postrm"):
            mode = os.stat(os.path.join(ctl, script)).st_mode
            self.assertEqual(stat.S_IMODE(mode), 0o755, script)
            r = run(["sh", "-n", os.path.join(ctl, script)], check=False)
            self.assertEqual(r.returncode, 0, "%s: %s" % (script, r.stderr))
        with open(os.path.join(ctl, "postrm")) as f:
            postrm = f.read()
        # purge takes the configuration, never the state or the audit trail
        self.assertIn("rm -rf /etc/sluice", postrm)
        self.assertNotRegex(postrm, r"rm [^\n]*/var/(lib|log)/sluice")
        # the socket is enabled with the service, and stopped first
        with open(os.path.join(ctl, "postinst")) as f:
            self.assertRegex(f.read(), r"for u in sluice\.socket sluice\.service")
        with open(os.path.join(ctl, "prerm")) as f:
            self.assertIn("stop sluice.socket sluice.service", f.read())

    def test_contents(self):
        files = {}
        for line in self.listing.splitlines():
            parts = line.split()
            files[parts[-1].lstrip(".")] = (parts[0], parts[1])
        want = {
            "/usr/bin/sluice": "-rwxr-xr-x",
            "/usr/libexec/sluice/sluice-session": "-rwxr-xr-x",
            "/lib/systemd/system/sluice.service": "-rw-r--r--",
            "/lib/systemd/system/sluice.socket": "-rw-r--r--",
            "/usr/lib/sysusers.d/sluice.conf": "-rw-r--r--",
            "/usr/lib/tmpfiles.d/sluice.conf": "-rw-r--r--",
            "/etc/sluice/sluice.yaml": "-rw-r-----",
            "/usr/share/man/man8/sluice.8.gz": "-rw-r--r--",
            "/usr/share/man/man5/sluice.yaml.5.gz": "-rw-r--r--",
            "/usr/share/doc/sluice/operator-guide.md": "-rw-r--r--",
        }
        for path, mode in want.items():
            self.assertIn(path, files, "%s is not in the package\n%s" % (path, self.listing))
            self.assertEqual(files[path], (mode, "root/root"), path)
        # nothing of the build tree, the state or the trail is shipped
        for path in files:
            self.assertFalse(path.startswith(("/var/", "/run/", "/tmp/", "/root/")), path)

    def test_packaged_sessions(self):
        """The installed layout: /usr/bin/sluice, with nothing beside it,
        runs its sessions from /usr/libexec/sluice/sluice-session."""
        need("sftp")
        sluice = os.path.join(self.root, "usr/bin/sluice")
        self.assertFalse(os.path.exists(os.path.join(self.root, "usr/bin/sluice-session")))
        d = tempfile.TemporaryDirectory(prefix="sluice-pkgses-")
        self.addCleanup(d.cleanup)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        with mock.patch.object(H, "SLUICE_BIN", sluice):
            gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                          partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}])
            self.addCleanup(gw.kill)
            gw.start()
        data = os.path.join(d.name, "data.bin")
        sha = H.write_random_file(data, 30000)
        r = H.sftp(gw.port, "acme", keys.get("acme"), ["put %s data.bin" % data], timeout=60)
        self.assertEqual(r.rc, 0, "%s\n%s" % (r.err, gw.log_tail()))
        stored = os.path.join(objects, "acme", "data.bin")
        self.assertTrue(H.poll(lambda: os.path.exists(stored) and
                               H.sha256_file(stored) == sha, 30), gw.diagnostics())

    def test_users_and_dirs(self):
        with open(os.path.join(self.root, "usr/lib/sysusers.d/sluice.conf")) as f:
            users = [l.split()[1] for l in f if l.startswith("u ")]
        self.assertEqual(users, ["sluice", "sluice-session"])
        with open(os.path.join(self.root, "usr/lib/tmpfiles.d/sluice.conf")) as f:
            dirs = {l.split()[1]: l.split()[2:5] for l in f if l.startswith("d ")}
        self.assertEqual(dirs["/var/lib/sluice"], ["0710", "sluice", "sluice-session"])
        self.assertEqual(dirs["/var/log/sluice"], ["0750", "sluice", "sluice"])
        # the shipped example's file:// store (the uploader writes there)
        self.assertEqual(dirs["/var/lib/sluice/objects"], ["0750", "sluice", "sluice"])
        # operators outside the service group reach the control socket,
        # which the supervisor (no CAP_CHOWN) makes as the service user
        self.assertEqual(dirs["/run/sluice"], ["0755", "sluice", "sluice"])

    def test_example_config_checks(self):
        sluice = os.path.join(self.root, "usr/bin/sluice")
        conf = os.path.join(self.root, "etc/sluice/sluice.yaml")
        r = run([sluice, "--version"])
        self.assertTrue(r.stdout.startswith("sluice "), r.stdout)
        r = run([sluice, "check-config", "-c", conf], check=False)
        self.assertEqual(r.returncode, 0, "the shipped example fails check-config:\n%s%s"
                         % (r.stdout, r.stderr))
        with open(conf) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^  url: file:///", "the example's store is not local")
        self.assertRegex(text, r"(?m)^\s*#\s*url: s3://", "the example says not how to use S3")

    def unit_for_verify(self):
        """The unit with its binary at the unpacked root's path."""
        with open(os.path.join(self.root, UNIT)) as f:
            text = f.read().replace("/usr/bin/sluice", os.path.join(self.root, "usr/bin/sluice"))
        d = os.path.join(self.tmp, "unit")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "sluice.service")
        with open(path, "w") as f:
            f.write(text)
        shutil.copy(os.path.join(self.root, SOCKET), os.path.join(d, "sluice.socket"))
        return path

    def test_unit_verifies(self):
        need("systemd-analyze", "man")
        r = run(["systemd-analyze", "verify", "--man=yes", self.unit_for_verify()], check=False,
                env={"MANPATH": os.path.join(self.root, "usr/share/man")})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", r.stderr)
        with open(os.path.join(self.root, UNIT)) as f:
            unit = f.read()
        for want in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                     "ProtectHome=yes", "SystemCallFilter=@system-service",
                     "MemoryDenyWriteExecute=yes", "LockPersonality=yes"):
            self.assertIn(want, unit)
        caps = re.search(r"(?m)^CapabilityBoundingSet=(.*)$", unit).group(1).split()
        self.assertEqual(sorted(caps), ["CAP_SETGID", "CAP_SETUID"])
        self.assertRegex(unit, r"(?m)^Requires=sluice\.socket$")
        self.assertRegex(unit, r"(?m)^Also=sluice\.socket$")

    def test_socket_unit(self):
        """sluice.socket binds the port the shipped example listens on."""
        need("systemd-analyze")
        with open(os.path.join(self.root, SOCKET)) as f:
            sock = f.read()
        with open(os.path.join(self.root, "etc/sluice/sluice.yaml")) as f:
            listen = re.search(r"(?m)^listen:\s*(\S+)", f.read()).group(1)
        self.assertEqual(re.findall(r"(?m)^ListenStream=(.*)$", sock), [listen])
        self.assertRegex(sock, r"(?m)^Accept=no$")
        self.assertRegex(sock, r"(?m)^WantedBy=sockets\.target$")
        d = os.path.join(self.tmp, "socketunit")
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(self.root, SOCKET), d)
        r = run(["systemd-analyze", "verify", "--man=no", os.path.join(d, "sluice.socket")],
                check=False)
        # (the service it starts is not in that folder: only the socket's own
        # settings are checked here; test_unit_verifies has both)
        self.assertNotRegex(r.stderr, r"sluice\.socket:\d+:", r.stderr)

    def test_security_score(self):
        need("systemd-analyze")
        with open(GUIDE) as f:
            m = re.search(r"Overall exposure level for sluice\.service: (\d+\.\d)", f.read())
        self.assertIsNotNone(m, "%s does not record the exposure score" % GUIDE)
        documented = float(m.group(1))
        r = run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                 os.path.join(self.root, UNIT)], check=False)
        got = re.search(r"Overall exposure level for sluice\.service: (\d+\.\d)", r.stdout)
        self.assertIsNotNone(got, r.stdout[-2000:] + r.stderr)
        self.assertLessEqual(float(got.group(1)), documented,
                             "the unit's exposure rose to %s (documented %s):\n%s"
                             % (got.group(1), documented, r.stdout))

    def test_man_pages_render(self):
        need("man", "groff")
        for page in ("usr/share/man/man8/sluice.8.gz", "usr/share/man/man5/sluice.yaml.5.gz"):
            path = os.path.join(self.root, page)
            r = run(["man", "--warnings", "-l", path], env={"MANWIDTH": "80"}, check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", "%s renders with warnings:\n%s" % (page, r.stderr))
            self.assertIn("SEE ALSO", r.stdout)
        # every command of the usage text has its place in sluice(8)
        with gzip.open(os.path.join(self.root, "usr/share/man/man8/sluice.8.gz"), "rt") as f:
            man8 = f.read()
        for cmd in ("serve", "server", "intake", "uploader", "check-config", "audit verify",
                    "audit rotate-key", "queue list", "queue retry", "queue hold", "reconcile"):
            self.assertRegex(man8, r"(?m)^\.(It )?Cm %s\b" % re.escape(cmd), cmd)


def _recv_all(sock, until, timeout):
    """Datagrams from sock until until(messages) or timeout; the list."""
    msgs = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(msgs):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            msgs.append(sock.recv(4096).decode("utf-8", "replace"))
        except socket.timeout:
            pass
    return msgs


@unittest.skipUnless(os.geteuid() == 0, "needs root (the supervisor separates its roles)")
class TestNotify(unittest.TestCase):

    def test_ready_status_watchdog_stopping(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-notify-")
        self.addCleanup(d.cleanup)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        path = os.path.join(d.name, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                      env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
        self.addCleanup(gw.kill)
        gw.start()
        msgs = _recv_all(sock, lambda m: any("READY=1" in x for x in m), 20)
        ready = [m for m in msgs if "READY=1" in m]
        self.assertTrue(ready, "no READY=1 from serve: %r\n%s" % (msgs, gw.log_tail()))
        self.assertRegex(ready[0], r"(?m)^STATUS=running: SFTP on 127\.0\.0\.1:%d" % gw.port)
        # READY comes once the audit writer answered: process.start is written
        self.assertTrue(any(r.get("event") == "process.start" for r in gw.audit_records()))
        # a 1 s watchdog: a ping at least every 0.5 s
        pings = _recv_all(sock, lambda m: sum("WATCHDOG=1" in x for x in m) >= 3, 5)
        self.assertGreaterEqual(sum("WATCHDOG=1" in x for x in pings), 3, pings)
        self.assertEqual(gw.stop(), 0)
        rest = _recv_all(sock, lambda m: any("STOPPING=1" in x for x in m), 5)
        stopping = [m for m in rest if "STOPPING=1" in m]
        self.assertTrue(stopping, rest)
        self.assertIn("STATUS=stopping", stopping[0])

    def test_no_ready_while_roles_die(self):
        """Roles that cannot switch to their user (no CAP_SETUID) die at
        start: the port is bound, but READY=1 never comes."""
        need("setpriv")
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-notify-")
        self.addCleanup(d.cleanup)
        wrapper = os.path.join(d.name, "sluice-nosetuid")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec setpriv --bounding-set=-setuid -- %s \"$@\"\n" % H.SLUICE_BIN)
        os.chmod(wrapper, 0o755)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        path = os.path.join(d.name, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        with mock.patch.object(H, "SLUICE_BIN", wrapper):
            gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                          partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                          env={"NOTIFY_SOCKET": path})
            self.addCleanup(gw.kill)
            gw.start()
        # the supervisor waits for the absent audit writer twice (its
        # process.start and config.loaded records, AUDIT_TIMEOUT_MS each),
        # then its loop restarts the roles: from then on READY could come
        msgs = _recv_all(sock, lambda m: any("restarting it in" in x for x in m), 90)
        self.assertTrue(any("restarting it in" in m for m in msgs), "%r\n%s" % (msgs, gw.log_tail()))
        msgs += _recv_all(sock, lambda m: any("READY=1" in x for x in m), 4)
        self.assertFalse(any("READY=1" in m for m in msgs), "READY=1 while roles die: %r" % msgs)
        gw.kill()

    def test_no_watchdog_unless_asked(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-notify-")
        self.addCleanup(d.cleanup)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        path = os.path.join(d.name, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                      partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                      env={"NOTIFY_SOCKET": path})
        self.addCleanup(gw.kill)
        gw.start()
        msgs = _recv_all(sock, lambda m: False, 3)
        self.assertTrue(any("READY=1" in m for m in msgs), msgs)
        self.assertFalse(any("WATCHDOG=1" in m for m in msgs), msgs)
        gw.stop()


def unit_capabilities():
    with open(os.path.join(H.REPO, "deploy", "systemd", "sluice.service")) as f:
        m = re.search(r"(?m)^CapabilityBoundingSet=(.*)$", f.read())
    return [c.lower().replace("cap_", "", 1) for c in m.group(1).split()]


def free_low_port():
    """A free TCP port below 1024 on 127.0.0.1, or None."""
    for port in range(1000, 600, -7):
        s = socket.socket()
        try:
            s.bind((H.LOCALHOST, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    return None


def unit_exec(name):
    """The unit's command line `name` (ExecStartPre=, ExecReload= ...): a list."""
    with open(os.path.join(H.REPO, "deploy", "systemd", "sluice.service")) as f:
        return re.findall(r"(?m)^%s=(.*)$" % name, f.read())


def unit_seccomp():
    """tests/unitsim/unit_seccomp beside the sluice binary, or None."""
    p = os.path.join(os.path.dirname(os.path.abspath(H.SLUICE_BIN)), "unit_seccomp")
    return p if os.access(p, os.X_OK) else None


def resources_denied():
    """True if the unit's SystemCallFilter= denies @resources."""
    return any(f.startswith("~") and "@resources" in f.split()
               for f in unit_exec("SystemCallFilter"))


# What systemd does for sluice.socket (sd_listen_fds(3)): the port bound
# and listening as fd 3, LISTEN_FDS=1 and LISTEN_PID naming the process
# that will run sluice (exec keeps the pid), then the command.
ACTIVATE = r"""
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execvp(sys.argv[3], sys.argv[3:])
"""


def capped_wrapper(dirname, socket_port=None):
    """A stand-in for SLUICE_BIN the harness runs as `sluice [-v] serve -c
    FILE`: `sluice prepare` fully privileged (ExecStartPre=+), then `sluice
    serve` with only the unit's CapabilityBoundingSet= (setpriv),
    no_new_privs and unit_seccomp; with socket_port, on a socket bound
    there and passed as sluice.socket passes it."""
    filt = unit_seccomp()
    if filt is None:
        raise AssertionError("unit_seccomp is not built beside %s" % H.SLUICE_BIN)
    bin = os.path.abspath(H.SLUICE_BIN)
    act = ""
    if socket_port is not None:
        script = os.path.join(dirname, "activate.py")
        with open(script, "w") as f:
            f.write(ACTIVATE)
        act = "%s %s %s %d " % (sys.executable, script, H.LOCALHOST, socket_port)
    wrapper = os.path.join(dirname, "sluice-capped")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                "# the harness runs: sluice [-v] serve -c FILE\n"
                "V=; [ \"$1\" = -v ] && { V=-v; shift; }\n"
                "[ \"$1\" = serve ] || exit 2; shift\n"
                "%s $V prepare \"$@\" || exit 1\n"
                "exec %ssetpriv --no-new-privs --inh-caps=-all --bounding-set=-all,%s "
                "-- %s %s %s $V serve \"$@\"\n"
                % (bin, act, ",".join("+" + c for c in unit_capabilities()),
                   filt, "" if resources_denied() else "--no-resources", bin))
    os.chmod(wrapper, 0o755)
    return wrapper


def caps_of(pid, field):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"(?m)^%s:\s*([0-9a-f]+)" % field, f.read()).group(1), 16)


CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETUID = 0, 1, 3, 4, 7


@unittest.skipUnless(os.geteuid() == 0, "needs root (the supervisor separates its roles)")
class TestCapabilities(unittest.TestCase):
    """The unit's privileges, applied as systemd would, are all the gateway
    needs: `sluice prepare` with root's full privileges first (ExecStartPre=+),
    then `sluice serve` with only the unit's CapabilityBoundingSet= (setpriv),
    no_new_privs, and the system call filters setpriv cannot apply
    (RestrictSUIDSGID=yes, SystemCallFilter=~@resources: unit_seccomp)."""

    def test_serves_with_the_unit_capabilities(self):
        need("setpriv", "sftp")
        H.require_binary()
        # the unit runs prepare fully privileged before serve, and again
        # before the SIGHUP of a reload
        self.assertTrue(any(c.startswith("+") and " prepare " in c
                            for c in unit_exec("ExecStartPre")), unit_exec("ExecStartPre"))
        reload = unit_exec("ExecReload")
        self.assertTrue(len(reload) == 2 and "+" in reload[0].split("/")[0]
                        and " prepare " in reload[0] and "kill -HUP" in reload[1], reload)
        port = free_low_port()
        if port is None:
            self.skipTest("no free port below 1024 on 127.0.0.1")
        d = tempfile.TemporaryDirectory(prefix="sluice-caps-")
        self.addCleanup(d.cleanup)
        wrapper = capped_wrapper(d.name, socket_port=port)
        keys = H.Keys(os.path.join(d.name, "keys"))
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        with mock.patch.object(H, "SLUICE_BIN", wrapper):
            gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                          partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                          port=port)
            self.addCleanup(gw.kill)
            gw.start()
        # (the port is open before sluice runs: wait for it to take it)
        self.assertTrue(H.poll(lambda: "the socket systemd passed" in H.tail(gw.log, 400), 20),
                        "sluice did not take the passed socket\n%s" % gw.log_tail())
        pid = gw.proc.pid
        self.assertNotEqual(caps_of(pid, "CapBnd"), (1 << 41) - 1,
                            "setpriv did not limit the bounding set")
        eff = caps_of(pid, "CapEff")
        for cap in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID):
            self.assertFalse(eff & (1 << cap), "the supervisor holds capability %d" % cap)
        self.assertTrue(eff & (1 << CAP_SETUID), hex(eff))
        with open("/proc/%d/status" % pid) as f:
            self.assertRegex(f.read(), r"(?m)^Seccomp:\s*2", "unit_seccomp's filter is not on")

        def put(partner, name):
            data = os.path.join(d.name, name)
            sha = H.write_random_file(data, 70000)
            r = H.sftp(gw.port, partner, keys.get(partner), ["put %s %s" % (data, name)],
                       timeout=60)
            self.assertEqual(r.rc, 0, "%s\n%s" % (r.err, gw.log_tail()))
            stored = os.path.join(objects, partner, name)
            self.assertTrue(H.poll(lambda: os.path.exists(stored) and
                                   H.sha256_file(stored) == sha, 30),
                            "not stored under the unit's privileges\n%s" % gw.diagnostics())
        put("acme", "data.bin")

        def reload(event):
            n = len([r for r in gw.audit_records() if r.get("event") == event])
            gw.proc.send_signal(signal.SIGHUP)
            self.assertTrue(H.poll(lambda: len([r for r in gw.audit_records()
                                                if r.get("event") == event]) > n, 30),
                            "no new %s\n%s" % (event, gw.log_tail(80)))

        # a partner added: a bare SIGHUP is refused (the supervisor cannot
        # make bravo's folder), the unit's reload (prepare, then SIGHUP) works
        with open(gw.config_path) as f:
            text = f.read()
        text = text.replace("partners:\n", "partners:\n  - name: bravo\n"
                            "    authorized_keys:\n      - %s\n"
                            % H.yaml_str(keys.pub("bravo")), 1)
        with open(gw.config_path, "w") as f:
            f.write(text)
        reload("config.reload_failed")
        self.assertIn("is not prepared", H.tail(gw.log, 80))
        self.assertFalse(os.path.exists(gw.landing("bravo")))
        rc, out, err = H.run_sluice(["prepare", "-c", gw.config_path])
        self.assertEqual(rc, 0, out + err)
        reload("config.reloaded")
        put("bravo", "second.bin")
        put("acme", "third.bin")
        self.assertEqual(gw.stop(), 0, gw.log_tail())
        # (a drop-in denying @resources only costs the background roles
        # their lower priority, which they say)
        full = H.tail(gw.log, 400)
        if resources_denied():
            self.assertIn("runs at normal priority", full)
        log = "\n".join(l for l in full.splitlines()
                        if "runs at normal priority" not in l and "is not lowered" not in l)
        self.assertNotRegex(log, r"Operation not permitted|cannot chown|cannot chmod|"
                            r"cannot give", log)
        # prepare made the setgid landing folders; sessions' files and
        # folders in them took the service group
        for p in ("acme", "bravo"):
            st = os.stat(gw.landing(p))
            self.assertTrue(st.st_mode & stat.S_ISGID, oct(st.st_mode))
        # roles and sessions were stopped without CAP_KILL (reload restarts
        # roles; SIGTERM stops them all): nothing was left to SIGKILL
        self.assertNotIn("did not stop; killing it", full)
        self.assertNotIn("CAP_KILL", "".join(unit_capabilities()).upper())

    def refused_start(self, socket_port, listen_port):
        """Starts the gateway on listen_port under the unit's privileges,
        with a socket passed at socket_port (None: none); returns its log,
        asserting it exited instead of serving."""
        need("setpriv")
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-caps-")
        self.addCleanup(d.cleanup)
        wrapper = capped_wrapper(d.name, socket_port=socket_port)
        objects = os.path.join(d.name, "objects")
        os.makedirs(objects)
        keys = H.Keys(os.path.join(d.name, "keys"))
        with mock.patch.object(H, "SLUICE_BIN", wrapper):
            gw = H.Sluice(os.path.join(d.name, "gw"), store={"url": "file://" + objects},
                          partners=[{"name": "acme", "authorized_keys": [keys.pub("acme")]}],
                          port=listen_port)
            self.addCleanup(gw.kill)
            with self.assertRaises(AssertionError):
                gw.start(timeout=10)
        return H.tail(gw.log, 200)

    def test_low_port_needs_the_socket(self):
        """Without sluice.socket, the unit's privileges cannot bind a port
        below 1024, and the log says what to do."""
        port = free_low_port()
        if port is None:
            self.skipTest("no free port below 1024 on 127.0.0.1")
        log = self.refused_start(None, port)
        self.assertIn("cannot listen on %s:%d" % (H.LOCALHOST, port), log)
        self.assertIn("sluice.socket binds it (systemctl enable --now sluice.socket)", log)

    def test_socket_elsewhere_is_refused(self):
        """A passed socket on another port than `listen` is refused, naming
        both: partners would be told one address and served on another."""
        port = free_low_port()
        if port is None:
            self.skipTest("no free port below 1024 on 127.0.0.1")
        other = H.free_port()
        log = self.refused_start(port, other)
        self.assertRegex(log, r"sluice\.socket listens on %s:%d, but listen in \S+ is %s:%d"
                         % (re.escape(H.LOCALHOST), port, re.escape(H.LOCALHOST), other))


if __name__ == "__main__":
    unittest.main()
