"""The light CopyObject path (atomicsite/stores/s3_copy.py, s3_wire.py).

Against the real moto server: copies made by the light path are the copies boto3 makes (body, headers,
metadata, ETag), their request headers are boto3's in effect, and moto with IAM authentication on
checks their signatures and refuses a denied user. Against botocore's own signer: the same signature
for the same request. Against a canned stand-in (tests/s3_copy_standin.py, for what moto cannot do):
errors map as boto3's do, a 200 with an <Error> body, expired and refreshed credentials, keep-alive,
stale connections, chunked answers, and the fallback to boto3.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import socket
import threading
import urllib.request
import uuid

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from atomicsite.errors import (  # noqa: E402
    AccessDenied,
    BucketNotFound,
    ObjectNotFound,
    StoreError,
    TransientStoreError,
)
from atomicsite.retry import RetryingStore, RetryPolicy  # noqa: E402
from atomicsite.stores import StoreOptions  # noqa: E402
from atomicsite.stores import s3_copy  # noqa: E402
from atomicsite.stores.s3 import S3Store  # noqa: E402
from atomicsite.stores.s3_copy import EMPTY_SHA256, sign_put  # noqa: E402
from atomicsite.stores.s3_wire import WireSettings, wire_settings  # noqa: E402
from tests.s3_copy_standin import COPY_OK, S3CopyStandin, error, self_signed  # noqa: E402

SHA = "a" * 64
ODD_KEYS = ["index.html", "a b/c+d#e?f%g.txt", "ünï/cödé ✓.css", "x/~tilde/(paren)&amp;[x]!'*.js"]


class SdkCopies:
    """Count CopyObject requests boto3 sends (the light path's are not seen here), keeping their headers."""

    def __init__(self, client):
        self.requests: list[dict] = []
        client.meta.events.register("before-send.s3.CopyObject", self)

    def __call__(self, request, **_):
        self.requests.append({k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})

    def __len__(self):
        return len(self.requests)


def copy_args(n: int = 0) -> dict:
    return {"content_type": "text/html; charset=utf-8", "cache_control": f"public, max-age={n}",
            "metadata": {"sha256": SHA}}


# -- over moto: the same objects as boto3 -----------------------------------------------------------


def test_light_copies_are_the_copies_boto3_makes(make_store, s3_admin, s3_bucket):
    light, sdk = make_store(), make_store(light_copy=False)
    for i, key in enumerate(ODD_KEYS):
        light.put(f"v/old/{key}", f"body {i}".encode(), content_type="text/plain", metadata={"sha256": "0" * 64})
    sdk_copies = SdkCopies(light.client)

    for i, key in enumerate(ODD_KEYS):
        a = light.copy(f"v/old/{key}", f"v/light/{key}", size=len(f"body {i}"), **copy_args(i))
        b = sdk.copy(f"v/old/{key}", f"v/sdk/{key}", size=len(f"body {i}"), **copy_args(i))
        assert (a.size, a.token, a.md5, a.sha256, a.content_type, a.cache_control, a.metadata) == \
            (b.size, b.token, b.md5, b.sha256, b.content_type, b.cache_control, b.metadata)
        assert a.modified.tzinfo is not None and b.modified.tzinfo is not None
        ours = s3_admin.get_object(Bucket=s3_bucket, Key=f"site/v/light/{key}")
        theirs = s3_admin.get_object(Bucket=s3_bucket, Key=f"site/v/sdk/{key}")
        assert ours["Body"].read() == theirs["Body"].read() == f"body {i}".encode()
        for field in ("ContentType", "CacheControl", "Metadata", "ETag", "ContentLength", "ContentEncoding",
                      "ContentDisposition", "ContentLanguage", "StorageClass"):
            assert ours.get(field) == theirs.get(field), field
    # Only the first copy went through boto3 (it taught the light path the request's shape).
    assert len(sdk_copies) == 1
    assert light._copier.proven and light._copier.template.prefix == f"/{s3_bucket}/"


def test_request_headers_are_boto3s_in_effect(make_store, monkeypatch):
    store = make_store()
    store.put("v/old/a b.txt", b"x")
    sdk_copies = SdkCopies(store.client)
    store.copy("v/old/a b.txt", "v/one/ü.txt", size=1, **copy_args())  # through boto3: learns
    sent: list[tuple[str, dict]] = []
    pool = store._copier._pool
    real = pool.request
    monkeypatch.setattr(pool, "request", lambda method, path, headers: (sent.append((path, headers)),
                                                                         real(method, path, headers))[1])
    store.copy("v/old/a b.txt", "v/one/ü.txt", size=1, **copy_args())  # the same copy, light

    boto = {k.lower(): v for k, v in sdk_copies.requests[0].items()}
    path, ours = sent[0]
    ours = {k.lower(): v for k, v in ours.items()}
    per_request = {"authorization", "x-amz-date", "amz-sdk-invocation-id", "amz-sdk-request"}
    assert {k: v for k, v in ours.items() if k not in per_request} == \
        {k: v for k, v in boto.items() if k not in per_request}
    assert path == f"/{store.bucket}/site/v/one/%C3%BC.txt"
    signed = ours["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed == boto["authorization"].split("SignedHeaders=")[1].split(",")[0]


def test_no_size_copy_with_source_if_match_also_goes_light(make_store, s3_admin, s3_bucket):
    store = make_store()
    store.put("v/old/a.txt", b"abc", content_type="text/plain")
    store.copy("v/old/a.txt", "v/warm/a.txt", size=3)
    sdk_copies = SdkCopies(store.client)
    info = store.copy("v/old/a.txt", "v/new/a.txt", content_type="text/css")  # HEAD, then CopySourceIfMatch
    assert info.size == 3 and len(sdk_copies) == 0
    assert s3_admin.head_object(Bucket=s3_bucket, Key="site/v/new/a.txt")["ContentType"] == "text/css"


def test_missing_source_and_bucket_map_as_boto3s(make_store):
    store = make_store()
    store.put("v/old/a.txt", b"abc")
    store.copy("v/old/a.txt", "v/warm/a.txt", size=3)  # boto3's, learned from
    store.copy("v/old/a.txt", "v/warm/a.txt", size=3)  # the first light one
    assert store._copier.proven
    sdk_copies = SdkCopies(store.client)
    with pytest.raises(ObjectNotFound) as caught:
        store.copy("v/old/missing.txt", "v/new/missing.txt", size=3)
    assert caught.value.key == "v/old/missing.txt" and len(sdk_copies) == 0

    gone = make_store(bucket="atomicsite-no-such-bucket-copy")
    gone._copier.template = dataclasses.replace(store._copier.template, bucket=gone.bucket,
                                                prefix=f"/{gone.bucket}/")
    gone._copier._pool, gone._copier.proven = store._copier._pool, True
    with pytest.raises(BucketNotFound, match="atomicsite-no-such-bucket-copy"):
        gone.copy("v/a.txt", "v/b.txt", size=1)
    gone._copier._pool = None  # shared with `store`, closed there


def test_http_stats_count_light_copies(make_store):
    store = make_store()
    store.put("v/old/a.txt", b"abc")
    store.reset_http_stats()
    for i in range(3):
        store.copy("v/old/a.txt", f"v/{i}/a.txt", size=3)
    assert store.http_stats() == {"requests": 3, "bytes_sent": 0}
    assert store._copier.proven  # the last two went the light way, and were counted too


# -- over moto with IAM authentication: signatures checked, a denied user refused -------------------


@pytest.fixture
def moto_auth(moto_endpoint, aws_session):
    """``moto_auth(actions)``: credentials of a new IAM user allowed ``actions`` on S3; moto then checks
    the signature and the policy of every request, until the test ends."""
    iam = aws_session.client("iam", endpoint_url=moto_endpoint)
    enabled = []

    def make(actions: list[str]) -> tuple[str, str]:
        name = f"copier-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def reset_auth(count: bytes) -> None:  # text/plain: a form body would never reach moto's handler
        urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset-auth", data=count,
                                                      headers={"Content-Type": "text/plain"}, method="POST")).read()

    def enable():
        reset_auth(b"0")
        enabled.append(True)

    make.enable = enable
    yield make
    if enabled:
        reset_auth(b"inf")
    iam.close()


