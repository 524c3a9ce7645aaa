"""The ``[cloudfront]`` table, validated once into :class:`CloudFrontSettings`.

Imports nothing of the rest of atomicsite.cdn and not atomicsite.config, so config validation can use
it without an import cycle. Errors name the key (``cloudfront.kvs_arn: …``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from ..durations import parse_duration
from ..errors import ConfigError, UsageError
from ..layout import DEFAULT_CHANNEL, VERSION_RE, check_channel

MODES = ("origin-path", "edge-key")
RUNTIME = "cloudfront-js-2.0"
KVS_SERVICE = "cloudfront-keyvaluestore"
# CloudFront accepts up to 3000 paths per invalidation (and in progress per distribution). We stop well
# below by default: past the first 1000 paths a month each path is billed, while "/*" counts as one.
MAX_INVALIDATION_PATHS = 3000
DEFAULT_INVALIDATION_PATHS = 1000
REPORTED_PATHS = 50  # paths kept in a report's data (the status record stays small)

_KVS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:cloudfront::\d{12}:key-value-store/[A-Za-z0-9-]+$")
_FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PREFIX_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._~-]+$")


def _bad(key: str, why: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"cloudfront.{key}: {why}", hint=hint or "Fix it in the [cloudfront] table of atomicsite.toml.")


@dataclass(frozen=True)
class CloudFrontSettings:
    """The ``[cloudfront]`` table, validated. Construct with :meth:`from_mapping` from config."""

    mode: str = "origin-path"
    distribution_id: str | None = None
    origin_id: str | None = None
    channel: str = DEFAULT_CHANNEL  # the channel the distribution serves (origin-path mode)
    wait: bool = False  # wait for Deployed (and for the invalidation to complete)
    wait_timeout: float = 1200.0
    poll_interval: float = 15.0
    invalidate: bool = True
    max_invalidation_paths: int = DEFAULT_INVALIDATION_PATHS
    kvs_arn: str | None = None
    kvs_key_prefix: str = "atomicsite:"  # the key of channel C is f"{kvs_key_prefix}{C}"
    function_name: str = "atomicsite-router"
    region: str = "us-east-1"
    profile: str | None = None  # AWS profile; None = the default credential chain
    endpoint_url: str | None = None  # CloudFront API override (emulators, tests)
    kvs_endpoint_url: str | None = None  # KeyValueStore API override; defaults to endpoint_url

    def __post_init__(self):
        if self.mode not in MODES:
            raise _bad("mode", f"must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.mode == "origin-path":
            for key in ("distribution_id", "origin_id"):
                if not getattr(self, key):
                    raise _bad(key, "is required in origin-path mode",
                               "Give the distribution id (E…) and the Id of the origin that serves the bucket.")
        elif not self.kvs_arn:
            raise _bad("kvs_arn", "is required in edge-key mode",
                       "Give the KeyValueStore ARN (arn:aws:cloudfront::<account>:key-value-store/<id>).")
        if self.kvs_arn is not None and not _KVS_ARN_RE.match(self.kvs_arn):
            raise _bad("kvs_arn", f"{self.kvs_arn!r} is not a KeyValueStore ARN",
                       "It looks like arn:aws:cloudfront::123456789012:key-value-store/<id>.")
        try:
            check_channel(self.channel)
        except UsageError as exc:
            raise _bad("channel", exc.message) from None
        if not 1 <= self.max_invalidation_paths <= MAX_INVALIDATION_PATHS:
            raise _bad("max_invalidation_paths", f"must be 1..{MAX_INVALIDATION_PATHS}, not {self.max_invalidation_paths}")
        for key in ("wait_timeout", "poll_interval"):
            if getattr(self, key) <= 0:
                raise _bad(key, f"must be a positive number of seconds, not {getattr(self, key)}")
        if len(self.kvs_key_prefix.encode()) > 512 - 63:
            raise _bad("kvs_key_prefix", "is too long (a KeyValueStore key is at most 512 bytes)")
        if not _FUNCTION_NAME_RE.match(self.function_name):
            raise _bad("function_name", f"{self.function_name!r} is not a CloudFront Function name",
                       "Use 1-64 letters, digits, '-' or '_'.")
        for key in ("endpoint_url", "kvs_endpoint_url"):
            url = getattr(self, key)
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise _bad(key, f"{url!r} is not an http(s) URL")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> CloudFrontSettings:
        """``CloudFrontSettings.from_mapping({"kvs_arn": "arn:aws:cloudfront::…"})`` from a config table.

        Unknown keys and wrongly typed values raise :class:`ConfigError` naming the key. Without
        ``mode``, a table with ``origin_id`` means origin-path and one with ``kvs_arn`` means edge-key.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise _bad(key, "is not a setting", f"Known settings: {', '.join(sorted(known))}.")
            values[key] = _typed(key, value, known[key].type)
        if "mode" not in values:
            has_origin, has_kvs = bool(values.get("origin_id")), bool(values.get("kvs_arn"))
            if has_origin and has_kvs:
                raise _bad("mode", "is required when both origin_id and kvs_arn are set",
                           'Set mode = "origin-path" or mode = "edge-key" (using both would prefix the version twice).')
            if not has_origin and not has_kvs:
                raise _bad("mode", "cannot be inferred",
                           "Set origin_id (origin-path mode) or kvs_arn (edge-key mode).")
            values["mode"] = "edge-key" if has_kvs else "origin-path"
        return cls(**values)

    def kvs_key(self, channel: str) -> str:
        """The KeyValueStore key holding ``channel``'s live version (``atomicsite:live``)."""
        return f"{self.kvs_key_prefix}{channel}"

    @property
    def routes_key_prefix(self) -> str:
        """Keys ``<this><version>[:n]`` hold a version's routes (``atomicsite:routes:``); a channel name has no ':'."""
        return f"{self.kvs_key_prefix}routes:"


def _typed(key: str, value: Any, annotation: str) -> Any:
    if annotation == "bool":
        if not isinstance(value, bool):
            raise _bad(key, f"must be true or false, not {value!r}")
    elif annotation == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(key, f"must be an integer, not {value!r}")
    elif annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _bad(key, f"must be a duration (seconds, or e.g. '20m'), not {value!r}")
        value = parse_duration(value, where=f"cloudfront.{key}")
    elif not isinstance(value, str) or (not value and key != "kvs_key_prefix"):
        raise _bad(key, f"must be a non-empty string, not {value!r}")
    return value



# --- paths -----------------------------------------------------------------------------------------

def site_root(root_prefix: str) -> str:
    """The URL path of a site prefix: ``"sites/blog"`` → ``"/sites/blog"``, ``""`` → ``""``."""
    segments = [s for s in root_prefix.split("/") if s]
    for s in segments:
        if not _PREFIX_SEGMENT_RE.match(s) or s in (".", ".."):
            raise UsageError(
                f"the site prefix {root_prefix!r} cannot be used in a CloudFront path",
                hint="Use a prefix of letters, digits, '.', '_', '~' and '-' segments (e.g. 'sites/blog').",
            )
    return "".join(f"/{s}" for s in segments)


def origin_path(root_prefix: str, version: str) -> str:
    """``origin_path("site", "3f…")`` → ``"/site/v/3f…"``; ``""`` as prefix → ``"/v/3f…"``."""
    if not VERSION_RE.match(version):
        raise UsageError(f"not a version id: {version!r}")
    return f"{site_root(root_prefix)}/v/{version}"

