"""S3-specific behaviour, against a real moto server over HTTP (see tests/rigs/s3.py).

Faults are injected with botocore event hooks on the store's own client: a handler on ``before-send``
that returns a response stands in for the server, one on ``before-parameter-build`` that drops the
conditional headers stands in for a server that ignores them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from atomicsite.errors import (  # noqa: E402
    AccessDenied,
    AlreadyExists,
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
from atomicsite.retry import RetryingStore, RetryPolicy  # noqa: E402
from atomicsite.stores import StoreOptions  # noqa: E402
from atomicsite.stores.base import IfMatch, WriteMode  # noqa: E402
from atomicsite.stores.s3 import S3Store, _md5_from_etag  # noqa: E402
from tests.rigs.s3 import seed_objects  # noqa: E402

MiB = 1 << 20


# -- helpers ------------------------------------------------------------------------------------


def error_response(status: int, code: str, message: str = "injected", extra: str = ""):
    """What an S3 server sends back for a failed request."""
    from botocore.awsrequest import AWSResponse

    body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
            f"{extra}<RequestId>test</RequestId></Error>").encode()

    class Raw:
        def stream(self, **_):
            yield body

    return AWSResponse("http://injected", status, {"Content-Type": "application/xml"}, Raw())


class Faults:
    """Answer sends of one operation with ``response()`` (the first ``times`` of them, or all)."""

    def __init__(self, client, operation: str, response, times: int | None = None, headers: dict | None = None):
        self.response, self.times, self.headers, self.sends = response, times, headers or {}, 0
        client.meta.events.register(f"before-send.s3.{operation}", self)

    def __call__(self, request, **_):
        self.sends += 1
        if self.times is None or self.sends <= self.times:
            response = self.response()
            response.headers.update(self.headers)
            return response
        return None


class Calls:
    """Count API calls of one operation (not HTTP attempts), keeping their parameters."""

    def __init__(self, *clients, operation: str):
        self.params: list[dict] = []
        self._lock = threading.Lock()
        for client in clients:
            client.meta.events.register(f"before-parameter-build.s3.{operation}", self)

    def __call__(self, params, **_):
        with self._lock:
            self.params.append(dict(params))

    def __len__(self):
        return len(self.params)


def ignore_conditions(client, *headers: str) -> None:
    """Make the server behave as one that ignores conditional writes: the headers never reach it."""

    def strip(params, **_):
        for header in headers:
            params.pop(header, None)

    client.meta.events.register("before-parameter-build.s3.PutObject", strip)


@pytest.fixture
def store(s3_rig):
    return s3_rig.store


def one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text
    return text


# -- opening and configuration -------------------------------------------------------------------


def test_from_url_configures_one_attempt_and_a_pool_per_worker(moto_endpoint):
    store = S3Store.from_url("s3://bucket/a/b/", StoreOptions(endpoint_url=moto_endpoint, max_workers=5))
    assert (store.bucket, store.prefix, store.url) == ("bucket", "a/b", "s3://bucket/a/b")
    config = store.client.meta.config
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}  # RetryingStore retries
    assert config.max_pool_connections == 13
    assert config.s3 == {"addressing_style": "auto"}
    store.close()


def test_custom_endpoint_uses_when_required_checksums_and_uploads_work(s3_bucket, moto_endpoint):
    store = S3Store.from_url(f"s3://{s3_bucket}/site", StoreOptions(endpoint_url=moto_endpoint))
    config = store.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    sent = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
    store.put("v/x/a.txt", b"checksums", content_type="text/plain")
    assert store.get("v/x/a.txt").data == b"checksums"
    assert not any(h.lower().startswith("x-amz-checksum") for h in sent[0])
    store.close()


def test_explicit_when_supported_is_honoured(s3_bucket, moto_endpoint):
    options = StoreOptions(endpoint_url=moto_endpoint, checksums="when_supported")
    store = S3Store.from_url(f"s3://{s3_bucket}/site", options)
    assert store.client.meta.config.request_checksum_calculation == "when_supported"
    sent = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
    store.put("v/x/a.txt", b"checksums")
    assert store.get("v/x/a.txt").data == b"checksums"
    assert any(h.lower().startswith(("x-amz-checksum", "x-amz-trailer")) for h in sent[0])
    store.close()


def test_aws_itself_keeps_botocore_default_checksums(monkeypatch):
    store = S3Store.from_url("s3://bucket/site", StoreOptions(region="us-east-1"))
    assert store.client.meta.config.request_checksum_calculation == "when_supported"
    store.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # an endpoint set the boto3 way
    store = S3Store.from_url("s3://bucket/site", StoreOptions(region="us-east-1"))
    assert store.client.meta.config.request_checksum_calculation == "when_required"
    store.close()


@pytest.mark.parametrize("options", [StoreOptions(checksums="always"), StoreOptions(addressing_style="sideways")])
def test_bad_options_name_the_setting(options):
    with pytest.raises(ConfigError, match="checksums|addressing_style"):
        S3Store.from_url("s3://bucket/site", options)


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="no-such-profile"):
        S3Store.from_url("s3://bucket/site", StoreOptions(profile="no-such-profile"))


def test_importing_the_stores_does_not_import_boto3():
    code = "import sys, atomicsite.stores, atomicsite.stores.s3; assert 'boto3' not in sys.modules, 'boto3 imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


# -- keys, listing, reading ----------------------------------------------------------------------


def test_keys_live_under_the_prefix_and_list_relative_to_it(store, s3_admin, s3_bucket, make_store):
    store.put("v/a.txt", b"a")
    s3_admin.put_object(Bucket=s3_bucket, Key="site2/v/b.txt", Body=b"b")  # shares "site" but not "site/"
    s3_admin.put_object(Bucket=s3_bucket, Key="sitemap.xml", Body=b"c")
    assert s3_admin.head_object(Bucket=s3_bucket, Key="site/v/a.txt")["ContentLength"] == 1
    assert [i.key for i in store.list("")] == ["v/a.txt"]
    root = make_store(prefix="")
    assert [i.key for i in root.list("")] == ["site/v/a.txt", "site2/v/b.txt", "sitemap.xml"]
    assert root.get("site/v/a.txt").data == b"a"


def test_list_pages_past_1000_keys_and_delete_many_batches(store, s3_admin, s3_bucket):
    keys = [f"v/many/{i:05d}-{'é' if i % 7 == 0 else 'e'}.txt" for i in range(1100)]
    seed_objects(s3_admin, s3_bucket, [f"site/{k}" for k in keys])
    listed, deleted = Calls(store.client, operation="ListObjectsV2"), Calls(store.client, operation="DeleteObjects")

    infos = list(store.list("v/many/"))
    assert [i.key for i in infos] == sorted(keys)
    assert len(listed) == 2  # one page of 1000, then the rest
    assert all(i.size == 1 and i.md5 == hashlib.md5(b"x").hexdigest() and i.sha256 is None for i in infos)

    store.delete_many(keys)
    assert [len(p["Delete"]["Objects"]) for p in deleted.params] == [1000, 100]
    assert all(p["Delete"]["Quiet"] for p in deleted.params)
    assert s3_admin.list_objects_v2(Bucket=s3_bucket, Prefix="site/")["KeyCount"] == 0


def test_delete_many_names_the_keys_that_failed(store):
    keys = [f"v/d/{i}.txt" for i in range(10)]
    for key in keys:
        store.put(key, b"d")

    def refuse_seven(parsed, **_):  # one transient failure among permanent ones: not worth retrying
        parsed.setdefault("Errors", []).extend(
            {"Key": f"site/v/d/{i}.txt", "Code": "SlowDown" if i == 6 else "AccessDenied", "Message": "no"}
            for i in range(7)
        )

    store.client.meta.events.register("after-call.s3.DeleteObjects", refuse_seven)
    with pytest.raises(StoreError) as caught:
        store.delete_many(keys)
    assert not isinstance(caught.value, TransientStoreError)
    message = one_line(caught.value)
    assert "could not delete 7 object(s)" in message
    assert "v/d/0.txt (AccessDenied)" in message and "and 2 more" in message
    assert list(store.list("v/d/")) == []  # the server did delete them; only the answer was doctored


def test_delete_many_failures_that_are_all_transient_can_be_retried(store):
    store.put("v/d/1.txt", b"d")

    def slow_down(parsed, **_):
        parsed["Errors"] = [{"Key": "site/v/d/1.txt", "Code": "SlowDown", "Message": "later"}]

    store.client.meta.events.register("after-call.s3.DeleteObjects", slow_down)
    with pytest.raises(TransientStoreError, match="v/d/1.txt"):
        store.delete_many(["v/d/1.txt"])


def test_delete_many_of_nothing_sends_nothing(store):
    store.reset_http_stats()
    store.delete_many([])
    assert store.http_stats()["requests"] == 0


def test_open_past_the_end_is_empty_and_missing_is_not_found(store):
    store.put("k/ten.txt", b"0123456789")
    assert b"".join(store.open("k/ten.txt", 100)) == b""
    assert b"".join(store.open("k/ten.txt", 4, 4)) == b""
    with pytest.raises(ObjectNotFound):
        store.open("k/missing.txt")
    with pytest.raises(ObjectNotFound):
        store.open("k/missing.txt", 3, 3)


def test_head_and_get_report_headers_metadata_and_md5(store):
    data = b"body"
    store.put("v/h.css", data, content_type="text/css", cache_control="max-age=60", metadata={"sha256": "ab" * 32})
    for info in (store.head("v/h.css"), store.get("v/h.css").info):
        assert (info.size, info.content_type, info.cache_control) == (4, "text/css", "max-age=60")
        assert info.sha256 == "ab" * 32 and info.metadata == {"sha256": "ab" * 32}
        assert info.md5 == hashlib.md5(data).hexdigest() and info.token == f'"{info.md5}"'
        assert info.modified is not None


def test_etag_is_md5_only_when_single_part_and_not_kms():
    md5 = "9dd4e461268c8034f5c8564e155c67a6"
    assert _md5_from_etag(f'"{md5}"', {}) == md5
    assert _md5_from_etag(f'"{md5}-3"', {}) is None
    assert _md5_from_etag(f'"{md5}"', {"ServerSideEncryption": "aws:kms"}) is None
    assert _md5_from_etag(f'"{md5}"', {"SSECustomerAlgorithm": "AES256"}) is None
    assert _md5_from_etag(None, {}) is None


# -- conditional writes --------------------------------------------------------------------------


def test_racing_publishers_on_the_pointer_exactly_one_wins(store):
    key = "_atomicsite/channels/live.json"
    store.put(key, b'{"n":0}', mode=WriteMode.CREATE)
    threads = 6
    for round_ in range(5):
        token = store.head(key).token
        barrier = threading.Barrier(threads)

        def publish(i: int):
            barrier.wait()
            try:
                store.put(key, f'{{"n":{round_},"by":{i}}}'.encode(), mode=IfMatch(token))
                return i
            except PreconditionFailed as exc:
                assert not isinstance(exc, AlreadyExists)
                return None

        with ThreadPoolExecutor(threads) as pool:
            winners = [i for i in pool.map(publish, range(threads)) if i is not None]
        assert len(winners) == 1, f"round {round_}: {winners} all won"
        assert store.get(key).data == f'{{"n":{round_},"by":{winners[0]}}}'.encode()


def test_racing_creators_exactly_one_wins(store):
    threads = 6
    for round_ in range(5):
        key = f"_atomicsite/manifests/{round_}.json"
        barrier = threading.Barrier(threads)

        def create(i: int):
            barrier.wait()
            try:
                store.put(key, str(i).encode(), mode=WriteMode.CREATE)
                return i
            except AlreadyExists:
                return None

        with ThreadPoolExecutor(threads) as pool:
            winners = [i for i in pool.map(create, range(threads)) if i is not None]
        assert len(winners) == 1
        assert store.get(key).data == str(winners[0]).encode()


def test_a_server_ignoring_conditional_writes_is_refused(make_store):
    store = make_store()
    ignore_conditions(store.client, "IfNoneMatch", "IfMatch")
    with pytest.raises(UnsafeStoreError) as caught:
        store.put("_atomicsite/channels/live.json", b"{}", mode=WriteMode.CREATE)
    message = one_line(caught.value)
    assert "ignores conditional writes" in message and "overwrite each other" in message
    assert "--allow-unsafe-cas" in message
    with pytest.raises(ObjectNotFound):  # refused before writing anything
        store.head("_atomicsite/channels/live.json")
    assert list(store.list("_atomicsite/probe/")) == []  # the probe cleaned up
    store.put("v/plain.txt", b"unconditional writes still work")

    allowed = make_store(options=StoreOptions(endpoint_url=store.endpoint, allow_unsafe_cas=True))
    ignore_conditions(allowed.client, "IfNoneMatch", "IfMatch")
    info = allowed.put("_atomicsite/channels/live.json", b"{}", mode=WriteMode.CREATE)
    assert allowed.get("_atomicsite/channels/live.json").info.token == info.token


def test_a_server_ignoring_only_if_match_is_refused(make_store):
    store = make_store()
    ignore_conditions(store.client, "IfMatch")
    with pytest.raises(UnsafeStoreError):
        store.put("_atomicsite/channels/live.json", b"{}", mode=IfMatch('"abc"'))


def test_a_server_ignoring_if_match_on_delete_is_refused(make_store):
    store = make_store()
    info = store.put("_atomicsite/channels/pr-1.json", b"{}")
    store.client.meta.events.register("before-parameter-build.s3.DeleteObject",
                                      lambda params, **_: params.pop("IfMatch", None))
    with pytest.raises(UnsupportedCondition) as caught:
        store.delete("_atomicsite/channels/pr-1.json", if_match=info.token)
    assert "does not honour If-Match on deletes" in one_line(caught.value)
    assert store.get("_atomicsite/channels/pr-1.json").data == b"{}"  # refused before deleting anything
    assert list(store.list("_atomicsite/probe/")) == []


def test_conditional_delete_sends_if_match_and_probes_once(make_store):
    store = make_store()
    deletes = Calls(store.client, operation="DeleteObject")
    for i in range(3):
        info = store.put(f"_atomicsite/channels/pr-{i}.json", b"{}")
        store.delete(f"_atomicsite/channels/pr-{i}.json", if_match=info.token)
    mine = [p for p in deletes.params if "/_atomicsite/channels/" in p["Key"]]
    assert [p["IfMatch"] for p in mine] and all(p["IfMatch"].startswith('"') for p in mine)
    probes = [p for p in deletes.params if "/_atomicsite/probe/" in p["Key"]]
    assert len(probes) == 2  # the wrong If-Match (refused), then the clean-up


def test_the_probe_runs_once_per_endpoint_and_bucket(make_store, s3_admin, s3_options):
    first, second = make_store(), make_store()
    probes = Calls(first.client, second.client, operation="PutObject")

    def create(i: int):
        (first if i % 2 else second).put(f"_atomicsite/manifests/{i}.json", b"{}", mode=WriteMode.CREATE)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(8)))
    probe_puts = [p for p in probes.params if "/_atomicsite/probe/" in p["Key"]]
    assert len(probe_puts) == 3  # create, create again (refused), wrong If-Match (refused)
    assert len({p["Key"] for p in probe_puts}) == 1
    assert len(list(first.list("_atomicsite/manifests/"))) == 8
    assert list(first.list("_atomicsite/probe/")) == []

    other_bucket = f"{first.bucket}-2"
    s3_admin.create_bucket(Bucket=other_bucket)
    third = make_store(bucket=other_bucket)
    more = Calls(third.client, operation="PutObject")
    third.put("_atomicsite/channels/live.json", b"{}", mode=WriteMode.CREATE)
    assert len([p for p in more.params if "/_atomicsite/probe/" in p["Key"]]) == 3


def test_a_passed_probe_is_recorded_so_a_later_process_does_not_probe_again(make_store, monkeypatch):
    from atomicsite.stores import s3

    first = make_store()
    first.put("_atomicsite/channels/live.json", b"{}", mode=WriteMode.CREATE)
    record = json.loads(first.get(s3.CHECKS_KEY).data)
    assert record["endpoint"] == first.endpoint and set(record["passed"]) == {"conditional_writes"}

    monkeypatch.setattr(s3, "_cas_verdicts", {})  # a new process
    later = make_store()
    puts = Calls(later.client, operation="PutObject")
    later.put("_atomicsite/channels/pr-1.json", b"{}", mode=WriteMode.CREATE)
    assert [p for p in puts.params if "/_atomicsite/probe/" in p["Key"]] == []

    # a stale record, or one written against another endpoint, is not trusted
    for stale in ({**record, "passed": {"conditional_writes": "2020-01-01T00:00:00Z"}},
                  {**record, "endpoint": "https://elsewhere.example"}, "not json"):
        first.put(s3.CHECKS_KEY, json.dumps(stale).encode() if isinstance(stale, dict) else stale.encode())
        monkeypatch.setattr(s3, "_cas_verdicts", {})
        again = make_store()
        puts = Calls(again.client, operation="PutObject")
        again.put("_atomicsite/channels/pr-2.json", b"{}")
        again.put("_atomicsite/channels/pr-2.json", b"{}", mode=IfMatch(again.head("_atomicsite/channels/pr-2.json").token))
        assert len([p for p in puts.params if "/_atomicsite/probe/" in p["Key"]]) == 3
        assert s3._passed_recently(json.loads(again.get(s3.CHECKS_KEY).data), "conditional_writes", again.endpoint)


def test_a_recorded_pass_of_one_check_does_not_vouch_for_the_other(make_store, monkeypatch):
    from atomicsite.stores import s3

    store = make_store()
    store.put("_atomicsite/channels/live.json", b"{}", mode=WriteMode.CREATE)  # records conditional_writes
    monkeypatch.setattr(s3, "_delete_verdicts", {})
    store.client.meta.events.register("before-parameter-build.s3.DeleteObject",
                                      lambda params, **_: params.pop("IfMatch", None))
    info = store.put("_atomicsite/channels/pr-1.json", b"{}")
    with pytest.raises(UnsupportedCondition):
        store.delete("_atomicsite/channels/pr-1.json", if_match=info.token)
    assert "conditional_deletes" not in json.loads(store.get(s3.CHECKS_KEY).data)["passed"]


# -- copies and multipart ------------------------------------------------------------------------


def test_server_side_copy_sets_the_destination_headers(store, s3_admin, s3_bucket):
    data = b"console.log(1)"
    sha = hashlib.sha256(data).hexdigest()
    store.put("v/old/app.js", data, content_type="text/plain", cache_control="no-cache", metadata={"sha256": "x" * 64})
    info = store.copy("v/old/app.js", "v/new/app.js", content_type="text/javascript",
                      cache_control="public, max-age=31536000, immutable", metadata={"sha256": sha})
    head = s3_admin.head_object(Bucket=s3_bucket, Key="site/v/new/app.js")
    assert head["ContentType"] == "text/javascript"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["Metadata"] == {"sha256": sha}
    # a receipt carries the server's ETag (MD5), never our own sha256 echoed back
    assert (info.size, info.sha256, info.token) == (len(data), None, head["ETag"])

    store.copy("v/old/app.js", "v/bare/app.js")  # headers are set, never inherited
    bare = s3_admin.head_object(Bucket=s3_bucket, Key="site/v/bare/app.js")
    assert "CacheControl" not in bare and bare["Metadata"] == {}


def test_large_files_upload_multipart(make_store, s3_admin, s3_bucket, tmp_path):
    store = make_store(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    created = Calls(store.client, operation="CreateMultipartUpload")
    parts = Calls(store.client, operation="UploadPart")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * MiB))
    sha = hashlib.sha256(big.read_bytes()).hexdigest()

    info = store.put("v/x/big.bin", big, content_type="application/wasm", cache_control="immutable",
                     metadata={"sha256": sha})
    assert (len(created), len(parts)) == (1, 3)
    assert (info.size, info.sha256, info.md5, info.content_type) == (11 * MiB, sha, None, "application/wasm")
    head = s3_admin.head_object(Bucket=s3_bucket, Key="site/v/x/big.bin")
    assert head["ETag"] == info.token and "-" in head["ETag"]
    assert (head["ContentType"], head["CacheControl"], head["Metadata"]) == ("application/wasm", "immutable",
                                                                          {"sha256": sha})
    assert store.get("v/x/big.bin").data == big.read_bytes()
    assert store.http_stats()["bytes_sent"] >= 11 * MiB

    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * MiB)
    puts = Calls(store.client, operation="PutObject")
    store.put("v/x/small.bin", small)
    assert (len(created), len(puts)) == (1, 1)


def test_large_objects_copy_multipart(make_store, s3_admin, s3_bucket):
    store = make_store(copy_threshold=5 * MiB, copy_chunksize=5 * MiB)
    data = os.urandom(11 * MiB)
    store.put("v/old/big.bin", data, content_type="text/plain", metadata={"sha256": "0" * 64})
    part_copies = Calls(store.client, operation="UploadPartCopy")
    single_copies = Calls(store.client, operation="CopyObject")
    sha = hashlib.sha256(data).hexdigest()

    info = store.copy("v/old/big.bin", "v/new/big.bin", content_type="application/octet-stream",
                      cache_control="immutable", metadata={"sha256": sha})
    assert (len(part_copies), len(single_copies)) == (3, 0)
    head = s3_admin.head_object(Bucket=s3_bucket, Key="site/v/new/big.bin")
    assert (head["ContentType"], head["CacheControl"], head["Metadata"]) == ("application/octet-stream", "immutable",
                                                                          {"sha256": sha})
    assert (info.size, info.sha256) == (11 * MiB, sha)
    assert store.get("v/new/big.bin").data == data


# -- retries and errors --------------------------------------------------------------------------


def test_throttling_is_retried_by_the_wrapper_only(store, s3_admin, s3_bucket):
    slow_down = lambda: error_response(503, "SlowDown", "Please reduce your request rate.")  # noqa: E731
    faults = Faults(store.client, "PutObject", slow_down, times=2)
    retrying = RetryingStore(store, RetryPolicy(attempts=5, initial=0.01, maximum=0.02))
    retrying.put("v/r.txt", b"eventually")
    assert (retrying.retries, faults.sends) == (2, 3)
    assert s3_admin.get_object(Bucket=s3_bucket, Key="site/v/r.txt")["Body"].read() == b"eventually"


def test_without_the_wrapper_a_503_is_one_attempt_and_transient(store):
    faults = Faults(store.client, "PutObject", lambda: error_response(503, "SlowDown"))
    with pytest.raises(TransientStoreError) as caught:
        store.put("v/r.txt", b"never")
    assert faults.sends == 1  # botocore did not retry on its own
    assert "SlowDown" in one_line(caught.value) and "s3://" in str(caught.value)


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "ServiceUnavailable"), (400, "RequestTimeout"),
                                         (400, "ThrottlingException"), (429, "TooManyRequests")])
def test_transient_answers(store, status, code):
    store.put("v/t.txt", b"t")
    Faults(store.client, "GetObject", lambda: error_response(status, code))
    with pytest.raises(TransientStoreError):
        store.get("v/t.txt")


def test_a_refused_connection_is_transient(s3_bucket):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store.from_url(f"s3://{s3_bucket}/site", StoreOptions(endpoint_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(TransientStoreError, match="EndpointConnectionError"):
        store.put("v/a.txt", b"a")
    store.close()


def test_access_denied_is_not_retried(store):
    faults = Faults(store.client, "PutObject", lambda: error_response(403, "AccessDenied", "Access Denied"))
    retrying = RetryingStore(store, RetryPolicy(attempts=5, initial=0.01))
    with pytest.raises(AccessDenied) as caught:
        retrying.put("v/a.txt", b"a")
    assert (faults.sends, retrying.retries) == (1, 0)
    message = one_line(caught.value)
    assert f"access denied to s3://{store.bucket}/site/v/a.txt" in message
    assert "s3:PutObject" in message and "AWS_PROFILE" in message


def test_access_denied_on_head_without_a_body(store):
    Faults(store.client, "HeadObject", lambda: error_response(403, "AccessDenied"))
    with pytest.raises(AccessDenied):
        store.head("v/a.txt")


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"])
def test_rejected_credentials_never_show_the_secret(s3_bucket, s3_options, code):
    import boto3

    secret = "SECRETsauce/0123456789abcdefghijklmnopqrstuvw"
    session = boto3.Session(aws_access_key_id="AKIAEXAMPLEEXAMPLE12", aws_secret_access_key=secret,
                            region_name="us-east-1")
    store = S3Store(s3_bucket, "site", s3_options, session=session)
    echo = f"<AWSAccessKeyId>AKIAEXAMPLEEXAMPLE12</AWSAccessKeyId><StringToSign>{secret}</StringToSign>"
    Faults(store.client, "PutObject", lambda: error_response(403, code, f"signature mismatch for {secret}", echo))
    with pytest.raises(AccessDenied) as caught:
        store.put("v/a.txt", b"a")
    message = one_line(caught.value)
    assert code in message and "AWS_ACCESS_KEY_ID" in message
    assert secret not in message and "SECRETsauce" not in message
    store.close()


def test_no_credentials_at_all(s3_bucket, s3_options, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # the rig already points the config files nowhere
    store = S3Store.from_url(f"s3://{s3_bucket}/site", s3_options)
    with pytest.raises(AccessDenied) as caught:
        store.put("v/a.txt", b"a")
    message = one_line(caught.value)
    assert message.startswith("no AWS credentials found") and "aws configure" in message
    store.close()


def test_a_missing_bucket_is_named(make_store):
    store = make_store(bucket="atomicsite-no-such-bucket")
    actions = [lambda: store.put("v/a.txt", b"a"), lambda: list(store.list("v/")), lambda: store.delete_many(["a"])]
    for action in actions:
        with pytest.raises(BucketNotFound) as caught:
            action()
        assert "bucket 'atomicsite-no-such-bucket' does not exist" in one_line(caught.value)


def test_a_bucket_in_another_region_says_which(store):
    Faults(store.client, "PutObject",
           lambda: error_response(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed "
                                  "using the specified endpoint."), headers={"x-amz-bucket-region": "eu-west-1"})
    with pytest.raises(UsageError) as caught:
        store.put("v/a.txt", b"a")
    message = one_line(caught.value)
    assert store.bucket in message and "eu-west-1" in message
    assert "--region" in message and "ATOMICSITE_REGION" in message


def test_other_errors_name_the_code_and_target(store):
    Faults(store.client, "PutObject", lambda: error_response(400, "InvalidStorageClass", "The storage class\nis bad"))
    with pytest.raises(StoreError) as caught:
        store.put("v/a.txt", b"a")
    assert type(caught.value) is StoreError
    message = one_line(caught.value)
    assert "InvalidStorageClass" in message and f"s3://{store.bucket}/site/v/a.txt" in message


def test_if_match_on_a_conflicting_write_in_progress(store):
    first = store.put("_atomicsite/channels/live.json", b"{}", mode=WriteMode.CREATE)
    Faults(store.client, "PutObject", lambda: error_response(409, "ConditionalRequestConflict"))
    with pytest.raises(PreconditionFailed):
        store.put("_atomicsite/channels/live.json", b"{}", mode=IfMatch(first.token))
    with pytest.raises(AlreadyExists):
        store.put("_atomicsite/channels/other.json", b"{}", mode=WriteMode.CREATE)


# -- accounting ----------------------------------------------------------------------------------


def test_http_stats_count_requests_and_body_bytes(store):
    store.reset_http_stats()
    store.put("v/a.bin", b"z" * 1000)
    store.get("v/a.bin")
    assert store.http_stats() == {"requests": 2, "bytes_sent": 1000}
    store.reset_http_stats()
    assert store.http_stats() == {"requests": 0, "bytes_sent": 0}