def authed_store(make_store, key_id: str, secret: str, token: str | None = None):
    import boto3

    session = boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token,
                            region_name="us-east-1")
    return make_store(session=session)


def test_moto_checks_our_signatures_and_refuses_a_denied_user(make_store, moto_auth, s3_admin, s3_bucket):
    for key in ODD_KEYS:
        s3_admin.put_object(Bucket=s3_bucket, Key=f"site/v/old/{key}", Body=b"x")
    allowed = moto_auth(["s3:*"])
    denied = moto_auth(["s3:GetObject", "s3:ListBucket"])
    moto_auth.enable()

    store = authed_store(make_store, *allowed)
    for key in ODD_KEYS:  # the first through boto3, the rest signed by us and checked by moto
        store.copy(f"v/old/{key}", f"v/new/{key}", size=1, **copy_args())
    assert store._copier.proven

    wrong_secret = authed_store(make_store, allowed[0], "not-the-secret")
    wrong_secret._copier.template, wrong_secret._copier._pool = store._copier.template, store._copier._pool
    wrong_secret._copier.proven = True
    with pytest.raises(AccessDenied, match="SignatureDoesNotMatch"):
        wrong_secret.copy("v/old/index.html", "v/other/index.html", size=1)

    no_put = authed_store(make_store, *denied)
    no_put._copier.template, no_put._copier._pool = store._copier.template, store._copier._pool
    no_put._copier.proven = True
    retrying = RetryingStore(no_put, RetryPolicy(attempts=3, initial=0.01))
    with pytest.raises(AccessDenied, match=f"access denied to s3://{s3_bucket}/site/v/old/index.html"):
        retrying.copy("v/old/index.html", "v/other/index.html", size=1)
    assert retrying.retries == 0
    wrong_secret._copier._pool = no_put._copier._pool = None  # shared with `store`, closed there


