"""The CloudFront Function (viewer request, cloudfront-js-2.0): its code from the packaged template,
and creating/updating/publishing it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import AtomicsiteError, NotFound, UsageError
from ..retry import RetryPolicy
from .aws import _call, boto3_client_factory
from .settings import RUNTIME, CloudFrontSettings, _bad, site_root

_TEMPLATE = ("cdn", "cloudfront_function.js")
_KEY_SLOT = '"__ATOMICSITE_KVS_KEY__"'
_ROOT_SLOT = '"__ATOMICSITE_SITE_ROOT__"'
_ROUTES_SLOT = '"__ATOMICSITE_ROUTES_PREFIX__"'
_KEY_PREFIX_SLOT = '"__ATOMICSITE_KEY_PREFIX__"'
_PRE_SLOT = '"__ATOMICSITE_PREVIEW_PRE__"'
_POST_SLOT = '"__ATOMICSITE_PREVIEW_POST__"'
_LABEL_RE = re.compile(r"^[a-z0-9.-]*$")
FUNCTION_SIZE_LIMIT = 10 * 1024  # bytes: CloudFront Functions' maximum code size


def preview_host_parts(host_pattern: str | None) -> tuple[str, str] | None:
    """``"{channel}.preview.example.com"`` → ``("", ".preview.example.com")``: the Host around the channel.

    The channel must sit in the first DNS label (``{channel}.preview.example.com``,
    ``pr-{channel}.example.com``), which is what one wildcard alias and certificate cover. None → None.
    """
    if host_pattern is None:
        return None
    host = host_pattern.strip().lower().rstrip(".")
    pre, sep, post = host.partition("{channel}")
    if not sep or "." in pre or "." not in post or not (_LABEL_RE.match(pre) and _LABEL_RE.match(post)):
        raise UsageError(f"preview host {host_pattern!r} cannot be matched at the edge",
                         hint="Put {channel} in the first label of the host name, e.g. "
                              "https://{channel}.preview.example.com.")
    return pre, post


def cloudfront_function_code(kvs_key: str, root_prefix: str, routes_prefix: str = "atomicsite:routes:", *,
                             preview_host: str | None = None, key_prefix: str = "atomicsite:") -> str:
    """The viewer-request function (runtime cloudfront-js-2.0) for one key and site prefix.

    ``cloudfront_function_code("atomicsite:live", "site")`` rewrites ``/about/`` to
    ``/site/v/<version>/about/index.html`` with the version read from key ``atomicsite:live``. With
    ``preview_host="{channel}.preview.example.com"``, a request for ``pr-7.preview.example.com`` reads
    ``<key_prefix>pr-7`` instead (one wildcard distribution for every preview channel).
    """
    if not kvs_key or len(kvs_key.encode()) > 512:
        raise UsageError(f"invalid KeyValueStore key {kvs_key!r} (1-512 bytes)")
    parts = preview_host_parts(preview_host)
    template = resources.files("atomicsite").joinpath(*_TEMPLATE).read_text("utf-8")
    for slot in (_KEY_SLOT, _ROOT_SLOT, _ROUTES_SLOT, _KEY_PREFIX_SLOT, _PRE_SLOT, _POST_SLOT):
        if template.count(slot) != 1:
            raise AtomicsiteError(f"the packaged function template has {template.count(slot)} {slot} slots")
    code = (template.replace(_KEY_SLOT, json.dumps(kvs_key)).replace(_ROOT_SLOT, json.dumps(site_root(root_prefix)))
            .replace(_ROUTES_SLOT, json.dumps(routes_prefix)).replace(_KEY_PREFIX_SLOT, json.dumps(key_prefix))
            .replace(_PRE_SLOT, json.dumps(parts[0] if parts else None))
            .replace(_POST_SLOT, json.dumps(parts[1] if parts else None)))
    if len(code.encode()) > FUNCTION_SIZE_LIMIT:
        raise UsageError(f"the CloudFront Function would be {len(code.encode())} bytes; CloudFront allows "
                         f"{FUNCTION_SIZE_LIMIT}", hint="Shorten the site prefix or the KeyValueStore key prefix.")
    return code


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
