"""Netlify-style URL path patterns, shared by ``_redirects`` and ``_headers`` rules.

A pattern is a URL path (``/blog/:year/*``): literal segments match themselves (case-sensitive, after
percent-decoding), a ``:name`` segment matches one whole segment, and a final ``*`` matches the rest of
the path, possibly nothing (``/news/*`` matches ``/news`` and ``/news/a/b``). As on Netlify, a trailing
slash does not matter on either side: ``/about`` and ``/about/`` are the same path to a rule.

The same algorithm is written once more in JavaScript for the CloudFront Function
(atomicsite/cdn/cloudfront_function.js, ``compile``); tests run both on the same table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

_NAME = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")
_SUBST = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


class PatternError(ValueError):
    """Why a pattern cannot be used; the caller adds the file and line."""


def normal_path(path: str) -> str:
    """``/about/`` → ``/about``; ``/`` stays ``/``: the form rules are matched against."""
    return path.rstrip("/") or "/"


@dataclass(frozen=True)
class PathPattern:
    text: str  # as written (percent-encoded)
    regex: re.Pattern
    names: tuple[str, ...]  # placeholders, plus "splat" when it ends in *

    @property
    def is_literal(self) -> bool:
        return not self.names

    def match(self, path: str) -> dict[str, str] | None:
        """Captures for a decoded request path, or None. ``match("/news/a/b") == {"splat": "a/b"}``."""
        m = self.regex.fullmatch(normal_path(path))
        if not m:
            return None
        return {k: v or "" for k, v in m.groupdict().items()}


_COMPILED: dict[str, PathPattern] = {}


def compiled_pattern(text: str) -> PathPattern:
    """:func:`compile_pattern`, once per pattern text (rules are matched on every request)."""
    p = _COMPILED.get(text)
    if p is None:
        p = _COMPILED[text] = compile_pattern(text)
    return p


def compile_pattern(text: str) -> PathPattern:
    if not text.startswith("/"):
        if text.startswith(("http://", "https://", "//")):
            raise PatternError(f"{text!r} names a host; host (domain-level) rules are not supported")
        raise PatternError(f"{text!r} does not start with '/'")
    if "?" in text or "#" in text:
        raise PatternError(f"{text!r} has a query or fragment; rules match paths only")
    segments = normal_path(unquote(text)).split("/")[1:]
    parts: list[str] = []
    names: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "*" and last:
            names.append("splat")
            # "/*" matches "/" too; "/a/*" matches "/a"
            parts.append("(?:/(?P<splat>.*))?" if parts else "/(?P<splat>.*)")
            continue
        if "*" in seg:
            raise PatternError(f"{text!r}: '*' is allowed only as the whole last segment (like /news/*)")
        m = _NAME.match(seg)
        if m:
            if m.group(1) in names or m.group(1) == "splat":
                raise PatternError(f"{text!r}: placeholder :{m.group(1)} is used twice")
            names.append(m.group(1))
            parts.append(f"/(?P<{m.group(1)}>[^/]+)")
        elif seg.startswith(":"):
            raise PatternError(f"{text!r}: {seg!r} is not a placeholder name (letters, digits, _)")
        else:
            parts.append("/" + re.escape(seg))
    regex = "^" + ("".join(parts) or "/") + "$"
    return PathPattern(text, re.compile(regex, re.DOTALL), tuple(names))


def placeholders_in(target: str) -> set[str]:
    return set(_SUBST.findall(target))


def substitute(target: str, captures: dict[str, str]) -> str:
    """Fill ``:splat`` and ``:name`` in a rule's destination; captured text is percent-encoded again."""

    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name not in captures:
            return m.group(0)
        return quote(captures[name], safe="/!$&'()*+,;=:@-._~")

    # longest names first is automatic: the regex takes the whole identifier
    return _SUBST.sub(fill, target)
