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

from .durations import parse_duration  # noqa: F401  (re-exported: atomicsite.config.parse_duration)
from .compress import CompressSettings, parse_encodings, parse_types
from .errors import ConfigError, UsageError
from .headers import HeaderRule
from .layout import DEFAULT_CHANNEL, LAYOUTS, check_channel
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
    wait_seconds: float = 60.0  # how long publish/promote wait for a running prune to finish with their version


@dataclass(frozen=True)
class Settings:
    target: str | None = None
    channel: str = DEFAULT_CHANNEL
    store: StoreOptions = field(default_factory=StoreOptions)
    rules: tuple[HeaderRule, ...] = ()  # [[headers]] with match: object metadata per file
    response_headers: tuple = ()  # [[headers]] with for/values: atomicsite.routing.HeaderBlock per URL path
    redirects: tuple = ()  # [[redirects]]: atomicsite.routing.Redirect, after the build dir's _redirects
    website_redirects: bool = False  # S3 website hosting: 301 rules as x-amz-website-redirect-location objects
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    concurrency: int = 32
    retries: int = 5
    reuse_from: int = 3  # newest complete versions whose files may be copied instead of uploaded
    layout: str | None = None  # "tree" | "objects"; None: the live version's, else the store's default
    prune: PruneSettings = field(default_factory=PruneSettings)
    cloudfront: Any = None  # atomicsite.cdn.settings.CloudFrontSettings, from the [cloudfront] table
    verify_urls: tuple[str, ...] = ()  # given for this command (--verify-url, the API): any channel
    verify_timeout: float = 120.0
    # (channel name or glob, URLs) from [channels.<name>] verify_urls and the top-level verify_urls;
    # exact names first. See verify_urls_for.
    channel_verify_urls: tuple[tuple[str, tuple[str, ...]], ...] = ()
    links: LinkSettings = field(default_factory=LinkSettings)  # the [links] table: the broken-reference gate
    serve: Any = None  # atomicsite.serve.config.ServeConfig from the [serve] table, validated at load
    preview_url: Any = None  # atomicsite.previews.PreviewUrl: "https://{channel}.preview.example.com"
    compress: CompressSettings = field(default_factory=CompressSettings)  # compress*: off unless encodings are set
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
        """Flags win: ``settings.with_overrides(target="s3://b/p")``; None means 'not given'.

        Validated like the other sources; an error names the flag (``--addressing-style``).
        """
        given = {k: v for k, v in flags.items() if v is not None}
        return _apply(self, given, _Source("flag")) if given else self


def with_cloudfront_flags(settings: Settings, pairs: list[str]) -> Settings:
    """Apply ``--cloudfront KEY=VALUE`` flags over the ``[cloudfront]`` table; values are read as TOML
    scalars when they parse (``wait=true``, ``max_invalidation_paths=500``), else as strings."""
    from dataclasses import fields

    from .cdn.settings import CloudFrontSettings

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
    "verify_urls", "verify_timeout", "serve", "redirects", "website_redirects", "layout", "links", "channels",
    "preview_url", "compress", "compress_min_size", "compress_types", "compress_brotli_quality",
}
_ENV = {
    "TARGET": "target", "CHANNEL": "channel", "ENDPOINT_URL": "endpoint_url", "REGION": "region",
    "PROFILE": "profile", "ADDRESSING_STYLE": "addressing_style", "CHECKSUMS": "checksums",
    "PROJECT": "project", "ALLOW_UNSAFE_CAS": "allow_unsafe_cas", "CONCURRENCY": "concurrency",
    "RETRIES": "retries", "LAYOUT": "layout", "PREVIEW_URL": "preview_url",
    "COMPRESS": "compress", "COMPRESS_MIN_SIZE": "compress_min_size",
}


def find_config_file(cwd: Path, explicit: str | None = None) -> tuple[Path, dict] | None:
    """The config: ``explicit`` if given, else the nearest ``atomicsite.toml`` or ``pyproject.toml``
    with a ``[tool.atomicsite]`` table in ``cwd`` or a parent directory (like git finds its repo)."""
    if explicit:
        path = Path(explicit).absolute()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="Fix --config / ATOMICSITE_CONFIG.")
        data = _read_toml(path)
        return path, (_tool_table(data, path) or {} if path.name == "pyproject.toml" else data)
    for here in [cwd.absolute(), *cwd.absolute().parents]:
        own = here / "atomicsite.toml"
        if own.is_file():
            return own, _read_toml(own)
        py = here / "pyproject.toml"
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


