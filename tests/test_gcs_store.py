"""GCS-specific behaviour of GCSStore, against fake-gcs-server (see tests/rigs/gcs.py).

Faults are injected at the transport: the store's requests adapter answers a chosen status (or raises)
instead of reaching the server, so the real SDK sees a real HTTP answer and does its own parsing.
"""

from __future__ import annotations

import hashlib
import http
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from atomicsite.errors import (
    AccessDenied,
    AlreadyExists,
    BucketNotFound,
    ObjectNotFound,
    PreconditionFailed,
    StoreError,
    TransientStoreError,
)
from atomicsite.retry import RetryingStore, RetryPolicy
from atomicsite.stores import StoreOptions
from atomicsite.stores.base import IfMatch, ObjectInfo, WriteMode
from atomicsite.stores.gcs import GCSStore

KIB = 1024
POINTER = "_atomicsite/channels/live.json"


def open_store(url: str, **kwargs) -> GCSStore:
    return GCSStore.from_url(url, StoreOptions(project="test", max_workers=kwargs.pop("max_workers", 16)), **kwargs)


def fake_response(request, status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = http.HTTPStatus(status).phrase
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"error": {"code": status, "message": response.reason}}).encode()
    response.url = request.url
    response.request = request
    return response


def inject(monkeypatch, store: GCSStore, *, status: int | None = None, error: Exception | None = None,
           times: int | None = None, when=lambda request: True) -> list:
    """Answer the store's matching requests with ``status`` (or raise ``error``), ``times`` times
    (None = always); return the list of requests that were intercepted."""
    adapter = store._client._http.get_adapter("http://")
    real_send = adapter.send
    hit: list = []

    def send(request, **kwargs):
        if when(request) and (times is None or len(hit) < times):
            hit.append(request)
            if error is not None:
                raise error
            return fake_response(request, status)
        return real_send(request, **kwargs)

    monkeypatch.setattr(adapter, "send", send)
    return hit


def one_line(err: Exception) -> bool:
    return "\n" not in str(err) and len(str(err)) < 400


# -- compare-and-swap under contention --------------------------------------------------------------


