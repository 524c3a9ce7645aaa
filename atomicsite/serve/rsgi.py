"""The router spoken over RSGI, granian's native protocol: the same ASGI app, a cheaper wire.

Measured (bench/bench_serve.py --compare, on a shared 2-core machine, so noisy): under granian, the
RSGI interface served a small cached file at 1.2–1.9× the requests per second of granian's own ASGI
interface, because an ASGI ``send`` is a Rust future per message while RSGI answers with one call. The router itself stays a plain ASGI app
(tests, uvicorn and other ASGI servers use it as is); this adapter turns one RSGI request into an
ASGI scope and maps the app's messages onto RSGI calls:

- ``http.response.start`` + one final ``http.response.body`` → ``response_bytes`` (one call);
- a body sent in several parts → ``response_stream`` and ``send_bytes`` per part;
- ``http.response.pathsend`` (a whole file on local disk) → ``response_file``, sent by granian itself;
- ``receive()`` → ``http.disconnect`` once the client goes away (``client_disconnect``).
"""

from __future__ import annotations

import asyncio

_EMPTY_HEADERS: list[tuple[str, str]] = []


class RSGIRouter:
    """``granian --interface rsgi``: wraps an ASGI app (the Router) for granian's RSGI interface."""

    def __init__(self, app):
        self.app = app

    # granian calls these once per worker, around serving: the router's lifespan
    def __rsgi_init__(self, loop) -> None:
        pass

    def __rsgi_del__(self, loop) -> None:
        close = getattr(self.app, "close", None)
        if close:
            close()

    async def __rsgi__(self, scope, proto) -> None:
        if scope.proto != "http":  # websockets: refused, as the ASGI app does
            proto.close(1003)
            return
        headers: dict[str, str] = {}
        raw = []
        for name, value in scope.headers.items():
            raw.append((name.encode("latin-1"), value.encode("latin-1")))
            if name in headers:
                headers[name] += ("; " if name == "cookie" else ", ") + value
            else:
                headers[name] = value
        client, _, client_port = scope.client.rpartition(":")
        server, _, server_port = scope.server.rpartition(":")
        asgi_scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": scope.path,
            "raw_path": None,
            "query_string": scope.query_string.encode("latin-1"),
            "root_path": "",
            "headers": raw,
            "atomicsite.headers": headers,  # the same, as the router keeps them (lower-case names)
            "client": (client, int(client_port or 0)),
            "server": (server, int(server_port or 0)),
            "extensions": {"http.response.pathsend": {}},
        }
        reply = _Reply(proto)
        await self.app(asgi_scope, reply.receive, reply.send)


class _Reply:
    __slots__ = ("proto", "status", "headers", "stream", "done", "gone")

    def __init__(self, proto):
        self.proto = proto
        self.status = 0
        self.headers = _EMPTY_HEADERS
        self.stream = None
        self.done = False
        self.gone: asyncio.Event | None = None  # set when a write fails: the client went away

    async def receive(self) -> dict:
        # Only a streaming response asks (small answers never do), so the tasks below are rare.
        if not self.done:
            if self.gone is None:
                self.gone = asyncio.Event()
            waits = [asyncio.ensure_future(self.proto.client_disconnect()), asyncio.ensure_future(self.gone.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
        elif kind == "http.response.body":
            body, more = message.get("body", b""), message.get("more_body", False)
            if self.stream is None and not more:
                self.proto.response_bytes(self.status, self.headers, body)
                self.done = True
                return
            if self.stream is None:
                self.stream = self.proto.response_stream(self.status, self.headers)
            if body:
                try:
                    await self.stream.send_bytes(body)
                except Exception:  # the client went away: the app notices through receive()
                    self.done = True
                    if self.gone is not None:
                        self.gone.set()
                    await asyncio.sleep(0)
            if not more:
                self.done = True
        elif kind == "http.response.pathsend":
            self.proto.response_file(self.status, self.headers, message["path"])
            self.done = True
