"""Settings: flags, then ``ATOMICSITE_*`` environment, then ``atomicsite.toml`` / ``[tool.atomicsite]``.

Validated once into a frozen :class:`Settings`; every error names the key, variable or flag it came from.
See docs/config.md for every key.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .headers import HeaderRule
from .layout import DEFAULT_CHANNEL, check_channel
from .links import LinkSettings
from .scan import DEFAULT_IGNORE
from .stores import StoreOptions

DEFAULT_TARGET = ".atomicsite/site"
"""Where publish goes when no target is configured: a local store under the current directory."""


@dataclass(frozen=True)
class PruneSettings:
    keep: int = 10
    grace_seconds: float = 24 * 3600  # partial uploads younger than this are left alone
    max_delete: int = 20  # versions; more than this needs --force


@dataclass(frozen=True)
class Settings:
    target: str | None = None
    channel: str = DEFAULT_CHANNEL
    store: StoreOptions = field(default_factory=StoreOptions)
    rules: tuple[HeaderRule, ...] = ()
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    concurrency: int = 32
    retries: int = 5
    reuse_from: int = 3  # newest complete versions whose files may be copied instead of uploaded
    prune: PruneSettings = field(default_factory=PruneSettings)
    cloudfront: Any = None  # atomicsite.cdn.cloudfront.CloudFrontSettings, from the [cloudfront] table
    verify_urls: tuple[str, ...] = ()  # given for this command (--verify-url, the API): any channel
    verify_timeout: float = 120.0
    # (channel name or glob, URLs) from [channels.<name>] verify_urls and the top-level verify_urls;
    # exact names first. See verify_urls_for.
    channel_verify_urls: tuple[tuple[str, tuple[str, ...]], ...] = ()
    links: LinkSettings = field(default_factory=LinkSettings)  # the [links] table: the broken-reference gate
    config_file: str | None = None

    @property
    def target_or_default(self) -> str:
        return self.target or DEFAULT_TARGET

    def verify_urls_for(self, channel: str) -> tuple[str, ...]:
        """The URLs to health-check after ``channel`` is switched: ``verify_urls`` given for this
        command, else the channel's own (``{channel}`` filled in), else none. A preview channel is
        never checked against the production URL.

        >>> s = Settings(channel_verify_urls=(("live", ("https://example.com/",)),
        ...                                   ("pr-*", ("https://{channel}.preview.example.com/",))))
        >>> s.verify_urls_for("pr-7"), s.verify_urls_for("staging")
        (('https://pr-7.preview.example.com/',), ())
        """
        if self.verify_urls:
            return self.verify_urls
        for pattern, urls in self.channel_verify_urls:
            if pattern == channel or fnmatch.fnmatchcase(channel, pattern):
                return tuple(u.replace("{channel}", channel) for u in urls)
        return ()

    def with_overrides(self, **flags) -> Settings:
        """Flags win: ``settings.with_overrides(target="s3://b/p")``; None means 'not given'."""
        given = {k: v for k, v in flags.items() if v is not None}
        store_keys = {k: given.pop(k) for k in list(given) if k in StoreOptions.__dataclass_fields__}
        out = replace(self, **given)
        if store_keys:
            out = replace(out, store=replace(out.store, **store_keys))
        if "concurrency" in given:
            out = replace(out, store=replace(out.store, max_workers=out.concurrency))
        return _validated(out, "flag")


def with_cloudfront_flags(settings: Settings, pairs: list[str]) -> Settings:
    """Apply ``--cloudfront KEY=VALUE`` flags over the ``[cloudfront]`` table; values are read as TOML
    scalars when they parse (``wait=true``, ``max_invalidation_paths=500``), else as strings."""
    from dataclasses import fields

    from .cdn.cloudfront import CloudFrontSettings

    current = settings.cloudfront
    table = {f.name: getattr(current, f.name) for f in fields(current)
             if getattr(current, f.name) is not None} if current else {}
    if current and not any(p.partition("=")[0].strip() == "mode" for p in pairs):
        table.pop("mode")  # let the flags' origin_id / kvs_arn choose it again
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--cloudfront {pair!r}: expected KEY=VALUE", hint="e.g. --cloudfront distribution_id=E2QWRUHAPOMQZL")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        table[key.strip()] = value
    return replace(settings, cloudfront=CloudFrontSettings.from_mapping(table))


_TOP_KEYS = {
    "target", "channel", "endpoint_url", "region", "profile", "addressing_style", "checksums", "project",
    "allow_unsafe_cas", "concurrency", "retries", "reuse_from", "ignore", "headers", "prune", "cloudfront",
    "verify_urls", "verify_timeout", "serve", "links", "channels",
}
_ENV = {
    "TARGET": "target", "CHANNEL": "channel", "ENDPOINT_URL": "endpoint_url", "REGION": "region",
    "PROFILE": "profile", "ADDRESSING_STYLE": "addressing_style", "CHECKSUMS": "checksums",
    "PROJECT": "project", "ALLOW_UNSAFE_CAS": "allow_unsafe_cas", "CONCURRENCY": "concurrency",
    "RETRIES": "retries",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | int | float, *, where: str) -> float:
    """``"30d"`` → seconds. Units s, m, h, d, w; a bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _DURATION.match(str(text).strip().lower())
    if not m:
        raise ConfigError(f"{where}: {text!r} is not a duration", hint="Use a number with s, m, h, d or w (e.g. 30d).")
    return float(m.group(1)) * _UNITS[m.group(2)]


