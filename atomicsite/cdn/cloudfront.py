"""CloudFront: make a distribution serve the version a channel pointer names.

Two modes (``[cloudfront] mode``), documented in docs/cloudfront.md:

``origin-path``
    Set the distribution origin's ``OriginPath`` to ``/<prefix>/v/<version>`` (read-modify-write of
    the distribution config, guarded by its ETag), then invalidate what can be stale. Propagation takes
    minutes; meanwhile each edge serves one whole version, old or new, never a mix.
``edge-key``
    Write the version into a CloudFront KeyValueStore key; a viewer-request CloudFront Function
    (:func:`cloudfront_function_code`) reads it and rewrites each URI to ``/<prefix>/v/<version>/…``.
    Edges follow within seconds, and as the rewritten URI is the cache key, nothing needs invalidating.

Example::

    settings = CloudFrontSettings.from_mapping({"distribution_id": "E2ABC", "origin_id": "site-bucket"})
    for switcher in switchers_from_settings(settings):
        print(switcher.apply(ctx).detail)

boto3 is imported lazily; the KeyValueStore data plane also needs ``botocore[crt]`` (SigV4A).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import (AccessDenied, AtomicsiteError, ConfigError, ConflictError, NotFound, StoreError,
                      TransientStoreError, UsageError)
from ..headers import is_fingerprinted
from ..layout import DEFAULT_CHANNEL, VERSION_RE, check_channel
from ..manifest import Manifest
from ..retry import RetryPolicy
from ..switchers import SwitchContext, Switcher, SwitchReport

MODES = ("origin-path", "edge-key")
RUNTIME = "cloudfront-js-2.0"
KVS_SERVICE = "cloudfront-keyvaluestore"
# CloudFront accepts up to 3000 paths per invalidation (and in progress per distribution). We stop well
# below by default: past the first 1000 paths a month each path is billed, while "/*" counts as one.
MAX_INVALIDATION_PATHS = 3000
DEFAULT_INVALIDATION_PATHS = 1000
REPORTED_PATHS = 50  # paths kept in a report's data (the status record stays small)

ClientFactory = Callable[[str], Any]  # service name ("cloudfront", "cloudfront-keyvaluestore") -> client

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


def _typed(key: str, value: Any, annotation: str) -> Any:
    if annotation == "bool":
        if not isinstance(value, bool):
            raise _bad(key, f"must be true or false, not {value!r}")
    elif annotation == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(key, f"must be an integer, not {value!r}")
    elif annotation == "float":
        from ..config import parse_duration  # "20m" like every other duration in the config

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


def is_immutable(cache_control: str) -> bool:
    return "immutable" in (d.split("=")[0].strip().lower() for d in cache_control.split(","))


# RFC 3986 pchar minus '*' (CloudFront's wildcard) and minus '%': CloudFront wants non-ASCII and
# unsafe characters percent-encoded and every other character left alone, or the path will not
# match the cached URL. '~' stays literal because browsers send it literally.
_LITERAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/!$&'()+,;=:@")


def encode_invalidation_path(path: str) -> str:
    """``encode_invalidation_path("/café menu.html")`` → ``"/caf%C3%A9%20menu.html"``."""
    return "".join(c if c in _LITERAL else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in path)


def _urls(path: str) -> list[str]:
    # CloudFront caches by URL: a directory index is also cached as "/dir/" and "/dir".
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
    urls = sorted({encode_invalidation_path(u) for p in stale for u in _urls(p)})
    return ["/*"] if len(urls) > limit else urls


# --- AWS calls -------------------------------------------------------------------------------------

_CONFLICT = {"PreconditionFailed", "ConflictException", "InvalidIfMatchVersion"}
_NOT_FOUND = {"NoSuchDistribution", "NoSuchInvalidation", "NoSuchFunctionExists", "ResourceNotFoundException",
              "NoSuchResource", "NotFound"}
_DENIED = {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
           "ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException"}
_TRANSIENT = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
              "ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalServerException",
              "InternalFailure", "TooManyInvalidationsInProgress"}


def _call(action: str, on: str, fn: Callable[..., Any], /, **kwargs) -> Any:
    """Call one API (``action`` is its IAM name) and turn its failures into the error tree."""
    from botocore.exceptions import (ClientError, ConnectionError as BotoConnectionError, HTTPClientError,
                                     MissingDependencyException, NoCredentialsError)

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, msg = error.get("Code", ""), error.get("Message") or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        where = f"{action} on {on}"
        if code in _CONFLICT:
            raise ConflictError(
                f"{where}: changed by someone else since atomicsite read it ({code})",
                hint="Re-run `atomicsite promote <version>`; it re-reads the current state and re-applies.",
            ) from None
        if code in _NOT_FOUND or status == 404:
            raise NotFound(f"{where}: not found ({msg})", hint="Check the ids in the [cloudfront] config.") from None
        if code in _DENIED or status == 403:
            raise AccessDenied(f"{where}: denied ({msg})",
                               hint=f"Allow {action} to these credentials (docs/cloudfront.md lists the policy).") from None
        if code in _TRANSIENT or status >= 500:
            raise TransientStoreError(f"{where}: {code or status} ({msg})") from None
        raise StoreError(f"{where}: {code or status} ({msg})") from None
    except NoCredentialsError:
        raise AccessDenied(f"{action}: no AWS credentials found",
                           hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.") from None
    except MissingDependencyException:
        raise ConfigError(f"{action} needs botocore's CRT extension (SigV4A signing)",
                          hint="pip install 'botocore[crt]'") from None
    except (BotoConnectionError, HTTPClientError) as exc:
        raise TransientStoreError(f"{action} on {on}: {exc}") from None


def pin_kvs_endpoint(client: Any, endpoint_url: str) -> None:
    """Send KeyValueStore requests to exactly ``endpoint_url``.

    The service's endpoint rules put the account id in front of any host
    (``123456789012.127.0.0.1:4566``), which an emulator's address does not resolve. Rewriting before
    signing keeps the signed Host equal to the host actually contacted.
    """
    authority = urlsplit(endpoint_url).netloc

    def strip_account(request, **_):
        parts = urlsplit(request.url)
        if parts.netloc != authority and parts.netloc.endswith("." + authority):
            request.url = urlunsplit(parts._replace(netloc=authority))

    client.meta.events.register_first(f"before-sign.{KVS_SERVICE}", strip_account)


_SESSIONS: dict[str | None, Any] = {}  # per profile: a new session re-reads every service model (~0.2 s)
_SESSION_LOCK = threading.Lock()  # a boto3 session is not thread-safe; clients made from it are


def _new_client(service: str, profile: str | None, **kwargs) -> Any:
    try:
        import boto3
        from botocore.exceptions import ProfileNotFound
    except ImportError:
        raise ConfigError("CloudFront support needs boto3", hint="pip install 'atomicsite[s3]'") from None
    with _SESSION_LOCK:
        if profile not in _SESSIONS:
            try:
                _SESSIONS[profile] = boto3.session.Session(profile_name=profile)
            except ProfileNotFound:
                raise _bad("profile", f"no AWS profile named {profile!r}") from None
        return _SESSIONS[profile].client(service, **kwargs)


def boto3_client_factory(settings: CloudFrontSettings) -> ClientFactory:
    """Clients with the SDK's own retries off (:class:`RetryPolicy` is the one place that retries)."""
    cache: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in cache:
            from botocore.config import Config

            endpoint = settings.endpoint_url if service == "cloudfront" else (settings.kvs_endpoint_url or settings.endpoint_url)
            config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
            client = _new_client(service, settings.profile, region_name=settings.region, endpoint_url=endpoint, config=config)
            if service == KVS_SERVICE and endpoint:
                pin_kvs_endpoint(client, endpoint)
            cache[service] = client
        return cache[service]

    return make


