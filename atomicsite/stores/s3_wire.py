"""Keep-alive HTTP/1.1 connections to one origin, for small requests without a body: S3 copies.

``WirePool("https", "bucket.s3.amazonaws.com", 443, settings).request("PUT", "/key", headers)`` returns
``(status, headers, body)``. Why not urllib3: for a bodiless request with a small answer, urllib3 and
http.client (whose header parsing goes through the ``email`` package) cost ~0.5 ms of CPU per request,
most of what is left of a copy once the SDK is out of the way; this costs a small fraction of that.

It does one thing: write a request, read one answer (``Content-Length``, chunked, or to the end of the
connection), keep the connection for the next request unless the server says ``Connection: close``.
A request on a reused connection that the server had already closed (no byte of an answer) is sent
once more on a new connection, as urllib3 and every browser do; any other failure is raised as the
exception botocore raises for it (``EndpointConnectionError``, ``ConnectTimeoutError``,
``ReadTimeoutError``, ``ConnectionClosedError``, ``SSLError``), so callers map it like a boto3 failure.

TLS: the settings come from the boto3 client's own (see :func:`wire_settings`): the CA bundle or
``verify=False``, connect and read timeouts, pool size, socket options. A client behind a proxy or with a
client certificate gets no pool (``wire_settings`` returns None) and its copies stay on boto3.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass

_MAX_LINE = 65536
_MAX_HEADERS = 100


@dataclass(frozen=True)
class WireSettings:
    verify: bool | str  # True, False or a CA bundle path, as botocore's http session has it
    connect_timeout: float
    read_timeout: float
    max_idle: int  # connections kept open between requests
    socket_options: tuple = ()


def wire_settings(client, url: str) -> WireSettings | None:
    """The client's connection settings, or None when they need what this module does not do."""
    config = client.meta.config
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    verify = getattr(session, "_verify", None)
    if verify is None or config.client_cert or getattr(session, "_cert_file", None):
        return None
    proxies = getattr(session, "_proxy_config", None)
    if proxies is None or proxies.proxy_url_for(url):
        return None  # a proxy (config or environment) is botocore's business
    return WireSettings(
        verify=verify,
        connect_timeout=float(config.connect_timeout or 60),
        read_timeout=float(config.read_timeout or 60),
        max_idle=int(config.max_pool_connections or 10),
        socket_options=tuple(getattr(session, "_socket_options", None) or ()),
    )


class _Connection:
    __slots__ = ("sock", "rfile", "reused")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.reused = False

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self.sock.close()


class WirePool:
    """Idle connections to ``scheme://host:port``, shared by threads (one request per connection at a time)."""

    def __init__(self, scheme: str, host: str, port: int, settings: WireSettings):
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        self.scheme, self.host, self.port, self.settings = scheme, host, port, settings
        self.url = f"{scheme}://{host}:{port}"
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._tls = _tls_context(settings.verify) if scheme == "https" else None
        self.connections_opened = 0  # for tests: keep-alive reuse is observable

    def request(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        data = head.encode("latin-1")
        while True:
            conn = self._take()
            try:
                try:
                    conn.sock.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    if not conn.reused:
                        raise
                    raise _StaleConnection from None
                answer = _read_answer(conn.rfile, method)
            except _StaleConnection:
                conn.close()
                if conn.reused:
                    continue  # the server closed it while idle: once more, on a new connection
                raise _as_botocore(ConnectionResetError("the server closed the connection without an answer"),
                                   self.url) from None
            except BaseException as exc:
                conn.close()
                _reraise(exc, self.url)
            status, answer_headers, body, keep = answer
            if keep:
                conn.reused = True
                self._give_back(conn)
            else:
                conn.close()
            return status, answer_headers, body

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.settings.connect_timeout)
        except BaseException as exc:
            _reraise(exc, self.url, connecting=True)
        try:
            for option in self.settings.socket_options:
                sock.setsockopt(*option)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.settings.read_timeout)
        except BaseException as exc:
            sock.close()
            _reraise(exc, self.url, connecting=True)
        self.connections_opened += 1
        return _Connection(sock)

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.settings.max_idle:
                self._idle.append(conn)
                return
        conn.close()


class _StaleConnection(Exception):
    pass


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(verify))


def _read_answer(rfile, method: str) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, lower-cased headers, body, whether the connection can carry another request)."""
    while True:
        try:
            line = rfile.readline(_MAX_LINE + 1)
        except (ConnectionResetError, BrokenPipeError):
            line = b""
        if not line:
            raise _StaleConnection  # nothing at all came back
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP answer: {line[:80]!r}")
        version, status = parts[0], int(parts[1])
        headers = _read_headers(rfile)
        if not 100 <= status < 200:
            break  # an interim 1xx answer is followed by the real one
    keep = version == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        return status, headers, b"", keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, _read_chunked(rfile), keep
    length = headers.get("content-length")
    if length is not None:
        n = int(length)
        body = rfile.read(n)
        if len(body) != n:
            raise ConnectionError(f"the answer ended after {len(body)} of {n} bytes")
        return status, headers, body, keep
    return status, headers, rfile.read(), False  # delimited by the end of the connection


def _read_headers(rfile) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = rfile.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ConnectionError("the connection closed inside the answer's headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ConnectionError(f"bad header line {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ConnectionError(f"more than {_MAX_HEADERS} header lines")


def _read_chunked(rfile) -> bytes:
    chunks = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            raise ConnectionError("the connection closed inside a chunked answer")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        chunk = rfile.read(size)
        if len(chunk) != size:
            raise ConnectionError("the connection closed inside a chunk")
        chunks.append(chunk)
        rfile.readline(_MAX_LINE + 1)  # the CRLF after the chunk


def _reraise(exc: BaseException, url: str, *, connecting: bool = False):
    mapped = _as_botocore(exc, url, connecting=connecting)
    if mapped is exc:
        raise exc
    raise mapped from exc


def _as_botocore(exc: BaseException, url: str, *, connecting: bool = False) -> BaseException:
    """The exception botocore's http session raises for the same failure."""
    from botocore import exceptions as bx

    if isinstance(exc, (KeyboardInterrupt, SystemExit)) or isinstance(exc, bx.BotoCoreError):
        return exc
    if isinstance(exc, ssl.SSLError):
        return bx.SSLError(endpoint_url=url, error=exc)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        if connecting:
            return bx.ConnectTimeoutError(endpoint_url=url, error=exc)
        return bx.ReadTimeoutError(endpoint_url=url, error=exc)
    if connecting and isinstance(exc, OSError):  # refused, unreachable, no such host
        return bx.EndpointConnectionError(endpoint_url=url, error=exc)
    if isinstance(exc, (OSError, ValueError)):  # reset, cut off, not HTTP, a bad chunk size
        return bx.ConnectionClosedError(endpoint_url=url, error=exc)
    return exc
