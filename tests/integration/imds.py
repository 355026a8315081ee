"""
imds.py - a tiny EC2 instance metadata server (IMDSv2 only) for tests:
PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds) gives a
token; GET /latest/meta-data/iam/security-credentials/ (needs the token) the
role; GET .../<role> the credentials JSON with an Expiration `lifetime`
seconds ahead. `calls` counts credential documents served.
"""

import datetime
import http.server
import json
import secrets
import threading


class Imds:
    def __init__(self, access_key, secret_key, token="", lifetime=3600, role="sluice-role"):
        self.access_key, self.secret_key, self.token = access_key, secret_key, token
        self.lifetime = lifetime
        self.role = role
        self.tokens = set()
        self.calls = 0
        self.server = None

    def start(self):
        imds = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, body):
                body = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                if self.path != "/latest/api/token" or \
                        not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._send(400, "bad request")
                t = secrets.token_hex(16)
                imds.tokens.add(t)
                self._send(200, t)

            def do_GET(self):
                if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                    return self._send(401, "unauthorized")
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self._send(200, imds.role)
                if self.path == base + imds.role:
                    imds.calls += 1
                    exp = datetime.datetime.now(datetime.timezone.utc) + \
                        datetime.timedelta(seconds=imds.lifetime)
                    return self._send(200, json.dumps({
                        "Code": "Success", "Type": "AWS-HMAC",
                        "AccessKeyId": imds.access_key, "SecretAccessKey": imds.secret_key,
                        "Token": imds.token, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}))
                self._send(404, "not found")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