# -- the signer against botocore's ------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBY//token+with/odd=chars"])
def test_signature_is_botocores(token):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    headers = {"x-amz-copy-source": "bkt/site/a%20b%2Bc.txt", "content-type": "text/html;  charset=utf-8 ",
               "cache-control": "max-age=60", "x-amz-meta-sha256": SHA, "x-amz-metadata-directive": "REPLACE"}
    path = "/site/v/new/%C3%BC%20x%2B%23.txt"
    amz_date = "20261129T230303Z"
    ours = sign_put("bkt.s3.eu-west-1.amazonaws.com", "eu-west-1", "s3", path, headers, creds.get_frozen_credentials(),
                    amz_date)

    request = AWSRequest("PUT", f"https://bkt.s3.eu-west-1.amazonaws.com{path}",
                         headers={**headers, "host": "bkt.s3.eu-west-1.amazonaws.com", "X-Amz-Date": amz_date,
                                  "X-Amz-Content-SHA256": EMPTY_SHA256,
                                  **({"X-Amz-Security-Token": token} if token else {})})
    request.context["timestamp"] = amz_date
    auth = S3SigV4Auth(creds.get_frozen_credentials(), "s3", "eu-west-1")
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    auth._inject_signature_to_request(request, signature)
    assert ours["Authorization"] == request.headers["Authorization"]


def test_signature_matches_boto3s_own_request(make_store):
    """The request boto3 just sent, signed again by us with its date: the same Authorization."""
    store = make_store()
    store.put("v/old/a+b.txt", b"x")
    sdk_copies = SdkCopies(store.client)
    store.copy("v/old/a+b.txt", "v/new/ü b.txt", size=1, **copy_args())
    sent = {k.lower(): v for k, v in sdk_copies.requests[0].items()}
    template = store._copier.template
    headers = {k: v for k, v in sent.items() if k.startswith("x-amz-") and k not in
               ("x-amz-date", "x-amz-content-sha256")} | {"content-type": sent["content-type"],
                                                          "cache-control": sent["cache-control"]}
    creds = store.client._get_credentials().get_frozen_credentials()
    ours = sign_put(template.host, template.region, template.service, f"/{store.bucket}/site/v/new/%C3%BC%20b.txt",
                    headers, creds, sent["x-amz-date"])
    assert ours["Authorization"] == sent["authorization"]


# -- against the stand-in: what moto cannot do ------------------------------------------------------


@pytest.fixture
def standin():
    server = S3CopyStandin()
    yield server
    server.stop()


