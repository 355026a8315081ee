"""
test_audit_sig.py - issue 11: each seal signed with the gateway's OpenPGP key
(audit.sign_with, audit.keyring), so anyone can check a sealed segment
without the HMAC key.

A running gateway (as root: the audit writer runs as the service user) with
a tiny audit.segment_max and a file:// store; its signing key and a second
("other") key are made with `gpg --batch` at run time:

  - every sealed segment gets <segment>.sig beside it, which a plain
    `gpg --verify <segment>.sig <segment>` with the public key accepts;
  - `sluice audit verify --local --keyring PUB` (no HMAC key) reports the
    signatures good and by whom, and says they are what checks the segments;
    `verify -c` through the gateway pins audit.sign_with;
  - a byte changed in a sealed segment, or a field edited and the chain
    recomputed without the key (which the hash chain alone does not catch):
    verify names the .sig, and gpg refuses it too;
  - a pinned signer that is not the one (--signer OTHER), or a segment
    re-signed by another key: verify fails naming the file;
  - the .sig files are shipped beside their segments under audit.prefix
    (audit.signature_shipped) and `verify --store` compares them;
  - a key that cannot sign (sign_with names a key not in the keyring): the
    seals still happen, the log says why, audit.seal_unsigned names each.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness as H
import test_audit_tamper as T

HOST = "gw-sig.test"


def gpg(home, *args, **kw):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--yes",
                           "--pinentry-mode", "loopback", "--passphrase", ""] + list(args),
                          capture_output=True, timeout=60, **kw)


def fingerprint(home, uid):
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]


def new_key(home, uid):
    os.makedirs(home, mode=0o700)
    r = gpg(home, "--quick-gen-key", uid, "ed25519", "sign", "never")
    assert r.returncode == 0, r.stderr
    return fingerprint(home, uid.split("<")[1].rstrip(">"))


def segments(segdir):
    try:
        return sorted(n for n in os.listdir(segdir)
                      if n.startswith("audit-") and n.endswith(".jsonl"))
    except FileNotFoundError:
        return []


def gateway(tmp, name, keys, objects, sign_with, keyring):
    partners = [{"name": "acme", "authorized_keys": [keys.pub("acme")]}]
    gw = H.Sluice(os.path.join(tmp, name), {"url": "file://" + objects}, partners)
    extra = ("  segment_max: 4KiB\n  host_id: %s\n  prefix: trail\n"
             "  sign_with: \"%s\"\n  keyring: %s\n" % (HOST, sign_with, H.yaml_str(keyring)))
    text = gw.config_text.replace(
        "audit:\n  path: %s\n" % H.yaml_str(gw.audit_path),
        "audit:\n  path: %s\n%s" % (H.yaml_str(gw.audit_path), extra))
    assert "sign_with" in text, text
    with open(gw.config_path, "w") as f:
        f.write(text)
    gw.config_text = text
    gw.segdir = os.path.join(os.path.dirname(gw.audit_path), "segments")
    return gw


def put(gw, keys, tmp, n, size=3000):
    cmds = []
    for i in range(n):
        src = os.path.join(tmp, "f%d.bin" % i)
        H.write_random_file(src, size)
        cmds.append("put %s f%d.bin" % (src, i))
    return H.sftp(gw.port, "acme", keys.get("acme"), cmds)


@unittest.skipUnless(os.geteuid() == 0, "needs root: the writer runs as the service user")
class TestAuditSig(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-auditsig-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = tmp = d.name
        cls.keys = H.Keys(os.path.join(tmp, "ssh"))
        cls.gwhome = os.path.join(tmp, "pgp-gateway")
        cls.otherhome = os.path.join(tmp, "pgp-other")
        cls.bank = os.path.join(tmp, "pgp-bank")
        for h in (cls.gwhome, cls.otherhome, cls.bank):
            cls.addClassCleanup(subprocess.run, ["gpgconf", "--homedir", h, "--kill", "all"],
                                capture_output=True, timeout=30)
        cls.fpr = new_key(cls.gwhome, "Gateway <gw@sluice.test>")
        cls.other = new_key(cls.otherhome, "Other <other@sluice.test>")
        os.makedirs(cls.bank, mode=0o700)
        conf = os.path.join(tmp, "conf")
        os.makedirs(conf)
        cls.seckey = os.path.join(conf, "audit.sec.asc")
        fd = os.open(cls.seckey, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(gpg(cls.gwhome, "--export-secret-keys", "--armor", cls.fpr).stdout)
        cls.pub = os.path.join(tmp, "gateway.pub.asc")
        with open(cls.pub, "wb") as f:
            f.write(gpg(cls.gwhome, "--export", "--armor", cls.fpr).stdout)
        cls.otherpub = os.path.join(tmp, "other.pub.asc")
        with open(cls.otherpub, "wb") as f:
            f.write(gpg(cls.otherhome, "--export", "--armor", cls.other).stdout)
        assert gpg(cls.bank, "--import", cls.pub).returncode == 0
        H.share_with_gateway(conf)
        cls.objects = os.path.join(tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = gateway(tmp, "gw", cls.keys, cls.objects, cls.fpr, cls.seckey)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)
        r = put(cls.gw, cls.keys, tmp, 6)
        assert r.rc == 0, "%r\n%s" % (r, cls.gw.log_tail())
        last = cls.gw.wait_audit(lambda r: r.get("event") == "file.stored"
                                 and r.get("path") == "f5.bin", 60)
        assert last is not None, cls.gw.log_tail()

    def signed_segments(self, timeout=30):
        """The sealed segments, once every one has its .sig."""
        def probe():
            segs = segments(self.gw.segdir)
            ok = segs and all(os.path.exists(os.path.join(self.gw.segdir, s + ".sig"))
                              for s in segs)
            return segs if ok else None
        segs = H.poll(probe, timeout, 0.2)
        self.assertIsNotNone(segs, "%r\n%s" % (os.listdir(self.gw.segdir), self.gw.log_tail()))
        self.assertGreaterEqual(len(segs), 2, segs)
        return segs

    def copy_trail(self, name):
        """A copy of the segments (with their .sig) and the live file."""
        d = os.path.join(self.tmp, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "segments"))
        segs = self.signed_segments()
        for s in segs:
            for n in (s, s + ".sig"):
                shutil.copy(os.path.join(self.gw.segdir, n), os.path.join(d, "segments", n))
        shutil.copy(self.gw.audit_path, os.path.join(d, "audit.jsonl"))
        return d, segs

    def verify_local(self, *args):
        return H.run_sluice(["audit", "verify", "--local"] + list(args), timeout=120)

    def test_1_each_seal_signed_and_gpg_accepts_it(self):
        segs = self.signed_segments()
        for s in segs:
            p = os.path.join(self.gw.segdir, s)
            with open(p + ".sig", "rb") as f:
                sig = f.read()
            self.assertTrue(sig.startswith(b"-----BEGIN PGP SIGNATURE-----"), sig[:60])
            r = gpg(self.bank, "--status-fd", "1", "--verify", p + ".sig", p)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(("VALIDSIG " + self.fpr).encode(), r.stdout)
            self.assertIn(b"GOODSIG", r.stdout)
            self.assertIn(self.fpr.encode(), r.stdout)
            st = os.stat(p + ".sig")
            self.assertEqual(st.st_mode & 0o077 & ~0o040, 0, oct(st.st_mode))
        # no temp file left beside them
        self.assertEqual([n for n in os.listdir(self.gw.segdir) if n.endswith(".tmp")], [])
        self.assertEqual([r for r in self.gw.audit_records()
                          if r.get("event") == "audit.seal_unsigned"], [])

    def test_2_verify_without_the_hmac_key(self):
        segs = self.signed_segments()
        rc, out, err = self.verify_local("--keyring", self.pub, self.gw.segdir,
                                         self.gw.audit_path)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs not checked", out)
        self.assertRegex(out, r"(\d+) of \1 sealed segments checked by their OpenPGP "
                              r"signatures: seal signed by %s" % self.fpr)
        self.assertIn("signer not pinned", out)
        self.assertIn("without the HMAC key", out)
        # pinned, and gpg's default home (GNUPGHOME) instead of --keyring
        rc, out, err = H.run_sluice(["audit", "verify", "--local", "--signer", self.fpr.lower(),
                                     self.gw.segdir, self.gw.audit_path],
                                    env={"GNUPGHOME": self.bank}, timeout=120)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("seal signed by %s (the expected signer)" % self.fpr, out)
        # no public key: not checked, and it says how to fix it; an error
        # when signatures were asked for (--signer, --keyring)
        empty = os.path.join(self.tmp, "pgp-empty")
        os.makedirs(empty, mode=0o700, exist_ok=True)
        rc, out, err = H.run_sluice(["audit", "verify", "--local", self.gw.segdir],
                                    env={"GNUPGHOME": empty}, timeout=120)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"\d+ sealed segments have a \.sig that was not checked: no public "
                              r"key for [0-9A-F]{40} here \(give --keyring")
        self.assertNotIn("checked by their OpenPGP signatures", out)
        rc, out, err = H.run_sluice(["audit", "verify", "--local", "--signer", self.fpr,
                                     self.gw.segdir], env={"GNUPGHOME": empty}, timeout=120)
        self.assertEqual(rc, 2, out + err)
        self.assertRegex(out, r"\.jsonl\.sig: cannot check the signature: no public key")
        # through the gateway with its configuration: HMAC key and the
        # configured signer
        rc, out, err = H.run_sluice(["audit", "verify", "-c", self.gw.config_path], timeout=120)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)
        self.assertIn("seal signed by %s (the expected signer)" % self.fpr, out)
        self.assertGreaterEqual(len(segs), 2)

    def test_3_an_edited_segment_fails_verify_and_gpg(self):
        d, segs = self.copy_trail("edited")
        victim = os.path.join(d, "segments", segs[-1])
        # (a) a byte changed: the hash chain and the signature both catch it
        with open(victim, "rb") as f:
            orig = f.read()
        with open(victim, "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 1]))
        r = gpg(self.bank, "--verify", victim + ".sig", victim)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        rc, out, err = self.verify_local("--keyring", self.pub, os.path.join(d, "segments"))
        self.assertEqual(rc, 1, out + err)
        # (b) a field edited and the chain recomputed without the key: only
        # the MACs (with the key) or the signature (without it) show it
        with open(victim, "wb") as f:
            f.write(orig)
        lines = T.read_lines(victim)
        i = len(lines) // 2
        prefix, _, mac = T.split_record(lines[i].rstrip(b"\n"))
        prefix = prefix.replace(b'"host":"%s"' % HOST.encode(), b'"host":"gw-sig.forged"', 1)
        self.assertIn(b"gw-sig.forged", prefix)
        lines[i] = T.rehash(prefix, mac)[0]
        files = [(os.path.join(d, "segments", s), T.read_lines(os.path.join(d, "segments", s)))
                 for s in segs]
        files[-1] = (victim, lines)
        files.append((os.path.join(d, "audit.jsonl"), T.read_lines(os.path.join(d, "audit.jsonl"))))
        T.rechain(files)
        self.assertEqual(segments(os.path.join(d, "segments")), segs)
        rc, out, err = self.verify_local("--keyring", self.pub, os.path.join(d, "segments"),
                                         os.path.join(d, "audit.jsonl"))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s.sig: BAD signature" % victim, out)
        r = gpg(self.bank, "--verify", victim + ".sig", victim)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"BAD signature", r.stderr)
        # the forgery passes the structure checks: with the signature removed
        # only the MACs could tell
        os.unlink(victim + ".sig")
        rc, out, err = self.verify_local("--keyring", self.pub, os.path.join(d, "segments"),
                                         os.path.join(d, "audit.jsonl"))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("have no .sig", out)

    def test_4_wrong_signer_fails(self):
        self.signed_segments()
        rc, out, err = self.verify_local("--keyring", self.pub, "--signer", self.other,
                                         self.gw.segdir)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("not by the expected signer %s" % self.other, out)
        self.assertRegex(out, r"audit-\d{12}-\d{12}\.jsonl\.sig: signed by %s" % self.fpr)
        # a segment re-signed by another key: good with no pin (it names the
        # signer), refused when the gateway's key is pinned
        d, segs = self.copy_trail("resigned")
        victim = os.path.join(d, "segments", segs[0])
        r = gpg(self.otherhome, "--armor", "--detach-sign", "-o", victim + ".sig", victim)
        self.assertEqual(r.returncode, 0, r.stderr)
        both = os.path.join(self.tmp, "both.asc")
        with open(both, "wb") as f:
            for p in (self.pub, self.otherpub):
                with open(p, "rb") as g:
                    f.write(g.read())
        rc, out, err = self.verify_local("--keyring", both, os.path.join(d, "segments"))
        self.assertEqual(rc, 0, out + err)
        self.assertIn(self.other, out)
        rc, out, err = self.verify_local("--keyring", both, "--signer", self.fpr,
                                         os.path.join(d, "segments"))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s.sig: signed by %s, not by the expected signer %s"
                      % (victim, self.other, self.fpr), out)
        # a bad --signer is a usage error
        rc, out, err = self.verify_local("--signer", "12AB", os.path.join(d, "segments"))
        self.assertEqual(rc, 2, out + err)
        self.assertIn("not a fingerprint", err)

    def test_5_signatures_shipped_beside_segments(self):
        segs = self.signed_segments()
        prefix = os.path.join(self.objects, "trail", HOST)

        def probe():
            got = {r.get("signature") for r in self.gw.audit_records()
                   if r.get("event") == "audit.signature_shipped"}
            return got if all(s + ".sig" in got for s in segs) else None
        got = H.poll(probe, 60, 0.3)
        self.assertIsNotNone(got, self.gw.log_tail())
        for s in segs:
            for n in (s, s + ".sig"):
                with open(os.path.join(self.gw.segdir, n), "rb") as f:
                    local = f.read()
                with open(os.path.join(prefix, n), "rb") as f:
                    self.assertEqual(f.read(), local, n)
        recs = [r for r in self.gw.audit_records() if r.get("event") == "audit.signature_shipped"]
        for r in recs:
            self.assertEqual(r["signature"], r["segment"] + ".sig")
            self.assertTrue(r["key"].endswith("trail/%s/%s" % (HOST, r["signature"])), r)
        # gpg checks the shipped copies
        r = gpg(self.bank, "--verify", os.path.join(prefix, segs[0] + ".sig"),
                os.path.join(prefix, segs[0]))
        self.assertEqual(r.returncode, 0, r.stderr)
        # (shipping records fill new segments for a while: until they are
        # shipped too, verify --store names them missing in the store)
        def clean():
            r = H.run_sluice(["audit", "verify", "--store", "-c", self.gw.config_path],
                             timeout=120)
            return r if r[0] == 0 else None
        res = H.poll(clean, 90, 1)
        self.assertIsNotNone(res, H.run_sluice(["audit", "verify", "--store", "-c",
                                                self.gw.config_path], timeout=120))
        rc, out, err = res
        for s in segs:
            self.assertIn("ok       %s.sig" % s, out)


@unittest.skipUnless(os.geteuid() == 0, "needs root: the writer runs as the service user")
class TestAuditSigUnusable(unittest.TestCase):
    """sign_with names a key the keyring does not hold: seals go on unsigned."""

    def test_seals_go_on_and_say_they_are_unsigned(self):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-auditsig2-")
        self.addCleanup(d.cleanup)
        tmp = d.name
        keys = H.Keys(os.path.join(tmp, "ssh"))
        home = os.path.join(tmp, "pgp")
        self.addCleanup(subprocess.run, ["gpgconf", "--homedir", home, "--kill", "all"],
                        capture_output=True, timeout=30)
        fpr = new_key(home, "Gateway <gw@sluice.test>")
        wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
        self.assertNotEqual(fpr, wrong)
        conf = os.path.join(tmp, "conf")
        os.makedirs(conf)
        sec = os.path.join(conf, "audit.sec.asc")
        fd = os.open(sec, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(gpg(home, "--export-secret-keys", "--armor", fpr).stdout)
        H.share_with_gateway(conf)
        objects = os.path.join(tmp, "objects")
        os.makedirs(objects)
        gw = gateway(tmp, "gw", keys, objects, wrong, sec)
        gw.start()
        self.addCleanup(gw.stop)
        r = put(gw, keys, tmp, 4)
        self.assertEqual(r.rc, 0, "%r\n%s" % (r, gw.log_tail()))
        self.assertIsNotNone(gw.wait_audit(
            lambda r: r.get("event") == "file.stored" and r.get("path") == "f3.bin", 60),
            gw.log_tail())
        segs = segments(gw.segdir)
        self.assertGreaterEqual(len(segs), 1, gw.log_tail())

        def probe():
            got = {r["segment"] for r in gw.audit_records()
                   if r.get("event") == "audit.seal_unsigned"}
            return got if set(segs) <= got else None
        got = H.poll(probe, 30, 0.2)
        self.assertIsNotNone(got, gw.log_tail())
        rec = [r for r in gw.audit_records() if r.get("event") == "audit.seal_unsigned"][0]
        self.assertEqual(rec["sign_with"], wrong)
        self.assertTrue(rec["error"], rec)
        for s in segs:
            self.assertFalse(os.path.exists(os.path.join(gw.segdir, s + ".sig")), s)
        with open(gw.log, errors="replace") as f:
            log = f.read()
        self.assertIn("AUDIT SEGMENT NOT SIGNED", log)
        self.assertIn("audit.sign_with %s: no such secret key" % wrong, log)
        rc, out, err = H.run_sluice(["audit", "verify", "-c", gw.config_path], timeout=120)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("MACs good", out)
        self.assertIn("no sealed segment has a .sig", out)


if __name__ == "__main__":
    unittest.main()
