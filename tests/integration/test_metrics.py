"""
The metrics role (issue 12, metrics/metrics.h): Prometheus text at /metrics,
/healthz and /readyz, scraped while the real sftp client uploads through the
gateway into moto (IAM auth on).

  - an upload moves files received, bytes received and files stored;
  - a failed login moves sluice_logins_total{result="failure"};
  - a file held (a missing bucket) shows in sluice_files{state="held"};
  - /healthz is 200; /readyz is 200, then 503 naming the store once moto
    is stopped;
  - every scrape parses as the text exposition format (a small parser here:
    prometheus_client is not in the system Python);
  - only GET and HEAD, no request body.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_metrics
"""

import http.client
import os
import re
import tempfile
import time
import unittest
import uuid

import harness as H

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))


def unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def parse(text):
    """The exposition as {(name, frozenset(labels)): value}; raises on any
    line that is not HELP, TYPE or a well-formed sample, on a sample of a
    family without TYPE, or on a family declared twice."""
    samples, types = {}, {}
    for n, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("# HELP "):
            continue
        m = re.match(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME, line)
        if m:
            if m.group(1) in types:
                raise ValueError("line %d: %s declared twice" % (n, m.group(1)))
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("line %d is not a sample: %r" % (n, line))
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and family not in types:
            raise ValueError("line %d: %s has no # TYPE" % (n, name))
        labels = frozenset((k, unescape(v)) for k, v in re.findall(LABEL, m.group(2) or ""))
        samples[(name, labels)] = float(m.group(m.lastindex))
    if not text.endswith("\n"):
        raise ValueError("the exposition does not end with a newline")
    return samples


