"""
Failure injection on the intake and uploader paths (issue #13), with the
real binary, the real OpenSSH sftp client and a file:// store.

`sluice serve` runs with tests/inject/failinj.c preloaded (libfailinj.so,
built beside the binary by the test build; never packaged). Its roles
inherit it; sessions do not (their environment is cleared: the CLOSE path is
swept in-process by tests/inject/test_failinj.c). Each case fails one call
on one path with EIO or ENOSPC and checks that the partner was told OK, the
failure is in the log, and the file still reaches the store byte-identical:
nothing acknowledged is lost.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_failinj
"""

import os
import shutil
import tempfile
import unittest

import harness as H

PARTNER = "acme"


def shim_path():
    p = os.path.join(os.path.dirname(os.path.abspath(H.SLUICE_BIN)), "libfailinj.so")
    return p if os.path.isfile(p) else None


class TestInjected(unittest.TestCase):

    def setUp(self):
        H.require_binary()
        if shim_path() is None:
            self.skipTest("needs libfailinj.so beside the binary (a test build without "
                          "SLUICE_SANITIZE)")
        d = tempfile.TemporaryDirectory(prefix="sluice-fi-")
        self.addCleanup(d.cleanup)
        self.tmp = d.name
        self.keys = H.Keys(os.path.join(self.tmp, "keys"))
        self.objects = os.path.join(self.tmp, "objects")
        os.makedirs(self.objects)
        self.shim = os.path.join(self.tmp, "libfailinj.so")
        shutil.copy(shim_path(), self.shim)
        os.chmod(self.shim, 0o755)

    def gateway(self, **fail):
        env = {"LD_PRELOAD": self.shim}
        env.update({k: str(v) for k, v in fail.items()})
        gw = H.Sluice(os.path.join(self.tmp, "gw"), store={"url": "file://" + self.objects},
                      partners=[{"name": PARTNER, "authorized_keys": [self.keys.pub(PARTNER)]}],
                      env=env)
        self.addCleanup(gw.kill)
        return gw.start()

    def stored_with(self, sha):
        for d, _, files in os.walk(self.objects):
            for f in files:
                p = os.path.join(d, f)
                if H.sha256_file(p) == sha:
                    return p
        return None

    def upload_and_check(self, gw, name, injected):
        src = os.path.join(self.tmp, name)
        H.write_random_file(src, 70000)
        sha = H.sha256_file(src)
        res = H.sftp(gw.port, PARTNER, self.keys.get(PARTNER), ["put %s /%s" % (src, name)])
        self.assertEqual(res.rc, 0, "%r\n%s" % (res, gw.log_tail()))
        ok = H.poll(lambda: self.stored_with(sha) is not None, 60)
        with open(gw.log, errors="replace") as f:
            log = f.read()
        self.assertIn(injected, log, "no failure was injected\n" + gw.log_tail())
        self.assertTrue(ok, "the acknowledged %s never reached the store\n%s"
                        % (name, gw.diagnostics()))
        return log

    def test_intake_rename_into_ready_fails(self):
        gw = self.gateway(SLUICE_FAIL_RENAME=1, SLUICE_FAIL_PATH="/spool/ready/",
                          SLUICE_FAIL_ERRNO="EIO")
        log = self.upload_and_check(gw, "ready.csv", "failinj: rename #1")
        lines = [l for l in log.splitlines() if not l.startswith("failinj:") and "Input/output" in l]
        self.assertTrue(lines, "the failed move was not logged\n" + gw.log_tail())

    def test_intake_fsync_fails(self):
        gw = self.gateway(SLUICE_FAIL_FSYNC=1, SLUICE_FAIL_PATH="/spool/ready",
                          SLUICE_FAIL_ERRNO="EIO")
        self.upload_and_check(gw, "fsync.csv", "failinj: fsync #1")

    def test_store_write_fails_no_space(self):
        gw = self.gateway(SLUICE_FAIL_WRITE=1, SLUICE_FAIL_PATH=self.objects,
                          SLUICE_FAIL_ERRNO="ENOSPC")
        log = self.upload_and_check(gw, "nospace.csv", "failinj: write #1")
        lines = [l for l in log.splitlines() if not l.startswith("failinj:") and "No space" in l]
        self.assertTrue(lines, "the failed store write was not logged\n" + gw.log_tail())

    def test_store_fsync_fails(self):
        gw = self.gateway(SLUICE_FAIL_FSYNC=1, SLUICE_FAIL_PATH=self.objects,
                          SLUICE_FAIL_ERRNO="EIO")
        self.upload_and_check(gw, "storefsync.csv", "failinj: fsync #1")


if __name__ == "__main__":
    unittest.main()
