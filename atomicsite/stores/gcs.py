"""The Google Cloud Storage store: objects under ``gs://bucket/prefix``, via google-cloud-storage.

Compare-and-swap is GCS's generation precondition: a create-only put sends ``ifGenerationMatch=0``, an
:class:`IfMatch` put sends the generation read earlier, and the server answers 412 when it lost.

Retries happen in exactly one place, :class:`atomicsite.retry.RetryingStore`: every library call here
passes ``retry=None`` (which also switches off the library's conditional retries of
``if_generation_match`` writes) and transient failures come out as :class:`TransientStoreError`.

``GCSStore.from_url("gs://bucket/site", StoreOptions(project="my-project"))``; credentials are
Application Default Credentials, or anonymous when ``STORAGE_EMULATOR_HOST`` points at an emulator.
"""

from __future__ import annotations

import dataclasses

import base64
import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import (
    AccessDenied,
    AlreadyExists,
    AtomicsiteError,
    BucketNotFound,
    ObjectNotFound,
    PreconditionFailed,
    StoreError,
    TransientStoreError,
    UnsupportedCondition,
)
from . import StoreOptions, require_sdk, split_bucket_url
from .base import SHA256_META, Body, IfMatch, ObjectInfo, PutMode, WriteMode, check_extra_headers

MIB = 1 << 20
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# google-cloud-storage sends any upload whose size it knows to be at most 8 MiB as one multipart
# request, whatever chunk_size says; it only goes resumable above that or when the size is unknown.
_LIBRARY_MULTIPART_MAX = 8 * MIB
_EMULATOR_PROJECT = "atomicsite-emulator"
_MISSING = object()  # delete_many: the key was not there, which is fine
# Does a delete honour ifGenerationMatch here? Real GCS does; the fake-gcs-server binary the tests use
# deletes whatever generation is named. Probed once per (emulator or GCS, bucket) and process.
_delete_verdicts: dict[tuple[str, str], bool] = {}
_delete_probe_lock = threading.Lock()
_CREDENTIALS_HINT = (
    "Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS, "
    "or use google-github-actions/auth in CI."
)


def _multipart_upload(content_type: str | bytes, body) -> tuple[int, int, str]:
    """(envelope bytes, content bytes, object name) of a multipart/related upload: the envelope is
    what is not the object's content (boundaries, the JSON metadata part, the media part's headers).
    (0, 0, "") for any other request."""
    if isinstance(content_type, str):
        content_type = content_type.encode("latin-1")
    if not content_type.startswith(b"multipart/related") or not isinstance(body, (bytes, bytearray)):
        return 0, 0, ""
    boundary = content_type.partition(b"boundary=")[2].strip(b'"')
    # Offsets only, never a copy of the media: this runs on every upload, not just in the bench.
    delim = b"--" + boundary
    first = body.find(delim) if boundary else -1
    second = body.find(delim, first + len(delim)) if first >= 0 else -1
    start = body.find(b"\r\n\r\n", second) if second >= 0 else -1
    end = body.rfind(b"\r\n" + delim + b"--")
    if start < 0 or end < start + 4:
        return 0, 0, ""
    media = end - (start + 4)
    try:
        meta = body[first + len(delim):second]
        name = json.loads(meta.partition(b"\r\n\r\n")[2]).get("name", "")
    except ValueError:
        name = ""
    return len(body) - media, media, name


