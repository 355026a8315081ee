"""
Real partner clients against `sluice serve` with moto's S3 (IAM auth on):
OpenSSH sftp, lftp (its sftp:// runs an ssh subprocess), curl (sftp:// via
libssh2), paramiko (Debian's python3-paramiko, run with /usr/bin/python3) and
rclone's sftp backend. Each uploads a file of odd size and the object must be
byte-identical in the bucket.

A missing client is a test failure naming the package, never a skip:
tests/run.sh installs them (deploy/install-deps.sh --test).

    cd tests/integration && SLUICE_BIN=$PWD/../../build/sluice python3 -m unittest -v test_clients
"""

import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

import harness as H

SYS_PYTHON = "/usr/bin/python3"
PREFIX = "clients"
SIZE = 5 * 1024 * 1024 + 12345  # several windows and packets, not a round number

SSH_OPTS = "-a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null " \
           "-o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR"

PARAMIKO_PUT = r'''
import sys, paramiko
host, port, user, keyfile, local, remote = sys.argv[1:7]
key = None
for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
    try:
        key = cls.from_private_key_file(keyfile)
        break
    except Exception:
        pass
t = paramiko.Transport((host, int(port)))
t.connect(username=user, pkey=key)
sftp = paramiko.SFTPClient.from_transport(t)
try:
    sftp.mkdir("pm")
except IOError:
    pass
attrs = sftp.put(local, remote, confirm=True)
print("size", attrs.st_size)
print("listing", sftp.listdir("pm"))
sftp.close()
t.close()
'''


def need(binary, package):
    if shutil.which(binary) is None:
        raise AssertionError("%s not found: install %s (deploy/install-deps.sh --test)" % (binary, package))


def run(cmd, timeout=120, env=None):
    e = dict(os.environ)
    e.update(env or {})
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=timeout, env=e, errors="replace")
        return H.SftpResult(r.returncode, r.stdout, r.stderr, cmd)
    except subprocess.TimeoutExpired as ex:
        return H.SftpResult(-9, H._s(ex.stdout), H._s(ex.stderr) + "\n(timed out after %ss)" % timeout, cmd)


