"""A local HTTP stand-in that answers S3 CopyObject requests with canned answers, for fault injection.

Why it exists: moto answers every request with ``Connection: close`` and never fails a copy the way S3
can (a 200 whose body is an ``<Error>``, SlowDown, a token that expired mid-run, a chunked answer
padded with whitespace, idle keep-alive connections closed by the server). The light copy path
(atomicsite/stores/s3_copy.py) is tested against moto for what moto does; this stand-in covers the
rest. It speaks HTTP/1.1 with keep-alive, records every request, and answers each from a rule:

    standin.answer(lambda req: (200, COPY_OK, {}))   # the default: a CopyObjectResult
    standin.answer(lambda req: error(404, "NoSuchKey") if req.light else None)  # None: the default

``req.light`` tells the light path's requests from boto3's (boto3 sends ``amz-sdk-invocation-id``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COPY_OK = (b'<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
           b"<LastModified>2026-11-29T12:00:00.000Z</LastModified>"
           b"<ETag>&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag></CopyObjectResult>")


def error(status: int, code: str, message: str = "injected") -> tuple[int, bytes, dict]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>standin</RequestId></Error>").encode()
    return status, body, {"Content-Type": "application/xml"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names

    @property
    def light(self) -> bool:
        return "amz-sdk-invocation-id" not in self.headers


Rule = Callable[[Seen], "tuple[int, bytes, dict] | None"]


class S3CopyStandin:
    def __init__(self, *, close_after_each: bool = False, idle_timeout: float | None = None, tls=None):
        self.requests: list[Seen] = []
        self.connections = 0
        self._rule: Rule = lambda req: None
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout  # an idle keep-alive connection is closed after this long

            def setup(self):
                super().setup()
                with standin._lock:
                    standin.connections += 1

            def do_PUT(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Seen("PUT", self.path, {k.lower(): v for k, v in self.headers.items()})
                with standin._lock:
                    standin.requests.append(seen)
                    rule = standin._rule
                answer = rule(seen) or (200, COPY_OK, {})
                status, body, headers = answer
                chunked = headers.pop("Transfer-Encoding", None) == "chunked"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if close_after_each:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for piece in (body[:1], body[1:7], body[7:]):  # uneven chunks, one of a single byte
                        if piece:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:  # an ssl.SSLContext with the server's certificate loaded
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, rule: Rule) -> None:
        with self._lock:
            self._rule = rule

    def light_requests(self) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.light]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(directory) -> tuple[str, str]:
    """(certificate, key) PEM paths of a certificate for 127.0.0.1, valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path