@pytest.fixture
def standin_store(standin, aws_session):
    stores = []

    def make(server=standin, session=aws_session, **kwargs):
        store = S3Store("bkt", "site", StoreOptions(endpoint_url=server.url, region="us-east-1"), session=session,
                        **kwargs)
        store.copy("v/old/a.txt", "v/warm/a.txt", size=1)  # through boto3: the light path learns
        assert store._copier.template is not None
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.mark.parametrize("answer,expected,fragment", [
    (error(404, "NoSuchKey"), ObjectNotFound, "no object at 'v/old/a.txt'"),
    (error(404, "NoSuchBucket"), BucketNotFound, "bucket 'bkt' does not exist"),
    (error(403, "AccessDenied"), AccessDenied, "access denied to s3://bkt/site/v/old/a.txt (copy)"),
    (error(403, "InvalidAccessKeyId"), AccessDenied, "credentials were rejected"),
    ((403, b"", {}), AccessDenied, "access denied"),
    (error(503, "SlowDown"), TransientStoreError, "SlowDown (HTTP 503)"),
    (error(500, "InternalError"), TransientStoreError, "InternalError (HTTP 500)"),
    (error(200, "InternalError"), TransientStoreError, "InternalError (HTTP 500)"),  # 200 with an <Error>
    ((200, COPY_OK[:60], {}), TransientStoreError, "HTTP 500"),  # a cut-off answer
    (error(400, "InvalidStorageClass"), StoreError, "InvalidStorageClass (HTTP 400)"),
], ids=["no-such-key", "no-such-bucket", "denied", "bad-key-id", "403-no-body", "slow-down", "500",
        "200-with-error", "200-cut-off", "other"])
def test_error_answers_map_as_boto3s_do(standin, standin_store, answer, expected, fragment):
    def both(req):
        return answer

    store = standin_store()
    store._copier.proven = True  # the light path has worked here: its failures are the server's word
    standin.answer(both)
    with pytest.raises(expected) as caught:
        store.copy("v/old/a.txt", "v/new/a.txt", size=1)
    assert type(caught.value) is expected
    assert fragment in str(caught.value) and "\n" not in str(caught.value)

    # boto3 says the same of the same answer
    plain = S3Store("bkt", "site", StoreOptions(endpoint_url=standin.url, region="us-east-1"), light_copy=False)
    with pytest.raises(expected) as by_sdk:
        plain.copy("v/old/a.txt", "v/new/a.txt", size=1)
    plain.close()
    assert str(by_sdk.value) == str(caught.value)


def test_200_with_error_is_retried_then_succeeds(standin, standin_store):
    store = RetryingStore(standin_store(), RetryPolicy(attempts=5, initial=0.01, maximum=0.02))
    answers = iter([error(200, "InternalError"), error(503, "SlowDown")])
    standin.answer(lambda req: next(answers, None))
    info = store.copy("v/old/a.txt", "v/new/a.txt", size=5)
    assert store.retries == 2 and info.token == '"5d41402abc4b2a76b9719d911017c592"'
    assert info.md5 == "5d41402abc4b2a76b9719d911017c592"
    assert info.modified == datetime.datetime(2026, 11, 29, 12, tzinfo=datetime.timezone.utc)


def test_chunked_answer_with_whitespace_padding(standin, standin_store):
    # S3 may start a long copy's 200 early and send whitespace until the result is ready.
    store = standin_store()
    declaration, result = COPY_OK.split(b"\n", 1)
    padded = declaration + b"\n" + b" " * 300 + b"\n" + result
    standin.answer(lambda req: (200, padded, {"Transfer-Encoding": "chunked"}))
    info = store.copy("v/old/a.txt", "v/new/a.txt", size=5)
    assert info.md5 == "5d41402abc4b2a76b9719d911017c592"


def test_keep_alive_reuses_connections(standin, standin_store):
    store = standin_store()
    before = standin.connections
    for i in range(20):
        store.copy("v/old/a.txt", f"v/{i}/a.txt", size=1)
    assert len(standin.light_requests()) == 20
    assert standin.connections - before == 1 and store._copier._pool.connections_opened == 1


def test_a_connection_closed_while_idle_is_replaced_without_an_error(standin_store):
    server = S3CopyStandin(idle_timeout=0.2)
    try:
        store = standin_store(server)
        store.copy("v/old/a.txt", "v/1/a.txt", size=1)
        threading.Event().wait(0.6)  # the server closes the idle connection
        store.copy("v/old/a.txt", "v/2/a.txt", size=1)
        assert len(server.light_requests()) == 2 and store._copier._pool.connections_opened == 2
    finally:
        server.stop()


def test_connection_close_answers_open_a_connection_each(standin_store):
    server = S3CopyStandin(close_after_each=True)
    try:
        store = standin_store(server)
        for i in range(3):
            store.copy("v/old/a.txt", f"v/{i}/a.txt", size=1)
        assert store._copier._pool.connections_opened == 3
    finally:
        server.stop()