@dataclass(frozen=True)
class _Source:
    """Where values come from, so every error names exactly what the user wrote."""

    kind: str  # "file", "env" or "flag"
    path: Path | None = None
    table: str = ""  # "tool.atomicsite" inside pyproject.toml

    def name(self, key: str, sub: str | None = None) -> str:
        """``ATOMICSITE_CHANNEL``, ``--addressing-style``, ``atomicsite.toml: [prune] keep``."""
        if self.kind == "env":
            return f"ATOMICSITE_{key.upper()}"
        if self.kind == "flag":
            return {"verify_urls": "--verify-url"}.get(key, "--" + key.replace("_", "-"))
        if sub is None:
            return f"{self.path}: " + (f"[{self.table}] " if self.table else "") + key
        return f"{self.path}: [{self.table + '.' if self.table else ''}{key}] {sub}"

    def resolve_target(self, value: str) -> str:
        """A relative path in a config file is relative to that file, not to where the command runs."""
        if self.kind != "file" or "://" in value or Path(value).expanduser().is_absolute():
            return value
        return str(self.path.parent / value)


_PRUNE_KEYS = ("keep", "grace", "max_delete", "wait")


def _apply(settings: Settings, values: Mapping[str, Any], source: _Source) -> Settings:
    """Fold one source's values (already with canonical key names) into settings."""
    where = source.name
    store = settings.store
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _TOP_KEYS:
            raise ConfigError(f"{where(key)}: unknown setting", hint=f"Known settings: {', '.join(sorted(_TOP_KEYS))}.")
        if key == "target":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where(key)}: must be a URL or a path, got {value!r}")
            out[key] = source.resolve_target(value)
        elif key == "channel":
            try:
                out[key] = check_channel(str(value))
            except UsageError as exc:
                raise ConfigError(f"{where(key)}: {exc.message}", hint=exc.hint) from None
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
        elif key == "website_redirects":
            out[key] = _bool(value, where(key))
        elif key == "allow_unsafe_cas":
            store = replace(store, allow_unsafe_cas=_bool(value, where(key)))
        elif key == "concurrency":
            out[key] = _int(value, where(key), 1)
            store = replace(store, max_workers=out[key])
        elif key == "layout":
            if value not in LAYOUTS:
                raise ConfigError(f"{where(key)}: must be one of {', '.join(LAYOUTS)}, not {value!r}",
                                  hint="See docs/layout.md for when to choose which.")
            out[key] = value
        elif key in ("retries", "reuse_from"):
            out[key] = _int(value, where(key), 1 if key == "retries" else 0)
        elif key == "ignore":
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ConfigError(f"{where(key)}: must be a list of glob strings")
            out[key] = tuple(value)
        elif key == "headers":
            out["rules"], out["response_headers"] = _header_rules(value, where(key))
        elif key == "redirects":
            from .routing import RuleError, redirects_from_config

            try:
                out["redirects"] = redirects_from_config(value, where(key))
            except RuleError as exc:
                raise ConfigError(exc.message, hint=exc.hint) from None
        elif key == "prune":
            out[key] = _prune(value, source, settings.prune)
        elif key == "cloudfront":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where(key)}: must be a table")
            from .cdn.settings import CloudFrontSettings  # validated now, before any upload

            try:
                out[key] = CloudFrontSettings.from_mapping(value)
            except ConfigError as exc:
                raise ConfigError(f"{where(key)}: {exc.message}", hint=exc.hint) from None
        elif key == "verify_urls":
            urls = _verify_urls(value, where(key))
            if source.kind == "flag":  # given for this command: checked for whatever channel it moves
                out[key] = urls
            else:  # the config's top-level URLs belong to the channel it names (default live)
                own = str(values.get("channel", settings.channel))
                per_channel = dict(out.get("channel_verify_urls", settings.channel_verify_urls))
                per_channel.setdefault(own, urls)
                out["channel_verify_urls"] = _ordered(per_channel)
        elif key == "channels":
            per_channel = dict(out.get("channel_verify_urls", settings.channel_verify_urls))
            per_channel.update(_channels(value, where(key)))  # [channels.<name>] wins over the top level
            out["channel_verify_urls"] = _ordered(per_channel)
        elif key in ("compress", "compress_min_size", "compress_types", "compress_brotli_quality"):
            current = out.get("compress", settings.compress)
            if key == "compress":
                out[key] = replace(current, encodings=parse_encodings(value, where(key)))
            elif key == "compress_min_size":
                out[key] = replace(current, min_size=_int(value, where(key), 1))
            elif key == "compress_brotli_quality":
                quality = _int(value, where(key), 0)
                if quality > 11:
                    raise ConfigError(f"{where(key)}: must be 0 to 11, got {quality}", hint="11 (the default) is the smallest output.")
                out[key] = replace(current, brotli_quality=quality)
            else:
                out[key] = replace(current, types=parse_types(value, where(key)))
            out["compress"] = out.pop(key)
        elif key == "preview_url":
            from .previews import PreviewUrl

            out[key] = PreviewUrl.parse(value, where=where(key))
        elif key == "verify_timeout":
            out[key] = parse_duration(value, where=where(key))
        elif key == "links":
            out[key] = LinkSettings.from_mapping(value, where(key))
        elif key == "serve":
            from .serve.config import ServeConfig  # validated now: a typo fails every command, not just serve

            out[key] = ServeConfig.from_mapping(value, where=source.name(key, "").rstrip())
    return _validated(replace(settings, store=store, **out), "settings")