def test_two_publishers_racing_on_the_pointer_one_wins(gcs_rig):
    a, b = gcs_rig.store, open_store(gcs_rig.url)
    a.put(POINTER, b'{"v":0}', mode=WriteMode.CREATE)
    for round_ in range(5):
        token_a, token_b = a.head(POINTER).token, b.head(POINTER).token  # both read the same pointer
        assert token_a == token_b
        barrier = threading.Barrier(2)

        def publish(store, body):
            barrier.wait()
            try:
                return body, store.put(POINTER, body, mode=IfMatch(token_a))
            except PreconditionFailed as exc:
                return body, exc

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(publish, [a, b], [b'{"v":"a%d"}' % round_, b'{"v":"b%d"}' % round_]))
        wins = [(body, r) for body, r in results if isinstance(r, ObjectInfo)]
        losses = [r for _, r in results if isinstance(r, PreconditionFailed)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert not isinstance(losses[0], AlreadyExists)
        body, info = wins[0]
        current = a.get(POINTER)
        assert current.data == body and current.info.token == info.token
    b.close()


def test_create_only_race_has_exactly_one_winner(gcs_rig):
    store = gcs_rig.store
    barrier = threading.Barrier(8)

    def create(i):
        barrier.wait()
        try:
            return store.put("_atomicsite/manifests/x.json", b"%d" % i, mode=WriteMode.CREATE)
        except AlreadyExists as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    wins = [r for r in results if isinstance(r, ObjectInfo)]
    assert len(wins) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 7
    assert store.head("_atomicsite/manifests/x.json").token == wins[0].token


def test_if_match_with_a_foreign_token_fails_without_a_request(gcs_rig):
    store = gcs_rig.store
    store.put(POINTER, b"{}")
    store.reset_http_stats()
    with pytest.raises(PreconditionFailed):
        store.put(POINTER, b"{}", mode=IfMatch('"an-s3-etag"'))
    assert store.http_stats()["requests"] == 0


# -- headers ----------------------------------------------------------------------------------------


def test_copy_sets_destination_headers_as_a_plain_client_sees_them(gcs_rig, fake_gcs):
    store = gcs_rig.store
    store.put("v/old/app.js", b"console.log(1)", content_type="text/plain", cache_control="no-cache",
              metadata={"sha256": "0" * 64, "other": "x"})
    sha = hashlib.sha256(b"console.log(1)").hexdigest()
    info = store.copy("v/old/app.js", "v/new/app.js", content_type="text/javascript; charset=utf-8",
                      cache_control="public, max-age=31536000, immutable", metadata={"sha256": sha})
    # a receipt carries the server's MD5 and metadata, not a sha256 it would only echo back
    assert info.sha256 is None and info.metadata.get("sha256") == sha
    assert info.content_type == "text/javascript; charset=utf-8"

    bucket = fake_gcs.client().bucket(gcs_rig.url.split("/")[2])
    copied = bucket.get_blob("site/v/new/app.js")
    assert copied.content_type == "text/javascript; charset=utf-8"
    assert copied.cache_control == "public, max-age=31536000, immutable"
    assert copied.metadata["sha256"] == sha
    assert copied.download_as_bytes() == b"console.log(1)"
    source = bucket.get_blob("site/v/old/app.js")
    assert (source.content_type, source.cache_control, source.metadata["sha256"]) == ("text/plain", "no-cache", "0" * 64)
    # Emulator gap: rewrite fills fields the request leaves out from the source, and a patch cannot
    # clear them, so "other" survives the copy above. Callers always pass the full header set.


def test_listing_carries_headers_and_hashes(gcs_rig):
    data = b"<p>x</p>"
    sha = hashlib.sha256(data).hexdigest()
    gcs_rig.store.put("v/h/index.html", data, content_type="text/html", cache_control="no-cache",
                      metadata={"sha256": sha})
    (listed,) = gcs_rig.store.list("v/h/")
    assert (listed.sha256, listed.md5) == (sha, hashlib.md5(data).hexdigest())
    assert (listed.content_type, listed.cache_control, listed.size) == ("text/html", "no-cache", len(data))
    assert listed.token == gcs_rig.store.head("v/h/index.html").token


# -- transient errors and retries -------------------------------------------------------------------

OPERATIONS = {
    "put": lambda s: s.put("v/k/new.txt", b"new"),
    "get": lambda s: s.get("v/k/a.txt"),
    "head": lambda s: s.head("v/k/a.txt"),
    "open": lambda s: b"".join(s.open("v/k/a.txt")),
    "list": lambda s: list(s.list("v/k/")),
    "copy": lambda s: s.copy("v/k/a.txt", "v/k/b.txt", content_type="text/plain"),
    "delete_many": lambda s: s.delete_many(["v/k/a.txt"]),
}


@pytest.mark.parametrize("op", sorted(OPERATIONS))
@pytest.mark.parametrize("status", [429, 503])
def test_transient_status_is_raised_once_and_retried_by_the_wrapper(gcs_rig, monkeypatch, op, status):
    store = gcs_rig.store
    store.put("v/k/a.txt", b"a")
    hit = inject(monkeypatch, store, status=status)
    with pytest.raises(TransientStoreError) as caught:
        OPERATIONS[op](store)
    assert len(hit) == 1, "the SDK retried by itself: retries must happen only in RetryingStore"
    assert one_line(caught.value) and gcs_rig.url in str(caught.value)

    monkeypatch.undo()
    hit = inject(monkeypatch, store, status=status, times=2)
    retrying = RetryingStore(store, RetryPolicy(attempts=5, initial=0.01, maximum=0.05))
    OPERATIONS[op](retrying)
    assert retrying.retries == 2 and len(hit) == 2


@pytest.mark.parametrize("error", [requests.ConnectionError("connection reset by peer"),
                                   requests.exceptions.ChunkedEncodingError("short read"),
                                   requests.Timeout("read timed out")])
def test_network_errors_are_transient(gcs_rig, monkeypatch, error):
    inject(monkeypatch, gcs_rig.store, error=error, times=1)
    with pytest.raises(TransientStoreError):
        gcs_rig.store.put("v/k/x.txt", b"x")
    gcs_rig.store.put("v/k/x.txt", b"x")  # the next call reaches the server again
    assert gcs_rig.store.get("v/k/x.txt").data == b"x"


def test_forbidden_is_access_denied_and_not_retried(gcs_rig, monkeypatch):
    hit = inject(monkeypatch, gcs_rig.store, status=403)
    retrying = RetryingStore(gcs_rig.store, RetryPolicy(attempts=5, initial=0.01))
    with pytest.raises(AccessDenied) as caught:
        retrying.put("v/k/x.txt", b"x")
    assert len(hit) == 1 and retrying.retries == 0
    assert gcs_rig.url in str(caught.value) and "roles/storage.objectAdmin" in str(caught.value)
    assert one_line(caught.value)


def test_unauthorized_and_refresh_failures_are_access_denied_with_a_login_hint(gcs_rig, monkeypatch):
    import google.auth.exceptions as auth_exc

    inject(monkeypatch, gcs_rig.store, status=401)
    with pytest.raises(AccessDenied) as caught:
        gcs_rig.store.head("v/k/x.txt")
    assert "gcloud auth application-default login" in caught.value.hint and one_line(caught.value)

    # With real credentials, a failed token refresh raises RefreshError inside the session, before
    # anything is sent; raising it at the transport reaches the store by the same path.
    monkeypatch.undo()
    inject(monkeypatch, gcs_rig.store, error=auth_exc.RefreshError("invalid_grant: Token has been revoked"))
    with pytest.raises(AccessDenied) as caught:
        gcs_rig.store.head("v/k/x.txt")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in caught.value.hint and "revoked" not in str(caught.value)

    monkeypatch.undo()
    inject(monkeypatch, gcs_rig.store, error=auth_exc.RefreshError("metadata server busy", retryable=True))
    with pytest.raises(TransientStoreError):
        gcs_rig.store.head("v/k/x.txt")


# -- permanent errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["put", "get", "head", "list", "copy", "delete_many"])
def test_missing_bucket_is_bucket_not_found_naming_it(fake_gcs, op):
    bucket = f"atomicsite-missing-{uuid.uuid4().hex[:8]}"
    store = open_store(f"gs://{bucket}/site")
    with pytest.raises(BucketNotFound) as caught:
        OPERATIONS[op](store)
    assert f"'{bucket}'" in str(caught.value) and one_line(caught.value)


def test_missing_object_in_a_fresh_store_is_object_not_found(gcs_rig):
    store = open_store(gcs_rig.url)  # has not yet seen the bucket, so it checks it once
    with pytest.raises(ObjectNotFound):
        store.get("v/none.txt")
    store.reset_http_stats()
    with pytest.raises(ObjectNotFound):
        store.head("v/none.txt")
    assert store.http_stats()["requests"] == 1  # the bucket is known now: no second check


def test_no_credentials_is_access_denied_with_a_hint(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(AccessDenied) as caught:
        GCSStore.from_url("gs://some-bucket/site", StoreOptions())
    assert "no Google Cloud credentials" in str(caught.value) and "gs://some-bucket/site" in str(caught.value)
    assert "gcloud auth application-default login" in caught.value.hint and one_line(caught.value)


def test_no_adc_anywhere_is_access_denied(monkeypatch):
    import google.auth
    import google.auth.exceptions

    def no_adc(*args, **kwargs):  # what google.auth.default raises on a machine with nothing set up
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(google.auth, "default", no_adc)
    with pytest.raises(AccessDenied) as caught:
        GCSStore.from_url("gs://some-bucket", StoreOptions(project="p"))
    assert one_line(caught.value) and "google-github-actions/auth" in caught.value.hint


def test_emulator_uses_anonymous_credentials(fake_gcs, monkeypatch):
    import google.auth

    def fail(*args, **kwargs):
        raise AssertionError("ADC consulted although STORAGE_EMULATOR_HOST is set")

    monkeypatch.setattr(google.auth, "default", fail)
    store = GCSStore.from_url(f"gs://{fake_gcs.new_bucket()}/site", StoreOptions())
    store.put("a.txt", b"a")
    assert store._client.project == "atomicsite-emulator"


def test_delete_many_names_the_keys_that_failed(gcs_rig, monkeypatch):
    store = gcs_rig.store
    for key in ["v/d/ok1.txt", "v/d/bad.txt", "v/d/ok2.txt"]:
        store.put(key, b"x")
    inject(monkeypatch, store, status=403, when=lambda r: r.method == "DELETE" and "bad.txt" in r.url)
    with pytest.raises(AccessDenied) as caught:
        store.delete_many(["v/d/ok1.txt", "v/d/bad.txt", "v/d/ok2.txt", "v/d/missing.txt"])
    assert "v/d/bad.txt" in str(caught.value) and "ok1" not in str(caught.value)
    assert [i.key for i in store.list("v/d/")] == ["v/d/bad.txt"]


def test_delete_many_with_transient_failures_is_retried_whole(gcs_rig, monkeypatch):
    store = gcs_rig.store
    keys = [f"v/t/{i}.txt" for i in range(6)]
    for key in keys:
        store.put(key, b"x")
    inject(monkeypatch, store, status=503, times=2, when=lambda r: r.method == "DELETE")
    with pytest.raises(TransientStoreError):
        store.delete_many(keys)
    store.delete_many(keys)  # already-deleted keys are fine
    assert list(store.list("v/t/")) == []


# -- volume, pagination, odd keys -------------------------------------------------------------------


def test_listing_past_a_page_and_deleting_it_all(gcs_rig):
    # fake-gcs-server returns every object in one page unless asked for fewer (real GCS stops at
    # 1000), so the store is told a page size to make list_blobs follow nextPageToken here.
    keys = [f"v/many/{i:04d}.txt" if i % 50 else f"v/many/{i:04d} ünï 日本.txt" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: gcs_rig.store.put(k, k.encode(), metadata={"sha256": "s"}), keys))
    paged = open_store(gcs_rig.url, list_page_size=250)
    listed = list(paged.list("v/many/"))
    assert [i.key for i in listed] == sorted(keys)
    assert paged.http_stats()["requests"] == 5  # ceil(1100 / 250) pages
    assert all(i.sha256 == "s" for i in listed)
    assert len(list(gcs_rig.store.list("v/"))) == 1100

    paged.delete_many(keys + ["v/many/not-there.txt"])
    assert list(gcs_rig.store.list("v/many/")) == []
    paged.close()


def test_list_stays_inside_the_root(gcs_rig, fake_gcs):
    bucket = fake_gcs.client().bucket(gcs_rig.url.split("/")[2])
    bucket.blob("site-other/v/a.txt").upload_from_string(b"outside")
    bucket.blob("elsewhere.txt").upload_from_string(b"outside")
    gcs_rig.store.put("v/a.txt", b"inside")
    assert [i.key for i in gcs_rig.store.list("")] == ["v/a.txt"]


# -- big objects: resumable uploads and ranged reads ------------------------------------------------


def test_resumable_upload_keeps_bytes_and_headers(gcs_rig, fake_gcs, tmp_path):
    store = open_store(gcs_rig.url, resumable_threshold=256 * KIB, chunk_size=256 * KIB)
    data = os.urandom(700 * KIB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    info = store.put("v/big/big.bin", src, content_type="application/wasm", cache_control="immutable",
                     metadata={"sha256": sha}, mode=WriteMode.CREATE)
    stats = store.http_stats()
    assert stats["requests"] == 4  # start the session, then three 256 KiB chunks
    assert stats["bytes_sent"] >= len(data)
    assert (info.size, info.sha256, info.md5) == (len(data), None, hashlib.md5(data).hexdigest())
    assert info.metadata.get("sha256") == sha

    blob = fake_gcs.client().bucket(gcs_rig.url.split("/")[2]).get_blob("site/v/big/big.bin")
    assert (blob.content_type, blob.cache_control, blob.metadata) == ("application/wasm", "immutable", {"sha256": sha})
    assert blob.download_as_bytes() == data

    store.reset_http_stats()
    small = tmp_path / "small.bin"
    small.write_bytes(data[: 256 * KIB])  # at the threshold: one request
    store.put("v/big/small.bin", small)
    assert store.http_stats()["requests"] == 1
    store.close()


def test_resumable_create_sends_the_generation_precondition(gcs_rig, tmp_path, monkeypatch):
    # Emulator gap: fake-gcs-server ignores ifGenerationMatch on resumable uploads (a second create
    # succeeds there), while real GCS enforces it. So check the request we send instead.
    store = open_store(gcs_rig.url, resumable_threshold=256 * KIB, chunk_size=256 * KIB)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(300 * KIB))
    seen = []
    adapter = store._client._http.get_adapter("http://")
    real_send = adapter.send
    monkeypatch.setattr(adapter, "send", lambda request, **kw: (seen.append(request.url), real_send(request, **kw))[1])
    store.put("_atomicsite/manifests/big.json", src, mode=WriteMode.CREATE)
    assert "uploadType=resumable" in seen[0] and "ifGenerationMatch=0" in seen[0]
    store.close()


def test_open_reads_ranges_across_chunks(gcs_rig):
    store = open_store(gcs_rig.url, chunk_size=256 * KIB)
    data = os.urandom(700 * KIB)
    store.put("v/r/blob.bin", data)
    chunks = list(store.open("v/r/blob.bin", 100, 600 * KIB))
    assert b"".join(chunks) == data[100: 600 * KIB] and len(chunks) == 3
    assert b"".join(store.open("v/r/blob.bin")) == data
    assert b"".join(store.open("v/r/blob.bin", len(data) + 5)) == b""
    store.put("v/r/empty", b"")
    assert b"".join(store.open("v/r/empty")) == b""
    assert b"".join(store.open("v/r/empty", 0, 10)) == b""
    store.close()


# -- transport: accounting, pool, lazy import -------------------------------------------------------


def test_http_stats_count_requests_and_bytes_from_many_threads(gcs_rig):
    store = gcs_rig.store
    store.reset_http_stats()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: store.put(f"v/s/{i}.bin", b"x" * 1000), range(64)))
    stats = store.http_stats()
    assert stats["requests"] == 64
    assert 64 * 1000 <= stats["bytes_sent"] < 64 * 3000  # bodies plus multipart envelopes
    assert stats["bytes_sent"] - stats["envelope_bytes"] == 64 * 1000  # the envelope is told apart exactly
    assert stats["content_by_kind"] == {"v": 64 * 1000}
    store.put("_atomicsite/claims/x.json", b"{}")
    assert store.http_stats()["content_by_kind"] == {"v": 64 * 1000, "claims": 2}
    store.reset_http_stats()
    assert store.http_stats() == {"requests": 0, "bytes_sent": 0, "envelope_bytes": 0, "content_by_kind": {}}


