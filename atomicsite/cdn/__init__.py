"""The CDN: what makes real traffic follow a channel pointer, and the edge code that serves it.

One interface: after every pointer switch, :func:`switchers_from_settings` gives the switchers the
``[cloudfront]`` table asks for and each one's ``apply(SwitchContext) -> SwitchReport`` runs
(atomicsite.switch). One file per mechanism:

- ``settings.py``      the ``[cloudfront]`` table, validated (imports nothing else of cdn, nor config)
- ``switching.py``     SwitchContext, SwitchReport, the Switcher protocol
- ``origin_path.py``   origin-path mode: repoint the distribution origin at ``/<prefix>/v/<version>``
- ``invalidation.py``  what can be stale after an origin-path switch, and the invalidation
- ``edge_key.py``      edge-key mode: the version (and its URL routes) in a KeyValueStore
- ``edge_routes.py``   a version's URL rules compiled for the CloudFront Function, within its limits
- ``function.py``      the CloudFront Function's code (``cloudfront_function.js``) and its deployment
- ``aws.py``           AWS calls mapped onto the error tree; clients; polling

Importing this package imports no cloud SDK; boto3 is loaded on first use. See docs/cloudfront.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .aws import ClientFactory, boto3_client_factory
from .edge_key import EdgeKeySwitcher
from .function import FunctionDeployment, cloudfront_function_code, deploy_cloudfront_function
from .invalidation import InvalidationSwitcher, encode_invalidation_path, invalidation_paths
from .origin_path import OriginPathSwitcher
from .settings import CloudFrontSettings, origin_path, site_root
from .switching import SwitchContext, Switcher, SwitchReport


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


def remove_channel_from_cdn(settings: CloudFrontSettings | None, channel: str, version: str,
                            client_factory: ClientFactory | None = None) -> list[SwitchReport]:
    """A channel was deleted: in edge-key mode delete its KeyValueStore key (while it still holds
    ``version``), so a preview host stops serving it. Failures come back as reports with ok=False."""
    from ..errors import AtomicsiteError

    if settings is None or settings.mode != "edge-key":
        return []  # origin-path: a distribution serves one configured channel, nothing keyed by channel
    switcher = EdgeKeySwitcher(settings, client_factory or boto3_client_factory(settings))
    try:
        return [switcher.remove(channel, version)]
    except AtomicsiteError as exc:
        return [SwitchReport(switcher.name, False, f"KeyValueStore key {settings.kvs_key(channel)!r} not deleted: {exc}")]


def forget_versions_in_cdn(settings: CloudFrontSettings | None, versions: list[str],
                           client_factory: ClientFactory | None = None) -> list[SwitchReport]:
    """Prune deleted ``versions``: in edge-key mode delete their routes keys from the KeyValueStore.
    Failures come back as reports with ok=False (the versions are gone either way)."""
    from ..errors import AtomicsiteError

    if settings is None or settings.mode != "edge-key" or not versions:
        return []
    switcher = EdgeKeySwitcher(settings, client_factory or boto3_client_factory(settings))
    try:
        return [switcher.forget_routes(versions)]
    except AtomicsiteError as exc:
        return [SwitchReport(switcher.name, False, f"routes keys of pruned versions not deleted: {exc}")]


def cloudfront_function(target: str | None = None, *, settings=None, channel: str | None = None,
                        deploy: bool = False) -> dict:
    """The function's JavaScript for the target's prefix and channel; with ``deploy``, create/update and publish it.

    >>> cloudfront_function("s3://my-bucket/site")["code"][:6]   # doctest: +SKIP
    'import'
    """
    from urllib.parse import urlparse

    from ..config import load_settings  # the API entry point reads the config; the modules above never do
    from ..errors import ConfigError, UsageError
    from ..layout import check_channel
    from ..stores import split_bucket_url

    settings = settings or load_settings()
    channel = check_channel(channel or settings.channel)
    target = target or settings.target_or_default
    if urlparse(target).scheme != "s3":
        raise UsageError(f"CloudFront serves S3 buckets; {target!r} is not an s3:// target.",
                         hint="Pass --target s3://BUCKET/PREFIX.")
    _, prefix = split_bucket_url(target)
    cf = settings.cloudfront
    key = cf.kvs_key(channel) if cf else f"{CloudFrontSettings.kvs_key_prefix}{channel}"
    routes_prefix = cf.routes_key_prefix if cf else f"{CloudFrontSettings.kvs_key_prefix}routes:"
    key_prefix = cf.kvs_key_prefix if cf else CloudFrontSettings.kvs_key_prefix
    preview_host = _preview_host(settings.preview_url)
    code = cloudfront_function_code(key, prefix, routes_prefix, preview_host=preview_host, key_prefix=key_prefix)
    result = {"channel": channel, "kvs_key": key, "root_prefix": prefix, "code": code,
              "preview_host": preview_host}
    if deploy:
        if not cf or not cf.kvs_arn:
            raise ConfigError("--deploy needs cloudfront.kvs_arn in the config",
                              hint="Add a [cloudfront] table with kvs_arn (see docs/cloudfront.md).")
        deployment = deploy_cloudfront_function(cf, code)
        result.update(deployed=True, name=deployment.name, action=deployment.action, arn=deployment.arn,
                      detail=deployment.detail)
    return result


def _preview_host(preview_url) -> str | None:
    """The Host pattern of the ``preview_url`` setting, when its ``{channel}`` is in the host name."""
    if preview_url is None:
        return None
    from urllib.parse import urlsplit

    host = urlsplit(preview_url.template).netloc.rpartition("@")[2].partition(":")[0]
    return host if "{channel}" in host else None  # a path-style template cannot be routed by Host


__all__ = [
    "CloudFrontSettings", "EdgeKeySwitcher", "FunctionDeployment", "InvalidationSwitcher", "OriginPathSwitcher",
    "SwitchContext", "SwitchReport", "Switcher", "boto3_client_factory", "cloudfront_function",
    "cloudfront_function_code", "deploy_cloudfront_function", "encode_invalidation_path", "invalidation_paths",
    "forget_versions_in_cdn", "origin_path", "remove_channel_from_cdn", "site_root", "switchers_from_settings",
]