def _header_rules(value, where: str) -> tuple[tuple[HeaderRule, ...], tuple]:
    """``[[headers]]`` tables: with ``match`` (a build-dir glob) they set object metadata; with ``for``
    and ``values`` (Netlify's form, a URL path) they are response headers (atomicsite.routing)."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of tables like {{ match = '*.html', cache_control = '...' }}")
    rules = []
    blocks = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping) and "for" in item:
            from .routing import RuleError, header_blocks_from_config

            try:
                blocks.append(header_blocks_from_config(item, f"{where}[{i}]"))
            except RuleError as exc:
                raise ConfigError(exc.message, hint=exc.hint) from None
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}[{i}]: must be a table with match, content_type, cache_control "
                              "(or for and values, for response headers)")
        unknown = sorted(set(item) - {"match", "content_type", "cache_control"})
        if unknown:
            raise ConfigError(f"{where}[{i}] {unknown[0]}: unknown key",
                              hint="A rule has keys match, content_type, cache_control (or for and values, for response headers).")
        try:
            rules.append(HeaderRule(str(item.get("match", "")), item.get("content_type"), item.get("cache_control")))
        except ConfigError as exc:
            raise ConfigError(f"{where}[{i}]: {exc.message}", hint=exc.hint) from None
    return tuple(rules), tuple(blocks)


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


def _prune(value, source: _Source, current: PruneSettings) -> PruneSettings:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source.name('prune')}: must be a table with {', '.join(_PRUNE_KEYS)}")
    unknown = sorted(set(value) - set(_PRUNE_KEYS))
    if unknown:
        raise ConfigError(f"{source.name('prune', unknown[0])}: unknown key", hint=f"[prune] has {', '.join(_PRUNE_KEYS)}.")
    return PruneSettings(
        keep=_int(value.get("keep", current.keep), source.name("prune", "keep"), 1),
        grace_seconds=parse_duration(value.get("grace", current.grace_seconds), where=source.name("prune", "grace")),
        max_delete=_int(value.get("max_delete", current.max_delete), source.name("prune", "max_delete"), 1),
        wait_seconds=parse_duration(value.get("wait", current.wait_seconds), where=source.name("prune", "wait")),
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
        source = _Source("file", path, "tool.atomicsite" if path.name == "pyproject.toml" else "")
        settings = replace(_apply(settings, table, source), config_file=str(path))
    from_env = {canon: env[f"ATOMICSITE_{name}"] for name, canon in _ENV.items() if env.get(f"ATOMICSITE_{name}")}
    if from_env:
        settings = _apply(settings, from_env, _Source("env"))
    return settings
