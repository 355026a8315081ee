"""
PROXY protocol v2 (server.proxy_protocol): a loopback forwarder (the load
balancer, connecting from 127.0.0.2) prepends a header naming client
192.0.2.7 and the real OpenSSH sftp client logs in through it: the audit
trail names 192.0.2.7 with via 127.0.0.2, partners' allow_from and the
server's deny_from judge the real address, and a direct connection from
127.0.0.1 (not a configured load balancer), a bad header and a late one are
refused and audited; a LOCAL header (a health check) is closed quietly.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_proxy
"""

import os
import socket
import tempfile
import time
import unittest
import uuid

import harness as H
import proxyv2

LB = "127.0.0.2"


class TestProxyProtocol(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-proxy-")
        cls.addClassCleanup(d.cleanup)
        cls.tmp = d.name
        cls.keys = H.Keys(os.path.join(cls.tmp, "keys"))
        cls.objects = os.path.join(cls.tmp, "objects")
        os.makedirs(cls.objects)
        cls.gw = H.Sluice(
            os.path.join(cls.tmp, "gw"), store={"url": "file://" + cls.objects},
            partners=[
                {"name": "acme", "authorized_keys": [cls.keys.pub("acme")],
                 "allow_from": ["192.0.2.0/24"]},
                {"name": "gamma", "authorized_keys": [cls.keys.pub("gamma")],
                 "allow_from": ["203.0.113.0/24", "127.0.0.0/8"]},
            ],
            extra_config="server:\n  deny_from: [192.0.2.66/32]\n"
                         "  proxy_protocol:\n    from: [%s/32]\n" % LB)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.addClassCleanup(cls.gw.stop)
        cls.lb = proxyv2.Forwarder(cls.gw.port, "192.0.2.7")
        cls.addClassCleanup(cls.lb.close)

    def records(self, event):
        return [r for r in self.gw.audit_records() if r.get("event") == event]

    def wait(self, event, pred, what):
        r = self.gw.wait_audit(lambda r: r.get("event") == event and pred(r), 15)
        self.assertIsNotNone(r, "no %s record %s; %s records: %s\n%s" % (
            event, what, event, self.records(event), self.gw.log_tail()))
        return r

    def test_login_through_proxy_names_the_client(self):
        src = os.path.join(self.tmp, "in.csv")
        with open(src, "w") as f:
            f.write("id,amount\n1,%s\n" % uuid.uuid4())
        res = H.sftp(self.lb.port, "acme", self.keys.get("acme"),
                     ["put %s in.csv" % src])
        self.assertEqual(res.rc, 0, "sftp through the load balancer: %r\n%s"
                         % (res, self.gw.log_tail()))
        ok = self.wait("auth.success", lambda r: r.get("partner") == "acme",
                       "for acme")
        self.assertEqual(ok.get("remote"), "192.0.2.7", ok)
        self.assertEqual(ok.get("via"), LB, ok)
        rcv = self.wait("file.received", lambda r: r.get("partner") == "acme",
                        "for acme")
        self.assertEqual(rcv.get("remote"), "192.0.2.7", rcv)

    def test_allow_from_judges_the_real_address(self):
        # gamma may come from 127.0.0.0/8 (the load balancer's address) but
        # not from 192.0.2.7, the client the header names
        # (a key offered from outside allow_from is a refused probe: logged,
        # not audited)
        res = H.sftp(self.lb.port, "gamma", self.keys.get("gamma"), ["ls"])
        self.assertNotEqual(res.rc, 0, "gamma logged in from 192.0.2.7: %r" % (res,))
        self.assertFalse([r for r in self.records("auth.success")
                          if r.get("partner") == "gamma"])
        self.assertTrue(H.poll(lambda: "192.0.2.7 port" in H.tail(self.gw.log, 400), 5),
                        "the session's log does not name 192.0.2.7\n" + self.gw.log_tail())

    def test_deny_from_judges_the_real_address(self):
        lb = proxyv2.Forwarder(self.gw.port, "192.0.2.66")
        self.addCleanup(lb.close)
        res = H.sftp(lb.port, "acme", self.keys.get("acme"), ["ls"])
        self.assertNotEqual(res.rc, 0, "a denied client logged in: %r" % (res,))
        rec = self.wait("conn.refused", lambda r: r.get("remote") == "192.0.2.66",
                        "for 192.0.2.66")
        self.assertEqual(rec.get("via"), LB, rec)
        self.assertEqual(rec.get("setting"), "server.deny_from", rec)

    def test_direct_connection_refused(self):
        # from 127.0.0.1, which is not a configured load balancer
        res = H.sftp(self.gw.port, "gamma", self.keys.get("gamma"), ["ls"])
        self.assertNotEqual(res.rc, 0, "a direct connection logged in: %r" % (res,))
        rec = self.wait("conn.refused", lambda r: r.get("reason") ==
                        "proxy: not a configured load balancer", "for 127.0.0.1")
        self.assertEqual(rec.get("remote"), "127.0.0.1", rec)
        self.assertNotIn("via", rec)
        self.assertFalse([r for r in self.records("auth.success")
                          if r.get("partner") == "gamma"])

    def lb_socket(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10,
                                     source_address=(LB, 0))
        return s

    def read_all(self, s, timeout=10):
        s.settimeout(timeout)
        out = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                out += d
        except socket.timeout:
            out += b"<timeout>"
        except ConnectionResetError:
            pass
        return out

    def test_bad_header_refused(self):
        s = self.lb_socket()
        s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        self.assertEqual(self.read_all(s), b"", "the gateway answered a connection without a header")
        s.close()
        rec = self.wait("conn.refused", lambda r: "wrong signature" in r.get("reason", ""),
                        "for a missing header")
        self.assertEqual(rec.get("remote"), LB, rec)
        self.assertTrue(rec["reason"].startswith("proxy: bad PROXY v2 header"), rec)

    def test_local_is_a_health_check(self):
        n = len(self.records("conn.refused"))
        s = self.lb_socket()
        s.sendall(proxyv2.header(None, 0, None, 0, command=0))
        self.assertEqual(self.read_all(s), b"", "LOCAL got an SSH banner")
        s.close()
        time.sleep(0.5)
        new = self.records("conn.refused")[n:]
        self.assertFalse([r for r in new if r.get("remote") == LB], new)

    def test_header_then_banner_in_one_segment(self):
        # header and SSH data together: the gateway reads exactly the header
        s = self.lb_socket()
        s.sendall(proxyv2.header("192.0.2.7", 4242, "127.0.0.1", self.gw.port) +
                  b"SSH-2.0-OpenSSH_9.2\r\n")
        s.settimeout(10)
        banner = s.recv(256)
        s.close()
        self.assertTrue(banner.startswith(b"SSH-2.0-"), banner)


class TestProxyConfig(unittest.TestCase):
    """check-config on server.proxy_protocol: file:line for what is wrong."""

    def check(self, block):
        H.require_binary()
        d = tempfile.TemporaryDirectory(prefix="sluice-proxycfg-")
        self.addCleanup(d.cleanup)
        text = H.render_config(H.free_port(), [os.path.join(d.name, "hk")],
                               os.path.join(d.name, "state"), os.path.join(d.name, "a.jsonl"),
                               {"url": "file://" + d.name}, [{"name": "acme", "password_hash":
                                                              H.password_hash("x" * 12)}],
                               extra="server:\n  proxy_protocol:\n" + block)
        path = os.path.join(d.name, "cfg.yaml")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = H.run_sluice(["check-config", "-c", path])
        return rc, out + err, len(text.splitlines())

    def test_good(self):
        rc, out, _ = self.check("    from: [10.0.1.0/24, 2001:db8::/64]\n")
        self.assertEqual(rc, 0, out)

    def test_bad(self):
        for block, want in (("    from: []\n", "proxy_protocol.from: the list is empty"),
                            ("    from: [10.0.1.0/33]\n", "proxy_protocol.from"),
                            ("    form: [10.0.1.0/24]\n", "form"),
                            ("    {}\n", "\"from\" is required")):
            rc, out, n = self.check(block)
            self.assertNotEqual(rc, 0, "check-config accepted %r" % block)
            self.assertIn(want, out, block)
            self.assertRegex(out, r"cfg\.yaml:\d+:", out)


if __name__ == "__main__":
    unittest.main()
