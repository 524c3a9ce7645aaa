"""The router's use of a version's URL rules (atomicsite.routing): route a request, add rule headers.

Kept apart from app.py so the request loop has one hook: ``routed = route_request(...)``.
"""

from __future__ import annotations

from ..manifest import Manifest
from ..routing import headers_for_path, route
from ..routing.route import Route

_OBJECT_HEADERS = {"content-type", "cache-control"}  # decided per file, in the manifest entry


def route_request(manifest: Manifest, rel: str, query: str) -> Route:
    return route(manifest.by_path, manifest.rules, rel, query)


def location_header(location: str, root: str) -> bytes:
    """A site path is below the mount point (``root_path``); an absolute URL is left alone."""
    if location.startswith("/") and not location.startswith("//"):
        location = root + location
    return location.encode("latin-1", "replace")


def rule_headers(manifest: Manifest | None, rel: str) -> list[tuple[bytes, bytes]]:
    """Headers the ``_headers`` / ``[[headers]] for`` rules give this request path. Content-Type and
    Cache-Control are left to the file's manifest entry, where scan already put them, so the router
    and a bare store or CDN answer the same."""
    if manifest is None or not manifest.rules.headers:
        return []
    found = headers_for_path(manifest.rules.headers, "/" + rel)
    return [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for key, (name, value) in found.items() if key not in _OBJECT_HEADERS]
