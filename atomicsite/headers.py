"""Content-Type and Cache-Control for each published file.

Rules are ``(glob, headers)`` pairs, checked in order; for each header the first rule that matches the
path and sets it wins, then the defaults: Content-Type from the file name (with the web types Python's
``mimetypes`` gets wrong or lacks), Cache-Control ``immutable`` for fingerprinted assets
(``app.3f9a1c2b.js``, ``index-BfK2x9Qa.css``) and ``must-revalidate`` for everything else.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import posixpath
import re
from dataclasses import dataclass

from .errors import ConfigError

REVALIDATE = "public, max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_WEB_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
_NEEDS_CHARSET = ("text/", "application/json", "application/manifest+json", "application/xml",
                  "application/rss+xml", "application/atom+xml", "image/svg+xml")

# A fingerprint is a name segment between '.'/'-' and the extension: 8+ hex chars with a digit
# (webpack, Hugo), or 8-22 base64url chars with both a digit and a letter (Vite, esbuild).
_HEX = r"[0-9a-f]{8,64}"
_B64 = r"[A-Za-z0-9_]{8,22}"
_FINGERPRINT = re.compile(rf"[.-](?P<hash>{_HEX}|{_B64})\.[A-Za-z0-9]+(\.map)?$")


def content_type_for(path: str) -> str:
    name = posixpath.basename(path).lower()
    ext = posixpath.splitext(name)[1]
    ctype = _WEB_TYPES.get(ext) or mimetypes.guess_type(name, strict=False)[0] or DEFAULT_CONTENT_TYPE
    if ctype.startswith(_NEEDS_CHARSET) and "charset" not in ctype:
        ctype += "; charset=utf-8"
    return ctype


def is_fingerprinted(path: str) -> bool:
    m = _FINGERPRINT.search(posixpath.basename(path))
    if not m:
        return False
    h = m.group("hash")
    has_digit = any(c.isdigit() for c in h)
    if re.fullmatch(_HEX, h):
        return has_digit
    return has_digit and any(c.isalpha() for c in h)


@dataclass(frozen=True)
class HeaderRule:
    """``HeaderRule("*.html", cache_control="no-cache")``: glob over the POSIX path in the build dir.

    A glob without ``/`` matches the file name anywhere; with ``/`` it matches the whole path
    (``assets/*``). ``**`` is not special: ``*`` already crosses ``/`` in these globs.
    """

    glob: str
    content_type: str | None = None
    cache_control: str | None = None

    def __post_init__(self):
        if not self.glob:
            raise ConfigError("a header rule has an empty 'match' glob", hint="Give each [[headers]] rule a match glob.")
        if self.content_type is None and self.cache_control is None:
            raise ConfigError(
                f"header rule {self.glob!r} sets nothing",
                hint="Give it content_type and/or cache_control.",
            )

    def matches(self, path: str) -> bool:
        target = path if "/" in self.glob else posixpath.basename(path)
        return fnmatch.fnmatchcase(target, self.glob)


@dataclass(frozen=True)
class Headers:
    content_type: str
    cache_control: str


def headers_for(path: str, rules: tuple[HeaderRule, ...] = ()) -> Headers:
    ctype = ccontrol = None
    for rule in rules:
        if rule.matches(path):
            ctype = ctype or rule.content_type
            ccontrol = ccontrol or rule.cache_control
            if ctype and ccontrol:
                break
    return Headers(
        content_type=ctype or content_type_for(path),
        cache_control=ccontrol or (IMMUTABLE if is_fingerprinted(path) else REVALIDATE),
    )
