"""
Completion rules and OpenPGP verification (issue 4), driven by the real
OpenSSH sftp client through `sluice serve` into moto's S3 (IAM auth on).

One gateway, one partner per rule set:
  plain     defaults: temp names (*.part ...), duplicate_window 1h reject
  flag      duplicate_window 1h (accept-and-flag, the default policy)
  marker    completion.marker .done
  sum       completion.checksum sha256
  batch     completion.manifest *.manifest, manifest_timeout 6s
  quiet     completion.quiet_seconds 3
  cut       defaults (a cut connection, then reput)
  janitor   completion.incomplete_ttl 2s
  signed    signature detached, wait 8s
  inline    signature inline
  enc       signature encrypted (sign-then-encrypt to the gateway's key)
  encp      the same with keep_plaintext

store.quarantine_prefix is set: every rejected file is also copied there.

OpenPGP keys are made with `gpg --batch` at run time.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_completion
"""

import glob
import hashlib
import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness as H

PARTNERS = {
    "plain": "    duplicate_window: 1h\n    duplicate_policy: reject\n",
    "flag": "    duplicate_window: 1h\n",
    "marker": "    completion:\n      marker: \".done\"\n",
    "sum": "    completion:\n      checksum: sha256\n",
    "batch": "    completion:\n      manifest: \"*.manifest\"\n      manifest_timeout: 6s\n",
    "quiet": "    completion:\n      quiet_seconds: 3\n",
    "cut": "",
    "janitor": "    completion:\n      incomplete_ttl: 2s\n",
}
SIG_WAIT = 8
QPREFIX = "quarantine/"  # store.quarantine_prefix


def gpg(home, *args, **kw):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--yes", "--quiet",
                           "--pinentry-mode", "loopback", "--passphrase", ""] + list(args),
                          check=True, capture_output=True, timeout=60, **kw)


def fingerprint(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]


class CompletionCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls._tmp = tempfile.TemporaryDirectory(prefix="sluice-completion-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = tmp = cls._tmp.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))

        # OpenPGP: the partner's signing key, the gateway's decryption key
        cls.pgp = os.path.join(tmp, "pgp-partner")
        cls.gwhome = os.path.join(tmp, "pgp-gateway")
        cls.stranger = os.path.join(tmp, "pgp-stranger")
        for d in (cls.pgp, cls.gwhome, cls.stranger):
            os.makedirs(d, mode=0o700)
            cls.addClassCleanup(subprocess.run, ["gpgconf", "--homedir", d, "--kill", "all"],
                                capture_output=True, timeout=30)
        gpg(cls.pgp, "--quick-gen-key", "Acme <ops@acme.test>", "ed25519", "sign", "never")
        cls.fpr = fingerprint(cls.pgp, "ops@acme.test")
        gpg(cls.gwhome, "--quick-gen-key", "Gateway <gw@sluice.test>", "default", "default", "never")
        cls.gwfpr = fingerprint(cls.gwhome, "gw@sluice.test")
        gpg(cls.stranger, "--quick-gen-key", "Mallory <m@evil.test>", "ed25519", "sign", "never")
        keyring = os.path.join(tmp, "acme.asc")
        with open(keyring, "wb") as f:
            f.write(gpg(cls.pgp, "--export", "--armor", cls.fpr).stdout)
        seckey = os.path.join(tmp, "gateway.sec.asc")
        fd = os.open(seckey, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(gpg(cls.gwhome, "--export-secret-keys", "--armor", cls.gwfpr).stdout)
        pub = gpg(cls.gwhome, "--export", "--armor", cls.gwfpr).stdout
        gpg(cls.pgp, "--import", input=pub)

        sig = ("    signature:\n      mode: %%s\n      signers: [\"%s\"]\n"
               "      keyring: %s\n      wait: %ds\n" % (cls.fpr, H.yaml_str(keyring), SIG_WAIT))
        partners = dict(PARTNERS)
        partners["signed"] = sig % "detached"
        partners["inline"] = sig % "inline"
        partners["enc"] = (sig % "encrypted") + "      decryption_key: %s\n" % H.yaml_str(seckey)
        partners["encp"] = partners["enc"] + "      keep_plaintext: true\n"

        cls.moto = H.Moto(tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        store = {"url": "s3://%s" % H.BUCKET, "region": "us-east-1",
                 "endpoint": cls.moto.endpoint, "path_style": True}
        plist = [{"name": n, "authorized_keys": [cls.keys.pub(n)]} for n in partners]
        cls.gw = H.Sluice(os.path.join(tmp, "gw"), store, plist, env=cls.moto.env())
        # per-partner blocks go right after each "- name:" line
        lines = []
        for line in cls.gw.config_text.splitlines():
            lines.append(line)
            if line.startswith("  path_style:"):  # rejected files: also to the store
                lines.append("  quarantine_prefix: %s" % QPREFIX)
            for n, block in partners.items():
                if line == "  - name: %s" % H.yaml_str(n) and block:
                    lines.append(block.rstrip("\n"))
        cls.gw.config_text = "\n".join(lines) + "\n"
        with open(cls.gw.config_path, "w") as f:
            f.write(cls.gw.config_text)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.kill)

    # -- helpers

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())

    def local(self, name, data):
        path = os.path.join(self.tmp, "local", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def sftp(self, partner, commands, timeout=120):
        res = H.sftp(self.gw.port, partner, self.keys.get(partner), commands, timeout=timeout)
        if res.rc != 0:
            self.fail("sftp failed: %r\n%s" % (res, self.gw.log_tail()))
        return res

    def put(self, partner, name, data, remote=None):
        self.sftp(partner, ["put %s %s" % (self.local(name, data), remote or name)])

    def head(self, key, timeout=30):
        h = self.moto.wait_for_object(None, key, timeout)
        if h is None:
            self.fail("s3://%s/%s did not appear within %ss\nkeys: %s\n%s"
                      % (H.BUCKET, key, timeout, self.moto.keys(), self.gw.diagnostics()))
        return h

    def absent(self, key):
        self.assertNotIn(key, self.moto.keys(), "%s was shipped but must not be" % key)

    def audit(self, event, partner, path, timeout=30):
        r = self.gw.wait_audit(lambda r: r.get("event") == event and r.get("partner") == partner
                               and r.get("path") == path, timeout)
        if r is None:
            self.fail("no %s audit record for %s/%s within %ss\n%s"
                      % (event, partner, path, timeout, self.gw.diagnostics()))
        return r

    def no_audit(self, event, partner, path):
        hits = [r for r in self.gw.audit_records() if r.get("event") == event
                and r.get("partner") == partner and r.get("path") == path]
        self.assertEqual(hits, [], "unexpected %s for %s/%s" % (event, partner, path))

    def quarantined(self, partner, fid, reason_part):
        q = os.path.join(self.gw.state_dir, "quarantine", partner)
        self.assertTrue(os.path.isfile(os.path.join(q, fid)), "quarantine/%s/%s missing\n%s"
                        % (partner, fid, H.tree(self.gw.state_dir)))
        with open(os.path.join(q, fid + ".reason")) as f:
            text = f.read()
        self.assertIn(reason_part, text)

    # -- temp names

    def test_temp_name_then_rename(self):
        data = os.urandom(70000)
        self.sftp("plain", ["put %s t1.csv.part" % self.local("t1", data),
                            "rename t1.csv.part t1.csv"])
        h = self.head("plain/t1.csv")
        self.assertEqual(self.moto.get_bytes("plain/t1.csv"), data)
        self.assertEqual(h["Metadata"]["sha256"], H.sha256_bytes(data))
        self.absent("plain/t1.csv.part")
        acc = self.audit("file.accepted", "plain", "t1.csv")
        self.assertIn("rename", acc["rule"])

    def test_temp_name_waits(self):
        self.put("plain", "t2.filepart", b"not yet")
        w = self.audit("file.waiting", "plain", "t2.filepart")
        self.assertIn("rename", w["for"])
        time.sleep(2)
        self.absent("plain/t2.filepart")
        self.no_audit("file.accepted", "plain", "t2.filepart")

    def test_duplicate_rejected(self):
        data = b"same bytes twice " + os.urandom(100)
        self.put("plain", "dup1.csv", data)
        self.head("plain/dup1.csv")
        self.put("plain", "dup2.csv", data)
        rej = self.audit("file.rejected", "plain", "dup2.csv")
        self.assertIn("duplicate", rej["reason"])
        d = self.audit("file.duplicate", "plain", "dup2.csv")
        self.assertEqual(d["duplicate_of_path"], "dup1.csv")
        self.quarantined("plain", rej["fid"], "duplicate")
        self.absent("plain/dup2.csv")

    def test_duplicate_flagged(self):
        data = b"flag me " + os.urandom(100)
        self.put("flag", "f1.csv", data)
        self.head("flag/f1.csv")
        self.put("flag", "f2.csv", data)
        h = self.head("flag/f2.csv")
        d = self.audit("file.duplicate", "flag", "f2.csv")
        self.assertEqual(h["Metadata"]["duplicate-of"], d["duplicate_of"])
        self.assertEqual(d["policy"], "accept-and-flag")
        self.no_audit("file.duplicate", "flag", "f1.csv")

    # -- marker, checksum, manifest, quiet

    def test_marker(self):
        data = os.urandom(5000)
        self.put("marker", "m.csv", data)
        self.audit("file.waiting", "marker", "m.csv")
        self.absent("marker/m.csv")
        self.put("marker", "m.csv.done", b"")
        self.head("marker/m.csv")
        self.assertEqual(self.moto.get_bytes("marker/m.csv"), data)
        acc = self.audit("file.accepted", "marker", "m.csv.done")
        self.assertFalse(acc["shipped"])
        self.absent("marker/m.csv.done")

    def test_checksum_match_and_mismatch(self):
        good = os.urandom(3000)
        self.sftp("sum", ["put %s ok.csv" % self.local("ok", good),
                          "put %s ok.csv.sha256" % self.local(
                              "ok.sha", ("%s  ok.csv\n" % H.sha256_bytes(good)).encode())])
        self.head("sum/ok.csv")
        self.absent("sum/ok.csv.sha256")
        bad = os.urandom(3000)
        self.sftp("sum", ["put %s bad.csv" % self.local("bad", bad),
                          "put %s bad.csv.sha256" % self.local(
                              "bad.sha", ("%s  bad.csv\n" % H.sha256_bytes(b"other")).encode())])
        r1 = self.audit("file.rejected", "sum", "bad.csv")
        r2 = self.audit("file.rejected", "sum", "bad.csv.sha256")
        self.assertIn("checksum mismatch", r1["reason"])
        self.quarantined("sum", r1["fid"], "checksum mismatch")
        self.quarantined("sum", r2["fid"], "checksum mismatch")
        self.absent("sum/bad.csv")

    def test_manifest_batch(self):
        a, b = os.urandom(1000), os.urandom(2000)
        man = "%s %d a.csv\n%s %d sub/b.csv\n" % (H.sha256_bytes(a), len(a), H.sha256_bytes(b), len(b))
        self.sftp("batch", ["put %s a.csv" % self.local("ba", a)])
        self.audit("file.waiting", "batch", "a.csv")
        self.sftp("batch", ["mkdir sub", "put %s sub/b.csv" % self.local("bb", b),
                            "put %s day1.manifest" % self.local("bm", man.encode())])
        self.head("batch/a.csv")
        self.head("batch/sub/b.csv")
        self.absent("batch/day1.manifest")
        for p in ("a.csv", "sub/b.csv"):
            self.assertIn("manifest", self.audit("file.accepted", "batch", p)["rule"])

    def test_manifest_timeout(self):
        x = os.urandom(100)
        man = "%s %d x.csv\n%s 5 y.csv\n" % (H.sha256_bytes(x), len(x), H.sha256_bytes(b"never"))
        self.sftp("batch", ["put %s x.csv" % self.local("bx", x),
                            "put %s day2.manifest" % self.local("bm2", man.encode())])
        r = self.audit("file.rejected", "batch", "day2.manifest", timeout=40)
        self.assertIn("y.csv has not arrived", r["reason"])
        rx = self.audit("file.rejected", "batch", "x.csv", timeout=10)
        self.quarantined("batch", rx["fid"], "incomplete")
        self.absent("batch/x.csv")

    def test_quiet_seconds(self):
        self.put("quiet", "q.csv", b"quiet please")
        self.head("quiet/q.csv")
        recs = self.gw.audit_records()
        rec = [r for r in recs if r.get("event") == "file.received" and r.get("path") == "q.csv"][0]
        acc = self.audit("file.accepted", "quiet", "q.csv")
        self.assertIn("quiet", acc["rule"])
        t = lambda r: time.mktime(time.strptime(r["ts"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertGreaterEqual(t(acc) - t(rec), 2, "shipped before quiet_seconds passed")

    # -- a cut connection, then reput; the janitor

    def start_throttled_put(self, partner, local, remote):
        cmd = (["sftp", "-l", "8000", "-b", "-", "-P", str(self.gw.port), "-i", self.keys.get(partner)]
               + H.SSH_COMMON + ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                 "%s@%s" % (partner, H.LOCALHOST)])
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        p.stdin.write(("put %s %s\n" % (local, remote)).encode())
        p.stdin.flush()
        landed = os.path.join(self.gw.landing(partner), remote)
        ok = H.poll(lambda: os.path.exists(landed) and os.path.getsize(landed) > 256 * 1024, 30)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
        p.stdin.close()
        self.assertTrue(ok, "the upload never started\n%s" % self.gw.log_tail())
        return landed

    def test_cut_connection_then_reput(self):
        big = os.path.join(self.tmp, "big.bin")
        digest = H.write_random_file(big, 24 << 20)
        landed = self.start_throttled_put("cut", big, "big.bin")
        time.sleep(1)
        st = os.stat(landed)
        self.assertLess(st.st_size, 24 << 20)
        self.assertEqual(st.st_mode & 0o777, 0o640, "an incomplete file must stay 0640")
        self.no_audit("file.received", "cut", "big.bin")
        self.absent("cut/big.bin")
        self.sftp("cut", ["reput %s big.bin" % big], timeout=300)
        h = self.head("cut/big.bin", timeout=120)
        self.assertEqual(h["Metadata"]["sha256"], digest)
        self.assertEqual(h["ContentLength"], 24 << 20)

    def test_incomplete_expires_to_quarantine(self):
        big = os.path.join(self.tmp, "big2.bin")
        H.write_random_file(big, 8 << 20)
        landed = self.start_throttled_put("janitor", big, "half.bin")
        r = self.audit("file.incomplete_expired", "janitor", "half.bin", timeout=30)
        self.assertFalse(os.path.exists(landed))
        q = os.path.join(self.gw.state_dir, "quarantine", "janitor", r["quarantined_as"])
        self.assertTrue(os.path.isfile(q))
        with open(q + ".reason") as f:
            self.assertIn("incomplete", f.read())

    # -- OpenPGP

    def sign(self, name, data, *mode):
        path = self.local(name, data)
        gpg(self.pgp, "-u", self.fpr, *mode, "-o", path + ".out", path)
        with open(path + ".out", "rb") as f:
            return f.read()

    def test_detached_signature_first_and_second(self):
        d1, d2 = os.urandom(4000), os.urandom(4000)
        s1 = self.sign("d1", d1, "--detach-sign")
        s2 = self.sign("d2", d2, "--armor", "--detach-sign")
        self.put("signed", "d1.csv.sig", s1)
        self.put("signed", "d1.csv", d1)
        self.put("signed", "d2.csv", d2)
        self.put("signed", "d2.csv.asc", s2)
        for name, data in (("d1.csv", d1), ("d2.csv", d2)):
            h = self.head("signed/" + name)
            self.assertEqual(h["Metadata"]["signer"], self.fpr)
            self.assertRegex(h["Metadata"]["signed-at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(h["Metadata"]["partner"], "signed")
            self.assertIn("received-at", h["Metadata"])
            self.assertEqual(self.moto.get_bytes("signed/" + name), data)
            acc = self.audit("file.accepted", "signed", name)
            self.assertEqual(acc["signer"], self.fpr)
        self.absent("signed/d1.csv.sig")
        self.absent("signed/d2.csv.asc")

    def test_detached_bad_and_unknown(self):
        d3 = os.urandom(4000)
        s3 = self.sign("d3", os.urandom(4000), "--detach-sign")  # over other data
        self.put("signed", "d3.csv", d3)
        self.put("signed", "d3.csv.sig", s3)
        r = self.audit("file.rejected", "signed", "d3.csv")
        self.assertIn("bad signature", r["reason"])
        self.quarantined("signed", r["fid"], "bad signature")
        self.audit("file.rejected", "signed", "d3.csv.sig")
        d5 = os.urandom(100)
        p5 = self.local("d5", d5)
        gpg(self.stranger, "--detach-sign", "-o", p5 + ".sig", p5)
        self.sftp("signed", ["put %s d5.csv" % p5, "put %s.sig d5.csv.sig" % p5])
        r = self.audit("file.rejected", "signed", "d5.csv")
        self.assertIn("unknown key", r["reason"])
        self.absent("signed/d3.csv")
        self.absent("signed/d5.csv")

    def test_missing_signature_after_wait(self):
        self.put("signed", "d4.csv", b"unsigned")
        r = self.audit("file.rejected", "signed", "d4.csv", timeout=SIG_WAIT + 20)
        self.assertIn("no signature within %ds" % SIG_WAIT, r["reason"])
        self.quarantined("signed", r["fid"], "no signature")

    def test_inline_clearsigned(self):
        text = b"date,amount\n2026-11-22,100.00\n"
        signed = self.sign("cs", text, "--clearsign")
        self.put("inline", "cs.csv.asc", signed)
        h = self.head("inline/cs.csv.asc")
        self.assertEqual(h["Metadata"]["signer"], self.fpr)
        self.assertEqual(self.moto.get_bytes("inline/cs.csv.asc"), signed)
        bad = signed.replace(b"100.00", b"900.00")
        self.put("inline", "cs2.csv.asc", bad)
        r = self.audit("file.rejected", "inline", "cs2.csv.asc")
        self.assertIn("bad signature", r["reason"])

    def agents(self):
        gnupg = os.path.join(self.gw.state_dir, "gnupg")
        out = []
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"gpg-agent") and any(gnupg.encode() in a for a in cmd):
                out.append((pid, cmd))
        return out

    def test_encrypted_ships_ciphertext(self):
        data = os.urandom(20000)
        path = self.local("e1", data)
        gpg(self.pgp, "-u", self.fpr, "--trust-model", "always", "-r", self.gwfpr,
            "--sign", "--encrypt", "-o", path + ".pgp", path)
        with open(path + ".pgp", "rb") as f:
            cipher = f.read()
        self.put("enc", "e1.pgp", cipher)
        h = self.head("enc/e1.pgp")
        self.assertEqual(h["Metadata"]["signer"], self.fpr)
        self.assertEqual(self.moto.get_bytes("enc/e1.pgp"), cipher)
        self.assertEqual(h["Metadata"]["sha256"], hashlib.sha256(cipher).hexdigest())
        self.assertEqual(glob.glob(os.path.join(self.gw.state_dir, "plaintext", "enc", "*")), [])
        tampered = bytearray(cipher)
        tampered[len(tampered) // 2] ^= 0xff
        self.put("enc", "e2.pgp", bytes(tampered))
        r = self.audit("file.rejected", "enc", "e2.pgp")
        self.quarantined("enc", r["fid"], "cannot decrypt")
        self.absent("enc/e2.pgp")
        # the agent that decrypted is stopped once the pass is done
        H.poll(lambda: not self.agents(), 10)
        self.assertEqual(self.agents(), [], "gpg-agent left running for sluice's homes")


    def test_encrypted_keep_plaintext(self):
        data = os.urandom(5000)
        path = self.local("e3", data)
        gpg(self.pgp, "-u", self.fpr, "--trust-model", "always", "-r", self.gwfpr,
            "--sign", "--encrypt", "-o", path + ".pgp", path)
        with open(path + ".pgp", "rb") as f:
            cipher = f.read()
        self.put("encp", "e3.pgp", cipher)
        self.head("encp/e3.pgp")
        self.assertEqual(self.moto.get_bytes("encp/e3.pgp"), cipher)
        acc = self.audit("file.accepted", "encp", "e3.pgp")
        kept = os.path.join(self.gw.state_dir, "plaintext", "encp", acc["fid"])
        with open(kept, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(os.stat(kept).st_mode & 0o777, 0o600)

    def test_rejected_copied_to_quarantine_prefix(self):
        text = b"date,amount\n2026-11-22,300.00\n"
        bad = self.sign("qc", text, "--clearsign").replace(b"300.00", b"700.00")
        self.sftp("inline", ["-mkdir dir", "put %s dir/qc.csv.asc" % self.local("qc.asc", bad)])
        r = self.audit("file.rejected", "inline", "dir/qc.csv.asc")
        c = self.audit("file.quarantine_copied", "inline", "dir/qc.csv.asc")
        key = "%sinline/%s-qc.csv.asc" % (QPREFIX, r["fid"])
        self.assertEqual(c["quarantine_key"], key)
        h = self.head(key)
        self.assertEqual(self.moto.get_bytes(key), bad)
        md = h["Metadata"]
        self.assertIn("bad signature", md["reason"])
        self.assertEqual(md["reason"], r["reason"])
        self.assertEqual(md["partner"], "inline")
        self.assertEqual(md["sha256"], hashlib.sha256(bad).hexdigest())
        self.assertEqual(md["fid"], r["fid"])
        # nothing under the normal prefix; the local copy stays
        self.absent("inline/dir/qc.csv.asc")
        self.assertEqual([k for k in self.moto.keys() if "qc.csv" in k and not
                          k.startswith(QPREFIX)], [])
        self.quarantined("inline", r["fid"], "bad signature")


if __name__ == "__main__":
    unittest.main()
