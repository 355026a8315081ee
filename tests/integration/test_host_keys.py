"""
`sluice host-keys -c FILE` (issue 12, partner onboarding): one line per
configured host key, exactly as `ssh-keygen -lf KEY` prints it (bits,
SHA256 fingerprint, the key's path instead of its comment, type), for
ed25519, ECDSA and RSA keys including an odd RSA size; a missing key is
named with how to make it, the others are still printed, the exit is 1,
and nothing is generated.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_host_keys
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness as H


def keygen(path, *args):
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "comment", "-f", path] + list(args),
                   check=True, stdin=subprocess.DEVNULL, timeout=120)
    os.chmod(path, 0o600)


def ssh_keygen_l(path):
    out = subprocess.run(["ssh-keygen", "-lf", path], capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    # "BITS SHA256:FP COMMENT (TYPE)": sluice puts the path where the comment is
    return "%s %s %s %s" % (out[0], out[1], path, out[-1])


class TestHostKeys(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.dir = tempfile.mkdtemp(prefix="sluice-hostkeys-")
        d = cls.dir
        cls.keys = [os.path.join(d, n) for n in ("ed25519", "ecdsa384", "rsa3072", "rsa2047")]
        keygen(cls.keys[0], "-t", "ed25519")
        keygen(cls.keys[1], "-t", "ecdsa", "-b", "384")
        keygen(cls.keys[2], "-t", "rsa", "-b", "3072")
        keygen(cls.keys[3], "-t", "rsa", "-b", "2047")
        cls.partner_key = cls.keys[0] + ".pub"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def config(self, host_keys, name):
        d = self.dir
        path = os.path.join(d, name)
        with open(self.partner_key) as f:
            pub = f.read().strip()
        with open(path, "w") as f:
            f.write(H.render_config(H.free_port(), host_keys, os.path.join(d, "state"),
                                    os.path.join(d, "audit.jsonl"),
                                    {"url": "file://" + os.path.join(d, "objects")},
                                    [{"name": "acme", "authorized_keys": [pub]}]))
        return path

    def test_matches_ssh_keygen(self):
        cfg = self.config(self.keys, "all.yaml")
        rc, out, err = H.run_sluice(["host-keys", "-c", cfg])
        self.assertEqual(rc, 0, err)
        want = [ssh_keygen_l(k) for k in self.keys]
        self.assertEqual(out.splitlines(), want, "sluice host-keys differs from ssh-keygen -lf")
        self.assertTrue(all(l.split()[1].startswith("SHA256:") for l in want))

    def test_missing_key(self):
        missing = os.path.join(self.dir, "not-yet")
        cfg = self.config([missing, self.keys[0]], "missing.yaml")
        rc, out, err = H.run_sluice(["host-keys", "-c", cfg])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("host key %s does not exist yet" % missing, err)
        self.assertIn("ssh-keygen -t ed25519", err)
        self.assertEqual(out.splitlines(), [ssh_keygen_l(self.keys[0])])
        self.assertFalse(os.path.exists(missing), "host-keys must not generate a key")

    def test_bad_config(self):
        path = os.path.join(self.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write("listen: [\n")
        rc, out, err = H.run_sluice(["host-keys", "-c", path])
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out, "")


if __name__ == "__main__":
    unittest.main()
