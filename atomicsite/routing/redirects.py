"""Redirect and rewrite rules: Netlify's ``_redirects`` file and ``[[redirects]]`` config tables.

One rule a line: ``from to [status][!]``. ``#`` starts a comment line. Status 301 (the default), 302,
303, 307 and 308 redirect; 200 rewrites (serves ``to`` at the ``from`` URL); 404 serves ``to`` with
status 404 (a custom not-found page for part of the site). ``!`` forces the rule even where a file
exists at the path; without it a file "shadows" the rule, as on Netlify. The first matching rule wins.

What Netlify has and atomicsite refuses, with the line named: query-parameter conditions, country /
language / role / cookie conditions, host (domain-level) rules, and 200 rewrites to another site
(proxying). Refusing beats silently serving something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from .patterns import PathPattern, PatternError, compile_pattern, compiled_pattern, placeholders_in

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
STATUSES = (200, 404) + REDIRECT_STATUSES
_CONDITIONS = ("country=", "language=", "role=", "cookie=", "signed=")


class RuleError(UsageError):
    """A bad line in ``_redirects`` / ``_headers`` or a bad rule table in the config."""

    kind = "rules"


@dataclass(frozen=True)
class Redirect:
    """``Redirect("/old/*", "/new/:splat", 301)``. ``to`` is a site path or an http(s) URL."""

    source: str
    to: str
    status: int = 301
    force: bool = False

    @property
    def pattern(self) -> PathPattern:
        return compiled_pattern(self.source)

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECT_STATUSES

    @property
    def external(self) -> bool:
        return self.to.startswith(("http://", "https://"))

    def to_dict(self) -> dict:
        return {"from": self.source, "to": self.to, "status": self.status, "force": self.force}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Redirect:
        return cls(str(d["from"]), str(d["to"]), int(d["status"]), bool(d["force"]))


def make_redirect(source: str, to: str, status: int, force: bool, where: str) -> Redirect:
    """Validate one rule; errors start with ``where`` (``dist/_redirects:7`` or ``atomicsite.toml redirects[2]``)."""

    def bad(why: str, hint: str) -> RuleError:
        return RuleError(f"{where}: {why}", hint=hint)

    try:
        pattern = compile_pattern(source)
    except PatternError as exc:
        raise bad(str(exc), "Write the from path like /old/page, /news/* or /blog/:year/:slug.") from None
    if status not in STATUSES:
        raise bad(f"status {status} is not supported",
                  f"Use one of {', '.join(map(str, STATUSES))} (optionally with ! to force).")
    if not to.startswith(("/", "http://", "https://")):
        raise bad(f"{to!r} is neither a site path (/...) nor an http(s) URL", "Start it with / or https://.")
    unknown = placeholders_in(to.split("://", 1)[-1]) - set(pattern.names)
    if unknown:
        raise bad(f"{to!r} uses :{sorted(unknown)[0]}, which the from path {source!r} does not capture",
                  "Use :splat for a trailing * and the :names of the from path.")
    if to.startswith(("http://", "https://")) and status in (200, 404):
        raise bad(f"a {status} rule to another site ({to}) would be a proxy, which atomicsite does not do",
                  "Redirect to it with 301/302 instead, or put a proxy in front of the site.")
    if status in (200, 404) and ("?" in to or "#" in to):
        raise bad(f"a {status} rule serves a file; {to!r} has a query or fragment", "Name the file's path only.")
    return Redirect(source, to, status, force)


def parse_redirects(text: str, where: str) -> tuple[Redirect, ...]:
    """``parse_redirects("/a /b 302\\n", "_redirects")`` → ``(Redirect("/a", "/b", 302),)``."""
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        at = f"{where}:{n}"
        tokens = line.split()
        if len(tokens) < 2:
            raise RuleError(f"{at}: {line!r} has no destination", hint="Write 'from to [status]', like '/old /new 301'.")
        source, rest = tokens[0], tokens[1:]
        if "=" in rest[0] and not rest[0].startswith(("/", "http://", "https://")):
            raise RuleError(f"{at}: query-parameter conditions ({rest[0]}) are not supported",
                            hint="Remove the condition; atomicsite rules match the path only.")
        to, rest = rest[0], rest[1:]
        status, force = 301, False
        if rest:
            code = rest[0]
            if code.endswith("!"):
                force, code = True, code[:-1]
            if code.isdigit():
                status, rest = int(code), rest[1:]
            elif force or not rest[0].lower().startswith(_CONDITIONS):
                raise RuleError(f"{at}: {rest[0]!r} is not a status code",
                                hint=f"Use one of {', '.join(map(str, STATUSES))}, optionally with ! (like 301!).")
        if rest:
            raise RuleError(f"{at}: conditions ({' '.join(rest)}) are not supported",
                            hint="atomicsite rules match the path only; remove country/language/role/cookie conditions.")
        rules.append(make_redirect(source, to, status, force, at))
    return tuple(rules)


def redirects_from_config(value: Any, where: str) -> tuple[Redirect, ...]:
    """``[[redirects]]`` tables: ``from``, ``to``, ``status`` (301), ``force`` (false)."""
    if not isinstance(value, list):
        raise RuleError(f"{where}: must be a list of tables like {{ from = '/old', to = '/new', status = 301 }}")
    rules = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise RuleError(f"{at}: must be a table with from, to, status, force")
        extra = set(item) - {"from", "to", "status", "force"}
        if extra:
            raise RuleError(f"{at}: unknown key {sorted(extra)[0]!r}",
                            hint="A redirect has from, to, status and force only (query and conditions are not supported).")
        if not isinstance(item.get("from"), str) or not isinstance(item.get("to"), str):
            raise RuleError(f"{at}: from and to must be strings")
        status = item.get("status", 301)
        if isinstance(status, bool) or not isinstance(status, int):
            raise RuleError(f"{at}.status: {status!r} is not a status code")
        force = item.get("force", False)
        if not isinstance(force, bool):
            raise RuleError(f"{at}.force: {force!r} is not true or false")
        rules.append(make_redirect(item["from"], item["to"], status, force, at))
    return tuple(rules)
