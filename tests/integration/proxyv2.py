"""
proxyv2.py - a tiny TCP load balancer for tests: it accepts on loopback,
connects to the gateway from a chosen source address (e.g. 127.0.0.2, the
configured load balancer) and sends a PROXY protocol v2 header naming a
client address of the test's choice before forwarding bytes both ways.
With client=None it sends no header (a plain forwarder), and its gate
(a threading.Event, open at first) stalls every byte while closed: a store
that stops answering without refusing.
"""

import socket
import struct
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def header(src, sport, dst, dport, command=1, tlvs=b""):
    """A PROXY v2 header: command 1 PROXY over TCP (IPv4 or IPv6 by src),
    0 LOCAL (no addresses)."""
    if command == 0:
        return SIG + bytes([0x20, 0x00]) + struct.pack(">H", len(tlvs)) + tlvs
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    body = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
            struct.pack(">HH", sport, dport) + tlvs)
    return (SIG + bytes([0x21, 0x11 if fam == socket.AF_INET else 0x21]) +
            struct.pack(">H", len(body)) + body)


class Forwarder:
    """Listens on 127.0.0.1:<port>; each connection is forwarded to
    (host, port) from source address `source`, announced as client
    `client` (port 40000 + n)."""

    def __init__(self, target_port, client, source="127.0.0.2", target_host="127.0.0.1"):
        self.gate = threading.Event()
        self.gate.set()
        self.target = (target_host, target_port)
        self.client = client
        self.source = source
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.n = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        try:
            self.ls.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.n += 1
            threading.Thread(target=self._serve, args=(c, 40000 + self.n), daemon=True).start()

    def _serve(self, c, sport):
        self.gate.wait()
        try:
            u = socket.create_connection(self.target, timeout=10,
                                         source_address=(self.source, 0))
            u.settimeout(None)
            if self.client is not None:
                u.sendall(header(self.client, sport, self.target[0], self.target[1]))
        except OSError:
            c.close()
            return
        threading.Thread(target=_pipe, args=(u, c, self.gate), daemon=True).start()
        _pipe(c, u, self.gate)


def _pipe(a, b, gate):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            gate.wait()
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
