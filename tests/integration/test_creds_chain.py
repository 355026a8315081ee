"""
test_creds_chain.py - the rest of the AWS credential chain against moto with
IAM auth on, and the per-partner S3 options:

- AssumeRole from a profile (role_arn + source_profile + external_id): a
  local STS stub checks the request's SigV4 signature with the source
  profile's keys (service "sts") and its fields (RoleArn, ExternalId,
  RoleSessionName, DurationSeconds), then asks moto's STS for the role, so
  the uploader stores with real assumed-role credentials;
- credential_process: a shell script (argv split without a shell) whose
  credentials expire within 5 minutes is run again; a failing one is named
  with its profile in the log;
- the ECS/EKS container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI on
  loopback, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE);
- store.legal_hold and a partner's storage_class and tags land on the
  objects (single PUT and multipart).
"""

import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import threading
import time
import unittest
import urllib.parse

import harness as H
from faultproxy import FaultProxy
from test_uploader import UploaderCase, MiB

ROLE_POLICY = json.dumps({"Version": "2012-10-17",
                          "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
TRUST = json.dumps({"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                   "Action": "sts:AssumeRole"}]})


def _h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_ok(method, path, headers, body, secret):
    """Checks a SigV4 Authorization header independently of sluice's signer.
    Returns (access_key, service, region) or raises AssertionError."""
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                 r" ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$", headers.get("Authorization", ""))
    if not m:
        raise AssertionError("no SigV4 Authorization header: %r" % headers.get("Authorization"))
    ak, date, region, service, signed, sig = m.groups()
    names = signed.split(";")
    for need in ("host", "x-amz-date"):
        if need not in names:
            raise AssertionError("%s is not signed (%s)" % (need, signed))
    canon = "".join("%s:%s\n" % (n, " ".join((headers.get(n) or "").split())) for n in names)
    p, _, q = path.partition("?")
    creq = "\n".join([method, p, q, canon, signed, hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", headers.get("X-Amz-Date", ""),
                     "%s/%s/%s/aws4_request" % (date, region, service),
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _h(("AWS4" + secret).encode(), date)
    k = _h(_h(_h(k, region), service), "aws4_request")
    if hmac.new(k, sts.encode(), hashlib.sha256).hexdigest() != sig:
        raise AssertionError("bad signature")
    return ak, service, region


class Stub:
    """A loopback HTTP server answering with handler(method, path, headers, body) -> (status, text)."""

    def __init__(self, handler):
        self.handler = handler
        self.server = None

    def start(self):
        stub = self

        class Req(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                try:
                    status, text = stub.handler(self.command, self.path, self.headers, body)
                except Exception as e:  # shown to the test via calls/errors
                    status, text = 500, "stub: %r" % e
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _do

        self.server = http.server.ThreadingHTTPServer((H.LOCALHOST, 0), Req)
        self.server.daemon_threads = True
        self.endpoint = "http://%s:%d" % (H.LOCALHOST, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class ChainCase(UploaderCase):

    def no_env(self, **more):
        e = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
             "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.dir, "none"),
             "AWS_CONFIG_FILE": os.path.join(self.dir, "none")}
        e.update(more)
        return e

    def uploader_log(self):
        with open(os.path.join(self.dir, "uploader.log"), errors="replace") as f:
            return f.read()


class TestAssumeRole(ChainCase):

    def test_assume_role_profile(self):
        """role_arn + source_profile + external_id: a signed STS AssumeRole; moto takes the assumed keys."""
        iam = self.moto.client("iam")
        arn = iam.create_role(RoleName="sluice-upload-%s" % secrets.token_hex(3),
                              AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        iam.put_role_policy(RoleName=arn.split("/")[-1], PolicyName="s3", PolicyDocument=ROLE_POLICY)
        sts = self.moto.client("sts")
        calls, errors, issued = [], [], []

        def handler(method, path, headers, body):
            try:
                ak, service, _ = sigv4_ok(method, path, headers, body, self.moto.secret_key)
                f = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                calls.append((ak, service, f))
            except AssertionError as e:
                errors.append(str(e))
                return 403, "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code>" \
                            "<Message>%s</Message></Error></ErrorResponse>" % e
            r = sts.assume_role(RoleArn=f["RoleArn"], RoleSessionName=f["RoleSessionName"],
                                DurationSeconds=int(f["DurationSeconds"]), ExternalId=f["ExternalId"])
            c = r["Credentials"]
            issued.append(c["SecretAccessKey"])
            return 200, (
                '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                "<AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId>"
                "<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                "<Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>%s</Arn>"
                "<AssumedRoleId>x</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>"
                "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"
                % (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"],
                   iso(c["Expiration"]), r["AssumedRoleUser"]["Arn"]))

        stub = Stub(handler).start()
        self.addCleanup(stub.stop)
        creds = os.path.join(self.dir, "credentials")
        conf = os.path.join(self.dir, "config")
        with open(creds, "w") as f:
            f.write("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (self.moto.access_key, self.moto.secret_key))
        with open(conf, "w") as f:
            f.write("[profile upload]\nrole_arn = %s\nsource_profile = base\n"
                    "external_id = ext-4711/x\nrole_session_name = sluice-test\n"
                    "duration_seconds = 900\nregion = eu-west-1\n" % arn)
        self.config()
        _, sha, _ = self.add_file("role/a.bin", 2345)
        p = self.start_uploader(self.no_env(AWS_SHARED_CREDENTIALS_FILE=creds, AWS_CONFIG_FILE=conf,
                                            AWS_PROFILE="upload", AWS_ENDPOINT_URL_STS=stub.endpoint))
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(calls), 1, self.log())
        ak, service, f = calls[0]
        self.assertEqual((ak, service), (self.moto.access_key, "sts"))
        self.assertEqual(f, {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": arn,
                             "ExternalId": "ext-4711/x", "RoleSessionName": "sluice-test",
                             "DurationSeconds": "900"})
        self.assert_objects([("role/a.bin", sha)])
        log = self.uploader_log()
        self.assertIn("S3 credentials from AssumeRole (profile role_arn)", log)
        for s in [self.moto.secret_key] + issued:
            self.assertNotIn(s, log)

    def test_assume_role_refused(self):
        """STS refusing (bad signature) leaves the files waiting, with STS's code in the log."""
        stub = Stub(lambda *a: (403, "<ErrorResponse><Error><Code>AccessDenied</Code>"
                                     "<Message>no</Message></Error></ErrorResponse>")).start()
        self.addCleanup(stub.stop)
        conf = os.path.join(self.dir, "config")
        with open(conf, "w") as f:
            f.write("[profile upload]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
                    "source_profile = base\n[profile base]\naws_access_key_id = A\n"
                    "aws_secret_access_key = B\n")
        self.config()
        self.add_file("role/b.bin", 100)
        p = self.start_uploader(self.no_env(AWS_CONFIG_FILE=conf, AWS_PROFILE="upload",
                                            AWS_ENDPOINT_URL_STS=stub.endpoint))
        ok = H.poll(lambda: "STS error AccessDenied: no" in self.uploader_log(), 30)
        self.stop(p)
        self.assertTrue(ok, self.log())
        self.assertEqual({r[1] for r in self.rows()}, {"accepted"})


class TestCredentialProcess(ChainCase):

    def script(self, body):
        path = os.path.join(self.dir, "helper dir", "creds.sh")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def test_process_refreshed(self):
        """credential_process credentials that expire within 5 minutes are fetched again."""
        count = os.path.join(self.dir, "count")
        open(count, "w").close()
        os.chmod(count, 0o666)
        script = self.script(
            'echo run >> "$2"\n'
            'exp=$(date -u -d "+240 seconds" +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n'
            'printf \'{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s", '
            '"Expiration": "%%s"}\' "$exp"\n' % (self.moto.access_key, self.moto.secret_key))
        conf = os.path.join(self.dir, "config")
        with open(conf, "w") as f:
            # a quoted path with a space, and an argument
            f.write("[profile onprem]\ncredential_process = \"%s\" --count '%s'\n" % (script, count))
        self.config()
        _, sha, _ = self.add_file("proc/a.bin", 3000)
        p = self.start_uploader(self.no_env(AWS_CONFIG_FILE=conf, AWS_PROFILE="onprem"))
        self.wait_states({"removed"}, 60)
        time.sleep(1.5)  # refreshes are at most once a second
        _, sha2, _ = self.add_file("proc/b.bin", 3000)
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("proc/a.bin", sha), ("proc/b.bin", sha2)])
        with open(count) as f:
            runs = len(f.read().split())
        self.assertGreaterEqual(runs, 2, "credentials expiring in 4 min were not refreshed")
        log = self.uploader_log()
        self.assertIn("S3 credentials from credential_process", log)
        self.assertNotIn(self.moto.secret_key, log)

    def test_process_fails(self):
        """A non-zero exit is an error naming the profile; files wait."""
        script = self.script("echo 'helper: no certificate' >&2\nexit 4\n")
        conf = os.path.join(self.dir, "config")
        with open(conf, "w") as f:
            f.write("[profile onprem]\ncredential_process = %s\n" % script.replace(" ", "\\ "))
        self.config()
        self.add_file("proc/c.bin", 100)
        p = self.start_uploader(self.no_env(AWS_CONFIG_FILE=conf, AWS_PROFILE="onprem"))
        want = "profile onprem: credential_process: %s exited with status 4" % script
        ok = H.poll(lambda: want in self.uploader_log(), 30)
        self.stop(p)
        self.assertTrue(ok, self.log())
        self.assertIn("helper: no certificate", self.uploader_log())
        self.assertEqual({r[1] for r in self.rows()}, {"accepted"})


class TestContainer(ChainCase):

    def test_container_full_uri(self):
        """AWS_CONTAINER_CREDENTIALS_FULL_URI on loopback with the token file's Authorization."""
        token = "Bearer-" + secrets.token_hex(8)
        calls = []

        def handler(method, path, headers, body):
            calls.append((method, path, headers.get("Authorization")))
            if headers.get("Authorization") != token:
                return 401, "unauthorized"
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=240)
            return 200, json.dumps({"AccessKeyId": self.moto.access_key,
                                    "SecretAccessKey": self.moto.secret_key, "Token": "",
                                    "Expiration": iso(exp)})
        stub = Stub(handler).start()
        self.addCleanup(stub.stop)
        tf = os.path.join(self.dir, "token")
        with open(tf, "w") as f:
            f.write(token + "\n")
        self.config()
        _, sha, _ = self.add_file("ecs/a.bin", 3000)
        p = self.start_uploader(self.no_env(
            AWS_CONTAINER_CREDENTIALS_FULL_URI=stub.endpoint + "/v2/creds/abc",
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tf,
            AWS_CONTAINER_AUTHORIZATION_TOKEN="ignored-when-the-file-is-set"))
        self.wait_states({"removed"}, 60)
        time.sleep(1.5)
        _, sha2, _ = self.add_file("ecs/b.bin", 3000)
        self.wait_states({"removed"}, 60)
        self.stop(p)
        self.assert_objects([("ecs/a.bin", sha), ("ecs/b.bin", sha2)])
        self.assertGreaterEqual(len(calls), 2, "container credentials were not refreshed")
        self.assertEqual({c for c in calls}, {("GET", "/v2/creds/abc", token)})
        log = self.uploader_log()
        self.assertIn("S3 credentials from the container credentials endpoint", log)
        self.assertNotIn(token, log)

    def test_container_remote_http_refused(self):
        """FULL_URI over http to a host that is not loopback or ECS/EKS is never contacted."""
        self.config()
        self.add_file("ecs/c.bin", 100)
        p = self.start_uploader(self.no_env(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://192.0.2.7/creds"))
        ok = H.poll(lambda: "neither loopback nor the ECS/EKS address" in self.uploader_log(), 30)
        self.stop(p)
        self.assertTrue(ok, self.log())


class TestPartnerS3Options(ChainCase):

    def test_legal_hold_class_tags(self):
        """store.legal_hold, a partner's storage_class and tags (replacing the store's) reach the objects."""
        self.moto.s3.create_bucket(Bucket="held", ObjectLockEnabledForBucket=True)
        proxy = FaultProxy(self.moto.endpoint, rate=0).start()  # to see the headers
        self.addCleanup(proxy.stop)
        self.config(bucket="held", endpoint=proxy.endpoint, store_extra=["legal_hold: true", "tags: {store: only}"],
                    uploader=["multipart_threshold: 6MiB", "part_size: 5MiB"])
        with open(self.cfg) as f:
            text = f.read()
        text = re.sub(r"(  - name: \"?acme\"?\n(?:    .*\n)*)",
                      lambda m: m.group(1) + "    storage_class: STANDARD_IA\n"
                      "    tags: {team: payments, \"cost center\": \"a/b +1\"}\n", text, count=1)
        with open(self.cfg, "w") as f:
            f.write(text)
        _, sha, _ = self.add_file("hold/a.bin", 3000)
        _, sha2, _ = self.add_file("hold/big.bin", 7 * MiB)
        p = self.start_uploader()
        self.wait_states({"removed"}, 90)
        self.stop(p)
        self.assert_objects([("hold/a.bin", sha), ("hold/big.bin", sha2)], bucket="held")
        for key in ("hold/a.bin", "hold/big.bin"):
            h = self.moto.s3.head_object(Bucket="held", Key=key)
            self.assertEqual(h.get("StorageClass"), "STANDARD_IA", key)
            tags = {t["Key"]: t["Value"] for t in
                    self.moto.s3.get_object_tagging(Bucket="held", Key=key)["TagSet"]}
            self.assertEqual(tags, {"team": "payments", "cost center": "a/b +1"}, key)
        # moto keeps no lock from CreateMultipartUpload: the single PUT shows it
        lh = self.moto.s3.get_object_legal_hold(Bucket="held", Key="hold/a.bin")
        self.assertEqual(lh["LegalHold"]["Status"], "ON")
        writes = [(m, path, h) for m, path, h in proxy.requests
                  if (m == "PUT" and "partNumber=" not in path) or (m == "POST" and path.endswith("?uploads="))]
        self.assertEqual(len(writes), 2, [w[:2] for w in writes])
        for m, path, h in writes:
            self.assertEqual(h.get("x-amz-object-lock-legal-hold"), "ON", path)
            self.assertEqual(h.get("x-amz-storage-class"), "STANDARD_IA", path)
            self.assertEqual(h.get("x-amz-tagging"), "team=payments&cost%20center=a%2Fb%20%2B1", path)


if __name__ == "__main__":
    unittest.main()
