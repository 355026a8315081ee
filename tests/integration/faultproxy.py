"""
faultproxy.py - a fault-injecting HTTP reverse proxy for the uploader's tests:
sits between sluice and moto and, by a seeded schedule, answers 503 SlowDown
or 500 InternalError, resets the connection mid-body, delays, or flips one
byte of a request body in transit. Like real S3 (and unlike moto) it checks
x-amz-content-sha256 and x-amz-checksum-sha256 against the body and answers
XAmzContentSHA256Mismatch / BadDigest, so a flipped byte is caught.

    p = FaultProxy("http://127.0.0.1:MOTO", rate=0.3, seed=1).start()
    p.endpoint   # point store.endpoint here
    p.stats      # {"503": n, "500": n, "reset": n, "delay": n, "flip": n, "ok": n, ...}
    p.expire_next = 2   # the next 2 requests get 400 ExpiredToken
    p.clock_ahead = 3600  # the store's clock is an hour ahead: requests signed
                          # more than 15 minutes off it get 403 RequestTimeTooSkewed
                          # (a HEAD's 403 has no body, as S3's), with its Date
    p.strip_checksums = True  # a store that keeps no checksums: no x-amz-checksum-*
                              # in any answer
    p.head_checksum = "..."   # every HEAD reports this x-amz-checksum-sha256 (a store
                              # whose object is not what was sent)
    p.put_checksum = "..."    # a PUT's answer carries this x-amz-checksum-sha256 back
                              # instead of the store's ("": none, as stores that echo none)
    p.delay_parts = 0.3   # hold each UploadPart that long; p.max_parts_inflight is the
                          # most parts seen under way at once
It also serves as a plain HTTP forward proxy (http_proxy=p.endpoint): an
absolute-form request is sent upstream as it is, its Host header unchanged.
"""

import base64
import calendar
import email.utils
import hashlib
import http.client
import http.server
import random
import socket
import threading
import time
import urllib.parse

FAULTS = ("503", "500", "reset", "delay", "flip")
COUNTERS = FAULTS + ("ok", "checked", "expired", "skewed")


def _error(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
            "<Message>%s</Message></Error>" % (code, message)).encode()


