"""The S3 store: objects under ``s3://bucket/prefix``, on AWS or any S3-compatible server.

``S3Store.from_url("s3://my-site/www", StoreOptions(region="eu-west-1"))``

- One boto3 client per store, shared by every thread (clients are thread-safe, sessions are not).
- botocore's own retries are off (one attempt): :class:`atomicsite.retry.RetryingStore` is the one
  retry layer, so attempts never multiply. Transient failures become ``TransientStoreError``.
- Channel pointers rely on ``If-None-Match: *`` / ``If-Match: <etag>``. Some S3-compatible servers
  accept those headers and silently ignore them, which would let two publishers overwrite each other,
  so before the first conditional write to a bucket the store probes that the server enforces them
  (once per endpoint and bucket per process) and refuses unless ``allow_unsafe_cas`` is set. A passed
  probe is recorded on the target (``_atomicsite/store-checks.json``), so for a week later processes
  read that one object instead of probing again.
- Large files go multipart through boto3's transfer manager; copies over 5 GiB likewise.
- Single-request copies (the tree layout's hot loop) go through :mod:`atomicsite.stores.s3_copy`, a
  lighter request path than boto3's that falls back to boto3 by itself (``light_copy=False`` forces it).
- ``http_stats()`` counts requests and request-body bytes, for the benchmark.

boto3 is imported when a store is created, never when :mod:`atomicsite.stores` is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import (
    AccessDenied,
    AlreadyExists,
    AtomicsiteError,
    BucketNotFound,
    ConfigError,
    ObjectNotFound,
    PreconditionFailed,
    StoreError,
    TransientStoreError,
    UnsafeStoreError,
    UnsupportedCondition,
    UsageError,
)
from . import StoreOptions, require_sdk, split_bucket_url
from .base import SHA256_META, Body, IfMatch, ObjectInfo, PutMode, WriteMode, check_extra_headers
from .s3_copy import LightCopier

log = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
PROBE_PREFIX = "_atomicsite/probe/"
_READ_CHUNK = MiB

_TRANSIENT_CODES = {
    "SlowDown", "RequestTimeout", "RequestLimitExceeded", "InternalError", "ServiceUnavailable",
    "TooManyRequestsException", "BandwidthLimitExceeded", "OperationAborted", "RequestTimeoutException",
}
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
    "InvalidClientTokenId",
}
_ACCESS_HINT = (
    "Check the credentials boto3 found (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO login) and that they allow "
    "s3:PutObject/GetObject/ListBucket/DeleteObject on this bucket."
)
_CREDENTIALS_HINT = (
    "Check AWS_PROFILE / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or run 'aws sso login' again): "
    "the key may be mistyped, expired, or belong to another account or endpoint."
)
_NO_CREDENTIALS_HINT = (
    "Run 'aws configure' or 'aws sso login', set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "or in CI grant a role through OIDC (aws-actions/configure-aws-credentials)."
)

# Whether an (endpoint, bucket) enforces conditional writes, decided once per process.
_cas_verdicts: dict[tuple[str, str], bool] = {}
# Likewise If-Match on DeleteObject (AWS since 2025; S3-compatible servers vary, and some ignore it).
_delete_verdicts: dict[tuple[str, str], bool] = {}
_cas_locks: dict[tuple[str, str, str], threading.Lock] = {}
_cas_guard = threading.Lock()
# Passed probes, recorded on the target: {"format": 1, "endpoint": url, "passed": {check: UTC time}}.
# Outside PROBE_PREFIX, whose leftovers prune deletes.
CHECKS_KEY = "_atomicsite/store-checks.json"
CHECKS_VALID = timedelta(days=7)


def _passed_recently(record: dict, check: str, endpoint: str, now: datetime | None = None) -> bool:
    """True when ``record`` says ``check`` passed against ``endpoint`` less than CHECKS_VALID ago."""
    passed = record.get("passed") if record.get("endpoint") == endpoint else None
    when = passed.get(check) if isinstance(passed, dict) else None
    try:
        at = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return False
    return timedelta(0) <= (now or datetime.now(timezone.utc)) - at < CHECKS_VALID


class S3Store:
    """Objects under ``prefix`` in ``bucket``. Thread-safe; see the module docstring.

    ``client`` or ``session`` (a boto3.Session, not thread-safe: create stores from one thread) let
    callers that open many stores skip building a session each time. Files of ``multipart_threshold``
    bytes or more upload in ``multipart_chunksize`` parts; objects of ``copy_threshold`` or more are
    copied part by part (CopyObject stops at 5 GiB).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        options: StoreOptions | None = None,
        *,
        client=None,
        session=None,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
        copy_threshold: int = 5 * GiB,
        copy_chunksize: int = 512 * MiB,
        light_copy: bool = True,
    ):
        self.options = options or StoreOptions()
        boto3 = require_sdk("boto3", "s3")
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.client = client or _make_client(boto3, self.options, session)
        self.endpoint = self.client.meta.endpoint_url
        self.multipart_threshold = multipart_threshold
        self.copy_threshold = copy_threshold
        # Few threads per file: many files already upload at once, all through one connection pool.
        self._upload_config = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize, max_concurrency=4
        )
        self._copy_config = TransferConfig(
            multipart_threshold=copy_threshold, multipart_chunksize=copy_chunksize, max_concurrency=4
        )
        self._cas_allowed = False  # set once this store has seen the probe's verdict
        self._stats_lock = threading.Lock()
        self._requests = 0
        self._bytes_sent = 0
        self.client.meta.events.register("before-send.s3", self._count_request)
        # Same parameters and answers as client.copy_object, for a fraction of the CPU (see s3_copy).
        self._copier = LightCopier(self.client, count=self._count_request, is_transient=copy_is_transient) \
            if light_copy else None
        self._copy_object = self._copier.copy_object if self._copier else self.client.copy_object

    @classmethod
    def from_url(cls, url: str, options: StoreOptions | None = None) -> S3Store:
        bucket, prefix = split_bucket_url(url)
        return cls(bucket, prefix, options)

    # -- keys -------------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise UsageError(f"invalid object key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def _target(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{self._full(key)}" if key else self.url

    # -- the protocol -----------------------------------------------------------------------------

    def put(
        self,
        key: str,
        source: bytes | Path,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        mode: PutMode = WriteMode.OVERWRITE,
        extra_headers: dict[str, str] | None = None,
    ) -> ObjectInfo:
        full = self._full(key)
        extra_headers = check_extra_headers(extra_headers)
        headers = _headers(content_type, cache_control, metadata, extra_headers)
        condition: dict[str, str] = {}
        if mode is WriteMode.CREATE:
            condition["IfNoneMatch"] = "*"
        elif isinstance(mode, IfMatch):
            condition["IfMatch"] = mode.token
        if condition:
            self._check_conditional_writes()
        elif isinstance(source, Path) and source.stat().st_size >= self.multipart_threshold:
            with self._calling("put", key):
                self.client.upload_file(str(source), self.bucket, full, ExtraArgs=headers, Config=self._upload_config)
            return self.head(key)

        with self._calling("put", key, mode):
            if isinstance(source, Path):
                with open(source, "rb") as fh:  # streamed: a file below the threshold can still be large
                    size = os.fstat(fh.fileno()).st_size
                    resp = self.client.put_object(Bucket=self.bucket, Key=full, Body=fh, **headers, **condition)
            else:
                data = bytes(source)
                size = len(data)
                resp = self.client.put_object(Bucket=self.bucket, Key=full, Body=data, **headers, **condition)
        if not resp.get("ETag"):  # some S3-compatible servers leave it out
            return self.head(key)
        meta = {k.lower(): v for k, v in (metadata or {}).items()}
        return ObjectInfo(
            key=key,
            size=size,
            token=resp["ETag"],
            sha256=None,  # a receipt proves bytes by the server's MD5 (ETag), not by echoing our metadata
            md5=_md5_from_etag(resp["ETag"], resp),
            content_type=content_type,
            cache_control=cache_control,
            metadata=meta,
            extra_headers=extra_headers,
        )

    def get(self, key: str) -> Body:
        with self._calling("get", key):
            resp = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            with contextlib.closing(resp["Body"]) as stream:
                data = stream.read()
        return Body(data, self._info(key, resp))

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            self.head(key)  # still ObjectNotFound for a missing key
            return iter(())
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        from botocore.exceptions import ClientError

        with self._calling("get", key):
            try:
                resp = self.client.get_object(Bucket=self.bucket, Key=self._full(key), **ranged)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # start is past the end
                    return iter(())
                raise

        def chunks() -> Iterator[bytes]:
            with contextlib.closing(resp["Body"]) as stream, self._calling("read", key):
                yield from stream.iter_chunks(_READ_CHUNK)

        return chunks()

    def head(self, key: str) -> ObjectInfo:
        with self._calling("head", key):
            resp = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        return self._info(key, resp)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # S3 lists in UTF-8 byte order, which is code-point order: the order of sorted(str).
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self.client.get_paginator("list_objects_v2")

        def infos() -> Iterator[ObjectInfo]:
            with self._calling("list", None):
                for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                    for obj in page.get("Contents", ()):
                        yield ObjectInfo(
                            key=self._relative(obj["Key"]),
                            size=obj["Size"],
                            token=obj.get("ETag"),
                            md5=_md5_from_etag(obj.get("ETag"), {}),
                            modified=obj.get("LastModified"),
                        )

        return infos()

    def copy(
        self,
        src: str,
        dst: str,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        size: int | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> ObjectInfo:
        copy_source = {"Bucket": self.bucket, "Key": self._full(src)}
        extra_headers = check_extra_headers(extra_headers)
        # REPLACE with every header passed: S3 would otherwise keep the source's, moto resets them.
        headers = {**_headers(content_type, cache_control, metadata, extra_headers), "MetadataDirective": "REPLACE"}
        if size is not None and size < self.copy_threshold:
            # The caller knows the size: one CopyObject, no HEAD first. The receipt's ETag is the
            # server's MD5 of the copied bytes, which verify checks against the manifest.
            with self._calling("copy", src):
                resp = self._copy_object(CopySource=copy_source, Bucket=self.bucket, Key=self._full(dst), **headers)
            return self._copy_receipt(dst, resp, size, content_type, cache_control, metadata, extra_headers)
        source = self.head(src)  # ObjectNotFound, the size the copy method depends on, and its ETag
        with self._calling("copy", dst):
            # If-Match on the source: the size we report is the size that was copied.
            headers["CopySourceIfMatch"] = source.token
            if source.size >= self.copy_threshold:  # CopyObject stops at 5 GiB
                self.client.copy(copy_source, self.bucket, self._full(dst), ExtraArgs=headers, Config=self._copy_config)
                return self.head(dst)
            resp = self._copy_object(CopySource=copy_source, Bucket=self.bucket, Key=self._full(dst), **headers)
        return self._copy_receipt(dst, resp, source.size, content_type, cache_control, metadata, extra_headers)

    def _copy_receipt(self, dst: str, resp: dict, size: int, content_type, cache_control, metadata,
                      extra_headers=None) -> ObjectInfo:
        etag = resp.get("CopyObjectResult", {}).get("ETag")
        if not etag:
            return self.head(dst)
        meta = {k.lower(): v for k, v in (metadata or {}).items()}
        return ObjectInfo(
            key=dst,
            size=size,
            token=etag,
            sha256=None,  # as for put: the copy's ETag is the server's word on the bytes
            md5=_md5_from_etag(etag, resp),
            modified=resp.get("CopyObjectResult", {}).get("LastModified"),
            content_type=content_type,
            cache_control=cache_control,
            metadata=meta,
            extra_headers=dict(extra_headers or {}),
        )

    def delete_many(self, keys: Iterable[str]) -> None:
        full_keys = [self._full(k) for k in keys]
        failures: list[dict] = []
        for i in range(0, len(full_keys), DELETE_BATCH):
            batch = full_keys[i:i + DELETE_BATCH]
            with self._calling("delete", None):
                resp = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            failures.extend(resp.get("Errors", ()))
        if not failures:
            return
        named = ", ".join(f"{self._relative(e.get('Key', '?'))} ({e.get('Code', '?')})" for e in failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        message = f"could not delete {len(failures)} object(s) in {self.url}: {named}{more}"
        if all(e.get("Code") in _TRANSIENT_CODES for e in failures):
            raise TransientStoreError(message)
        raise StoreError(message)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        full = self._full(key)
        if if_match is None:
            with self._calling("delete", key):
                self.client.delete_object(Bucket=self.bucket, Key=full)
            return
        self._check_conditional_deletes()
        with self._calling("delete", key, IfMatch(if_match)):
            self.client.delete_object(Bucket=self.bucket, Key=full, IfMatch=if_match)

    def close(self) -> None:
        if self._copier:
            self._copier.close()
        self.client.close()

    # -- extras -----------------------------------------------------------------------------------

    def http_stats(self) -> dict[str, int]:
        """Requests sent and request-body bytes, since creation or :meth:`reset_http_stats`."""
        with self._stats_lock:
            return {"requests": self._requests, "bytes_sent": self._bytes_sent}

    def reset_http_stats(self) -> None:
        with self._stats_lock:
            self._requests = 0
            self._bytes_sent = 0

    def _count_request(self, request, **_) -> None:  # must return None: a value would replace the send
        length = request.headers.get("Content-Length")
        if length is not None:
            size = int(length)
        else:
            size = len(request.body) if isinstance(request.body, (bytes, bytearray)) else 0
        with self._stats_lock:
            self._requests += 1
            self._bytes_sent += size

    # -- conditional writes -----------------------------------------------------------------------

    def _check_conditional_writes(self) -> None:
        """Refuse conditional writes where the server ignores them (see :meth:`_enforces`)."""
        if self._cas_allowed:
            return
        if not self._enforces("conditional_writes", _cas_verdicts, self._probe_conditional_writes):
            if not self.options.allow_unsafe_cas:
                raise UnsafeStoreError(
                    f"{self.endpoint} ignores conditional writes (If-None-Match/If-Match) on bucket "
                    f"{self.bucket!r}, so concurrent publishers could overwrite each other's channel pointer.",
                    hint="Pass --allow-unsafe-cas to publish anyway if only one publisher ever runs at a time.",
                )
            log.warning("%s ignores conditional writes; continuing because allow_unsafe_cas is set", self.endpoint)
        self._cas_allowed = True

    def _enforces(self, check: str, verdicts: dict[tuple[str, str], bool], probe) -> bool:
        """Whether the server enforces ``check`` on this bucket: decided once per process, and a
        passed probe is recorded on the target (CHECKS_KEY) so later processes read one small object
        instead of probing again (4 requests) on every publish, for a week."""
        target = (self.endpoint, self.bucket)
        with _cas_guard:
            lock = _cas_locks.setdefault((check, *target), threading.Lock())
        with lock:
            enforced = verdicts.get(target)
            if enforced is None:
                record = self._read_checks()
                enforced = _passed_recently(record, check, self.endpoint)
                if not enforced:
                    enforced = probe()
                    if enforced:
                        self._record_check(record, check)
                verdicts[target] = enforced
        return enforced

    def _read_checks(self) -> dict:
        try:
            data = json.loads(self.get(CHECKS_KEY).data)
        except ObjectNotFound:
            return {}
        except ValueError:
            return {}  # unreadable: probe again, and the record is rewritten
        return data if isinstance(data, dict) and data.get("format") == 1 else {}

    def _record_check(self, record: dict, check: str) -> None:
        """Best effort: a record that cannot be written only means the next process probes again."""
        passed = record.get("passed") if record.get("endpoint") == self.endpoint else None
        passed = dict(passed) if isinstance(passed, dict) else {}
        passed[check] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"format": 1, "endpoint": self.endpoint, "passed": passed}, sort_keys=True).encode()
        try:
            self.put(CHECKS_KEY, body, content_type="application/json", cache_control="no-store")
        except AtomicsiteError as exc:
            log.debug("could not record the %s check on %s: %s", check, self.url, exc)

    def _probe_conditional_writes(self) -> bool:
        """Create a probe object, then check that a second create and a wrong If-Match are both refused."""
        from botocore.exceptions import ClientError

        key = PROBE_PREFIX + secrets.token_hex(8)
        full = self._full(key)

        def refused(**condition) -> bool:
            with self._calling("probe", key):
                try:
                    # empty: the probe should cost requests, not upload bytes
                    self.client.put_object(Bucket=self.bucket, Key=full, Body=b"", **condition)
                except ClientError as exc:
                    if _refused_condition(exc):
                        return True
                    if _status(exc) == 501:
                        raise UnsafeStoreError(
                            f"{self.endpoint} does not support conditional writes (If-None-Match/If-Match).",
                            hint="atomicsite switches channels with them; use an S3 service that supports them.",
                        ) from None
                    raise
            return False

        refused(IfNoneMatch="*")
        try:
            return refused(IfNoneMatch="*") and refused(IfMatch='"' + "0" * 32 + '"')
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=full)

    def _check_conditional_deletes(self) -> None:
        """UnsupportedCondition unless DeleteObject honours If-Match here (see :meth:`_enforces`). AWS
        general purpose buckets have it since September 2025; some S3-compatible servers accept the
        header and delete anyway."""
        if not self._enforces("conditional_deletes", _delete_verdicts, self._probe_conditional_deletes):
            raise UnsupportedCondition(
                f"{self.endpoint} does not honour If-Match on deletes in bucket {self.bucket!r}; nothing was deleted.")

    def _probe_conditional_deletes(self) -> bool:
        """Create a probe object, delete it with a wrong If-Match: a server that checks refuses (412)."""
        from botocore.exceptions import ClientError

        full = self._full(PROBE_PREFIX + "delete-" + secrets.token_hex(8))
        with self._calling("probe", None):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=b"")
        try:
            with self._calling("probe", None):
                try:
                    self.client.delete_object(Bucket=self.bucket, Key=full, IfMatch='"' + "0" * 32 + '"')
                except ClientError as exc:
                    if _refused_condition(exc):
                        return True
                    if _status(exc) in (400, 501):  # NotImplemented / InvalidArgument: no conditional deletes
                        return False
                    raise
            return False
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=full)

    # -- responses and errors ---------------------------------------------------------------------

    def _info(self, key: str, resp: dict) -> ObjectInfo:
        meta = resp.get("Metadata") or {}
        return ObjectInfo(
            key=key,
            size=resp["ContentLength"],
            token=resp.get("ETag"),
            sha256=meta.get(SHA256_META),
            md5=_md5_from_etag(resp.get("ETag"), resp),
            modified=resp.get("LastModified"),
            content_type=resp.get("ContentType"),
            cache_control=resp.get("CacheControl"),
            metadata=dict(meta),
            extra_headers={h: resp[f] for h, f in _EXTRA_FIELDS.items() if resp.get(f)},
        )

    @contextlib.contextmanager
    def _calling(self, op: str, key: str | None, mode: PutMode = WriteMode.OVERWRITE):
        """Turn SDK exceptions into atomicsite's error tree; anything unrecognised stays a bug."""
        try:
            yield
        except AtomicsiteError:
            raise
        except Exception as exc:
            mapped = self._translate(exc, op, key, mode)
            if mapped is None:
                raise
            raise mapped from _root_cause(exc)

    def _translate(self, exc: BaseException, op: str, key: str | None, mode: PutMode) -> AtomicsiteError | None:
        from botocore import exceptions as bx

        exc = _root_cause(exc)
        target = self._target(key)
        if isinstance(exc, bx.ClientError):
            return self._translate_client_error(exc, op, key, mode, target)
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return AccessDenied("no AWS credentials found", hint=_NO_CREDENTIALS_HINT)
        if isinstance(exc, (bx.SSOError, bx.TokenRetrievalError, bx.CredentialRetrievalError)):
            return AccessDenied(f"could not load AWS credentials: {_one_line(exc)}", hint=_NO_CREDENTIALS_HINT)
        if isinstance(exc, bx.ProfileNotFound):
            return ConfigError(_one_line(exc), hint="Check --profile / AWS_PROFILE against ~/.aws/config.")
        if _is_transient_exception(exc):
            return TransientStoreError(f"{op} {target}: {_one_line(exc)} ({type(exc).__name__})")
        if type(exc).__module__.startswith(("boto3", "botocore", "s3transfer")):
            return StoreError(f"{op} {target} failed: {_one_line(exc)}")
        return None

    def _translate_client_error(self, exc, op: str, key: str | None, mode: PutMode, target: str) -> AtomicsiteError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = _status(exc)
        message = _one_line(error.get("Message") or "")
        if mode is not WriteMode.OVERWRITE:
            if _refused_condition(exc):
                if mode is WriteMode.CREATE:
                    return AlreadyExists(f"{key} already exists in {self.url}")
                return PreconditionFailed(f"{key} changed in {self.url} since it was read")
            if isinstance(mode, IfMatch) and code in ("NoSuchKey", "404"):
                return PreconditionFailed(f"{key} was deleted in {self.url} since it was read")
        if code == "NoSuchBucket":
            return BucketNotFound(
                f"bucket {self.bucket!r} does not exist",
                hint=f"Check the bucket name in {self.url}, the region and the endpoint ({self.endpoint}).",
            )
        if key is not None and (code in ("NoSuchKey", "NotFound") or (status == 404 and code in ("404", ""))):
            return ObjectNotFound(key, f"no object at {key!r} in {self.url}")
        if code in ("PermanentRedirect", "IllegalLocationConstraintException", "301") or status == 301 or (
            code == "AuthorizationHeaderMalformed" and "region" in message.lower()
        ):
            region = error.get("Region") or exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(
                "x-amz-bucket-region"
            )
            where = f" ({region})" if region else ""
            return UsageError(
                f"bucket {self.bucket!r} is in another region{where} than the one configured",
                hint=f"Set --region {region or 'REGION'} or ATOMICSITE_REGION.",
            )
        if code in _CREDENTIAL_CODES:
            return AccessDenied(f"the AWS credentials were rejected for {target} ({code})", hint=_CREDENTIALS_HINT)
        if code in ("AccessDenied", "AllAccessDisabled") or status == 403:
            return AccessDenied(f"access denied to {target} ({op})", hint=_ACCESS_HINT)
        if code == "PreconditionFailed" and op == "copy":
            return TransientStoreError(f"copy to {target}: the source changed during the copy")
        if _transient_answer(code, status):
            return TransientStoreError(f"{op} {target}: {code or 'error'} (HTTP {status}), a temporary server error")
        detail = f": {message}" if message else ""
        return StoreError(f"{op} {target} failed: {code or 'error'} (HTTP {status}){detail}")