def get(port, path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection(H.LOCALHOST, port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
    finally:
        c.close()


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class MetricsCase(unittest.TestCase):
    @classmethod
    def gateway(cls, name, bucket, partners, moto):
        mport = H.free_port()
        gw = H.Sluice(
            os.path.join(cls.tmp, name),
            store={"url": "s3://%s/in" % bucket, "region": "us-east-1",
                   "endpoint": moto.endpoint, "path_style": True},
            partners=partners, env=moto.env(),
            extra_config="metrics:\n  listen: 127.0.0.1:%d" % mport)
        gw.metrics_port = mport
        cls.addClassCleanup(gw.kill)
        gw.start()
        cls.addClassCleanup(gw.stop)
        return gw

    def scrape(self, gw, reply=None):
        status, body, headers = reply or get(gw.metrics_port, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
                        headers)
        return parse(body)

    def wait_metric(self, gw, pred, what, timeout=30):
        last = {}

        def probe():
            nonlocal last
            try:
                reply = get(gw.metrics_port, "/metrics")
            except OSError:
                return None
            # 503 "no metrics gathered yet" is the documented answer until
            # the metrics role's first gather (slow under ASan on 2 cores)
            if reply[:2] == (503, "no metrics gathered yet\n"):
                return None
            last = self.scrape(gw, reply)
            return pred(last) or None
        if H.poll(probe, timeout) is None:
            self.fail("%s within %ss; last scrape:\n%s\n%s" % (
                what, timeout, "\n".join("%s %s" % (k, v) for k, v in sorted(
                    last.items(), key=lambda kv: kv[0][0]) if k[0].startswith("sluice_")),
                gw.diagnostics()))
        return last

    def wait_ready(self, gw, want, timeout=40):
        got = []

        def probe():
            try:
                got[:] = get(gw.metrics_port, "/readyz")[:2]
            except OSError:
                return None
            return got[0] == want or None
        if H.poll(probe, timeout) is None:
            self.fail("/readyz was not %d within %ss: %r\n%s" % (want, timeout, got,
                                                                 gw.diagnostics()))
        return got[1]


class TestMetrics(MetricsCase):
    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.tmp = tempfile.mkdtemp(prefix="sluice-metrics-")
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.password = "metrics " + uuid.uuid4().hex[:8]
        cls.gw = cls.gateway("gw", cls.moto.bucket,
                             [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]},
                              {"name": "beta", "password_hash": H.password_hash(cls.password)}],
                             cls.moto)

    def local(self, text):
        path = os.path.join(self.tmp, uuid.uuid4().hex[:8] + ".csv")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_upload_moves_counters(self):
        before = self.wait_metric(self.gw, lambda s: value(
            s, "sluice_files_stored_total", partner="acme") is not None, "a first scrape")
        stored0 = value(before, "sluice_files_stored_total", partner="acme")
        bytes0 = value(before, "sluice_bytes_received_total", partner="acme")
        acc0 = value(before, "sluice_files_received_total", partner="acme", verdict="accepted")
        text = "id,amount\n1,10.00\n" * 50
        f = self.local(text)
        res = H.sftp(self.gw.port, "acme", self.keys.get("acme"), ["put %s a.csv" % f])
        self.assertEqual(res.rc, 0, res.err)
        # the uploader's own numbers come every 2 s, the trail's at once
        after = self.wait_metric(self.gw, lambda s: value(
            s, "sluice_files_stored_total", partner="acme") == stored0 + 1 and
            value(s, "sluice_upload_attempts_total") >= 1,
            "sluice_files_stored_total{partner=acme} +1 and an upload attempt")
        self.assertEqual(value(after, "sluice_bytes_received_total", partner="acme"),
                         bytes0 + len(text))
        self.assertEqual(value(after, "sluice_files_received_total", partner="acme",
                               verdict="accepted"), acc0 + 1)
        self.assertGreater(value(after, "sluice_logins_total", result="success"), 0)
        self.assertGreaterEqual(value(after, "sluice_upload_attempts_total"), 1)
        self.assertGreaterEqual(value(after, "sluice_s3_request_seconds_count"), 1)
        self.assertEqual(value(after, "sluice_s3_request_seconds_bucket", le="+Inf"),
                         value(after, "sluice_s3_request_seconds_count"))
        self.assertGreater(value(after, "sluice_audit_records_total"), 0)
        info = [(dict(k[1]), v) for k, v in after.items() if k[0] == "sluice_build_info"]
        self.assertEqual(len(info), 1)
        self.assertTrue(info[0][0].get("version"), info)
        self.assertEqual(info[0][1], 1)
        self.assertGreater(value(after, "sluice_spool_free_bytes"), 0)
        for role in ("audit", "server", "intake", "uploader", "metrics"):
            self.assertEqual(value(after, "sluice_role_up", role=role), 1, role)
        self.assertIsNotNone(value(after, "sluice_files", state="removed"))

    def test_failed_login_counted(self):
        s0 = self.wait_metric(self.gw, lambda s: value(
            s, "sluice_logins_total", result="failure") is not None, "a first scrape")
        n0 = value(s0, "sluice_logins_total", result="failure")
        res = H.sftp_password(self.gw.port, "beta", self.password + "x", ["pwd"])
        self.assertNotEqual(res.rc, 0)
        self.wait_metric(self.gw, lambda s: value(
            s, "sluice_logins_total", result="failure") > n0,
            'sluice_logins_total{result="failure"} to move')

    def test_health_and_ready(self):
        status, body, _ = get(self.gw.metrics_port, "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(self.wait_ready(self.gw, 200), "ready\n")

    def test_http_methods(self):
        self.wait_metric(self.gw, lambda s: s, "a first scrape")
        status, body, _ = get(self.gw.metrics_port, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        status, _, headers = get(self.gw.metrics_port, "/metrics", method="POST", body=b"x=1")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")
        status, _, _ = get(self.gw.metrics_port, "/metrics", body=b"junk",
                           headers={"Content-Length": "4"})
        self.assertEqual(status, 413)
        self.assertEqual(get(self.gw.metrics_port, "/nope")[0], 404)

    def test_held_file_shows(self):
        """A missing bucket holds the file: sluice_files{state="held"}."""
        gw = self.gateway("held", "sluice-no-such-bucket",
                          [{"name": "acme", "authorized_keys": [self.keys.pub("acme")]}], self.moto)
        f = self.local("held,1\n")
        res = H.sftp(gw.port, "acme", self.keys.get("acme"), ["put %s h.csv" % f])
        self.assertEqual(res.rc, 0, res.err)
        s = self.wait_metric(gw, lambda s: value(s, "sluice_files", state="held") == 1 and
                             value(s, "sluice_upload_errors_total", code="NoSuchBucket"),
                             'sluice_files{state="held"} 1 and a NoSuchBucket error', timeout=60)
        self.assertEqual(value(s, "sluice_files_held_total", partner="acme"), 1)
        self.assertGreater(value(s, "sluice_oldest_unstored_seconds"), 0)
        self.assertGreaterEqual(value(s, "sluice_upload_errors_total", code="NoSuchBucket"), 1)


class TestReadyStoreDown(MetricsCase):
    @classmethod
    def setUpClass(cls):
        H.require_binary()
        cls.tmp = tempfile.mkdtemp(prefix="sluice-metrics-down-")
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.moto = H.Moto(cls.tmp).start()
        cls.addClassCleanup(cls.moto.stop)
        cls.gw = cls.gateway("gw", cls.moto.bucket,
                             [{"name": "acme", "authorized_keys": [cls.keys.pub("acme")]}],
                             cls.moto)

    def test_ready_then_store_down(self):
        self.wait_ready(self.gw, 200)
        self.moto.stop()
        body = self.wait_ready(self.gw, 503, timeout=60)
        self.assertIn("store unreachable", body)
        s = self.scrape(self.gw)
        self.assertEqual(value(s, "sluice_store_reachable"), 0)
        self.assertEqual(value(s, "sluice_ready"), 0)


if __name__ == "__main__":
    unittest.main()
