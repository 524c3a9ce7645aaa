"""Edge-key mode: write the channel's version into the KeyValueStore key the CloudFront Function reads.

The version's routes (atomicsite.cdn.edge_routes) are written first, under keys of their own that
never change once written, and the channel's key last: an edge that sees the new version id always
finds its routes. They are compiled before anything is written, so routes that do not fit stop the
switch of the edge key with nothing changed there.
"""

from __future__ import annotations

from ..errors import ConflictError, NotFound
from ..retry import RetryPolicy
from .aws import ClientFactory, _call, boto3_client_factory
from .edge_routes import compile_edge_routes, routes_keys
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
        routes = compile_edge_routes(ctx.manifest)
        items = list(zip(routes_keys(self.settings.routes_key_prefix, ctx.version, len(routes.values)), routes.values))
        items.append((key, ctx.version))
        before, etag = self._retry.call(lambda: self._put(items))
        verb = "already" if before == ctx.version else f"{before or '(unset)'} →"
        detail = f"KeyValueStore key {key!r}: {verb} {ctx.version} (edges follow in seconds)"
        if routes.values:
            detail += f"; routes in {len(routes.values)} value(s), {routes.size} bytes"
        if routes.notes:
            detail += f"; {len(routes.notes)} rule(s) work differently at the edge (see data.edge_notes)"
        return SwitchReport(self.name, True, detail,
                            {"kvs_arn": self.settings.kvs_arn, "key": key, "value": ctx.version,
                             "previous_value": before, "changed": before != ctx.version, "etag": etag,
                             "routes_keys": [k for k, _ in items[:-1]], "edge_notes": list(routes.notes)})

    def remove(self, channel: str, version: str) -> SwitchReport:
        """The channel was deleted (``channel delete``, or prune removed it as expired): delete its key,
        so a preview host stops serving it. Only while the key still holds ``version``, the version the
        removed pointer named; the store's ETag, read before that check, makes the delete conditional."""
        key = self.settings.kvs_key(channel)
        arn, client = self.settings.kvs_arn, self._factory(KVS_SERVICE)

        def delete() -> str:
            etag = _call("cloudfront-keyvaluestore:DescribeKeyValueStore", arn, client.describe_key_value_store,
                         KvsARN=arn)["ETag"]
            try:
                value = _call("cloudfront-keyvaluestore:GetKey", arn, client.get_key, KvsARN=arn, Key=key)["Value"]
            except NotFound:
                return "was not set"
            if value != version:
                return f"left: it holds {value}, not {version} (the channel was published again)"
            try:
                _call("cloudfront-keyvaluestore:DeleteKey", arn, client.delete_key, KvsARN=arn, Key=key, IfMatch=etag)
            except NotFound:
                return "was not set"
            return "deleted"

        outcome = self._retry.call(delete)
        return SwitchReport(self.name, True, f"KeyValueStore key {key!r} {outcome}",
                            {"kvs_arn": arn, "key": key, "removed": outcome == "deleted"})

    def forget_routes(self, versions: list[str]) -> SwitchReport:
        """Prune deleted ``versions``: delete their routes keys (``<routes prefix><version>[:i]``),
        which would otherwise fill the KeyValueStore (5 MB) one version at a time. Each delete is
        conditional on the store's ETag; a version with no routes costs one GetKey."""
        arn, client = self.settings.kvs_arn, self._factory(KVS_SERVICE)

        def describe() -> str:
            return _call("cloudfront-keyvaluestore:DescribeKeyValueStore", arn, client.describe_key_value_store,
                         KvsARN=arn)["ETag"]

        def delete(key: str, etag: str) -> str:
            return _call("cloudfront-keyvaluestore:DeleteKey", arn, client.delete_key, KvsARN=arn, Key=key,
                         IfMatch=etag)["ETag"]

        def forget() -> int:
            etag = describe()
            deleted = 0
            for version in versions:
                first = routes_keys(self.settings.routes_key_prefix, version, 1)[0]
                try:
                    value = _call("cloudfront-keyvaluestore:GetKey", arn, client.get_key, KvsARN=arn, Key=first)["Value"]
                except NotFound:
                    continue  # no routes (or forgotten by an earlier run)
                count = int(value.partition("|")[0]) if value.partition("|")[0].isdigit() else 1
                # the first key last: a run cut short leaves it, and the next prune finds the rest again
                for key in reversed(routes_keys(self.settings.routes_key_prefix, version, count)):
                    try:
                        try:
                            etag = delete(key, etag)
                        except ConflictError:
                            # another writer (a publish switching a channel) moved the store's ETag; a
                            # pruned version's routes keys are read by no channel, so delete at the new one
                            etag = delete(key, describe())
                        deleted += 1
                    except NotFound:
                        continue
            return deleted

        deleted = self._retry.call(forget)
        return SwitchReport(self.name, True, f"deleted {deleted} routes key(s) of {len(versions)} pruned version(s)",
                            {"kvs_arn": arn, "deleted_keys": deleted})

    def _put(self, items: list[tuple[str, str]]) -> tuple[str | None, str]:
        """Write each (key, value) not already there, in order; the last one's previous value and the ETag."""
        arn, client = self.settings.kvs_arn, self._factory(KVS_SERVICE)
        etag = _call("cloudfront-keyvaluestore:DescribeKeyValueStore", arn, client.describe_key_value_store,
                     KvsARN=arn)["ETag"]
        before = None
        for key, value in items:
            try:
                before = _call("cloudfront-keyvaluestore:GetKey", arn, client.get_key, KvsARN=arn, Key=key)["Value"]
            except NotFound:
                before = None
            if before == value:
                continue
            try:
                etag = _call("cloudfront-keyvaluestore:PutKey", arn, client.put_key, KvsARN=arn, Key=key, Value=value,
                             IfMatch=etag)["ETag"]
            except ConflictError:
                raise ConflictError(
                    f"KeyValueStore {arn} changed while atomicsite was writing {key!r} (ETag {etag} is no longer "
                    "current); the key was not written",
                    hint="Re-run `atomicsite promote <version>` to re-read the store and re-apply.",
                ) from None
        return before, etag
