"""Edge-key mode: write the channel's version into the KeyValueStore key the CloudFront Function reads."""

from __future__ import annotations

from ..errors import ConflictError, NotFound
from ..retry import RetryPolicy
from .aws import ClientFactory, _call, boto3_client_factory
from .settings import KVS_SERVICE, CloudFrontSettings
from .switching import SwitchContext, SwitchReport


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
