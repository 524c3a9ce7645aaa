"""Router settings, validated once: the ``[serve]`` table, then flags or keyword arguments.

Host rules map a request's Host to a channel. A rule's host may hold ``{name}`` placeholders, each
matching one DNS label; the channel may use the same names::

    [serve.host_channels]
    "www.example.com" = "live"
    "{channel}.preview.example.com" = "{channel}"      # pr-12.preview.example.com → channel pr-12

Exact hosts are checked first, then patterns in the order given; a host no rule matches gets the
default channel.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..errors import ConfigError, UsageError
from ..layout import DEFAULT_CHANNEL, check_channel

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


@dataclass(frozen=True)
class HostRule:
    """``{channel}.preview.example.com`` → ``{channel}``: a host (pattern) and the channel it serves."""

    host: str
    channel: str
    regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, host: str, channel: str, *, where: str) -> HostRule:
        host, channel = str(host).strip().lower().rstrip("."), str(channel).strip()
        names = [name for _, name, _, _ in string.Formatter().parse(host) if name is not None]
        used = [name for _, name, _, _ in string.Formatter().parse(channel) if name is not None]
        if not host:
            raise ConfigError(f"{where}: an empty host")
        if any(not n.isidentifier() for n in names + used):
            raise ConfigError(f"{where}: placeholders are {{name}} with a plain name, got {host!r} → {channel!r}")
        if set(used) - set(names):
            raise ConfigError(f"{where}: the channel {channel!r} uses a placeholder the host {host!r} does not capture")
        if not names:
            try:
                check_channel(channel)
            except UsageError as exc:
                raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
            return cls(host, channel)
        pattern, seen = "", set()
        for literal, name, _, _ in string.Formatter().parse(host):
            pattern += re.escape(literal)
            if name is not None:
                pattern += f"(?P={name})" if name in seen else f"(?P<{name}>{_LABEL})"
                seen.add(name)
        return cls(host, channel, re.compile(f"^{pattern}$"))

    def match(self, host: str) -> str | None:
        if self.regex is None:
            return self.channel if host == self.host else None
        m = self.regex.match(host)
        return self.channel.format(**m.groupdict()) if m else None


def host_rules(value: Mapping[str, str] | Iterable[str] | str | None, *, where: str) -> tuple[HostRule, ...]:
    """A mapping ``{host: channel}``, or pattern strings (``"{channel}.preview.example.com"``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        pairs = [(h, c) for h, c in value.items()]
    else:
        pairs = []
        for item in value:
            if not isinstance(item, str) or "{channel}" not in item:
                raise ConfigError(f"{where}: a bare host pattern must contain {{channel}}, got {item!r}",
                                  hint="Or give a table of host = channel.")
            pairs.append((item, "{channel}"))
    rules = [HostRule.parse(h, c, where=f"{where} {h!r}") for h, c in pairs]
    # exact hosts first: a literal rule always beats a pattern that would also match it
    return tuple([r for r in rules if r.regex is None] + [r for r in rules if r.regex is not None])


@dataclass(frozen=True)
class ServeConfig:
    """Everything the router and its runner need. Durations are seconds."""

    channel: str = DEFAULT_CHANNEL
    """The channel served to hosts no rule matches."""
    host_channels: tuple[HostRule, ...] = ()
    pointer_ttl: float = 1.0
    """How long a channel pointer is reused before it is read again: a switch reaches every replica within it."""
    pointer_wait: float = 2.0
    """How long a request waits for a due pointer read before it is answered from the last good pointer."""
    spa_fallback: str | None = None
    """Path of the page served (status 200) for unknown paths that ask for HTML; None = off."""
    skew_protection: bool = True
    cookie_name: str = "atomicsite_version"
    pin_recheck: float = 10.0
    """How often a pinned older version is checked to still be committed (not pruned)."""
    body_cache_bytes: int = 32 << 20
    """Memory for whole small files, keyed by sha256 (so always correct); 0 = off."""
    body_cache_file_limit: int = 256 << 10
    max_manifests: int = 64
    max_channels: int = 1024
    store_threads: int = 32
    host: str = "127.0.0.1"
    port: int = 8000
    graceful_timeout: float = 30.0
    """Seconds in-flight responses get to finish after SIGTERM."""

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, where: str = "[serve]",
                     base: ServeConfig | None = None) -> ServeConfig:
        """Read a ``[serve]`` table (or keyword options); errors name ``where`` and the key."""
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table")
        out: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for key, value in table.items():
            at = f"{where} {key}"
            if key not in known:
                raise ConfigError(f"{where}: unknown setting {key!r}", hint=f"Known: {', '.join(sorted(known))}.")
            if value is None:
                continue
            if key == "host_channels":
                out[key] = value if _is_rules(value) else host_rules(value, where=at)
            elif key in ("pointer_ttl", "pointer_wait", "pin_recheck", "graceful_timeout"):
                out[key] = _seconds(value, at)
            elif key == "spa_fallback":
                out[key] = _spa(value, at)
            elif key == "skew_protection":
                from ..config import _bool

                out[key] = _bool(value, at)
            elif key in ("body_cache_bytes", "body_cache_file_limit", "port"):
                out[key] = _whole(value, at, 0)
            elif key in ("max_manifests", "max_channels", "store_threads"):
                out[key] = _whole(value, at, 1)
            elif key == "channel":
                try:
                    out[key] = check_channel(str(value))
                except UsageError as exc:
                    raise ConfigError(f"{at}: {exc.message}", hint=exc.hint) from None
            elif key == "cookie_name":
                if not isinstance(value, str) or not _COOKIE_NAME.match(value):
                    raise ConfigError(f"{at}: {value!r} is not a cookie name")
                out[key] = value
            else:  # host
                out[key] = str(value)
        if out.get("port", 1) > 65535:
            raise ConfigError(f"{where} port: {out['port']} is not a TCP port")
        return replace(base or cls(), **out)

    def with_overrides(self, where: str = "option", **options) -> ServeConfig:
        """Flags or keyword arguments win; None means 'not given'."""
        return ServeConfig.from_mapping({k: v for k, v in options.items() if v is not None}, where=where, base=self)

    def channel_for(self, host: str) -> str | None:
        """The channel a (normalised) Host serves; None when a rule yields an invalid channel name."""
        for rule in self.host_channels:
            channel = rule.match(host)
            if channel is not None:
                try:
                    return check_channel(channel)
                except UsageError:
                    return None
        return self.channel


def _is_rules(value) -> bool:
    return isinstance(value, tuple) and all(isinstance(r, HostRule) for r in value)


def _seconds(value, where: str) -> float:
    from ..config import parse_duration

    seconds = parse_duration(value, where=where)
    if seconds < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    return seconds


def _whole(value, where: str, minimum: int) -> int:
    from ..config import _int

    return _int(value, where, minimum)


def _spa(value, where: str) -> str | None:
    if value is True:
        return "index.html"
    if value is False or value == "":
        return None
    if isinstance(value, str):
        path = value.strip().lstrip("/")
        if path.lower() in ("true", "yes", "on", "1"):
            return "index.html"
        if path.lower() in ("false", "no", "off", "0"):
            return None
        if not path or any(p in ("", ".", "..") for p in path.split("/")):
            raise ConfigError(f"{where}: {value!r} is not a file path inside the site")
        return path
    raise ConfigError(f"{where}: true, false, or the path of the page to serve (e.g. 'index.html')")