def _make_client(boto3, options: StoreOptions, session=None):
    """A client configured from ``options``; ``session`` (a boto3.Session) is reused when given."""
    from botocore.config import Config
    from botocore.exceptions import ProfileNotFound

    if options.checksums not in (None, "when_required", "when_supported"):
        raise ConfigError(f"checksums must be 'when_required' or 'when_supported', not {options.checksums!r}")
    if options.addressing_style not in (None, "auto", "path", "virtual"):
        raise ConfigError(f"addressing_style must be auto, path or virtual, not {options.addressing_style!r}")
    custom_endpoint = (
        options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    # S3-compatible stores reject or mishandle the CRC checksums botocore now sends by default.
    checksums = options.checksums or ("when_required" if custom_endpoint else None)
    checksum_config = (
        {"request_checksum_calculation": checksums, "response_checksum_validation": checksums} if checksums else {}
    )
    config = Config(
        max_pool_connections=options.max_workers + 8,
        retries={"total_max_attempts": 1, "mode": "standard"},  # RetryingStore is the one retry layer
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": options.addressing_style or "auto"},
        user_agent_extra="atomicsite",
        **checksum_config,
    )
    try:
        session = session or boto3.Session(profile_name=options.profile, region_name=options.region)
        return session.client("s3", region_name=options.region, endpoint_url=options.endpoint_url, config=config)
    except ProfileNotFound:
        raise ConfigError(
            f"AWS profile {options.profile!r} not found", hint="Check --profile / AWS_PROFILE against ~/.aws/config."
        ) from None
    except ValueError as exc:  # a malformed endpoint URL
        raise ConfigError(f"invalid S3 endpoint {options.endpoint_url!r}: {_one_line(exc)}") from None


_EXTRA_FIELDS = {"content-encoding": "ContentEncoding", "content-disposition": "ContentDisposition",
                 "content-language": "ContentLanguage"}


def _headers(content_type: str | None, cache_control: str | None, metadata: dict[str, str] | None,
             extra_headers: dict[str, str] | None = None) -> dict:
    headers: dict = {"Metadata": dict(metadata or {})}
    if content_type:
        headers["ContentType"] = content_type
    if cache_control:
        headers["CacheControl"] = cache_control
    for name, value in (extra_headers or {}).items():
        headers[_EXTRA_FIELDS[name]] = value
    return headers


def _md5_from_etag(etag: str | None, resp: dict) -> str | None:
    """The MD5 a single-part ETag is, unless KMS or customer-key encryption made it something else."""
    if not etag or "-" in etag:
        return None
    if resp.get("SSECustomerAlgorithm") or str(resp.get("ServerSideEncryption", "")).startswith("aws:kms"):
        return None
    md5 = etag.strip('"')
    return md5 if len(md5) == 32 else None


def _status(exc) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _refused_condition(exc) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    return _status(exc) == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _root_cause(exc: BaseException) -> BaseException:
    """Unwrap boto3's S3UploadFailedError and the like down to the botocore or urllib3 error."""
    seen = exc
    while not type(seen).__module__.startswith(("botocore", "urllib3")):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            return exc
        seen = inner
    return seen


def _transient_answer(code: str, status: int | None) -> bool:
    return code in _TRANSIENT_CODES or code.startswith("Throttl") or status in _TRANSIENT_STATUS


def copy_is_transient(exc: BaseException) -> bool:
    """Whether a failed CopyObject is worth retrying, as the store judges it (its light path asks)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return code == "PreconditionFailed" or _transient_answer(code, _status(exc))  # source changed meanwhile
    return _is_transient_exception(_root_cause(exc))


def _is_transient_exception(exc: BaseException) -> bool:
    from botocore import exceptions as bx
    from urllib3.exceptions import ProtocolError

    return isinstance(exc, (
        bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ReadTimeoutError, bx.ConnectTimeoutError,
        bx.ResponseStreamingError, bx.IncompleteReadError, ProtocolError,
    ))


def _one_line(value) -> str:
    return " ".join(str(value).split())
