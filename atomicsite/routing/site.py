"""SiteRules: the redirects and response headers of one version, as recorded in its manifest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from .patterns import normal_path

from .redirects import Redirect, RuleError, make_redirect
from .response_headers import HeaderBlock, _check_header, _check_pattern


@dataclass(frozen=True)
class SiteRules:
    """``SiteRules(redirects=(Redirect("/old", "/new"),))``; empty for most sites."""

    redirects: tuple[Redirect, ...] = ()
    headers: tuple[HeaderBlock, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.redirects or self.headers)

    def matching(self, path: str, *, forced_only: bool = False) -> Iterator[tuple[Redirect, dict[str, str]]]:
        """The rules matching a decoded request path, in rule order, with their captures.

        Literal rules are found by a dict lookup and only ``*``/``:name`` rules are tried one by one, so
        a site with thousands of literal redirects costs the same per request as one with a few.
        """
        literal, patterned = self._index[forced_only]
        hits = [(i, {}) for i in literal.get(normal_path(path), ())]
        for i in patterned:
            captures = self.redirects[i].pattern.match(path)
            if captures is not None:
                hits.append((i, captures))
        hits.sort(key=lambda hit: hit[0])
        for i, captures in hits:
            yield self.redirects[i], captures

    @cached_property
    def _index(self) -> dict[bool, tuple[dict[str, list[int]], list[int]]]:
        out = {}
        for forced_only in (False, True):
            literal: dict[str, list[int]] = {}
            patterned: list[int] = []
            for i, r in enumerate(self.redirects):
                if forced_only and not r.force:
                    continue
                if r.pattern.is_literal:
                    literal.setdefault(normal_path(unquote(r.source)), []).append(i)
                else:
                    patterned.append(i)
            out[forced_only] = (literal, patterned)
        return out

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