def test_connection_pool_is_sized_to_the_workers(gcs_rig):
    store = GCSStore.from_url(gcs_rig.url, StoreOptions(project="test", max_workers=48))
    for scheme in ("http://", "https://"):
        assert store._client._http.get_adapter(scheme)._pool_maxsize == 48
    store.close()


def test_the_sdk_is_imported_only_when_a_store_is_opened():
    code = "import sys, atomicsite.stores, atomicsite.stores.gcs; print('google.cloud.storage' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_store_errors_are_store_errors(gcs_rig, monkeypatch):
    inject(monkeypatch, gcs_rig.store, status=400)
    with pytest.raises(StoreError) as caught:
        gcs_rig.store.put("v/k/x.txt", b"x")
    assert not isinstance(caught.value, TransientStoreError) and "HTTP 400" in str(caught.value)


def test_no_background_requests_behind_the_store(gcs_rig):
    # google-cloud-storage 3.x would fetch bucket metadata on a thread of its own at the first call
    # (for trace labels), with its own retries and outside our counts; the store switches that off.
    store = open_store(gcs_rig.url)
    store.put("v/a.txt", b"a")
    with pytest.raises(ObjectNotFound):
        store.head("v/none.txt")
    time.sleep(0.3)  # long enough for a background request to the local emulator to show up
    assert store.http_stats()["requests"] == 2
    store.close()
