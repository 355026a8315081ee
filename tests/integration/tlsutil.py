"""
tlsutil.py - TLS pieces for the uploader's HTTPS tests (test_tls.py):

    pki = Pki(dir)            # a throwaway CA and a server certificate for
                              # 127.0.0.1 (subjectAltName IP:127.0.0.1), made
                              # with the openssl command line at test time
    pki.ca, pki.cert, pki.key, pki.pin (sha256//BASE64 of the server's SPKI)
    m = TlsMoto(dir, pki).start()   # moto's S3 server over HTTPS (its own
                                    # --ssl-cert/--ssl-key), IAM auth on
    p = ConnectProxy().start()      # an HTTP CONNECT proxy counting tunnels
    p.url, p.connects, p.targets
    f = TcpForwarder(port, reset_first=2).start()   # resets the first 2
                                    # connections (RST after reading the
                                    # ClientHello), relays the rest to port

Keys stay in the test's temporary directory; nothing here is committed.
"""

import os
import select
import struct
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import botocore.config

import harness as H


def _openssl(args, input=None):
    r = subprocess.run(["openssl"] + args, input=input, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr.decode("utf-8", "replace")))
    return r.stdout


def spki_pin(cert_pem):
    """curl's pin of a certificate's public key: sha256//base64(SHA-256(DER SPKI))."""
    pub = _openssl(["x509", "-in", cert_pem, "-pubkey", "-noout"])
    der = _openssl(["pkey", "-pubin", "-outform", "der"], input=pub)
    digest = _openssl(["dgst", "-sha256", "-binary"], input=der)
    return "sha256//" + _openssl(["base64", "-A"], input=digest).decode().strip()


class Pki:
    """A CA and a server certificate for 127.0.0.1, signed by it (EC P-256, 2 days)."""

    def __init__(self, dir, cn="127.0.0.1"):
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o700)
        self.dir = dir
        self.ca = os.path.join(dir, "ca.pem")
        self.ca_key = os.path.join(dir, "ca.key")
        self.cert = os.path.join(dir, "server.pem")
        self.key = os.path.join(dir, "server.key")
        csr = os.path.join(dir, "server.csr")
        ext = os.path.join(dir, "server.ext")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl(["req", "-x509"] + ec + ["-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                  "-subj", "/CN=sluice-test-ca",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        _openssl(["req", "-new"] + ec + ["-keyout", self.key, "-out", csr, "-subj", "/CN=" + cn])
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n"
                    "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid,issuer\n")
        _openssl(["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-CAcreateserial", "-out", self.cert, "-days", "2", "-extfile", ext])
        for p in (self.ca_key, self.key):
            os.chmod(p, 0o600)
        for p in (self.ca, self.cert):
            os.chmod(p, 0o644)
        self.pin = spki_pin(self.cert)
        self.ca_pin = spki_pin(self.ca)  # a real pin, of the wrong key


class TlsMoto(H.Moto):
    """harness.Moto served over HTTPS with pki's server certificate."""

    def __init__(self, workdir, pki, **kw):
        super().__init__(workdir, **kw)
        self.pki = pki
        self.endpoint = "https://%s:%d" % (H.LOCALHOST, self.port)

    def client(self, service="s3", access_key=None, secret_key=None):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=self.region, verify=self.pki.ca,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1, "mode": "standard"},
                                          connect_timeout=5, read_timeout=60))

    def server_args(self):
        return ["--ssl-cert", self.pki.cert, "--ssl-key", self.pki.key]

    def _wait_ready(self, timeout):
        ctx = ssl.create_default_context(cafile=self.pki.ca)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto exited with %s:\n%s" % (self.proc.returncode, H.tail(self.log)))
            if H.port_open(self.port):
                try:
                    urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2, context=ctx).read()
                    return
                except Exception:
                    pass
            time.sleep(0.1)
        raise RuntimeError("moto did not answer on %s within %ss:\n%s"
                           % (self.endpoint, timeout, H.tail(self.log)))


class _Listener:
    """A loopback TCP listener that serves each connection in a thread (_serve)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((H.LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = None

    def start(self):
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()

    def _accept_loop(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        raise NotImplementedError


class ConnectProxy(_Listener):
    """
    An HTTP proxy that only does CONNECT to 127.0.0.1 (anything else: 405 or
    403) and relays bytes both ways. connects counts the tunnels opened;
    targets lists their "host:port".
    """

    def __init__(self):
        super().__init__()
        self.connects = 0
        self.refused = 0
        self.targets = []
        self.url = "http://%s:%d" % (H.LOCALHOST, self.port)

    def _serve(self, c):
        up = None
        try:
            c.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                d = c.recv(4096)
                if not d or len(head) > 65536:
                    return
                head += d
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) != 3 or line[0] != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = line[1].rpartition(":")
            if host != H.LOCALHOST or not port.isdigit():
                with self.lock:
                    self.refused += 1
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            up = socket.create_connection((host, int(port)), timeout=10)
            with self.lock:
                self.connects += 1
                self.targets.append(line[1])
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                up.sendall(rest)
            _relay(c, up, lambda: self._stop)
        except OSError:
            pass
        finally:
            for s in (c, up):
                if s is not None:
                    s.close()


class TcpForwarder(_Listener):
    """
    A plain TCP relay from its own port to 127.0.0.1:upstream_port. The first
    reset_first connections are read from (the TLS ClientHello) and then
    reset (RST), as a middlebox dropping a handshake would; resets counts them.
    """

    def __init__(self, upstream_port, reset_first=0):
        super().__init__()
        self.upstream_port = upstream_port
        self.reset_first = reset_first
        self.resets = 0
        self.relayed = 0

    def _serve(self, c):
        up = None
        try:
            with self.lock:
                reset = self.resets < self.reset_first
                if reset:
                    self.resets += 1
                else:
                    self.relayed += 1
            if reset:
                c.settimeout(5)
                c.recv(4096)  # the ClientHello
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            up = socket.create_connection((H.LOCALHOST, self.upstream_port), timeout=10)
            _relay(c, up, lambda: self._stop)
        except OSError:
            pass
        finally:
            for s in (c, up):
                if s is not None:
                    s.close()


def _relay(a, b, stopping):
    """Copies bytes both ways until either side closes or stopping() is true."""
    a.settimeout(None)
    b.settimeout(None)
    peer = {a: b, b: a}
    while not stopping():
        r, _, _ = select.select([a, b], [], [], 0.5)
        for s in r:
            d = s.recv(65536)
            if not d:
                return
            peer[s].sendall(d)
