"""Invalidation after an origin-path switch: what can be stale, encoded as CloudFront wants it."""

from __future__ import annotations

import uuid

from ..headers import is_fingerprinted
from ..manifest import Manifest
from ._switcher import _CloudFrontSwitcher
from .aws import _call, _poll
from .settings import DEFAULT_INVALIDATION_PATHS, REPORTED_PATHS
from .switching import SwitchContext, SwitchReport


def is_immutable(cache_control: str) -> bool:
    return "immutable" in (d.split("=")[0].strip().lower() for d in cache_control.split(","))


# RFC 3986 pchar minus '*' (CloudFront's wildcard) and minus '%': CloudFront wants non-ASCII and
# unsafe characters percent-encoded and every other character left alone, or the path will not
# match the cached URL. '~' stays literal because browsers send it literally.
_LITERAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/!$&'()+,;=:@")


def encode_invalidation_path(path: str) -> str:
    """``encode_invalidation_path("/café menu.html")`` → ``"/caf%C3%A9%20menu.html"``."""
    return "".join(c if c in _LITERAL else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in path)


def index_urls(path: str) -> list[str]:
    """The request paths a file answers at: its own, and a directory index's "/dir/" and "/dir" too
    (CloudFront caches by URL; the edge function redirects "/dir" to "/dir/")."""
    urls = ["/" + path]
    if path == "index.html" or path.endswith("/index.html"):
        directory = path[: -len("index.html")]
        urls.append("/" + directory)
        if directory:
            urls.append("/" + directory.rstrip("/"))
    return urls


def invalidation_paths(manifest: Manifest, previous: Manifest | None = None, *,
                       limit: int = DEFAULT_INVALIDATION_PATHS) -> list[str]:
    """What can be stale at the edges after switching from ``previous`` to ``manifest``.

    Every non-immutable file of the new version; files removed since ``previous`` unless their name
    is fingerprinted; files added since ``previous`` under a name that is not fingerprinted (an older
    version may have had other bytes there, marked immutable by a header rule); and files whose bytes
    or headers changed under the same path even if immutable (a mislabelled fingerprint). Unchanged
    fingerprinted assets are never invalidated. More than ``limit`` URLs → ``["/*"]``.
    """
    stale = {f.path for f in manifest.files if not is_immutable(f.cache_control)}
    if previous is not None:
        for old in previous.files:
            new = manifest.by_path.get(old.path)
            if new is None:
                if not is_immutable(old.cache_control) or not is_fingerprinted(old.path):
                    stale.add(old.path)
            elif new.identity() != old.identity():
                stale.add(old.path)
        stale |= {f.path for f in manifest.files if f.path not in previous.by_path and not is_fingerprinted(f.path)}
    urls = sorted({encode_invalidation_path(u) for p in stale for u in index_urls(p)})
    return ["/*"] if len(urls) > limit else urls



class InvalidationSwitcher(_CloudFrontSwitcher):
    """Invalidate what can be stale after an origin-path switch (see :func:`invalidation_paths`)."""

    name = "cloudfront-invalidation"

    def apply(self, ctx: SwitchContext) -> SwitchReport:
        if skipped := self._skip(ctx):
            return skipped
        s = self.settings
        paths = invalidation_paths(ctx.manifest, ctx.previous_manifest, limit=s.max_invalidation_paths)
        base = {"distribution_id": s.distribution_id, "path_count": len(paths), "paths": paths[:REPORTED_PATHS]}
        if not paths:
            return SwitchReport(self.name, True, "nothing to invalidate: only immutable assets changed",
                                {**base, "invalidation_id": None})
        # One reference for every retry of this call: CloudFront answers a repeated reference with the
        # invalidation it already created instead of creating a second one.
        reference = f"atomicsite-{ctx.version}-{uuid.uuid4().hex[:12]}"
        on = f"distribution {s.distribution_id}"
        created = self._retry.call(lambda: _call(
            "cloudfront:CreateInvalidation", on, self.client.create_invalidation, DistributionId=s.distribution_id,
            InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": reference},
        ))["Invalidation"]
        inv_id, status = created["Id"], created["Status"]
        if s.wait:
            def fetch() -> str:
                return self._retry.call(lambda: _call(
                    "cloudfront:GetInvalidation", on, self.client.get_invalidation,
                    DistributionId=s.distribution_id, Id=inv_id))["Invalidation"]["Status"]

            # CloudFront says "Completed"; moto says "COMPLETED".
            status = _poll(f"invalidation {inv_id}", fetch, lambda st: st.lower() == "completed", s,
                           self._sleep, self._clock)
        what = "everything (/*)" if paths == ["/*"] else f"{len(paths)} paths"
        return SwitchReport(self.name, True, f"invalidation {inv_id} of {what} on {s.distribution_id}: {status}",
                            {**base, "invalidation_id": inv_id, "status": status, "caller_reference": reference})