def test_a_refused_connection_is_transient(standin_store):
    server = S3CopyStandin()
    store = standin_store(server)
    store._copier.proven = True
    store._copier._pool.close()
    server.stop()
    with pytest.raises(TransientStoreError, match="EndpointConnectionError"):
        store.copy("v/old/a.txt", "v/new/a.txt", size=1)


def test_a_server_that_stops_answering_is_a_read_timeout(aws_session):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        from atomicsite.stores.s3_wire import WirePool

        pool = WirePool("http", "127.0.0.1", listener.getsockname()[1], WireSettings(True, 1, 0.2, 4))
        from botocore.exceptions import ReadTimeoutError

        with pytest.raises(ReadTimeoutError, match=url):
            pool.request("PUT", "/x", {"Host": "127.0.0.1"})
        pool.close()


@pytest.mark.parametrize("reply", [b"", b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"],
                         ids=["closed-at-once", "not-http", "cut-off"])
def test_a_broken_answer_is_a_closed_connection_not_a_retry_loop(reply):
    from botocore.exceptions import ConnectionClosedError

    from atomicsite.stores.s3_wire import WirePool

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted = []

        def serve():
            conn, _ = listener.accept()
            accepted.append(conn)
            conn.recv(65536)
            conn.sendall(reply)
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        pool = WirePool("http", "127.0.0.1", listener.getsockname()[1], WireSettings(True, 1, 2, 4))
        with pytest.raises(ConnectionClosedError):
            pool.request("PUT", "/x", {"Host": "127.0.0.1"})
        thread.join(2)
        assert len(accepted) == 1 and pool.connections_opened == 1
        pool.close()


def test_expired_token_rereads_the_credentials_once(standin, standin_store):
    import boto3

    session = boto3.Session(aws_access_key_id="AKID", aws_secret_access_key="secret", aws_session_token="old",
                            region_name="us-east-1")
    store = standin_store(session=session)
    store.copy("v/old/a.txt", "v/new/a.txt", size=1)  # the light path freezes "old"
    standin.answer(lambda req: error(400, "ExpiredToken") if req.headers.get("x-amz-security-token") == "old"
                   else None)
    store.client._get_credentials().token = "new"  # what a refresh leaves behind
    store.copy("v/old/a.txt", "v/new/a.txt", size=1)
    tokens = [r.headers["x-amz-security-token"] for r in standin.light_requests()]
    assert tokens == ["old", "old", "new"]

    standin.requests.clear()
    standin.answer(lambda req: error(400, "ExpiredToken"))  # still expired after re-reading: say so, once
    with pytest.raises(AccessDenied, match="ExpiredToken"):
        store.copy("v/old/a.txt", "v/new/a.txt", size=1)
    assert len(standin.light_requests()) == 2


def test_refreshable_credentials_are_refreshed_before_they_expire(standin, standin_store, monkeypatch):
    """Temporary credentials (SSO, a role, the environment's container credentials) refresh under the
    light path as under boto3: botocore refreshes them when a frozen copy is asked for near expiry."""
    import boto3
    from botocore.credentials import RefreshableCredentials

    lifetimes = iter([5, 11, 60])  # minutes: inside the mandatory window, the advisory one, then fine

    def fetch(n=iter(range(1, 100))):
        k = next(n)
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=next(lifetimes))
        return {"access_key": "AKID", "secret_key": f"secret{k}", "token": f"token{k}",
                "expiry_time": expiry.isoformat()}

    session = boto3.Session(region_name="us-east-1")
    session._session._credentials = RefreshableCredentials.create_from_metadata(fetch(), fetch, "test")
    monkeypatch.setattr(s3_copy, "CREDENTIALS_TTL", 0.0)  # ask the credentials on every request
    store = standin_store(session=session)  # boto3's copy refreshed token1 (5 minutes left) to token2
    store.copy("v/old/a.txt", "v/new/a.txt", size=1)  # token2 has 11 minutes left: refreshed to token3
    store.copy("v/old/a.txt", "v/new/a.txt", size=1)
    assert standin.requests[0].headers["x-amz-security-token"] == "token2"
    assert [r.headers["x-amz-security-token"] for r in standin.light_requests()] == ["token3", "token3"]