def find_config_file(cwd: Path, explicit: str | None = None) -> tuple[Path, dict] | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="Fix --config / ATOMICSITE_CONFIG.")
        data = _read_toml(path)
        return path, (_tool_table(data, path) or {} if path.name == "pyproject.toml" else data)
    own = cwd / "atomicsite.toml"
    if own.is_file():
        return own, _read_toml(own)
    py = cwd / "pyproject.toml"
    if py.is_file():
        table = _tool_table(_read_toml(py), py)
        if table is not None:
            return py, table
    return None


def _tool_table(data: dict, path: Path) -> dict | None:
    tool = data.get("tool", {})
    table = tool.get("atomicsite") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.atomicsite] must be a table")
    return table


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None


def _bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{where}: {value!r} is not true or false")


def _int(value, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or isinstance(value, float):
        raise ConfigError(f"{where}: {value!r} is not a whole number")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a whole number") from None
    if n < minimum:
        raise ConfigError(f"{where}: must be at least {minimum}, got {n}")
    return n


def _apply(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    """Fold one source's values (already with canonical key names) into settings."""

    def where(key: str) -> str:
        return f"{origin} {key}"

    store = settings.store
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _TOP_KEYS:
            raise ConfigError(f"{origin}: unknown setting {key!r}", hint=f"Known settings: {', '.join(sorted(_TOP_KEYS))}.")
        if key in ("target", "channel"):
            out[key] = str(value)
        elif key in ("endpoint_url", "region", "profile", "project"):
            store = replace(store, **{key: str(value)})
        elif key == "addressing_style":
            if value not in ("auto", "path", "virtual"):
                raise ConfigError(f"{where(key)}: {value!r} is not auto, path or virtual")
            store = replace(store, addressing_style=value)
        elif key == "checksums":
            if value not in ("when_required", "when_supported"):
                raise ConfigError(f"{where(key)}: {value!r} is not when_required or when_supported")
            store = replace(store, checksums=value)
        elif key == "allow_unsafe_cas":
            store = replace(store, allow_unsafe_cas=_bool(value, where(key)))
        elif key == "concurrency":
            out[key] = _int(value, where(key), 1)
            store = replace(store, max_workers=out[key])
        elif key in ("retries", "reuse_from"):
            out[key] = _int(value, where(key), 1 if key == "retries" else 0)
        elif key == "ignore":
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ConfigError(f"{where(key)}: must be a list of glob strings")
            out[key] = tuple(value)
        elif key == "headers":
            out["rules"] = _header_rules(value, where(key))
        elif key == "prune":
            out[key] = _prune(value, where(key), settings.prune)
        elif key == "cloudfront":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where(key)}: must be a table")
            from .cdn.cloudfront import CloudFrontSettings  # validated now, before any upload

            out[key] = CloudFrontSettings.from_mapping(value)
        elif key == "verify_urls":
            # the top level's URLs belong to the channel this config file names (default live)
            own = str(values.get("channel", settings.channel))
            per_channel = dict(out.get("channel_verify_urls", settings.channel_verify_urls))
            per_channel.setdefault(own, _verify_urls(value, where(key)))
            out["channel_verify_urls"] = _ordered(per_channel)
        elif key == "channels":
            per_channel = dict(out.get("channel_verify_urls", settings.channel_verify_urls))
            per_channel.update(_channels(value, where(key)))  # [channels.<name>] wins over the top level
            out["channel_verify_urls"] = _ordered(per_channel)
        elif key == "verify_timeout":
            out[key] = parse_duration(value, where=where(key))
        elif key == "links":
            out[key] = LinkSettings.from_mapping(value, where(key))
        # "serve" is read by atomicsite.serve
    return _validated(replace(settings, store=store, **out), origin)


def _header_rules(value, where: str) -> tuple[HeaderRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of tables like {{ match = '*.html', cache_control = '...' }}")
    rules = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) - {"match", "content_type", "cache_control"}:
            raise ConfigError(f"{where}[{i}]: a rule has keys match, content_type, cache_control only")
        try:
            rules.append(HeaderRule(str(item.get("match", "")), item.get("content_type"), item.get("cache_control")))
        except ConfigError as exc:
            raise ConfigError(f"{where}[{i}]: {exc.message}", hint=exc.hint) from None
    return tuple(rules)


_CHANNEL_GLOB = re.compile(r"^[a-z0-9*?\[][a-z0-9._*?\[\]!-]{0,62}$")


def _verify_urls(value, where: str) -> tuple[str, ...]:
    from urllib.parse import urlparse

    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise ConfigError(f"{where}: must be a list of URLs")
    for url in value:
        parsed = urlparse(url.replace("{channel}", "channel"))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"{where}: {url!r} is not an absolute http(s) URL", hint="e.g. https://www.example.com/")
    return tuple(value)


