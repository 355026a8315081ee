"""
One partner's slow OpenPGP verification does not stall the others (issue 10).

One gateway (file:// store), three partners with detached signatures:
  slow    its verifications take SLOW seconds (a gpg wrapper sleeps first)
  fast    ordinary
  fast2   ordinary
  batch   completion.manifest *.manifest: a batch's signatures go through
          the same queue, and it ships when all are good
The gpg wrapper is given to the intake with SLUICE_TEST_GPG, which only a
test build (cmake -DSLUICE_TEST_HOOKS=ON) reads. It logs the start and end
of every verification per partner home, then runs the real gpg, so the test
can see which verifications overlapped.

OpenPGP keys are made with `gpg --batch` at run time.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_verify_concurrency
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

import harness as H
from test_completion import gpg, fingerprint

SLOW = 12  # seconds the slow partner's gpg sleeps before verifying


WRAPPER = r"""#!/bin/bash
# gpg for sluice's intake in this test: logs each verification, sleeps
# first for the home of partner "slow", then runs the real gpg.
verify=0 home=- prev=
for a; do
  case "$a" in --verify|--decrypt) verify=1;; esac
  [ "$prev" = --homedir ] && home=${a##*/}
  prev=$a
done
[ $verify = 1 ] || exec /usr/bin/gpg "$@"
echo "$home start $(date +%%s.%%N) $$" >> %(log)s
if [ "$home" = slow ]; then
  echo $$ > %(marks)s/slow.$$
  sleep %(slow)d
fi
/usr/bin/gpg "$@"
rc=$?
echo "$home end $(date +%%s.%%N) $$" >> %(log)s
exit $rc
"""


def test_build():
    rc, out, err = H.run_sluice(["--version"])
    return rc == 0 and "test hooks on" in out + err


class VerifyConcurrency(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        if not test_build():
            raise unittest.SkipTest("needs a test build (cmake -DSLUICE_TEST_HOOKS=ON; "
                                    "tests/run.sh builds one)")
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-vconc-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))

        cls.pgp = os.path.join(tmp, "pgp-partner")
        os.makedirs(cls.pgp, mode=0o700)
        cls.addClassCleanup(subprocess.run, ["gpgconf", "--homedir", cls.pgp, "--kill", "all"],
                            capture_output=True, timeout=30)
        gpg(cls.pgp, "--quick-gen-key", "Acme <ops@acme.test>", "ed25519", "sign", "never")
        cls.fpr = fingerprint(cls.pgp, "ops@acme.test")
        keyring = os.path.join(tmp, "acme.asc")
        with open(keyring, "wb") as f:
            f.write(gpg(cls.pgp, "--export", "--armor", cls.fpr).stdout)

        cls.marks = os.path.join(tmp, "marks")
        os.makedirs(cls.marks)
        cls.vlog = os.path.join(cls.marks, "verify.log")
        cls.wrapper = os.path.join(tmp, "gpg-wrapper")
        with open(cls.wrapper, "w") as f:
            f.write(WRAPPER % {"log": cls.vlog, "marks": cls.marks, "slow": SLOW})
        os.chmod(cls.wrapper, 0o755)

        block = ("    signature:\n      mode: detached\n      signers: [\"%s\"]\n"
                 "      keyring: %s\n      timeout: 60s\n" % (cls.fpr, H.yaml_str(keyring)))
        names = ("slow", "fast", "fast2", "batch")
        plist = [{"name": n, "authorized_keys": [cls.keys.pub(n)]} for n in names]
        cls.objects = os.path.join(tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), {"url": "file://" + cls.objects}, plist,
                          env={"SLUICE_TEST_GPG": cls.wrapper})
        lines = []
        for line in cls.gw.config_text.splitlines():
            lines.append(line)
            if any(line == "  - name: %s" % H.yaml_str(n) for n in names):
                lines.append(block.rstrip("\n"))
            if line == "  - name: %s" % H.yaml_str("batch"):
                lines.append("    completion:\n      manifest: \"*.manifest\"\n"
                             "      manifest_timeout: 60s")
        cls.gw.config_text = "\n".join(lines) + "\n"
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)

    # -- helpers

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())
        for n in os.listdir(self.marks):  # one mark per slow verification
            if n.startswith("slow."):
                os.unlink(os.path.join(self.marks, n))

    def signed_put(self, partner, name):
        """Uploads name and name.sig (one session); returns after CLOSE."""
        data = os.urandom(4000)
        path = os.path.join(self.tmp, "local", partner, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        gpg(self.pgp, "-u", self.fpr, "--detach-sign", "-o", path + ".sig", path)
        res = H.sftp(self.gw.port, partner, self.keys.get(partner),
                     ["put %s %s" % (path, name), "put %s.sig %s.sig" % (path, name)])
        if res.rc != 0:
            self.fail("sftp failed: %r\n%s" % (res, self.gw.log_tail()))
        return data

    def accepted(self, partner, path, timeout):
        r = self.gw.wait_audit(lambda r: r.get("event") == "file.accepted" and
                               r.get("partner") == partner and r.get("path") == path, timeout)
        if r is None:
            self.fail("no file.accepted for %s/%s within %ss\n%s"
                      % (partner, path, timeout, self.gw.diagnostics()))
        return r

    def is_accepted(self, partner, path):
        return any(r.get("event") == "file.accepted" and r.get("partner") == partner
                   and r.get("path") == path for r in self.gw.audit_records())

    def slow_started(self, timeout=30):
        ok = H.poll(lambda: [n for n in os.listdir(self.marks) if n.startswith("slow.")], timeout)
        self.assertTrue(ok, "the slow partner's verification never started\n%s"
                        % self.gw.log_tail())
        return int(ok[0][5:])

    def intervals(self):
        """{home: [(start, end)]} from the wrapper's log (end None: running)."""
        spans, open_ = {}, {}
        with open(self.vlog) as f:
            for line in f:
                home, what, t, pid = line.split()
                if what == "start":
                    open_[pid] = (home, float(t))
                elif pid in open_:
                    h, s = open_.pop(pid)
                    spans.setdefault(h, []).append((s, float(t)))
        for h, s in open_.values():
            spans.setdefault(h, []).append((s, None))
        return spans

    # -- tests

    def test_1_fast_partner_not_behind_slow_one(self):
        self.signed_put("slow", "s1.csv")
        self.slow_started()
        t0 = time.monotonic()
        data = self.signed_put("fast", "f1.csv")
        t1 = time.monotonic()
        self.accepted("fast", "f1.csv", SLOW + 30)
        t2 = time.monotonic()
        slow_done = self.is_accepted("slow", "s1.csv")
        sys.stderr.write("\n[fast partner: upload %.2f s, accepted %.2f s after its upload "
                         "ended; the slow partner's file accepted by then: %s]\n"
                         % (t1 - t0, t2 - t1, slow_done))
        self.assertFalse(slow_done, "the fast partner's file was accepted only after the "
                         "slow partner's verification ended (%.1f s)" % (t2 - t1))
        self.assertLess(t2 - t1, SLOW / 2, "the fast partner's file waited %.1f s" % (t2 - t1))
        acc = self.accepted("slow", "s1.csv", SLOW + 30)
        self.assertEqual(acc["signer"], self.fpr)
        stored = os.path.join(self.objects, "fast", "f1.csv")
        self.assertTrue(H.poll(lambda: os.path.isfile(stored), 30),
                        "%s not stored\n%s" % (stored, self.gw.diagnostics()))
        with open(stored, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_2_one_job_per_partner(self):
        # slow: two files, verified one after the other (one gpg-agent a
        # home); fast's and fast2's at the same time as slow's
        self.sftp_many("slow", ["a1.csv", "a2.csv"])
        self.slow_started()
        self.signed_put("fast", "b1.csv")
        self.signed_put("fast2", "c1.csv")
        for p, n in (("fast", "b1.csv"), ("fast2", "c1.csv")):
            self.accepted(p, n, SLOW + 30)
        a1 = self.accepted("slow", "a1.csv", 2 * SLOW + 30)
        a2 = self.accepted("slow", "a2.csv", 2 * SLOW + 30)
        self.assertEqual((a1["signer"], a2["signer"]), (self.fpr, self.fpr))
        spans = self.intervals()
        for home, iv in spans.items():
            iv = sorted(iv)
            for (s1, e1), (s2, _) in zip(iv, iv[1:]):
                self.assertIsNotNone(e1)
                self.assertLessEqual(e1, s2, "two verifications of %s overlapped" % home)
        slow_iv = spans["slow"]
        overlapped = [h for h in ("fast", "fast2") for (s, e) in spans.get(h, [])
                      if any(ss < s and (se is None or e <= se) for ss, se in slow_iv)]
        self.assertIn("fast", overlapped)
        self.assertIn("fast2", overlapped)

    def sftp_many(self, partner, names):
        cmds = []
        for name in names:
            path = os.path.join(self.tmp, "local", partner, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(os.urandom(3000))
            gpg(self.pgp, "-u", self.fpr, "--detach-sign", "-o", path + ".sig", path)
            cmds += ["put %s %s" % (path, name), "put %s.sig %s.sig" % (path, name)]
        res = H.sftp(self.gw.port, partner, self.keys.get(partner), cmds)
        if res.rc != 0:
            self.fail("sftp failed: %r\n%s" % (res, self.gw.log_tail()))

    def sig(self, data, *mode):
        path = os.path.join(self.tmp, "local", "tosign")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        gpg(self.pgp, "-u", self.fpr, *mode, "-o", path + ".out", path)
        with open(path + ".out", "rb") as f:
            return f.read()

    def put_files(self, partner, files):
        """files: [(remote name, bytes)], uploaded in that order, one session."""
        cmds = []
        for i, (name, data) in enumerate(files):
            local = os.path.join(self.tmp, "local", "%s-%d" % (partner, i))
            with open(local, "wb") as f:
                f.write(data)
            cmds.append("put %s %s" % (local, name))
        res = H.sftp(self.gw.port, partner, self.keys.get(partner), cmds)
        if res.rc != 0:
            self.fail("sftp failed: %r\n%s" % (res, self.gw.log_tail()))

    def rejected(self, partner, path, timeout=30):
        r = self.gw.wait_audit(lambda r: r.get("event") == "file.rejected" and
                               r.get("partner") == partner and r.get("path") == path, timeout)
        if r is None:
            self.fail("no file.rejected for %s/%s within %ss\n%s"
                      % (partner, path, timeout, self.gw.diagnostics()))
        return r

    def test_3_sig_and_asc_both_checked(self):
        good = os.urandom(2000)
        self.put_files("fast", [("both.csv", good),
                                ("both.csv.sig", self.sig(good, "--detach-sign")),
                                ("both.csv.asc", self.sig(good, "--armor", "--detach-sign"))])
        self.assertEqual(self.accepted("fast", "both.csv", 30)["signer"], self.fpr)
        # a good .sig does not excuse a bad .asc: the second is checked too
        data = os.urandom(2000)
        # the signatures first, so both are there when the data file is
        # taken (a signature that lands after its file was accepted is late)
        self.put_files("fast", [("half.csv.sig", self.sig(data, "--detach-sign")),
                                ("half.csv.asc", self.sig(os.urandom(2000), "--armor",
                                                          "--detach-sign")),
                                ("half.csv", data)])
        self.assertIn("bad signature", self.rejected("fast", "half.csv")["reason"])
        self.assertFalse(self.is_accepted("fast", "half.csv"))

    def test_4_signed_batch(self):
        a, b = os.urandom(1000), os.urandom(1500)
        man = "%s %d a.csv\n%s %d b.csv\n" % (H.sha256_bytes(a), len(a), H.sha256_bytes(b), len(b))
        self.put_files("batch", [("a.csv", a), ("a.csv.sig", self.sig(a, "--detach-sign")),
                                 ("b.csv", b), ("b.csv.sig", self.sig(b, "--detach-sign")),
                                 ("day1.manifest", man.encode())])
        for n in ("a.csv", "b.csv"):
            acc = self.accepted("batch", n, 30)
            self.assertIn("manifest", acc["rule"])
            self.assertIn("signature", acc["rule"])
            self.assertEqual(acc["signer"], self.fpr)
        # one member signed over other bytes: the whole batch is rejected
        c, d = os.urandom(1000), os.urandom(1500)
        man = "%s %d c.csv\n%s %d d.csv\n" % (H.sha256_bytes(c), len(c), H.sha256_bytes(d), len(d))
        self.put_files("batch", [("c.csv", c), ("c.csv.sig", self.sig(c, "--detach-sign")),
                                 ("d.csv", d), ("d.csv.sig", self.sig(c, "--detach-sign")),
                                 ("day2.manifest", man.encode())])
        r = self.rejected("batch", "day2.manifest")
        self.assertIn("batch day2.manifest: d.csv: signature: bad signature", r["reason"])
        for n in ("c.csv", "d.csv", "c.csv.sig", "d.csv.sig"):
            self.rejected("batch", n)
            self.assertFalse(self.is_accepted("batch", n))

    def test_9_sigterm_during_slow_verification(self):
        self.signed_put("slow", "s9.csv")
        pid = self.slow_started()
        t0 = time.monotonic()
        rc = self.gw.stop(timeout=10)
        took = time.monotonic() - t0
        sys.stderr.write("\n[SIGTERM with a slow verification running: stopped in %.2f s]\n"
                         % took)
        self.assertEqual(rc, 0, self.gw.log_tail())
        self.assertLess(took, SLOW / 2, "stopping waited for the slow verification")
        self.assertTrue(H.poll(lambda: not os.path.exists("/proc/%d" % pid), 5),
                        "the slow gpg (pid %d) outlived the gateway" % pid)
        self.assertFalse(self.is_accepted("slow", "s9.csv"))


if __name__ == "__main__":
    unittest.main()