def test_credentials_are_reread_after_the_ttl(standin, standin_store, monkeypatch):
    import boto3

    session = boto3.Session(aws_access_key_id="AKID", aws_secret_access_key="secret", aws_session_token="t1",
                            region_name="us-east-1")
    store = standin_store(session=session)
    store.copy("v/old/a.txt", "v/1/a.txt", size=1)
    store.client._get_credentials().token = "t2"
    store.copy("v/old/a.txt", "v/2/a.txt", size=1)  # within the TTL: still the frozen copy
    monkeypatch.setattr(s3_copy, "CREDENTIALS_TTL", 0.0)
    store.copy("v/old/a.txt", "v/3/a.txt", size=1)
    assert [r.headers["x-amz-security-token"] for r in standin.light_requests()] == ["t1", "t1", "t2"]


def test_no_credentials_at_all_on_the_light_path(standin, standin_store):
    store = standin_store()
    store._copier.proven = True
    store._copier._frozen = None
    store._copier.client._request_signer._credentials = None
    with pytest.raises(AccessDenied, match="no AWS credentials found"):
        store.copy("v/old/a.txt", "v/new/a.txt", size=1)


def test_a_server_refusing_the_light_request_sends_copies_through_boto3(standin, standin_store, caplog):
    # An S3-compatible server that wants something the light request does not send.
    store = standin_store()
    standin.answer(lambda req: error(400, "InvalidRequest", "unsupported") if req.light else None)
    sdk_copies = SdkCopies(store.client)
    with caplog.at_level("INFO", logger="atomicsite.stores.s3_copy"):
        store.copy("v/old/a.txt", "v/1/a.txt", size=1)
    assert store._copier.disabled and len(sdk_copies) == 1
    assert "through boto3 from now on" in caplog.text
    store.copy("v/old/a.txt", "v/2/a.txt", size=1)
    assert len(standin.light_requests()) == 1 and len(sdk_copies) == 2


@pytest.mark.parametrize("status,code", [(307, "TemporaryRedirect"), (301, "PermanentRedirect")])
def test_redirects_are_boto3s_business(standin, standin_store, status, code):
    # botocore's S3 region redirector follows these; the light path hands such a copy to boto3.
    store = standin_store()
    store.copy("v/old/a.txt", "v/0/a.txt", size=1)
    assert store._copier.proven
    sdk_copies = SdkCopies(store.client)
    standin.answer(lambda req: error(status, code) if req.light else None)
    store.copy("v/old/a.txt", "v/1/a.txt", size=1)
    assert len(sdk_copies) == 1 and not store._copier.disabled


def test_a_failure_boto3_shares_does_not_disable_the_light_path(standin, standin_store):
    store = standin_store()
    standin.answer(lambda req: error(403, "AccessDenied"))
    with pytest.raises(AccessDenied):
        store.copy("v/old/a.txt", "v/1/a.txt", size=1)
    assert not store._copier.disabled and not store._copier.proven
    standin.answer(lambda req: None)
    store.copy("v/old/a.txt", "v/2/a.txt", size=1)
    assert store._copier.proven and standin.requests[-1].light


def test_copies_the_light_path_does_not_speak_go_through_boto3(standin, standin_store):
    store = standin_store()
    sdk_copies = SdkCopies(store.client)
    store.copy("v/old/a.txt", "v/1/a.txt", size=1, content_type="text/plain; name=\"ü\"")  # not ASCII
    assert len(sdk_copies) == 1
    store.copy("v/old/a.txt", "v/3/a.txt", size=1, content_type="text/plain")
    assert len(sdk_copies) == 1


def test_tls_verifies_with_the_clients_ca_bundle(tmp_path, monkeypatch, aws_session):
    """The light path trusts what boto3 trusts: AWS_CA_BUNDLE here; without it, the self-signed server
    is refused by both (and the light path is not blamed for it)."""
    import ssl

    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = S3CopyStandin(tls=context)
    options = StoreOptions(endpoint_url=server.url, region="us-east-1")
    try:
        monkeypatch.setenv("AWS_CA_BUNDLE", cert)
        import boto3

        store = S3Store("bkt", "site", options, session=boto3.Session(region_name="us-east-1"))
        for i in range(3):
            store.copy("v/old/a.txt", f"v/{i}/a.txt", size=1)
        assert store._copier.proven and store._copier.template.scheme == "https"
        assert len(server.light_requests()) == 2 and store._copier._pool.connections_opened == 1
        store.close()

        monkeypatch.delenv("AWS_CA_BUNDLE")
        untrusting = S3Store("bkt", "site", options, session=boto3.Session(region_name="us-east-1"))
        untrusting._copier.template, untrusting._copier.proven = store._copier.template, True
        from atomicsite.stores.s3_wire import WirePool

        untrusting._copier._pool = WirePool("https", "127.0.0.1", int(server.url.rsplit(":", 1)[1]),
                                            wire_settings(untrusting.client, server.url))
        with pytest.raises(StoreError, match="SSL"):
            untrusting.copy("v/old/a.txt", "v/x/a.txt", size=1)
        untrusting.close()
    finally:
        server.stop()


