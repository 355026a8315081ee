"""
The appliance's deployment files (issue 12, "The appliance VM"), checked as
far as the build machine allows without network or a VM:

  deploy/aws/     terraform fmt -check (when terraform runs); terraform
                  validate when a local provider mirror exists
                  (SLUICE_TF_PLUGIN_DIR, default /opt/tf-plugins: init
                  -plugin-dir, offline; otherwise skipped, since validate
                  needs `terraform init` with network); the cloud-init
                  template rendered (by terraform itself when it runs, else
                  by the same ${name} substitution) parses as YAML, carries
                  the configuration byte for byte, moves sshd off 22, and its
                  bootstrap script is bash -n and shellcheck clean and checks
                  the configuration before starting the service; the IAM
                  policy never grants a delete; the example sluice.yaml
                  parses and passes `sluice check-config`.
  deploy/image/   build.sh, assemble.sh and mkosi.postinst are bash -n and
                  shellcheck clean (shellcheck when installed); build.sh
                  --render-only writes the networkd .network with the static
                  Address=, Gateway=, DNS= lines, and refuses port 22 for the
                  admin sshd and an address without a prefix.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_deploy_files
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness as H

try:
    import yaml
except ImportError:  # python3-yaml is in deploy/install-deps.sh; without it, say so
    yaml = None

AWS = os.path.join(H.REPO, "deploy", "aws")
IMAGE = os.path.join(H.REPO, "deploy", "image")
TF = shutil.which("terraform")
SHELLCHECK = shutil.which("shellcheck")
PLUGIN_DIR = os.environ.get("SLUICE_TF_PLUGIN_DIR", "/opt/tf-plugins")

VARS = {
    "node": 1,
    "hostname": "sluice-1",
    "region": "eu-west-1",
    "admin_ssh_port": 2022,
    "deb_url": "",
    "deb_s3_uri": "s3://artifacts/sluice/sluice_1.0.0_amd64.deb",
    "deb_sha256": "0" * 64,
    "host_key_ssm_parameter": "/sluice/ssh_host_ed25519_key",
    "host_key_path": "/var/lib/sluice/ssh_host_ed25519_key",
}
CONFIG = "listen: 0.0.0.0:22\n# a comment with 'quotes' and ${not_a_template}\n"


def tf_env(data_dir):
    e = dict(os.environ)
    # a broken or absent CLI configuration must not matter: nothing is fetched
    e.update({"TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1",
              "TF_DATA_DIR": data_dir, "CHECKPOINT_DISABLE": "1"})
    return e


def tf(args, cwd, data_dir, timeout=300):
    return subprocess.run([TF] + args, cwd=cwd, env=tf_env(data_dir), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def terraform_works():
    if TF is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        return tf(["version"], d, d, timeout=60).returncode == 0


TF_OK = terraform_works()


def render_python(vars_):
    """templatefile() for a template that uses only ${name} (what the test asserts)."""
    with open(os.path.join(AWS, "cloud-init.yaml.tftpl")) as f:
        text = f.read()

    def sub(m):
        return str(vars_[m.group(1)])
    text = re.sub(r"(?<!\$)\$\{([a-z0-9_]+)\}", sub, text)
    return text.replace("$${", "${").replace("%%{", "%{")


def render_terraform(vars_, workdir):
    """templatefile() by terraform itself: a provider-less module, applied offline."""
    hcl = "output \"user_data\" {\n  value = templatefile(%s, {\n" % _hcl_str(
        os.path.join(AWS, "cloud-init.yaml.tftpl"))
    for k, v in vars_.items():
        hcl += "    %s = %s\n" % (k, v if isinstance(v, int) else _hcl_str(v))
    hcl += "  })\n}\n"
    with open(os.path.join(workdir, "main.tf"), "w") as f:
        f.write(hcl)
    data = os.path.join(workdir, ".tfdata")
    for args in (["init", "-input=false", "-backend=false"],
                 ["apply", "-auto-approve", "-input=false"],
                 ["output", "-raw", "user_data"]):
        r = tf(args, workdir, data)
        if r.returncode != 0:
            raise AssertionError("terraform %s: %s%s" % (args[0], r.stdout, r.stderr))
    return r.stdout


def _hcl_str(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${")


class TestTerraform(unittest.TestCase):

    def test_fmt(self):
        if not TF_OK:
            self.skipTest("terraform is not installed or does not run here")
        r = tf(["fmt", "-check", "-recursive", "-diff", AWS], H.REPO, tempfile.gettempdir(), 120)
        self.assertEqual(r.returncode, 0, "terraform fmt -check -recursive deploy/aws:\n%s%s"
                         % (r.stdout, r.stderr))

    def test_validate(self):
        if not TF_OK:
            self.skipTest("terraform is not installed or does not run here")
        if not os.path.isdir(os.path.join(PLUGIN_DIR, "registry.terraform.io", "hashicorp", "aws")):
            self.skipTest("no local provider mirror at %s: terraform validate needs "
                          "`terraform init` with network access" % PLUGIN_DIR)
        with tempfile.TemporaryDirectory() as d:
            mod = os.path.join(d, "aws")
            shutil.copytree(AWS, mod, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
            data = os.path.join(d, ".tfdata")
            r = tf(["init", "-input=false", "-backend=false", "-plugin-dir=" + PLUGIN_DIR], mod, data)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = tf(["validate", "-no-color"], mod, data)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("The configuration is valid", r.stdout)

    def test_iam_policy_never_deletes(self):
        with open(os.path.join(AWS, "main.tf")) as f:
            text = f.read()
        actions = set(re.findall(r'"((?:s3|kms|ssm):[A-Za-z*]+)"', text))
        for need in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload",
                     "s3:ListMultipartUploadParts", "s3:ListBucketMultipartUploads",
                     "s3:ListBucket", "kms:GenerateDataKey", "kms:Decrypt"):
            self.assertIn(need, actions)
        self.assertFalse([a for a in actions if "Delete" in a or a.endswith("*")],
                         "the instance role must never delete (or use wildcards): %s" % actions)
        # the retention and legal hold permissions only with object lock
        self.assertRegex(text, r'var\.object_lock \? \["s3:PutObjectRetention"\]')
        self.assertRegex(text, r'var\.legal_hold \? \["s3:PutObjectLegalHold"\]')
        self.assertIn('variable = "s3:prefix"', text)


class TestCloudInit(unittest.TestCase):

    def render(self, vars_):
        v = dict(vars_)
        v["config_b64"] = base64.b64encode(CONFIG.encode()).decode()
        text = render_python(v)
        if TF_OK:
            with tempfile.TemporaryDirectory() as d:
                by_tf = render_terraform(v, d)
            self.assertEqual(by_tf, text, "terraform renders the template differently "
                             "from ${name} substitution: keep the template to plain ${name}")
        return text

    def test_renders_and_parses(self):
        if yaml is None:
            self.skipTest("python3-yaml is not installed: cannot parse the cloud-init YAML")
        text = self.render(VARS)
        self.assertTrue(text.startswith("#cloud-config\n"), text[:40])
        doc = yaml.safe_load(text)
        self.assertEqual(doc["hostname"], "sluice-1")
        files = {f["path"]: f for f in doc["write_files"]}
        conf = files["/run/sluice-bootstrap/sluice.yaml"]
        self.assertEqual(conf["encoding"], "b64")
        self.assertEqual(base64.b64decode(conf["content"]).decode(), CONFIG)
        self.assertEqual(conf["permissions"], "0600")
        sshd = files["/etc/ssh/sshd_config.d/00-sluice-admin-port.conf"]["content"]
        self.assertIn("Port 2022", sshd)
        self.assertNotRegex(sshd, r"(?m)^Port 22$")
        self.assertEqual(doc["runcmd"], [["/usr/local/sbin/sluice-bootstrap"]])
        script = files["/usr/local/sbin/sluice-bootstrap"]["content"]
        self.check_script(script)
        self.assertIn("DEB_S3_URI='s3://artifacts/sluice/sluice_1.0.0_amd64.deb'", script)
        self.assertIn("export AWS_DEFAULT_REGION='eu-west-1'", script)
        # the configuration is checked before the service is enabled
        self.assertLess(script.index("sluice check-config"), script.index("systemctl enable sluice"))
        self.assertLess(script.index("systemctl restart ssh"), script.index("systemctl restart sluice"))
        self.assertIn("sha256sum -c", script)

    def test_without_package_source(self):
        if yaml is None:
            self.skipTest("python3-yaml is not installed: cannot parse the cloud-init YAML")
        v = dict(VARS, deb_s3_uri="", deb_sha256="", host_key_ssm_parameter="",
                 deb_url="https://example.com/sluice.deb")
        doc = yaml.safe_load(self.render(v))
        script = {f["path"]: f for f in doc["write_files"]}["/usr/local/sbin/sluice-bootstrap"]["content"]
        self.check_script(script)

    def check_script(self, script):
        self.assertTrue(script.startswith("#!/bin/bash\n"))
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
            f.write(script)
            f.flush()
            r = subprocess.run(["bash", "-n", f.name], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            if SHELLCHECK:
                r = subprocess.run([SHELLCHECK, "-s", "bash", f.name], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_example_config(self):
        path = os.path.join(AWS, "sluice.yaml.example")
        if yaml is not None:
            doc = yaml.safe_load(open(path))
            self.assertEqual(doc["listen"], "0.0.0.0:22")
            self.assertTrue(doc["store"]["url"].startswith("s3://"))
        H.require_binary()
        rc, out, err = H.run_sluice(["check-config", "-c", path])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("OK: listen 0.0.0.0:22", out)


class TestImage(unittest.TestCase):

    SCRIPTS = ("build.sh", "assemble.sh", "mkosi.postinst")

    def test_scripts_clean(self):
        for s in self.SCRIPTS:
            p = os.path.join(IMAGE, s)
            self.assertTrue(os.access(p, os.X_OK), "%s is not executable" % p)
            r = subprocess.run(["bash", "-n", p], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        if not SHELLCHECK:
            self.skipTest("shellcheck is not installed (bash -n passed)")
        r = subprocess.run([SHELLCHECK] + [os.path.join(IMAGE, s) for s in self.SCRIPTS],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def build(self, out, **env):
        e = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        e.update(env)
        return subprocess.run([os.path.join(IMAGE, "build.sh"), "--render-only", out],
                              capture_output=True, text=True, env=e, timeout=60)

    def test_static_network(self):
        with tempfile.TemporaryDirectory() as d:
            r = self.build(d, SLUICE_ADDRESS="192.0.2.20/24", SLUICE_GATEWAY="192.0.2.1",
                           SLUICE_DNS="192.0.2.53 2001:db8::53", SLUICE_NTP="ntp.example.net",
                           SLUICE_ADMIN_SSH_PORT="2200", SLUICE_HOSTNAME="sluice-a")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(d, "extra/etc/systemd/network/10-sluice-static.network")) as f:
                net = f.read()
            self.assertNotIn("@", net)
            for line in ("Name=en*", "Address=192.0.2.20/24", "Gateway=192.0.2.1",
                         "DNS=192.0.2.53", "DNS=2001:db8::53", "NTP=ntp.example.net", "DHCP=no"):
                self.assertRegex(net, r"(?m)^%s$" % re.escape(line))
            with open(os.path.join(d, "extra/etc/ssh/sshd_config.d/00-sluice-admin-port.conf")) as f:
                self.assertRegex(f.read(), r"(?m)^Port 2200$")
            with open(os.path.join(d, "extra/etc/hostname")) as f:
                self.assertEqual(f.read(), "sluice-a\n")
            with open(os.path.join(d, "mkosi.conf")) as f:
                conf = f.read()
            self.assertIn("Release=bookworm", conf)
            self.assertRegex(conf, r"(?m)^\s+linux-image-amd64$")
            self.assertTrue(os.access(os.path.join(d, "mkosi.postinst"), os.X_OK))
            self.assertFalse(os.path.exists(os.path.join(d, "extra/etc/cloud")))

    def test_aws_variant(self):
        with tempfile.TemporaryDirectory() as d:
            r = self.build(d, SLUICE_TARGET="aws")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.isfile(os.path.join(d, "extra/etc/systemd/network/90-dhcp.network")))
            self.assertFalse(os.path.exists(os.path.join(d, "extra/etc/systemd/network/10-sluice-static.network")))
            if yaml is not None:
                with open(os.path.join(d, "extra/etc/cloud/cloud.cfg.d/90-sluice.cfg")) as f:
                    self.assertEqual(yaml.safe_load(f)["datasource_list"], ["Ec2", "None"])

    def test_refuses_bad_input(self):
        with tempfile.TemporaryDirectory() as d:
            base = dict(SLUICE_ADDRESS="192.0.2.20/24", SLUICE_GATEWAY="192.0.2.1", SLUICE_DNS="192.0.2.53")
            r = self.build(d, SLUICE_ADMIN_SSH_PORT="22", **base)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("other than 22", r.stderr)
            r = self.build(d, **dict(base, SLUICE_ADDRESS="192.0.2.20"))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("ADDRESS/PREFIX", r.stderr)
            r = self.build(d, SLUICE_ADDRESS="192.0.2.20/24")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("SLUICE_GATEWAY", r.stderr)


if __name__ == "__main__":
    unittest.main()