def _poll(what: str, fetch: Callable[[], str], done: Callable[[str], bool], settings: CloudFrontSettings,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> str:
    deadline = clock() + settings.wait_timeout
    while True:
        status = fetch()
        if done(status):
            return status
        remaining = deadline - clock()
        if remaining <= 0:
            raise StoreError(
                f"{what} still {status} after {settings.wait_timeout:g}s",
                hint="The change is submitted and keeps propagating; check later, or raise cloudfront.wait_timeout.",
            )
        sleep(min(settings.poll_interval, remaining))


class _CloudFrontSwitcher:
    service = "cloudfront"

    def __init__(self, settings: CloudFrontSettings, client_factory: ClientFactory | None = None, *,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._factory = client_factory or boto3_client_factory(settings)
        self._retry = retry or RetryPolicy()
        self._sleep, self._clock = sleep, clock

    @property
    def client(self) -> Any:
        return self._factory(self.service)

    def _skip(self, ctx: SwitchContext) -> SwitchReport | None:
        s = self.settings
        if ctx.channel == s.channel:
            return None
        return SwitchReport(self.name, True,
                            f"skipped: distribution {s.distribution_id} serves channel {s.channel!r}, not {ctx.channel!r}",
                            {"skipped": True, "distribution_id": s.distribution_id})


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


class EdgeKeySwitcher:
    """Write the channel's version into the KeyValueStore key the CloudFront Function reads."""

    name = "cloudfront-kvs"

    def __init__(self, settings: CloudFrontSettings, client_factory: ClientFactory | None = None, *,
                 retry: RetryPolicy | None = None):
        self.settings = settings
        self._factory = client_factory or boto3_client_factory(settings)
        self._retry = retry or RetryPolicy()

    def apply(self, ctx: SwitchContext) -> SwitchReport:
        key = self.settings.kvs_key(ctx.channel)
        before, etag = self._retry.call(lambda: self._put(key, ctx.version))
        verb = "already" if before == ctx.version else f"{before or '(unset)'} →"
        return SwitchReport(self.name, True, f"KeyValueStore key {key!r}: {verb} {ctx.version} (edges follow in seconds)",
                            {"kvs_arn": self.settings.kvs_arn, "key": key, "value": ctx.version,
                             "previous_value": before, "changed": before != ctx.version, "etag": etag})

    def _put(self, key: str, version: str) -> tuple[str | None, str]:
        arn, client = self.settings.kvs_arn, self._factory(KVS_SERVICE)
        etag = _call("cloudfront-keyvaluestore:DescribeKeyValueStore", arn, client.describe_key_value_store,
                     KvsARN=arn)["ETag"]
        try:
            before = _call("cloudfront-keyvaluestore:GetKey", arn, client.get_key, KvsARN=arn, Key=key)["Value"]
        except NotFound:
            before = None
        if before == version:
            return before, etag
        try:
            put = _call("cloudfront-keyvaluestore:PutKey", arn, client.put_key, KvsARN=arn, Key=key, Value=version,
                        IfMatch=etag)
        except ConflictError:
            raise ConflictError(
                f"KeyValueStore {arn} changed while atomicsite was writing {key!r} (ETag {etag} is no longer current); "
                "the key was not written",
                hint="Re-run `atomicsite promote <version>` to re-read the store and re-apply.",
            ) from None
        return before, put["ETag"]


def switchers_from_settings(settings: CloudFrontSettings | Mapping[str, Any],
                            client_factory: ClientFactory | None = None) -> list[Switcher]:
    """The switchers for ``settings`` (or the raw ``[cloudfront]`` table), in the order they must run:
    origin before invalidation, so the invalidation is created after the origin change is submitted.
    """
    if not isinstance(settings, CloudFrontSettings):
        settings = CloudFrontSettings.from_mapping(settings)
    factory = client_factory or boto3_client_factory(settings)
    if settings.mode == "edge-key":
        return [EdgeKeySwitcher(settings, factory)]
    switchers: list[Switcher] = [OriginPathSwitcher(settings, factory)]
    if settings.invalidate:
        switchers.append(InvalidationSwitcher(settings, factory))
    return switchers


# --- the CloudFront Function -------------------------------------------------------------------------

_TEMPLATE = ("edge", "cloudfront_function.js")
_KEY_SLOT = '"__ATOMICSITE_KVS_KEY__"'
_ROOT_SLOT = '"__ATOMICSITE_SITE_ROOT__"'


def cloudfront_function_code(kvs_key: str, root_prefix: str) -> str:
    """The viewer-request function (runtime cloudfront-js-2.0) for one key and site prefix.

    ``cloudfront_function_code("atomicsite:live", "site")`` rewrites ``/about/`` to
    ``/site/v/<version>/about/index.html`` with the version read from key ``atomicsite:live``.
    """
    if not kvs_key or len(kvs_key.encode()) > 512:
        raise UsageError(f"invalid KeyValueStore key {kvs_key!r} (1-512 bytes)")
    template = resources.files("atomicsite").joinpath(*_TEMPLATE).read_text("utf-8")
    for slot in (_KEY_SLOT, _ROOT_SLOT):
        if template.count(slot) != 1:
            raise AtomicsiteError(f"the packaged function template has {template.count(slot)} {slot} slots")
    return template.replace(_KEY_SLOT, json.dumps(kvs_key)).replace(_ROOT_SLOT, json.dumps(site_root(root_prefix)))


@dataclass(frozen=True)
class FunctionDeployment:
    name: str
    action: str  # "created" or "updated"
    arn: str
    stage: str  # "LIVE" once published
    kvs_arn: str

    @property
    def detail(self) -> str:
        return (f"CloudFront Function {self.name} {self.action} and published ({self.arn}); associate it with the "
                "distribution's viewer-request event if it is not already")


def deploy_cloudfront_function(settings: CloudFrontSettings, code: str, client: Any | None = None, *,
                               retry: RetryPolicy | None = None) -> FunctionDeployment:
    """Create or update ``settings.function_name`` with ``code`` and publish it to LIVE.

    Example::

        code = cloudfront_function_code(settings.kvs_key("live"), "site")
        print(deploy_cloudfront_function(settings, code).detail)
    """
    if not settings.kvs_arn:
        raise _bad("kvs_arn", "is required to deploy the function (it reads the version from that store)")
    client = client or boto3_client_factory(settings)("cloudfront")
    retry = retry or RetryPolicy()
    name, on = settings.function_name, f"function {settings.function_name}"
    config = {"Comment": "atomicsite router: serves the version named in its KeyValueStore key",
              "Runtime": RUNTIME,
              "KeyValueStoreAssociations": {"Quantity": 1, "Items": [{"KeyValueStoreARN": settings.kvs_arn}]}}

    def development_etag() -> str:
        return _call("cloudfront:DescribeFunction", on, client.describe_function, Name=name,
                     Stage="DEVELOPMENT")["ETag"]

    def create_or_update() -> tuple[str, str]:
        try:
            etag = development_etag()
        except NotFound:
            made = _call("cloudfront:CreateFunction", on, client.create_function, Name=name, FunctionConfig=config,
                         FunctionCode=code.encode("utf-8"))
            return "created", made["ETag"]
        made = _call("cloudfront:UpdateFunction", on, client.update_function, Name=name, IfMatch=etag,
                     FunctionConfig=config, FunctionCode=code.encode("utf-8"))
        # botocore's model reads UpdateFunction's ETag from a header spelled "ETtag"; when it comes back
        # empty, ask for the new ETag instead of publishing with a stale one.
        return "updated", made.get("ETag") or development_etag()

    action, etag = retry.call(create_or_update)
    published = retry.call(lambda: _call("cloudfront:PublishFunction", on, client.publish_function, Name=name,
                                         IfMatch=etag))["FunctionSummary"]
    meta = published.get("FunctionMetadata", {})
    return FunctionDeployment(name=name, action=action, arn=meta.get("FunctionARN", ""),
                              stage=meta.get("Stage", "LIVE"), kvs_arn=settings.kvs_arn)