@pytest.mark.parametrize("style,host,prefix", [
    ("auto", "bkt.s3.eu-west-1.amazonaws.com", "/"),
    ("virtual", "bkt.s3.eu-west-1.amazonaws.com", "/"),
    ("path", "s3.eu-west-1.amazonaws.com", "/bkt/"),
])
def test_the_template_is_what_boto3_sends_to_aws(style, host, prefix):
    """On AWS boto3 addresses buckets virtual-hosted (unless told path style): the light path follows.
    boto3's one request is answered in-process (no AWS here); nothing is sent by the light path."""
    import boto3
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_):
            yield COPY_OK

    session = boto3.Session(aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="eu-west-1")
    store = S3Store("bkt", "site", StoreOptions(region="eu-west-1", addressing_style=style), session=session)
    store.client.meta.events.register("before-send.s3.CopyObject",
                                      lambda request, **_: AWSResponse(request.url, 200, {}, Raw()))
    store.copy("v/old/a b.txt", "v/new/a b.txt", size=1)
    template = store._copier.template
    assert (template.scheme, template.hostname, template.port, template.host, template.prefix) == \
        ("https", host, 443, host, prefix)
    assert (template.region, template.service, template.bucket) == ("eu-west-1", "s3", "bkt")
    store.close()


def test_a_store_whose_copies_cannot_go_the_light_way_stops_trying(make_store, monkeypatch):
    """Behind a proxy (or with SigV4a, a client certificate) nothing can be learned: after the first
    boto3 copy the store stays on boto3 without looking at each request again."""
    store = make_store()
    store.put("v/old/a.txt", b"abc")
    asked = []
    monkeypatch.setattr(s3_copy, "wire_settings", lambda client, url: asked.append(url))  # as behind a proxy
    sdk_copies = SdkCopies(store.client)
    for i in range(3):
        store.copy("v/old/a.txt", f"v/{i}/a.txt", size=3)
    assert len(sdk_copies) == 3 and len(asked) == 1 and store._copier.disabled
    store.close()


def test_wire_settings_follow_the_client(monkeypatch, aws_session):
    from botocore.config import Config

    client = aws_session.client("s3", endpoint_url="https://s3.example.test", verify=False,
                                config=Config(connect_timeout=3, read_timeout=7, max_pool_connections=5))
    settings = wire_settings(client, "https://bkt.s3.example.test/")
    assert (settings.verify, settings.connect_timeout, settings.read_timeout, settings.max_idle) == (False, 3, 7, 5)
    client.close()

    bundle = aws_session.client("s3", endpoint_url="https://s3.example.test", verify="/tmp/ca.pem")
    assert wire_settings(bundle, "https://bkt.s3.example.test/").verify == "/tmp/ca.pem"
    bundle.close()

    proxied = aws_session.client("s3", endpoint_url="https://s3.example.test",
                                 config=Config(proxies={"https": "http://proxy.test:3128"}))
    assert wire_settings(proxied, "https://bkt.s3.example.test/") is None  # proxies stay with botocore
    proxied.close()


@pytest.mark.parametrize("code, status, transient", [
    ("OperationAborted", 409, True), ("RequestLimitExceeded", 503, True), ("BandwidthLimitExceeded", 509, True),
    ("PreconditionFailed", 412, True), ("SlowDown", 503, True), ("ThrottlingException", 400, True),
    ("InternalError", 500, True), ("NoSuchKey", 404, False), ("AccessDenied", 403, False),
])
def test_the_light_path_judges_a_failed_copy_as_the_store_does(code, status, transient):
    """One list of temporary answers (atomicsite.stores.s3): a blip on the first light copy is retried,
    not taken as the server refusing the light request (which would switch the light path off)."""
    from botocore.exceptions import ClientError

    from atomicsite.stores.s3 import copy_is_transient

    exc = ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "CopyObject")
    assert copy_is_transient(exc) is transient
