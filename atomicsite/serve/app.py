"""The router: a plain ASGI app serving the version a channel points to, from any store.

Per request: Host → channel → pointer (cached for ``pointer_ttl``) → manifest (cached per version) →
the file, its headers from the manifest, its bytes streamed from ``v/<version>/<path>``. Deciding
200 vs 404, or ``about.html`` vs ``about/index.html``, never costs a store round trip.

Skew protection (docs/serve.md): an HTML page answered from the live version sets the cookie
``atomicsite_version=<version>``; a later non-navigation request carrying that cookie (or an
``x-atomicsite-version`` header) gets its file from that version while the channel's recent history
names it and its manifest is still committed, else live.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import AtomicsiteError, IntegrityError, ObjectNotFound
from ..headers import is_fingerprinted, is_html
from ..layout import TREE, content_key, has_link_trees
from ..manifest import FileEntry, Manifest
from ..stores.base import Store
from .config import ServeConfig
from .rules import location_header, route_request, rule_headers
from .resolve import (
    UNSATISFIABLE, BadPath, ByteRange, choose_encoding, etag_matches, etag_of, is_navigation, is_reserved, lookup,
    normal_host, parse_range, pin_candidate, site_path, wants_html,
)
from .state import BodyCache, Channel, ManifestCache, PointerCache, sha256_ok
from . import health
from .localfile import local_file

log = logging.getLogger("atomicsite.serve")

_TEXT = b"text/plain; charset=utf-8"
_NO_STORE = b"no-store"


class _Respond(Exception):
    """Answer with a short text body; raised from deep inside the request, caught once."""

    def __init__(self, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None,
                 version: str | None = None):
        super().__init__(text)
        self.status, self.text, self.headers, self.version = status, text, headers or [], version


class _Gone(Exception):
    """A pinned (non-live) version lost an object: it is being pruned. The request falls back to live."""


@dataclass
class _Choice:
    version: str
    entry: FileEntry
    status: int = 200
    pinned: bool = False  # served from the client's pin rather than live
    extra: tuple = ()  # response headers from the version's _headers rules
    layout: str = TREE  # where the version keeps its bytes (atomicsite.layout)


@dataclass
class _Log:
    status: int = 0
    sent: int = 0
    channel: str = "-"
    version: str = "-"


class Router:
    """The ASGI app. Build it with :func:`atomicsite.serve.create_app`."""

    def __init__(self, store: Store, config: ServeConfig, *, owns_store: bool = False):
        self.store = store
        self.config = config
        self.owns_store = owns_store
        self.executor = ThreadPoolExecutor(config.store_threads, thread_name_prefix="atomicsite-serve")
        self.pointers = PointerCache(store, config.pointer_ttl, self.executor, config.max_channels)
        self.link_trees = has_link_trees(store)
        self.pointers.max_wait = config.pointer_wait
        self.manifests = ManifestCache(store, self.executor, config.max_manifests, config.pin_recheck)
        self.bodies = BodyCache(config.body_cache_bytes)
        self.metrics = None  # a RouterMetrics once observe() is called (serve --metrics-port)

    def observe(self, metrics) -> None:
        """Report requests, pointer reads, store calls and body-cache use to ``metrics`` (metrics.py)."""
        self.metrics = metrics
        self.store = metrics.measure(self.store)
        self.pointers.store = self.manifests.store = self.store
        self.pointers.on_read = metrics.pointer_read

    # -- ASGI --------------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """Release the thread pool (and the store, when the router opened it)."""
        self.executor.shutdown(wait=False)
        if self.metrics is not None:
            self.metrics.close()
        if self.owns_store:
            self.store.close()

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        record = _Log()

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            elif message["type"] == "http.response.pathsend":
                record.sent += os.path.getsize(message["path"])
            else:
                record.sent += len(message.get("body", b""))
            await send(message)

        headers = _headers(scope)
        try:
            await self._serve(scope, headers, receive, sending, record)
        except _Respond as r:
            record.version = r.version or record.version
            await _text(sending, scope, r.status, r.text, r.headers, r.version)
        except Exception as exc:  # never a traceback to the client
            if record.status:  # the body was underway: all we can do is cut the connection
                log.error("serving %s failed mid-response: %s", scope.get("path"), exc,
                          exc_info=not isinstance(exc, AtomicsiteError))
            elif isinstance(exc, AtomicsiteError):
                log.error("cannot serve %s: %s", scope.get("path"), exc)
                await _text(sending, scope, 502, "Bad gateway: the site's store failed. Try again shortly.")
            else:
                log.exception("bug serving %s", scope.get("path"))
                await _text(sending, scope, 500, "Internal error.")
        finally:
            if self.metrics is not None:
                self.metrics.request(record.channel, record.status, time.perf_counter() - started)
            if not log.isEnabledFor(logging.INFO):  # the line costs more than a cached answer
                return
            path = scope.get("raw_path") or scope.get("path", "").encode()
            query = scope.get("query_string") or b""
            target = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
            client = scope.get("client")
            log.info('%s %s "%s %s" %d %d %s@%s %.1fms',
                     client[0] if client else "-", headers.get("host", "-"), scope["method"], target,
                     record.status, record.sent, record.channel, record.version,
                     (time.perf_counter() - started) * 1000,
                     extra={"atomicsite": {"method": scope["method"], "path": target, "status": record.status,
                                           "bytes": record.sent, "channel": record.channel,
                                           "version": record.version, "host": headers.get("host")}})

    # -- one request -------------------------------------------------------------------------------

    async def _serve(self, scope, headers: dict[str, str], receive, send, record: _Log) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            raise _Respond(405, "Method not allowed.", [(b"allow", b"GET, HEAD")])
        name = self.config.channel_for(normal_host(headers.get("host", "")))
        if name is None:
            raise _Respond(404, "No site is served at this host.")
        record.channel = name
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        try:
            rel = site_path(path)
        except BadPath:
            raise _Respond(400, "Bad request path.") from None
        if rel == health.PATH:
            status, text = await health.check(self.pointers, name)
            raise _Respond(status, text)
        if is_reserved(rel):
            raise _Respond(404, "Not found.")

        try:
            await self._serve_from(await self.pointers.get(name), rel, scope, headers, receive, send, record, root)
        except ObjectNotFound:
            if record.status:
                raise
            # The pointer we hold names a version that is gone (its manifest or this file): the
            # channel was switched away from it and it was pruned since we read the pointer. Read
            # the pointer again now rather than answer 502 until the TTL runs out.
            channel = await self.pointers.get(name, fresh=True)
            await self._serve_from(channel, rel, scope, headers, receive, send, record, root, strict=True)

    async def _serve_from(self, channel: Channel, rel: str, scope, headers, receive, send, record: _Log,
                          root: str, strict: bool = False) -> None:
        if channel.pointer is None:
            raise _Respond(503, f"Channel {channel.name!r} has nothing published yet.", [(b"retry-after", b"5")])
        live = await self._live_manifest(channel, strict)
        record.version = live.version
        query = (scope.get("query_string") or b"").decode("latin-1")
        choice = await self._choose(rel, headers, channel, live, self._pin(headers, channel), query, root)
        record.version = choice.version
        try:
            await self._respond(scope, headers, choice, receive, send, root)
        except _Gone:  # only a pinned choice raises it, and only before anything was sent
            log.warning("version %s is being pruned; serving /%s from live", choice.version, rel)
            self.manifests.forget(choice.version)
            choice = await self._choose(rel, headers, channel, live, None, query, root)
            record.version = choice.version
            await self._respond(scope, headers, choice, receive, send, root)

    async def _live_manifest(self, channel: Channel, strict: bool = False) -> Manifest:
        version = channel.pointer.version
        if not strict:
            return await self.manifests.get(version)
        try:
            return await self.manifests.get(version)
        except ObjectNotFound:
            raise IntegrityError(f"channel {channel.name!r} points to {version}, which has no manifest in "
                                 f"{self.store.url}") from None

    def _pin(self, headers: dict[str, str], channel: Channel) -> str | None:
        """The version the client asks for, if skew protection is on and the channel served it lately."""
        if not self.config.skew_protection:
            return None
        candidate = pin_candidate(headers, self.config.cookie_name)
        return candidate if candidate in channel.recent else None

    async def _choose(self, rel: str, headers, channel: Channel, live: Manifest, pin: str | None,
                      query: str = "", root: str = "") -> _Choice:
        choice = await self._choose_file(rel, headers, channel, live, pin, query, root)
        choice.extra = tuple(rule_headers(live, rel))
        return choice

    async def _choose_file(self, rel: str, headers, channel: Channel, live: Manifest, pin: str | None,
                           query: str, root: str) -> _Choice:
        navigation = is_navigation(headers)
        if pin and pin != live.version and not navigation:
            pinned = await self.manifests.retained(pin)
            entry = lookup(pinned.by_path, rel) if pinned else None
            if entry and not is_html(entry):
                return _Choice(pin, entry, pinned=True, layout=pinned.layout)
        routed = route_request(live, rel, query)  # files, directory redirects, _redirects rules
        if routed.kind == "redirect":
            raise _Respond(routed.status, f"Redirecting to {routed.location}",
                           [(b"location", location_header(routed.location, root))] + rule_headers(live, rel),
                           version=live.version)
        if routed.kind == "file":
            return _Choice(live.version, live.by_path[routed.path], status=routed.status, layout=live.layout)
        if pin and not navigation and is_fingerprinted(rel):
            # A tab still on an older version while the cookie moved on (another tab loaded a newer
            # page): its fingerprinted assets exist only in the version it was loaded from. Only
            # fingerprinted names: a file removed from the site (secret.json) must not stay
            # reachable through history.
            for version in channel.recent[1:]:
                if version == pin:
                    continue
                older = await self.manifests.retained(version)
                entry = older.by_path.get(rel) if older else None
                if entry and not is_html(entry):
                    return _Choice(version, entry, pinned=True, layout=older.layout)
        spa = self.config.spa_fallback
        if spa and spa in live.by_path and wants_html(rel, headers.get("accept", "")):
            return _Choice(live.version, live.by_path[spa], layout=live.layout)
        if "404.html" in live.by_path:
            return _Choice(live.version, live.by_path["404.html"], status=404, layout=live.layout)
        raise _Respond(404, "Not found.", version=live.version)

    async def _respond(self, scope, headers, choice: _Choice, receive, send, root: str) -> None:
        entry = choice.entry
        # A file with compressed variants (atomicsite.compress): pick one by Accept-Encoding; a Range
        # request always gets identity, so a resumed download's bytes never depend on the encoding.
        # From here on ``served`` is the object sent (its key, size, sha256 and ETag); the headers
        # Content-Type and Cache-Control stay the file's.
        served, encoding = entry, None
        if entry.variants and not headers.get("range"):
            encoding = choose_encoding(headers.get("accept-encoding"), tuple(v.encoding for v in entry.variants))
            if encoding:
                served = entry.as_variant(entry.variant(encoding))
        etag = etag_of(served)
        # An answer chosen by the client's pin differs per client: a shared cache must not keep it,
        # unless the name is fingerprinted (then every version that has it has the same bytes).
        cache_control = entry.cache_control
        if choice.pinned and not is_fingerprinted(entry.path):
            cache_control = "private, no-store"
        out = [
            (b"content-type", entry.content_type.encode("latin-1")),
            (b"cache-control", cache_control.encode("latin-1")),
            (b"etag", etag.encode()),
            (b"x-atomicsite-version", choice.version.encode()),
            *choice.extra,
        ]
        if entry.variants:  # every answer for this path, identity included, depends on Accept-Encoding
            out.append((b"vary", b"accept-encoding"))
        if encoding:
            out.append((b"content-encoding", encoding.encode()))
        if self.config.skew_protection and is_html(entry) and not choice.pinned:
            held = pin_candidate({"cookie": headers.get("cookie", "")}, self.config.cookie_name)
            # a 404 page answering an open page's missing asset (favicon.ico) must not move its pin
            if held != choice.version and (choice.status == 200 or not held or is_navigation(headers)):
                out.append((b"set-cookie", _cookie(self.config.cookie_name, choice.version, root, scope)))
        status, span = choice.status, ByteRange(0, served.size)
        if status == 200:
            out.append((b"accept-ranges", b"bytes"))
            if etag_matches(headers.get("if-none-match"), etag):
                await send({"type": "http.response.start", "status": 304, "headers": out})
                await send({"type": "http.response.body", "body": b""})
                return
            if_range = headers.get("if-range")
            wanted = parse_range(headers.get("range"), entry.size) if not if_range or if_range == etag else None
            if wanted is UNSATISFIABLE:
                raise _Respond(416, "Range not satisfiable.", [(b"content-range", f"bytes */{entry.size}".encode())],
                               version=choice.version)
            if wanted is not None:
                status, span = 206, wanted
                out.append((b"content-range", f"bytes {span.start}-{span.end - 1}/{entry.size}".encode()))
        out.append((b"content-length", str(span.length).encode()))
        key = content_key(choice.version, choice.layout, served.path, served.sha256, link_trees=self.link_trees)

        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        if served.size <= self.config.body_cache_file_limit:
            data = await self._small_body(key, served, choice)
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": data[span.start:span.end]})
            return
        if status == 200 and "http.response.pathsend" in (scope.get("extensions") or {}):
            # A local store and a server that sends files itself (granian): no bytes through Python.
            path = local_file(self.store, key, served.size)
            if path is not None:
                await send({"type": "http.response.start", "status": status, "headers": out})
                await send({"type": "http.response.pathsend", "path": path})
                return
        await self._stream(key, span, status, out, choice, receive, send)

    async def _store(self, fn, *args):
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    async def _small_body(self, key: str, entry: FileEntry, choice: _Choice) -> bytes:
        data = self.bodies.get(entry.sha256)
        if self.metrics is not None:
            self.metrics.body_cache(data is not None)
        if data is not None:
            return data
        try:
            data = await self._store(_read_all, self.store, key)
        except ObjectNotFound:
            if choice.pinned:
                raise _Gone() from None
            raise
        if len(data) != entry.size or not sha256_ok(data, entry.sha256):
            raise IntegrityError(f"{self.store.url}/{key} does not hold the bytes its manifest lists")
        if self.config.body_cache_bytes:
            self.bodies.put(entry.sha256, data)
        return data

    async def _stream(self, key: str, span: ByteRange, status: int, out, choice: _Choice, receive, send) -> None:
        # The first chunk is read before the status is sent, so a missing or failing object still
        # gets an honest error status instead of a cut-off 200.
        try:
            chunks = await self._store(self.store.open, key, span.start, span.end)
            first = await self._store(next, chunks, None)
        except ObjectNotFound:
            if choice.pinned:
                raise _Gone() from None
            raise
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": status, "headers": out})
            chunk, left = first, span.length
            while chunk is not None and left > 0 and not disconnected.is_set():
                chunk = chunk[:left]
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
                if left > 0:
                    chunk = await self._store(next, chunks, None)
            if left > 0 and not disconnected.is_set():
                raise IntegrityError(f"{self.store.url}/{key} ended {left} bytes early")
        finally:
            watcher.cancel()
            close = getattr(chunks, "close", None)
            if close:
                close()


def _read_all(store: Store, key: str) -> bytes:
    return b"".join(store.open(key))


def _headers(scope) -> dict[str, str]:
    given = scope.get("atomicsite.headers")  # the RSGI adapter builds this dict straight from granian's
    if given is not None:
        return given
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in out:
            out[name] += ("; " if name == "cookie" else ", ") + value
        else:
            out[name] = value
    return out


def _cookie(name: str, version: str, root: str, scope) -> bytes:
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return f"{name}={version}; Path={root or '/'}; SameSite=Lax{secure}".encode("latin-1")


async def _text(send, scope, status: int, text: str, extra=(), version: str | None = None) -> None:
    body = (text + "\n").encode()
    headers = [(b"content-type", _TEXT), (b"cache-control", _NO_STORE), (b"content-length", str(len(body)).encode())]
    if version:
        headers.append((b"x-atomicsite-version", version.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers + list(extra)})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
