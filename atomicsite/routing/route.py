"""Request path → what to answer: a file of the version, a redirect, or not found. Pure; no store.

The order, as on Netlify and every static host:

1. The file at the path: ``/a.css``; ``/`` and ``/docs/`` → their ``index.html``; ``/about`` →
   ``about``, else ``about.html`` (pretty URLs).
2. ``/docs`` where only ``docs/index.html`` exists → 301 to ``/docs/`` (query kept), like nginx,
   Apache, S3 website hosting, GitHub Pages and ``python -m http.server``: served at ``/docs`` that
   page's relative links (``../other/``) would resolve one level too high.
3. Redirect rules, first match wins; a rule without ``!`` is skipped where 1 or 2 found something
   (shadowing). A 3xx answers with ``Location``; a 200 serves its destination's file at this URL; a
   404 serves it with status 404.
4. Nothing: not found (the router then tries its SPA fallback and ``404.html``).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .patterns import substitute
from .redirects import Redirect
from .site import SiteRules

FILE, REDIRECT, NOT_FOUND = "file", "redirect", "not_found"
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


@dataclass(frozen=True)
class Route:
    kind: str  # FILE, REDIRECT or NOT_FOUND
    path: str | None = None  # FILE: the file's path in the version
    status: int = 200
    location: str | None = None  # REDIRECT: site path (starting "/") or absolute URL
    rule: Redirect | None = None  # the rule that decided, if any


def static_file(files: Container[str], rel: str) -> str | None:
    """The file a path names by itself (step 1), or None."""
    if rel == "" or rel.endswith("/"):
        index = rel + "index.html"
        return index if index in files else None
    if rel in files:
        return rel
    return rel + ".html" if rel + ".html" in files else None


def is_directory(files: Container[str], rel: str) -> bool:
    """``docs`` when ``docs/index.html`` exists: answered with a redirect to ``docs/`` (step 2)."""
    return bool(rel) and not rel.endswith("/") and rel + "/index.html" in files


def _with_query(location: str, query: str) -> str:
    return f"{location}?{query}" if query and "?" not in location else location


def route(files: Container[str], rules: SiteRules, rel: str, query: str = "") -> Route:
    """``route({"docs/index.html"}, SiteRules(), "docs")`` → 301 to ``/docs/``.

    ``rel`` is the decoded path without its leading ``/``; ``query`` the raw query string.
    """
    found = static_file(files, rel)
    directory = found is None and is_directory(files, rel)
    path = "/" + rel
    # Where a file answers, only forced rules can apply (shadowing).
    for rule, captures in rules.matching(path, forced_only=bool(found or directory)):
        to = substitute(rule.to, captures)
        if rule.is_redirect:
            return Route(REDIRECT, status=rule.status, location=_with_query(to, query), rule=rule)
        target_rel = unquote(to)[1:]
        target = static_file(files, target_rel) or (
            target_rel + "/index.html" if is_directory(files, target_rel) else None)
        if target:
            return Route(FILE, path=target, status=rule.status, rule=rule)
        # a rewrite to a file this version lacks: the next rule may still answer
    if found:
        return Route(FILE, path=found)
    if directory:
        return Route(REDIRECT, status=301, location=_with_query(quote(path, safe=_PATH_SAFE) + "/", query))
    return Route(NOT_FOUND, status=404)
