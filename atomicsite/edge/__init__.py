"""Edge code: the CloudFront Function that serves the version named in a KeyValueStore key."""

from __future__ import annotations

from urllib.parse import urlparse

from ..config import Settings, load_settings
from ..errors import ConfigError, UsageError
from ..layout import check_channel
from ..stores import split_bucket_url


def cloudfront_function(target: str | None = None, *, settings: Settings | None = None, channel: str | None = None,
                        deploy: bool = False) -> dict:
    """The function's JavaScript for the target's prefix and channel; with ``deploy``, create/update and publish it.

    >>> cloudfront_function("s3://my-bucket/site")["code"][:6]   # doctest: +SKIP
    'import'
    """
    from ..cdn.cloudfront import CloudFrontSettings, cloudfront_function_code, deploy_cloudfront_function

    settings = settings or load_settings()
    channel = check_channel(channel or settings.channel)
    target = target or settings.target_or_default
    if urlparse(target).scheme != "s3":
        raise UsageError(f"CloudFront serves S3 buckets; {target!r} is not an s3:// target.",
                         hint="Pass --target s3://BUCKET/PREFIX.")
    _, prefix = split_bucket_url(target)
    cf = settings.cloudfront
    key = cf.kvs_key(channel) if cf else f"{CloudFrontSettings.kvs_key_prefix}{channel}"
    code = cloudfront_function_code(key, prefix)
    result = {"channel": channel, "kvs_key": key, "root_prefix": prefix, "code": code}
    if deploy:
        if not cf or not cf.kvs_arn:
            raise ConfigError("--deploy needs cloudfront.kvs_arn in the config",
                              hint="Add a [cloudfront] table with kvs_arn (see docs/cloudfront.md).")
        deployment = deploy_cloudfront_function(cf, code)
        result.update(deployed=True, name=deployment.name, action=deployment.action, arn=deployment.arn,
                      detail=deployment.detail)
    return result