def _channels(value, where: str) -> dict[str, tuple[str, ...]]:
    """``[channels.live] verify_urls = [...]``, ``[channels."pr-*"] verify_urls = ["https://{channel}.x/"]``."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a table of channels, like [channels.live]")
    out = {}
    for name, table in value.items():
        if not _CHANNEL_GLOB.match(name):
            raise ConfigError(f"{where}.{name}: not a channel name or glob", hint="Use names like live, staging, pr-*.")
        if not isinstance(table, Mapping) or set(table) - {"verify_urls"}:
            raise ConfigError(f"{where}.{name}: a channel table has verify_urls only")
        out[name] = _verify_urls(table.get("verify_urls", []), f"{where}.{name}.verify_urls")
    return out


def _ordered(per_channel: dict[str, tuple[str, ...]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Exact channel names first, then globs in the order they were written."""
    return tuple(sorted(per_channel.items(), key=lambda kv: any(c in kv[0] for c in "*?[")))


def _prune(value, where: str, current: PruneSettings) -> PruneSettings:
    if not isinstance(value, Mapping) or set(value) - {"keep", "grace", "max_delete"}:
        raise ConfigError(f"{where}: a table with keep, grace, max_delete")
    return PruneSettings(
        keep=_int(value.get("keep", current.keep), f"{where}.keep", 1),
        grace_seconds=parse_duration(value.get("grace", current.grace_seconds), where=f"{where}.grace"),
        max_delete=_int(value.get("max_delete", current.max_delete), f"{where}.max_delete", 1),
    )


def _validated(settings: Settings, origin: str) -> Settings:
    try:
        check_channel(settings.channel)
    except Exception as exc:
        raise ConfigError(f"{origin} channel: {exc}") from None
    return settings


def load_settings(*, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                  config_file: str | None = None) -> Settings:
    """Settings from the config file and the environment (flags are applied by the caller)."""
    cwd = cwd or Path.cwd()
    env = os.environ if env is None else env
    settings = Settings()
    found = find_config_file(cwd, config_file or env.get("ATOMICSITE_CONFIG"))
    if found:
        path, table = found
        settings = replace(_apply(settings, table, str(path)), config_file=str(path))
    from_env = {canon: env[f"ATOMICSITE_{name}"] for name, canon in _ENV.items() if env.get(f"ATOMICSITE_{name}")}
    if from_env:
        settings = _apply(settings, from_env, "environment ATOMICSITE_*")
    return settings