class GCSStore:
    """A store rooted at ``gs://bucket/prefix``. Safe to call from many threads at once.

    ``resumable_threshold``: files (``Path`` sources) larger than this go up as resumable uploads in
    ``chunk_size`` pieces (a multiple of 256 KiB); smaller sources are one request. ``chunk_size`` is
    also the size of each ranged read in :meth:`open`. ``list_page_size`` caps objects per listing
    page (None = the server's default, 1000 on GCS).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        options: StoreOptions | None = None,
        resumable_threshold: int = 16 * MIB,
        chunk_size: int = 8 * MIB,
        list_page_size: int | None = None,
    ):
        if chunk_size <= 0 or chunk_size % (256 * 1024):
            raise ValueError("chunk_size must be a positive multiple of 256 KiB")
        self.options = options or StoreOptions()
        self.bucket_name = bucket
        self.root = prefix.strip("/")
        self.url = f"gs://{bucket}/{self.root}" if self.root else f"gs://{bucket}"
        self.resumable_threshold = resumable_threshold
        self.chunk_size = chunk_size
        self.list_page_size = list_page_size

        self._sdk = _Sdk()
        self._client = self._make_client()
        self._quiet_background_fetches(self._client)
        self._bucket = self._client.bucket(bucket)
        self._bucket_exists = False  # set once any call proves it, so object 404s need no bucket check
        self._stats_lock = threading.Lock()
        self._requests = 0
        self._bytes_sent = 0
        self._envelope_bytes = 0
        self._content_by_kind: dict[str, int] = {}
        self._instrument(self._client._http)

    @classmethod
    def from_url(cls, url: str, options: StoreOptions | None = None, **kwargs) -> GCSStore:
        """``GCSStore.from_url("gs://my-bucket/site", StoreOptions(project="p"))``."""
        bucket, prefix = split_bucket_url(url)
        return cls(bucket, prefix, options=options, **kwargs)

    # -- client, transport and accounting ---------------------------------------------------------

    def _make_client(self):
        storage = self._sdk.storage
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project=self.options.project or _EMULATOR_PROJECT,
                                  credentials=AnonymousCredentials())
        try:
            # project=None means "no project": object calls need none, and it spares a lookup.
            return storage.Client(project=self.options.project)
        except self._sdk.auth_exc.DefaultCredentialsError:
            raise AccessDenied(f"no Google Cloud credentials found for {self.url}.", hint=_CREDENTIALS_HINT) from None

    @staticmethod
    def _quiet_background_fetches(client) -> None:
        """Switch off the SDK's bucket-metadata cache unless OpenTelemetry tracing is on.

        google-cloud-storage 3.x fetches bucket metadata (buckets.get, with the library's own retries)
        on a background thread at the first call per bucket, and checks bucket existence after 404s,
        only to label trace spans. Those requests escape our retry policy and request counts, and need
        storage.buckets.get, which roles/storage.objectAdmin does not grant. Every use is guarded by
        ``if client._bucket_metadata_cache``, so None turns it off.
        """
        try:
            from google.cloud.storage import _opentelemetry_tracing as tracing
        except ImportError:
            return
        if not getattr(tracing, "enable_otel_traces", False) and hasattr(client, "_bucket_metadata_cache"):
            client._bucket_metadata_cache = None

    def _instrument(self, session) -> None:
        """Size the connection pool for our thread count and count requests at the transport.

        One Client (and so one AuthorizedSession) is shared by every thread: google-cloud-storage
        documents its Client as safe to share across threads, since requests sits on urllib3's
        thread-safe connection pool (docs/index.rst; googleapis/google-cloud-python#5685, #5763).
        Blob objects carry per-call state, so each call builds its own and none is shared. urllib3
        keeps only ``pool_maxsize`` idle connections per host (10 by default) and drops the rest, so
        with more workers than that every call would reconnect: the pool is sized to max_workers.
        """
        requests = self._sdk.requests
        size = max(self.options.max_workers, 1)
        for scheme in ("https://", "http://"):
            if scheme == "https://" and getattr(session, "is_mtls", False):
                continue  # that adapter carries the client certificate: keep it as it is
            session.mount(scheme, requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size))

        send = session.send

        def counting_send(request, **kwargs):
            body = request.body
            length = request.headers.get("Content-Length")
            if length is not None:
                sent = int(length)
            elif isinstance(body, (bytes, bytearray, str)):
                sent = len(body)
            else:
                sent = 0
            envelope, content, name = _multipart_upload(request.headers.get("Content-Type", ""), body)
            kind = name[len(self.root) + 1:] if self.root and name.startswith(self.root + "/") else name
            kind = kind.split("/", 2)[1] if kind.startswith("_atomicsite/") else kind.split("/", 1)[0]
            with self._stats_lock:
                self._requests += 1
                self._bytes_sent += sent
                self._envelope_bytes += envelope
                if content:
                    self._content_by_kind[kind] = self._content_by_kind.get(kind, 0) + content
            return send(request, **kwargs)

        session.send = counting_send  # Session.request and redirects both go through self.send

    def http_stats(self) -> dict[str, int]:
        """HTTP requests sent and their body bytes, since creation or :meth:`reset_http_stats`;
        ``envelope_bytes`` is the part of those bytes that is not object content: a small upload is one
        multipart request whose first part is the object's JSON metadata (name, Content-Type,
        Cache-Control, sha256), what S3 sends as headers. ``content_by_kind`` splits the content of
        such uploads by what they are: ``objects``, ``claims``, ``manifests``, … (``_atomicsite/<kind>/``)
        or ``v`` (a version's tree)."""
        with self._stats_lock:
            return {"requests": self._requests, "bytes_sent": self._bytes_sent, "envelope_bytes": self._envelope_bytes,
                    "content_by_kind": dict(self._content_by_kind)}

    def reset_http_stats(self) -> None:
        with self._stats_lock:
            self._requests = 0
            self._bytes_sent = 0
            self._envelope_bytes = 0
            self._content_by_kind = {}

    # -- keys and errors --------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _key(self, name: str) -> str:
        return name[len(self.root) + 1:] if self.root else name

    def _receipt(self, key: str, blob) -> ObjectInfo:
        """What a write returns: the server's size and MD5 of the bytes, not our own sha256 echoed back."""
        return dataclasses.replace(self._info(key, blob), sha256=None)

    def _info(self, key: str, blob) -> ObjectInfo:
        meta = dict(blob.metadata or {})
        return ObjectInfo(
            key=key,
            size=int(blob.size or 0),
            token=str(blob.generation) if blob.generation is not None else None,
            sha256=meta.get(SHA256_META),
            md5=base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None,
            modified=blob.updated,
            content_type=blob.content_type,
            cache_control=blob.cache_control,
            metadata=meta,
            extra_headers={h: getattr(blob, f) for h, f in _EXTRA_FIELDS.items() if getattr(blob, f, None)},
        )

    @contextlib.contextmanager
    def _guard(self, what: str, *, missing: Callable[[], AtomicsiteError] | None = None,
               conflict: Callable[[], AtomicsiteError] | None = None):
        """Translate SDK and transport errors of one call; ``what`` names it for messages."""
        try:
            yield
        except AtomicsiteError:
            raise
        except Exception as exc:
            mapped = self._translate(exc, what, missing=missing, conflict=conflict)
            if mapped is None:
                raise
            raise mapped from exc
        self._bucket_exists = True

    def _translate(self, exc: Exception, what: str, *, missing=None, conflict=None) -> AtomicsiteError | None:
        g = self._sdk.api_exc
        auth = self._sdk.auth_exc
        if isinstance(exc, g.PreconditionFailed):
            return conflict() if conflict else PreconditionFailed(f"{what}: precondition failed in {self.url}")
        if isinstance(exc, g.NotFound):
            # A 404 does not say whether the bucket or the object is missing (fake-gcs-server answers a
            # bare "Not Found" for both), so ask about the bucket once before blaming the object.
            self._raise_if_bucket_missing()
            return missing() if missing else StoreError(f"{what}: not found in {self.url}")
        if isinstance(exc, g.Forbidden):
            return AccessDenied(
                f"access denied to {self.url} ({what}).",
                hint=f"Check that the account has roles/storage.objectAdmin on bucket {self.bucket_name!r}.",
            )
        if isinstance(exc, g.Unauthorized):
            return AccessDenied(f"Google Cloud rejected the credentials used for {self.url} (HTTP 401).",
                                hint=_CREDENTIALS_HINT)
        if isinstance(exc, auth.RefreshError) and not getattr(exc, "retryable", False):
            return AccessDenied(f"no usable Google Cloud credentials found for {self.url} (token refresh failed).",
                                hint=_CREDENTIALS_HINT)
        if isinstance(exc, auth.DefaultCredentialsError):
            return AccessDenied(f"no Google Cloud credentials found for {self.url}.", hint=_CREDENTIALS_HINT)
        if isinstance(exc, self._sdk.transient) or (isinstance(exc, g.GoogleAPICallError) and exc.code == 408):
            return TransientStoreError(f"{what} in {self.url} failed for now: {_one_line(exc)}")
        if isinstance(exc, g.GoogleAPICallError):
            return StoreError(f"{what} in {self.url} failed: {_one_line(exc)}")
        return None

    def _raise_if_bucket_missing(self) -> None:
        if self._bucket_exists:
            return
        g = self._sdk.api_exc
        try:
            # objects.list rather than buckets.get: roles/storage.objectAdmin may list objects but not
            # read bucket metadata, and a missing bucket answers 404 either way.
            list(self._client.list_blobs(self._bucket, max_results=1, retry=None))
        except g.NotFound:
            raise BucketNotFound(
                f"bucket {self.bucket_name!r} does not exist (target {self.url}).",
                hint="Create it (gcloud storage buckets create gs://BUCKET) or fix the target URL.",
            ) from None
        except Exception:
            return  # cannot tell (no permission, network): report the original error instead
        self._bucket_exists = True

    def _not_found(self, key: str) -> Callable[[], AtomicsiteError]:
        return lambda: ObjectNotFound(key, f"no object at {key!r} in {self.url}")

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
        if mode is WriteMode.CREATE:
            generation = 0
            conflict = lambda: AlreadyExists(f"{key} already exists in {self.url}")  # noqa: E731
        elif isinstance(mode, IfMatch):
            try:
                generation = int(mode.token)
            except ValueError:  # not a generation this store handed out: it cannot match
                raise PreconditionFailed(f"{key}: token {mode.token!r} is not a GCS generation") from None
            conflict = lambda: PreconditionFailed(f"{key} changed in {self.url} since it was read")  # noqa: E731
        else:
            generation, conflict = None, None

        blob = self._bucket.blob(self._name(key))
        if cache_control is not None:
            blob.cache_control = cache_control
        if metadata:
            blob.metadata = dict(metadata)
        _set_extra(blob, extra_headers)
        call = dict(content_type=content_type or DEFAULT_CONTENT_TYPE, if_generation_match=generation, retry=None)
        # An IfMatch write to a deleted object: GCS answers 412, but a 404 means the same to us.
        missing = conflict if isinstance(mode, IfMatch) else None
        with self._guard(f"writing {key}", missing=missing, conflict=conflict):
            if isinstance(source, Path):
                size = source.stat().st_size
                with open(source, "rb") as fh:
                    if size > self.resumable_threshold:
                        # Resumable: chunk_size pieces, so memory stays bounded and a big file is not
                        # one long request. Passing size ≤ 8 MiB would make the library go multipart.
                        blob.chunk_size = self.chunk_size
                        blob.upload_from_file(fh, size=size if size > _LIBRARY_MULTIPART_MAX else None, **call)
                    else:
                        blob.upload_from_file(fh, size=size, **call)
            else:
                blob.upload_from_string(bytes(source), **call)
        return self._receipt(key, blob)

    def _reload(self, key: str):
        blob = self._bucket.blob(self._name(key))
        with self._guard(f"reading {key}", missing=self._not_found(key)):
            blob.reload(retry=None)
        return blob

    def get(self, key: str) -> Body:
        # Metadata first, then the bytes of exactly that generation, so info and data agree. If the
        # object is replaced in between, that generation is gone (404): read again.
        for _ in range(3):
            blob = self._reload(key)
            with self._guard(f"reading {key}"):
                try:
                    # pinned: blob.generation is set; raw: the stored bytes, never decoded (atomicsite.compress)
                    data = blob.download_as_bytes(retry=None, raw_download=True)
                except self._sdk.api_exc.NotFound:
                    continue
            return Body(data, self._info(key, blob))
        raise TransientStoreError(f"{key} in {self.url} kept changing while being read")

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        blob = self._reload(key)  # eager, so a missing key raises here, not on first next()
        size = int(blob.size or 0)
        stop = size if end is None else min(end, size)
        # The generation read above is pinned, so a replacement mid-stream is a 404, not mixed bytes.
        changed = lambda: TransientStoreError(f"{key} in {self.url} changed while being read")  # noqa: E731

        def chunks() -> Iterator[bytes]:
            offset = start
            while offset < stop:
                last = min(offset + self.chunk_size, stop) - 1  # GCS ranges include their end
                with self._guard(f"reading {key}", missing=changed):
                    # raw: a Content-Encoding: gzip/br object's stored bytes, which the router sends
                    # with that header; the library would otherwise decode them (and GCS transcode)
                    data = blob.download_as_bytes(start=offset, end=last, retry=None, raw_download=True)
                if not data:
                    return
                offset += len(data)
                yield data

        return chunks()

    def head(self, key: str) -> ObjectInfo:
        return self._info(key, self._reload(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        full = self._name(prefix)  # "" under root "site" is "site/": never "site-other/…"
        with self._guard(f"listing {prefix or '/'}"):
            # list_blobs follows nextPageToken itself; a 404 here can only mean the bucket.
            infos = [self._info(self._key(blob.name), blob)
                     for blob in self._client.list_blobs(self._bucket, prefix=full, page_size=self.list_page_size,
                                                         retry=None)]
        return iter(sorted(infos, key=lambda i: i.key))

    def copy(
        self,
        src: str,
        dst: str,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        size: int | None = None,  # unused: the rewrite answer has the size
        extra_headers: dict[str, str] | None = None,
    ) -> ObjectInfo:
        # rewrite, not bucket.copy_blob: fake-gcs-server's copy drops Content-Type, Cache-Control and
        # metadata, while rewrite with the destination's fields set honours them there and on GCS.
        # Fields left unset are filled in from the source (seen on the emulator), so Content-Type is
        # always sent; callers wanting no Cache-Control, metadata or Content-Encoding on a copy cannot
        # get it here (publish copies only between objects of the same encoding for that reason).
        source = self._bucket.blob(self._name(src))
        target = self._bucket.blob(self._name(dst))
        target.content_type = content_type or DEFAULT_CONTENT_TYPE
        if cache_control is not None:
            target.cache_control = cache_control
        if metadata is not None:
            target.metadata = dict(metadata)
        _set_extra(target, extra_headers)
        with self._guard(f"copying {src} to {dst}", missing=self._not_found(src)):
            token = None
            while True:  # big objects (or cross-location copies) take several calls on GCS
                token, _, _ = target.rewrite(source, token=token, retry=None)
                if token is None:
                    break
        return self._receipt(dst, target)

    def delete_many(self, keys: Iterable[str]) -> None:
        # One DELETE per key on a bounded pool: GCS's JSON batch endpoint would save round trips, but
        # fake-gcs-server rejects batch requests, and correctness must not hang on a feature the test
        # server lacks. Deleting is idempotent, so a retry of the whole call is safe.
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        g = self._sdk.api_exc
        saw_missing = False

        def delete_one(key: str) -> Exception | object | None:
            try:
                self._bucket.blob(self._name(key)).delete(retry=None)
            except g.NotFound:
                return _MISSING
            except Exception as exc:  # collected, reported below with the key
                return exc
            return None

        workers = min(self.options.max_workers, len(keys))
        with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="gcs-delete") as pool:
            outcomes = list(pool.map(delete_one, keys))

        failures: list[tuple[str, AtomicsiteError]] = []
        for key, exc in zip(keys, outcomes):
            if exc is None:
                continue
            if exc is _MISSING:
                saw_missing = True
                continue
            mapped = exc if isinstance(exc, AtomicsiteError) else self._translate(exc, f"deleting {key}")
            if mapped is None:
                raise exc
            failures.append((key, mapped))
        if any(exc is None for exc in outcomes):
            self._bucket_exists = True
        if saw_missing:
            self._raise_if_bucket_missing()  # every key "missing" may mean the bucket is
        if failures:
            kinds = {type(err) for _, err in failures}
            kind = kinds.pop() if len(kinds) == 1 else StoreError
            if kind not in (TransientStoreError, AccessDenied):
                kind = StoreError
            names = ", ".join(key for key, _ in failures[:5]) + (" …" if len(failures) > 5 else "")
            message = (f"could not delete {len(failures)} of {len(keys)} object(s) in {self.url}: {names} "
                       f"({failures[0][1].message})")
            raise kind(message, hint=failures[0][1].hint) if kind is AccessDenied else kind(message)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if if_match is None:
            self.delete_many([key])
            return
        try:
            generation = int(if_match)
        except ValueError:  # not a generation this store handed out: it cannot match
            raise PreconditionFailed(f"{key}: token {if_match!r} is not a GCS generation") from None
        self._check_conditional_deletes()
        conflict = lambda: PreconditionFailed(f"{key} changed in {self.url} since it was read")  # noqa: E731
        # A conditional delete of an object that is gone: GCS answers 404, which means the same to us.
        with self._guard(f"deleting {key}", missing=conflict, conflict=conflict):
            self._bucket.blob(self._name(key)).delete(if_generation_match=generation, retry=None)

    def _check_conditional_deletes(self) -> None:
        where = (os.environ.get("STORAGE_EMULATOR_HOST") or "gcs", self.bucket_name)
        with _delete_probe_lock:
            enforced = _delete_verdicts.get(where)
            if enforced is None:
                enforced = _delete_verdicts[where] = self._probe_conditional_deletes()
        if not enforced:
            raise UnsupportedCondition(
                f"{where[0] if where[0] != 'gcs' else 'GCS'} does not honour ifGenerationMatch on deletes in "
                f"bucket {self.bucket_name!r}; nothing was deleted.")

    def _probe_conditional_deletes(self) -> bool:
        """Create a probe object and delete it naming a wrong generation: a server that checks refuses."""
        import secrets

        blob = self._bucket.blob(self._name("_atomicsite/probe/delete-" + secrets.token_hex(8)))
        with self._guard("probing conditional deletes"):
            blob.upload_from_string(b"", retry=None)
        try:
            with self._guard("probing conditional deletes"):
                try:
                    self._bucket.blob(blob.name).delete(if_generation_match=int(blob.generation) + 1, retry=None)
                except self._sdk.api_exc.PreconditionFailed:
                    return True
            return False
        finally:
            with contextlib.suppress(Exception):
                self._bucket.blob(blob.name).delete(retry=None)

    def close(self) -> None:
        self._client.close()


class _Sdk:
    """The SDK modules this store uses, imported when a store is opened (never at package import)."""

    def __init__(self):
        self.storage = require_sdk("google.cloud.storage", "gcs")
        self.api_exc = require_sdk("google.api_core.exceptions", "gcs")
        self.auth_exc = require_sdk("google.auth.exceptions", "gcs")
        self.requests = require_sdk("requests", "gcs")
        import requests.adapters  # noqa: F401  (attribute access above needs the submodule loaded)
        import urllib3.exceptions

        media = require_sdk("google.cloud.storage.exceptions", "gcs")
        g, rex = self.api_exc, self.requests.exceptions
        self.transient = (
            g.TooManyRequests, g.InternalServerError, g.BadGateway, g.ServiceUnavailable, g.GatewayTimeout,
            rex.ConnectionError, rex.ChunkedEncodingError, rex.Timeout,
            urllib3.exceptions.ProtocolError,
            self.auth_exc.TransportError,  # a token refresh that could not reach the server
            self.auth_exc.RefreshError,  # only the retryable ones get here (checked first)
            media.DataCorruption,  # a download whose checksum did not match: read it again
        )


def _one_line(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    line = " ".join(str(text).split())
    if len(line) > 200:
        line = line[:197] + "..."
    return f"HTTP {int(code)} {line}" if isinstance(code, int) else f"{type(exc).__name__}: {line}"


_EXTRA_FIELDS = {"content-encoding": "content_encoding", "content-disposition": "content_disposition",
                 "content-language": "content_language"}


def _set_extra(blob, extra_headers: dict[str, str] | None) -> None:
    """Content-Encoding and friends are blob fields on GCS. An object stored with ``Content-Encoding:
    gzip`` is served decompressed to clients that do not send ``Accept-Encoding: gzip`` (decompressive
    transcoding), so a gzip variant fetched by its own URL is right for every client."""
    for name, value in check_extra_headers(extra_headers).items():
        setattr(blob, _EXTRA_FIELDS[name], value)