class TestClients(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-clients-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        # libssh2 (curl) wants a PEM key; ECDSA P-256 works with every libssh2 since 1.7
        cls.pem_key = os.path.join(cls.keys.dir, "id_curl")
        subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "",
                        "-C", "sluice-test-curl", "-f", cls.pem_key], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
        with open(cls.pem_key + ".pub") as f:
            pem_pub = f.read().strip()
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.gw = H.Sluice(
            os.path.join(cls.tmp, "gw"),
            store={"url": "s3://%s/%s" % (cls.moto.bucket, PREFIX), "region": "us-east-1",
                   "endpoint": cls.moto.endpoint, "path_style": True},
            partners=[{"name": "acme", "authorized_keys": [cls.keys.pub("acme"), pem_pub]}],
            env=cls.moto.env())
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)

    def setUp(self):
        if not self.gw.alive():
            self.fail("sluice serve is no longer running\n%s" % self.gw.log_tail())
        self.local = os.path.join(self.tmp, "%s.bin" % uuid.uuid4().hex[:8])
        self.sha = H.write_random_file(self.local, SIZE)

    def assertOk(self, res, what):
        if res.rc != 0:
            self.fail("%s failed: %r\n%s" % (what, res, self.gw.log_tail(30)))

    def assertStored(self, path):
        key = "%s/acme/%s" % (PREFIX, path)
        head = self.moto.wait_for_object(self.moto.bucket, key, 30)
        if head is None:
            self.fail("object %s not stored within 30s; bucket holds %s\n%s"
                      % (key, self.moto.keys(), self.gw.diagnostics()))
        body = self.moto.get_bytes(key)
        self.assertEqual(len(body), SIZE, "object %s has %d bytes, uploaded %d" % (key, len(body), SIZE))
        self.assertEqual(H.sha256_bytes(body), self.sha, "object %s differs from the upload" % key)

    def test_openssh_sftp(self):
        need("sftp", "openssh-client")
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"),
                     ["-mkdir os", "put %s os/openssh.bin" % self.local, "ls -l os"],
                     extra_opts=["-c", "aes128-gcm@openssh.com"])
        self.assertOk(res, "OpenSSH sftp put")
        self.assertStored("os/openssh.bin")

    def test_lftp(self):
        need("lftp", "lftp")
        key = self.keys.get("acme")
        script = ('set sftp:connect-program "ssh %s -i %s"; set net:max-retries 1; '
                  'set net:timeout 20; mkdir -f lf; put %s -o lf/lftp.bin; cls -l lf; bye'
                  % (SSH_OPTS, key, self.local))
        res = run(["lftp", "-u", "acme,", "-e", script, "sftp://%s:%d" % (H.LOCALHOST, self.gw.port)])
        self.assertOk(res, "lftp put")
        self.assertIn("lftp.bin", res.out, "lftp's listing after put: %r" % res)
        self.assertStored("lf/lftp.bin")

    def test_curl(self):
        need("curl", "curl")
        r = run(["curl", "-V"])
        self.assertIn(" sftp", r.out, "this curl has no sftp:// support (install Debian's curl): %s" % r.out)
        url = "sftp://acme@%s:%d/~/cu/curl.bin" % (H.LOCALHOST, self.gw.port)
        res = run(["curl", "-sS", "--insecure", "--key", self.pem_key, "--pubkey", self.pem_key + ".pub",
                   "--ftp-create-dirs", "-T", self.local, url])
        if res.rc != 0 and "exchange encryption keys" in res.err:
            self.fail("curl (libssh2 1.10 on Debian 12: hmac-sha2-256/512 without -etm, aes*-ctr, no GCM, "
                      "no ETM MACs) found no common algorithm with sluice's default: %r\n%s"
                      % (res, self.gw.log_tail(5)))
        self.assertOk(res, "curl -T sftp://")
        self.assertStored("cu/curl.bin")

    def test_paramiko(self):
        if not os.path.exists(SYS_PYTHON) or run([SYS_PYTHON, "-c", "import paramiko"]).rc != 0:
            self.fail("paramiko missing for %s: install python3-paramiko (deploy/install-deps.sh --test)"
                      % SYS_PYTHON)
        script = os.path.join(self.tmp, "paramiko_put.py")
        with open(script, "w") as f:
            f.write(PARAMIKO_PUT)
        res = run([SYS_PYTHON, script, H.LOCALHOST, str(self.gw.port), "acme", self.keys.get("acme"),
                   self.local, "pm/paramiko.bin"])
        self.assertOk(res, "paramiko SFTPClient.put")
        self.assertIn("size %d" % SIZE, res.out, "paramiko's confirm stat: %r" % res)
        self.assertIn("paramiko.bin", res.out, "paramiko's listing after put: %r" % res)
        self.assertStored("pm/paramiko.bin")

    def test_rclone(self):
        need("rclone", "rclone")
        # a config-less remote; sluice refuses exec, so no remote md5sum/sha1sum
        remote = (":sftp,host=%s,port=%d,user=acme,key_file=%s,disable_hashcheck=true,"
                  "shell_type=none:" % (H.LOCALHOST, self.gw.port, self.keys.get("acme")))
        res = run(["rclone", "--config", "/dev/null", "--low-level-retries", "1", "--retries", "1",
                   "--contimeout", "20s", "copyto", self.local, remote + "rc/rclone.bin"],
                  env={"RCLONE_CONFIG": "/dev/null"})
        self.assertOk(res, "rclone copyto")
        res = run(["rclone", "--config", "/dev/null", "lsl", remote + "rc"])
        self.assertOk(res, "rclone lsl")
        self.assertIn("rclone.bin", res.out, "rclone's listing after the copy: %r" % res)
        self.assertIn(str(SIZE), res.out, "rclone lists a different size: %r" % res)
        self.assertStored("rc/rclone.bin")


if __name__ == "__main__":
    unittest.main(verbosity=2)