class FaultProxy:
    def __init__(self, upstream, rate=0.3, seed=1, faults=FAULTS):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port
        self.rate = rate
        self.faults = faults
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stats = {k: 0 for k in COUNTERS}
        self.server = None
        self.enabled = True
        self.expire_next = 0   # answer this many requests with 400 ExpiredToken
        self.clock_ahead = 0   # seconds the store's clock is ahead of this host's
        self.delay_parts = 0   # seconds each UploadPart is held before it is forwarded
        self.head_checksum = None  # a HEAD answers this x-amz-checksum-sha256 instead
        self.put_checksum = None   # a PUT answers this one back ("": none)
        self.parts_inflight = self.max_parts_inflight = 0
        self.strip_checksums = False
        self.requests = []     # (method, path, {header: value}) of every request
        # one of each fault on the first requests with a body, then random
        self.script = [f for f in ("reset", "flip", "503", "500", "delay") if f in faults] \
            if rate > 0 else []

    def pick(self, has_body):
        with self.lock:
            if not self.enabled:
                return None
            # The scripted faults first (one each), on requests with a body.
            if has_body and self.script:
                return self.script.pop(0)
            if self.rng.random() >= self.rate:
                return None
            choices = [f for f in self.faults if has_body or f not in ("reset", "flip")]
            return self.rng.choice(choices) if choices else None

    def count(self, k):
        with self.lock:
            self.stats[k] += 1

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                with proxy.lock:
                    proxy.requests.append((self.command, self.path,
                                           {k.lower(): v for k, v in self.headers.items()}))
                    expire = proxy.expire_next > 0
                    if expire:
                        proxy.expire_next -= 1
                if expire:
                    proxy.count("expired")
                    self.rfile.read(n)
                    return self._send(400, _error("ExpiredToken", "The provided token has expired."))
                if proxy.clock_ahead:
                    store_now = time.time() + proxy.clock_ahead
                    try:
                        signed = calendar.timegm(time.strptime(self.headers.get("x-amz-date", ""),
                                                               "%Y%m%dT%H%M%SZ"))
                    except ValueError:
                        signed = 0
                    if abs(signed - store_now) > 900:
                        proxy.count("skewed")
                        self.rfile.read(n)
                        return self._send(403, _error(
                            "RequestTimeTooSkewed", "The difference between the request time "
                            "and the current time is too large."),
                            [("Date", email.utils.formatdate(store_now, usegmt=True))])
                is_part = "partNumber=" in self.path
                if is_part:
                    with proxy.lock:
                        proxy.parts_inflight += 1
                        proxy.max_parts_inflight = max(proxy.max_parts_inflight, proxy.parts_inflight)
                try:
                    if is_part and proxy.delay_parts:
                        time.sleep(proxy.delay_parts)
                    return self._forward(n)
                finally:
                    if is_part:
                        with proxy.lock:
                            proxy.parts_inflight -= 1

            def _forward(self, n):
                fault = proxy.pick(n > 0)
                if fault == "reset":
                    proxy.count("reset")
                    self.rfile.read(n // 2)
                    try:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    self.close_connection = True
                    self.connection.close()
                    return
                body = self.rfile.read(n) if n else b""
                if fault == "503":
                    proxy.count("503")
                    return self._send(503, _error("SlowDown", "Please reduce your request rate."))
                if fault == "500":
                    proxy.count("500")
                    return self._send(500, _error("InternalError", "We encountered an internal error."))
                if fault == "delay":
                    proxy.count("delay")
                    time.sleep(1.0)
                if fault == "flip" and body:
                    proxy.count("flip")
                    i = len(body) // 2
                    body = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
                # What S3 checks and moto does not.
                want = self.headers.get("x-amz-content-sha256")
                if want and want not in ("UNSIGNED-PAYLOAD",) and not want.startswith("STREAMING-"):
                    proxy.count("checked")
                    if hashlib.sha256(body).hexdigest() != want:
                        return self._send(400, _error("XAmzContentSHA256Mismatch",
                                                      "The provided 'x-amz-content-sha256' header "
                                                      "does not match what was computed."))
                ck = self.headers.get("x-amz-checksum-sha256")
                if ck and base64.b64encode(hashlib.sha256(body).digest()).decode() != ck:
                    return self._send(400, _error("BadDigest", "The SHA256 you specified did not "
                                                  "match the calculated checksum."))
                conn = http.client.HTTPConnection(proxy.up_host, proxy.up_port, timeout=120)
                try:
                    path = self.path
                    if path.startswith("http://"):     # as a forward proxy
                        u = urllib.parse.urlsplit(path)
                        path = u.path + ("?" + u.query if u.query else "")
                    conn.putrequest(self.command, path, skip_host=True,
                                    skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if k.lower() in ("expect", "connection", "content-length"):
                            continue
                        conn.putheader(k, v)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body if body else None)
                    resp = conn.getresponse()
                    data = resp.read()
                    hdrs = [(k, v) for k, v in resp.getheaders()
                            if k.lower() not in ("content-length", "transfer-encoding", "connection")
                            and not (proxy.strip_checksums and k.lower().startswith("x-amz-checksum-"))]
                    if self.command == "HEAD" and proxy.head_checksum:
                        hdrs = [(k, v) for k, v in hdrs if k.lower() != "x-amz-checksum-sha256"]
                        hdrs.append(("x-amz-checksum-sha256", proxy.head_checksum))
                    if self.command == "PUT" and proxy.put_checksum is not None:
                        hdrs = [(k, v) for k, v in hdrs if k.lower() != "x-amz-checksum-sha256"]
                        if proxy.put_checksum:
                            hdrs.append(("x-amz-checksum-sha256", proxy.put_checksum))
                finally:
                    conn.close()
                proxy.count("ok")
                self.send_response(resp.status)
                for k, v in hdrs:
                    self.send_header(k, v)
                if self.command == "HEAD":
                    cl = resp.getheader("Content-Length")
                    self.send_header("Content-Length", cl or "0")
                    self.end_headers()
                else:
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
