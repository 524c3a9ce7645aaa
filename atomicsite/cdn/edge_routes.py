"""A version's URL routing, compiled for the CloudFront Function and stored in its KeyValueStore.

The function cannot list the bucket, so what the router decides from the manifest travels with the
version, under ``<kvs_key_prefix>routes:<version>`` (``CloudFrontSettings.routes_key_prefix``) (immutable, like the version itself; a rollback
switches to the older version's routes with its key):

- ``r``: the redirect rules, each ``[from, to, status, force, shadow]``. ``shadow`` lists the request
  paths where a file exists and so hides a non-forced rule (Netlify's shadowing), or is null when that
  list would not fit: then a path that looks like a file (last segment with a ``.``, or ending in
  ``/``) hides the rule.
- ``p``: extensionless paths served from ``<path>.html`` (pretty URLs: ``/contact`` → ``contact.html``).
- ``e``: extensionless files served as they are (``/LICENSE``).

Any other extensionless path is a directory: the function answers ``/docs`` with a 301 to ``/docs/``.

A KeyValueStore value holds at most 1 KB, so the JSON is split over up to :data:`MAX_ROUTE_VALUES`
keys (``…:<version>``, ``…:<version>:1``, …); the first value starts with their count and ``|``.
Rules that do not fit are an error naming the limit; the pretty-URL list is dropped first (reported).
404 rules are not honoured at the edge (a viewer-request function cannot set the status of the
origin's answer): they are reported, never silently changed into something else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UsageError
from ..manifest import Manifest
from ..routing.route import static_file
from .invalidation import index_urls

KVS_VALUE_LIMIT = 1024  # bytes: CloudFront KeyValueStore's limit for one value
MAX_ROUTE_VALUES = 8  # values read per request for a version's routes (all in parallel)
ROUTES_LIMIT = KVS_VALUE_LIMIT * MAX_ROUTE_VALUES - 8  # less the "<n>|" count at the front


class EdgeRoutesTooLarge(UsageError):
    kind = "edge_routes_too_large"


@dataclass(frozen=True)
class EdgeRoutes:
    values: tuple[str, ...]  # the KeyValueStore values, in key order; () when the version needs none
    notes: tuple[str, ...]  # what the edge does differently from the router, one line each

    @property
    def size(self) -> int:
        return sum(len(v.encode()) for v in self.values)


def routes_keys(routes_prefix: str, version: str, count: int) -> list[str]:
    """``routes_keys("atomicsite:routes:", v, 2)`` → ``["atomicsite:routes:<v>", "atomicsite:routes:<v>:1"]``."""
    base = f"{routes_prefix}{version}"
    return [base] + [f"{base}:{i}" for i in range(1, count)]


def _urls(path: str) -> list[str]:
    """Decoded request paths a file answers (or, for a directory, redirects) at: pretty URLs too."""
    if path.endswith(".html") and not (path == "index.html" or path.endswith("/index.html")):
        return ["/" + path, "/" + path[: -len(".html")]]
    return index_urls(path)


def _record(manifest: Manifest) -> tuple[dict, list[str]]:
    files = manifest.by_path
    notes: list[str] = []
    rules = []
    urls = [u for path in files for u in _urls(path)]
    for r in manifest.rules.redirects:
        line = f"{r.source} {r.to} {r.status}{'!' if r.force else ''}"
        if r.status == 404:
            notes.append(f"{line}: 404 rules are not applied at the edge (a viewer-request function cannot set "
                         "the status of the origin's answer); use the distribution's custom error response")
            continue
        shadow = [] if r.force else sorted(u for u in urls if r.pattern.match(u) is not None)
        rules.append([r.source, r.to, r.status, 1 if r.force else 0, shadow])
    pretty, extensionless = [], []
    for path in files:
        last = path.rsplit("/", 1)[-1]
        if "." not in last:
            extensionless.append("/" + path)
        elif path.endswith(".html") and not path.endswith("/index.html") and path != "index.html":
            bare = path[: -len(".html")]
            if "." not in bare.rsplit("/", 1)[-1] and static_file(files, bare) == path:
                pretty.append("/" + bare)
    return {"r": rules, "p": sorted(pretty), "e": sorted(extensionless)}, notes


def _dumps(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _split(text: str) -> tuple[str, ...]:
    """Values of at most KVS_VALUE_LIMIT bytes, cut between characters; the first says how many."""
    pieces, current, size = [], [], 0
    room = KVS_VALUE_LIMIT - 2  # the first piece also carries "<n>|" (n <= 8)
    for ch in text:
        n = len(ch.encode())
        if size + n > room:
            pieces.append("".join(current))
            current, size, room = [], 0, KVS_VALUE_LIMIT
        current.append(ch)
        size += n
    pieces.append("".join(current))
    return (f"{len(pieces)}|{pieces[0]}",) + tuple(pieces[1:])


def compile_edge_routes(manifest: Manifest) -> EdgeRoutes:
    """``compile_edge_routes(manifest).values`` → what to store under :func:`routes_keys`."""
    record, notes = _record(manifest)
    if not record["r"] and not record["p"] and not record["e"]:
        return EdgeRoutes((), tuple(notes))
    # Too big: first let the largest shadow lists fall back to the path-shape test, then drop the
    # pretty-URL list; only the rules themselves not fitting is an error.
    by_size = sorted((r for r in record["r"] if r[4]), key=lambda r: -len(_dumps(r[4])))
    for rule in by_size:
        if len(_dumps(record).encode()) <= ROUTES_LIMIT:
            break
        notes.append(f"{rule[0]} {rule[1]} {rule[2]}: {len(rule[4])} existing paths hide it, too many to ship to "
                     "the edge; there a path hides it when its last segment has a '.' or it ends in '/'")
        rule[4] = None
    if len(_dumps(record).encode()) > ROUTES_LIMIT and record["p"]:
        notes.append(f"{len(record['p'])} pretty URLs (like {record['p'][0]} → {record['p'][0]}.html) do not fit; "
                     "at the edge they redirect to a trailing slash instead: link to the .html names")
        record["p"] = []
    text = _dumps(record)
    if len(text.encode()) > ROUTES_LIMIT:
        raise EdgeRoutesTooLarge(
            f"version {manifest.version}'s {len(record['r'])} redirect rules need {len(text.encode())} bytes at the "
            f"edge; a CloudFront Function reads at most {MAX_ROUTE_VALUES} KeyValueStore values of "
            f"{KVS_VALUE_LIMIT} bytes ({ROUTES_LIMIT} bytes) per request",
            hint="Merge rules with * and :placeholders, or serve this site in origin-path mode or with atomicsite serve.",
        )
    return EdgeRoutes(_split(text), tuple(notes))
