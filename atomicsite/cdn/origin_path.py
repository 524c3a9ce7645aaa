"""Origin-path mode: point the distribution origin at ``/<prefix>/v/<version>`` (ETag-guarded)."""

from __future__ import annotations

from ..errors import ConflictError
from ._switcher import _CloudFrontSwitcher
from .aws import _call, _poll
from .settings import _bad, origin_path
from .switching import SwitchContext, SwitchReport


class OriginPathSwitcher(_CloudFrontSwitcher):
    """Point the distribution's origin at ``/<prefix>/v/<version>`` (ETag-guarded), optionally wait."""

    name = "cloudfront-origin"

    def apply(self, ctx: SwitchContext) -> SwitchReport:
        if skipped := self._skip(ctx):
            return skipped
        s = self.settings
        want = origin_path(ctx.root_prefix, ctx.version)
        # The whole read-modify-write is retried: if an update landed but its answer was lost, the
        # retry reads the new config, finds the path already set and does not write again.
        before, etag = self._retry.call(lambda: self._point(want))
        deployed = None
        if s.wait:
            self._poll_deployed()
            deployed = True
        verb = "already at" if before == want else f"{before or '(none)'} →"
        tail = "deployed" if deployed else "propagating (minutes; each edge serves one whole version meanwhile)"
        return SwitchReport(self.name, True,
                            f"distribution {s.distribution_id} origin {s.origin_id}: {verb} {want}, {tail}",
                            {"distribution_id": s.distribution_id, "origin_id": s.origin_id, "origin_path": want,
                             "previous_origin_path": before, "changed": before != want, "etag": etag,
                             "deployed": deployed})

    def _point(self, want: str) -> tuple[str, str]:
        s = self.settings
        on = f"distribution {s.distribution_id}"
        got = _call("cloudfront:GetDistributionConfig", on, self.client.get_distribution_config, Id=s.distribution_id)
        config, etag = got["DistributionConfig"], got["ETag"]
        origins = config.get("Origins", {}).get("Items") or []
        origin = next((o for o in origins if o.get("Id") == s.origin_id), None)
        if origin is None:
            ids = ", ".join(repr(o.get("Id")) for o in origins) or "none"
            raise _bad("origin_id", f"distribution {s.distribution_id} has no origin {s.origin_id!r} (its origins: {ids})")
        before = origin.get("OriginPath") or ""
        if before == want:
            return before, etag
        origin["OriginPath"] = want
        try:
            done = _call("cloudfront:UpdateDistribution", on, self.client.update_distribution,
                         Id=s.distribution_id, IfMatch=etag, DistributionConfig=config)
        except ConflictError:
            raise ConflictError(
                f"distribution {s.distribution_id} changed while atomicsite was updating its origin path "
                f"(ETag {etag} is no longer current); nothing was written",
                hint="Re-run `atomicsite promote <version>` to re-read the config and re-apply.",
            ) from None
        return before, done["ETag"]

    def _poll_deployed(self) -> None:
        s = self.settings

        def fetch() -> str:
            return self._retry.call(lambda: _call(
                "cloudfront:GetDistribution", f"distribution {s.distribution_id}", self.client.get_distribution,
                Id=s.distribution_id))["Distribution"]["Status"]

        _poll(f"distribution {s.distribution_id}", fetch, lambda st: st == "Deployed", s, self._sleep, self._clock)
