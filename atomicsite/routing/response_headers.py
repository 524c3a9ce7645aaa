"""Response headers per URL path: Netlify's ``_headers`` file and ``[[headers]]`` tables with ``for``.

```
/*
  X-Frame-Options: DENY
  Strict-Transport-Security: max-age=63072000
/assets/*
  Cache-Control: public, max-age=31536000, immutable
```

A line starting with ``/`` names a path pattern (atomicsite.routing.patterns); the indented
``Name: value`` lines under it are its headers. Every block whose pattern matches the request applies,
in order; a later block setting the same header replaces it, and a header repeated inside one block
is joined with ``", "`` (Netlify's merge rules). Config tables come after the file, so they win.

Content-Type and Cache-Control set here also become the files' object metadata (what a store or CDN
serves without the router), Content-Disposition and Content-Language the objects' own headers on S3
and GCS (atomicsite.routing.build.STORED_EXTRA); the rest only the router can send (docs/serve.md shows the CloudFront
response-headers-policy equivalent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .patterns import PathPattern, PatternError, compile_pattern, compiled_pattern
from .redirects import RuleError

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers that describe the response framing or that atomicsite itself owns: setting them from rules
# would break responses (Content-Length) or mean something else than on Netlify (Basic-Auth).
_REFUSED = {
    "content-length": "the router computes it",
    "transfer-encoding": "the server sets it",
    "connection": "the server sets it",
    "etag": "the router derives it from the file's sha256",
    "content-range": "the router sets it for Range requests",
    "set-cookie": "a static site's rules must not set cookies on every response",
    "basic-auth": "password protection is not something atomicsite does; put an authenticating proxy in front",
    "location": "use a _redirects rule",
}
OBJECT_HEADERS = ("content-type", "cache-control")


@dataclass(frozen=True)
class HeaderBlock:
    """``HeaderBlock("/*", (("X-Frame-Options", "DENY"),))``."""

    source: str
    values: tuple[tuple[str, str], ...]

    @property
    def pattern(self) -> PathPattern:
        return compiled_pattern(self.source)

    def to_dict(self) -> dict:
        return {"for": self.source, "values": [list(v) for v in self.values]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeaderBlock:
        return cls(str(d["for"]), tuple((str(k), str(v)) for k, v in d["values"]))


def _check_pattern(source: str, at: str) -> None:
    try:
        compile_pattern(source)
    except PatternError as exc:
        raise RuleError(f"{at}: {exc}", hint="Write the path like /*, /assets/* or /docs/:page.") from None


def _check_header(name: str, value: str, at: str) -> None:
    if not _TOKEN.match(name):
        raise RuleError(f"{at}: {name!r} is not a header name", hint="Write 'Name: value', indented under a path.")
    why = _REFUSED.get(name.lower())
    if why:
        raise RuleError(f"{at}: {name} cannot be set by a rule ({why})", hint="Remove that line.")
    if not value or any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in value):
        raise RuleError(f"{at}: header {name} has an empty value or a control character", hint="Give it a value.")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise RuleError(f"{at}: header {name} is not Latin-1 text", hint="Percent-encode non-ASCII text.") from None


def _block(source: str, pairs: list[tuple[str, str]]) -> HeaderBlock:
    """Repeated names inside one block are joined with ", " (first spelling kept)."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, value in pairs:
        merged.setdefault(name.lower(), (name, []))[1].append(value)
    return HeaderBlock(source, tuple((name, ", ".join(values)) for name, values in merged.values()))


def parse_headers(text: str, where: str) -> tuple[HeaderBlock, ...]:
    blocks: list[HeaderBlock] = []
    source: str | None = None
    source_at = ""
    pairs: list[tuple[str, str]] = []

    def close() -> None:
        if source is not None:
            if not pairs:
                raise RuleError(f"{source_at}: path {source} has no headers under it",
                                hint="Indent 'Name: value' lines under the path.")
            blocks.append(_block(source, pairs))

    for n, raw in enumerate(text.splitlines(), 1):
        at = f"{where}:{n}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("/", "http://", "https://")):
            close()
            source, source_at, pairs = line, at, []
            _check_pattern(line, at)
            continue
        if source is None:
            raise RuleError(f"{at}: a header line before any path", hint="Start the file with a path line like /*.")
        name, colon, value = line.partition(":")
        if not colon:
            raise RuleError(f"{at}: {line!r} is not 'Name: value'", hint="Indent header lines under their path.")
        name, value = name.strip(), value.strip()
        _check_header(name, value, at)
        pairs.append((name, value))
    close()
    return tuple(blocks)


def header_blocks_from_config(value: Mapping[str, Any], at: str) -> HeaderBlock:
    """One ``[[headers]]`` table with ``for`` and ``values`` (Netlify's netlify.toml form)."""
    extra = set(value) - {"for", "values"}
    if extra:
        raise RuleError(f"{at}: unknown key {sorted(extra)[0]!r}",
                        hint="A response-header rule has 'for' (a URL path) and 'values' (a table of headers).")
    source, values = value.get("for"), value.get("values")
    if not isinstance(source, str):
        raise RuleError(f"{at}.for: must be a URL path like '/*'")
    _check_pattern(source, f"{at}.for")
    if not isinstance(values, Mapping) or not values:
        raise RuleError(f"{at}.values: must be a table of headers like {{ X-Frame-Options = 'DENY' }}")
    pairs = []
    for name, v in values.items():
        items = v if isinstance(v, list) else [v]
        if not all(isinstance(x, str) for x in items):
            raise RuleError(f"{at}.values.{name}: must be a string (or a list of strings)")
        for x in items:
            _check_header(str(name), x.strip(), f"{at}.values")
            pairs.append((str(name), x.strip()))
    return _block(source, pairs)


def headers_for_path(blocks: tuple[HeaderBlock, ...], path: str) -> dict[str, tuple[str, str]]:
    """Lower-cased name → (name as written, value) for a decoded request path."""
    out: dict[str, tuple[str, str]] = {}
    for block in blocks:
        if block.pattern.match(path) is not None:
            for name, value in block.values:
                out[name.lower()] = (name, value)
    return out
