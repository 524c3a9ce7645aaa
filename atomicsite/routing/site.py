"""SiteRules: the redirects and response headers of one version, as recorded in its manifest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .redirects import Redirect, RuleError, make_redirect
from .response_headers import HeaderBlock, _check_header, _check_pattern


@dataclass(frozen=True)
class SiteRules:
    """``SiteRules(redirects=(Redirect("/old", "/new"),))``; empty for most sites."""

    redirects: tuple[Redirect, ...] = ()
    headers: tuple[HeaderBlock, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.redirects or self.headers)

    def to_dict(self) -> dict:
        return {"redirects": [r.to_dict() for r in self.redirects], "headers": [h.to_dict() for h in self.headers]}

    @classmethod
    def from_dict(cls, d: Any) -> SiteRules:
        """Read (and re-validate) a manifest's ``rules``; any defect is a ValueError."""
        if not isinstance(d, Mapping):
            raise ValueError("rules is not an object")
        try:
            redirects = tuple(Redirect.from_dict(r) for r in d.get("redirects", ()))
            headers = tuple(HeaderBlock.from_dict(h) for h in d.get("headers", ()))
            for r in redirects:
                make_redirect(r.source, r.to, r.status, r.force, "manifest rule")
            for h in headers:
                _check_pattern(h.source, "manifest rule")
                for name, value in h.values:
                    _check_header(name, value, "manifest rule")
        except (KeyError, TypeError, ValueError, RuleError) as exc:
            raise ValueError(f"bad rules ({exc})") from None
        return cls(redirects, headers)
