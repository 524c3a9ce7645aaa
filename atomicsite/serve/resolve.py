"""Pure request logic: request path → file of a version, Range, If-None-Match, Host, pins.

Nothing here touches a store. The manifest is the allow-list: only a path listed in a version's file
table is ever turned into a key (``v/<version>/<path>``), so no request can reach ``_atomicsite/`` or
another version's tree; hostile paths are still refused up front, so they never look like a 404.
"""

from __future__ import annotations

import re

from collections.abc import Mapping
from dataclasses import dataclass

from ..layout import VERSION_RE
from ..manifest import FileEntry
from ..routing.route import static_file

MAX_PATH = 4096
RESERVED = "_atomicsite"

_RANGE_NUMBER = re.compile(r"[0-9]{1,19}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters and backslashes


class BadPath(ValueError):
    """A path no browser sends: dot segments, backslashes, NUL or control characters, empty segments."""


def site_path(path: str) -> str:
    """``/about/`` → ``about/``: the request path relative to the site root, or BadPath."""
    if not path.startswith("/") or len(path) > MAX_PATH:
        raise BadPath("not an absolute path")
    rel = path[1:]
    if _UNSAFE.search(rel):
        raise BadPath("backslash or control character")
    segments = rel.split("/")
    if any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", ".."):
        raise BadPath("dot or empty segment")
    return rel


def is_reserved(rel: str) -> bool:
    return rel == RESERVED or rel.startswith(RESERVED + "/")


def lookup(files: Mapping[str, FileEntry], rel: str) -> FileEntry | None:
    """The file a path names by itself: a directory → its ``index.html``; ``about`` → ``about`` or
    ``about.html``. ``about`` with only ``about/index.html`` is None here: the router answers it with a
    redirect to ``about/`` (atomicsite.routing.route)."""
    path = static_file(files, rel)
    return files[path] if path else None


def wants_html(rel: str, accept: str) -> bool:
    """A request an SPA fallback should answer: it accepts HTML, or its last segment has no extension."""
    return "text/html" in accept or "." not in rel.rsplit("/", 1)[-1]


def is_navigation(headers: Mapping[str, str]) -> bool:
    """A browser loading a page (Fetch Metadata): it gets the live version, whatever it is pinned to."""
    return headers.get("sec-fetch-mode") == "navigate" or headers.get("sec-fetch-dest") in ("document", "iframe", "frame")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


UNSATISFIABLE = ByteRange(0, 0)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One ``bytes=`` range → ByteRange; None = serve the whole file (absent, malformed or several
    ranges, which RFC 9110 lets a server ignore); UNSATISFIABLE → 416."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    # ASCII digits only, and short: str.isdigit() accepts '²', and int() refuses 4,300+ digits
    if not dash or not _RANGE_NUMBER.fullmatch(first or "0") or not _RANGE_NUMBER.fullmatch(last or "0"):
        return None
    if first == "":
        if last == "":
            return None
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - n), size)
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    end = size if last == "" else min(size, int(last) + 1)
    return ByteRange(start, end)


def etag_of(entry: FileEntry) -> str:
    return f'"{entry.sha256}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches anything."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or (tag[2:] if tag.startswith("W/") else tag) == etag:
            return True
    return False


def normal_host(value: str) -> str:
    """``Example.COM:8080`` → ``example.com``; ``[::1]:80`` → ``[::1]``."""
    host = value.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host.rstrip(".")


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key == name:
            return value.strip().strip('"')
    return None


def pin_candidate(headers: Mapping[str, str], cookie_name: str) -> str | None:
    """The version a client asks to stay on: ``x-atomicsite-version``, else the cookie."""
    value = headers.get("x-atomicsite-version") or cookie_value(headers.get("cookie", ""), cookie_name)
    if value:
        value = value.strip().lower()
        if VERSION_RE.match(value):
            return value
    return None


def _qvalue(params: str) -> float:
    for param in params.split(";"):
        name, eq, value = param.strip().partition("=")
        if eq and name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # a malformed weight: treat the coding as not acceptable
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def choose_encoding(header: str | None, available: tuple[str, ...]) -> str | None:
    """The content coding to send, from ``Accept-Encoding`` (RFC 9110 §12.5.3); None = identity.

    ``available`` are the file's variants in order of preference (br before gzip). The highest
    q-value wins, a variant over identity and br over gzip when equal; ``*`` stands for every coding
    not named; ``q=0`` excludes one; identity not named loses to any acceptable variant. No header means identity (what a client that never asked for
    compression can surely read); when nothing acceptable is on offer, identity too.

    >>> choose_encoding("gzip, deflate, br", ("br", "gzip")), choose_encoding("gzip;q=1, br;q=0.5", ("br", "gzip"))
    ('br', 'gzip')
    """
    if not header or not available:
        return None
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding == "x-gzip":
            coding = "gzip"
        if coding:
            weights.setdefault(coding, _qvalue(params))
    star = weights.get("*")
    # Identity not named is acceptable but least wanted: a client naming only codings asks for one.
    identity = weights.get("identity", 0.0)
    best, best_q = None, 0.0
    for coding in available:
        q = weights.get(coding, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    if best is not None and best_q >= identity:
        return best
    return None
