"""Server-side CopyObject without botocore's per-request machinery: the hot loop of a tree publish.

A tree-layout publish reuses every unchanged file by a server-side copy, so a 10,000-file site with
10 changes is ~9,990 CopyObject requests. Through boto3 each costs ~1.2-1.9 ms of client CPU (event
hooks, parameter validation and serialisation, endpoint rules, SigV4 over ``HTTPHeaders``, parsing the
answer into a dict, http.client's header parsing); here it is one PUT signed with ``hashlib``/``hmac``
and sent over a kept-alive connection, for about a quarter of that (figures in docs/development.md).

``LightCopier(client).copy_object(**params)`` takes the same parameters as ``client.copy_object`` and
returns the same shape of answer, so :class:`~atomicsite.stores.s3.S3Store` swaps one for the other.

- **Learned, not guessed.** The first CopyObject goes through boto3, and a ``before-send`` hook keeps
  what the SDK sent: the URL (endpoint, virtual-hosted or path style, FIPS, dual-stack: whatever
  the endpoint rules chose), the signing scope (region, service) and the static headers (User-Agent).
  Only once such a copy has succeeded does the light path take over. A request that does not look like
  plain SigV4 (SigV4a, S3 Express sessions, anonymous access, an extra header we do not know) keeps
  the store on boto3.
- **The same settings.** Requests go over keep-alive connections of :mod:`atomicsite.stores.s3_wire`
  set up as the client's own: TLS verification (its CA bundle, or ``verify=False``), timeouts, pool
  size, socket options; connection failures raise the exceptions botocore raises
  (``EndpointConnectionError``, ``ReadTimeoutError``, ...). A client behind a proxy or with a client
  certificate keeps its copies on boto3.
- **The same errors.** Error answers become ``botocore.exceptions.ClientError`` shaped as botocore
  shapes them, and a 200 whose body is an ``<Error>`` is a 500, as botocore treats it; the store's one
  translation (``S3Store._calling``) maps them to atomicsite's error tree, so a copy fails and is
  retried exactly as it would be through boto3.
- **Credentials** come from the client and are frozen for at most ``CREDENTIALS_TTL`` seconds
  (botocore refreshes temporary credentials 10-15 minutes before they expire, so a frozen copy is
  never stale), and are read again at once when S3 says the token expired.
- **Fallback.** Until a light copy has succeeded, any failure other than a transient one is tried
  again through boto3; if boto3 succeeds where the light path failed (an S3-compatible server that
  wants something we do not send), the store stays on boto3 for good and says so in the log. A
  redirect (301/307) sends that one copy through boto3, whose region redirector follows it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from http.client import responses as _REASONS
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

from .s3_wire import WirePool, wire_settings

log = logging.getLogger(__name__)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # a copy has no body
CREDENTIALS_TTL = 60.0  # seconds a frozen copy of refreshable credentials is used before asking again
_EXPIRED_CODES = {"ExpiredToken", "TokenRefreshRequired"}
_REDIRECTS = {301, 302, 307}  # a bucket in another region, or one still propagating in DNS

# boto3 parameter -> the header it becomes; anything else sends the copy through boto3.
_HEADER_PARAMS = {
    "ContentType": "Content-Type",
    "CacheControl": "Cache-Control",
    "ContentEncoding": "Content-Encoding",
    "ContentDisposition": "Content-Disposition",
    "ContentLanguage": "Content-Language",
    "MetadataDirective": "x-amz-metadata-directive",
    "CopySourceIfMatch": "x-amz-copy-source-if-match",
    "CopySourceIfNoneMatch": "x-amz-copy-source-if-none-match",
    "StorageClass": "x-amz-storage-class",
}
# Headers boto3 sets per request (we set our own) or that carry no meaning for the server.
_PER_REQUEST = {
    "authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "x-amz-copy-source",
    "content-length", "host", "amz-sdk-invocation-id", "amz-sdk-request", "expect",
    *(h.lower() for h in _HEADER_PARAMS.values()),
}
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # what a header name may be (RFC 9110)
_STATIC = {"user-agent"}  # kept from the learned request, unsigned (as botocore leaves it)
_BODILESS = SimpleNamespace(headers={"Content-Length": "0"}, body=b"")  # what the request counter is shown


@dataclass(frozen=True)
class CopyTemplate:
    """What the SDK's own CopyObject looked like, minus what changes per request."""

    bucket: str
    scheme: str
    host: str  # the Host header boto3 signed (host, or host:port)
    hostname: str  # what to connect to (and name in TLS)
    port: int
    prefix: str  # the path before the URL-encoded key: "/" (virtual-hosted) or "/bucket/" (path style)
    region: str  # signing region
    service: str  # signing name ("s3")
    static_headers: tuple[tuple[str, str], ...]  # (name, value) sent as they were, e.g. User-Agent


class LightCopier:
    """``copy_object(**params)`` for one client, light when it can be, boto3 when it cannot."""

    def __init__(self, client, *, is_transient, count=None):
        self.client = client
        self._is_transient = is_transient  # the store's judgement of a failed copy (atomicsite.stores.s3)
        self._count = count or (lambda request: None)  # called with each request sent (the store's http_stats)
        self.template: CopyTemplate | None = None
        self.proven = False  # a light copy has succeeded: its failures are the server's word
        self.disabled = False  # boto3 succeeded where the light path failed: stay on boto3
        self._learning = threading.local()
        self._creds_lock = threading.Lock()
        self._frozen = None
        self._frozen_at = 0.0
        self._key_cache: tuple[tuple, bytes] | None = None
        self._pool: WirePool | None = None
        client.meta.events.register("before-send.s3.CopyObject", self._observe)

    # -- the one entry point -------------------------------------------------------------------

    def copy_object(self, **params) -> dict:
        """The answer ``client.copy_object(**params)`` would give, or the exception it would raise."""
        template = self.template
        request = None if template is None or self.disabled else self._request(template, params)
        if request is None:
            return self._through_sdk(params)
        try:
            result = self._send(template, *request)
        except Exception as exc:
            if _status_of(exc) in _REDIRECTS:
                return self._through_sdk(params, learn=False)  # botocore follows S3's region redirects
            if self.proven or self._is_transient(exc):
                raise
            # Not yet proven here: ask boto3 whether the server agrees, before trusting the failure.
            result = self._through_sdk(params, learn=False)
            self.disabled = True
            log.info("S3 copies go through boto3 from now on: the direct request failed (%s) where boto3's "
                     "succeeded", _describe(exc))
            return result
        self.proven = True
        return result

    # -- learning from boto3 -------------------------------------------------------------------

    def _through_sdk(self, params: dict, *, learn: bool = True) -> dict:
        learning = learn and self.template is None and not self.disabled
        self._learning.key = (params.get("Bucket"), params.get("Key")) if learning else None
        self._learning.seen = None
        try:
            result = self.client.copy_object(**params)
        finally:
            self._learning.key = None
        seen, self._learning.seen = self._learning.seen, None
        if learning and self.template is None:
            with self._creds_lock:
                if self.template is None:  # racing threads learn the same thing: keep the first
                    settings = wire_settings(self.client, f"{seen.scheme}://{seen.host}/") if seen else None
                    if settings is not None:
                        self._pool = WirePool(seen.scheme, seen.hostname, seen.port, settings)
                        self.template = seen
                        log.debug("S3 copies: learned the request shape %s", seen)
                    else:  # not plain SigV4, a proxy, a client certificate: nothing to learn, ever
                        self.disabled = True
                        log.debug("S3 copies stay on boto3: their request cannot be sent the light way")
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def _observe(self, request, **_) -> None:  # a before-send hook: returning None lets boto3 send
        target = getattr(self._learning, "key", None)
        if target is not None:
            self._learning.seen = _template_from(request, *target)  # None when it is not plain SigV4

    # -- one request ---------------------------------------------------------------------------

    def _request(self, template: CopyTemplate, params: dict) -> tuple[str, dict, dict] | None:
        """(path, headers to sign, unsigned headers), or None when this copy should go through boto3."""
        headers: dict[str, str] = {}
        try:
            for name, value in params.items():
                if name in ("Bucket", "Key", "CopySource"):
                    continue
                if name == "Metadata":
                    for meta_key, meta_value in value.items():
                        if not _TOKEN.fullmatch(meta_key):
                            return None
                        headers[f"x-amz-meta-{meta_key}".lower()] = meta_value.encode("ascii").decode()
                elif name in _HEADER_PARAMS and isinstance(value, str):
                    headers[_HEADER_PARAMS[name].lower()] = value.encode("ascii").decode()
                else:
                    return None
            source = params["CopySource"]
            if not isinstance(source, dict) or set(source) != {"Bucket", "Key"} or ":" in source["Bucket"]:
                return None  # versions and ARNs: boto3 knows those
            headers["x-amz-copy-source"] = quote(f"{source['Bucket']}/{source['Key']}", safe="-._~/")
        except (UnicodeEncodeError, AttributeError):
            return None  # non-ASCII header values: boto3 decides how to send them
        if params.get("Bucket") != template.bucket:
            return None  # the template's URL names one bucket
        if any("\r" in v or "\n" in v for v in headers.values()):
            return None  # not a valid header: let boto3 refuse it as it always has
        path = template.prefix + quote(params["Key"], safe="-._~/")
        return path, headers, dict(template.static_headers)

    def _send(self, template: CopyTemplate, path: str, headers: dict, unsigned: dict, *, retried: bool = False) -> dict:
        creds = self._credentials(fresh=retried)
        signed = self._sign(template, path, headers, creds)
        self._count(_BODILESS)
        status, answer_headers, body = self._pool.request("PUT", path, {**signed, **unsigned, "Content-Length": "0"})
        root = _xml(body)
        if status == 200 and root is not None and _local(root.tag) != "Error":
            return _copy_result(root, answer_headers)
        if status == 200 and not body:
            return {"ResponseMetadata": _metadata(200, answer_headers)}
        if status == 200:
            status = 500  # an <Error> (or a cut-off body) in a 200: botocore treats it as a 500
        error = _client_error(status, root, answer_headers)
        if not retried and error.response["Error"].get("Code") in _EXPIRED_CODES:
            return self._send(template, path, headers, unsigned, retried=True)
        raise error

    # -- signing -------------------------------------------------------------------------------

    def _credentials(self, *, fresh: bool = False):
        now = time.monotonic()
        with self._creds_lock:
            if fresh or self._frozen is None or now - self._frozen_at > CREDENTIALS_TTL:
                source = _credentials_of(self.client)
                if source is None:
                    from botocore.exceptions import NoCredentialsError

                    raise NoCredentialsError()
                self._frozen, self._frozen_at = source.get_frozen_credentials(), now
            return self._frozen

    def _sign(self, template: CopyTemplate, path: str, headers: dict, creds) -> dict:
        """SigV4 headers for a bodiless PUT, as botocore's S3SigV4Auth computes them."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return sign_put(template.host, template.region, template.service, path, headers, creds, amz_date,
                        self._signing_key)

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        wanted = (secret, date, region, service)
        cached = self._key_cache
        if cached is not None and cached[0] == wanted:
            return cached[1]
        key = signing_key(secret, date, region, service)
        self._key_cache = (wanted, key)
        return key


# -- pure functions (tested against botocore's signer) ---------------------------------------------


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign_put(host: str, region: str, service: str, path: str, headers: dict, creds, amz_date: str,
             key_for=signing_key) -> dict:
    """``headers`` plus host, x-amz-date, x-amz-content-sha256, the token and Authorization.

    ``headers`` are lower-case names with ASCII values; ``path`` is URL-encoded, as sent. S3 signs the
    path as sent (no normalisation) and, for a copy, the hash of the empty body.
    """
    signed = {"host": host, **headers, "x-amz-date": amz_date, "x-amz-content-sha256": EMPTY_SHA256}
    if creds.token:
        signed["x-amz-security-token"] = creds.token
    names = sorted(signed)
    canonical = "\n".join((
        "PUT", path, "",
        "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names),
        ";".join(names), EMPTY_SHA256,
    ))
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(key_for(creds.secret_key, date, region, service), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    signed["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                               f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return signed


def _template_from(request, bucket: str, key: str) -> CopyTemplate | None:
    """The reusable part of boto3's CopyObject request for ``key``, or None if it is not plain SigV4."""
    auth = _text(request.headers.get("Authorization") or "")
    if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
        return None  # SigV4a, S3 Express, unsigned: not ours to imitate
    url = request.url
    encoded = quote(key, safe="-._~/")
    if "?" in url or not url.endswith("/" + encoded):
        return None
    try:
        _, _, region, service, _ = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    except ValueError:
        return None
    static = []
    for name, value in request.headers.items():
        lname = name.lower()
        if lname in _STATIC:
            static.append((name, _text(value)))
        elif lname not in _PER_REQUEST and not lname.startswith("x-amz-meta-"):
            return None  # a header we would have to reproduce without knowing what it means
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    host = _text(request.headers.get("host") or "") or parsed.netloc
    return CopyTemplate(bucket=bucket, scheme=parsed.scheme, host=host, hostname=parsed.hostname,
                        port=parsed.port or (443 if parsed.scheme == "https" else 80),
                        prefix=parsed.path[: len(parsed.path) - len(encoded)], region=region, service=service,
                        static_headers=tuple(static))


# -- answers ---------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml(body: bytes):
    """The parsed answer, or None when there is none or it is cut off (botocore: a 500)."""
    try:
        return ET.fromstring(body) if body.strip() else None
    except ET.ParseError:
        return None


def _copy_result(root, headers) -> dict:
    fields = {_local(child.tag): child.text for child in root}
    result: dict = {}
    if fields.get("ETag"):
        result["ETag"] = fields["ETag"]
    if fields.get("LastModified"):
        result["LastModified"] = _timestamp(fields["LastModified"])
    answer = {"CopyObjectResult": result, "ResponseMetadata": _metadata(200, headers)}
    for name, header in (("ServerSideEncryption", "x-amz-server-side-encryption"),
                         ("SSECustomerAlgorithm", "x-amz-server-side-encryption-customer-algorithm"),
                         ("VersionId", "x-amz-version-id")):
        if headers.get(header):
            answer[name] = headers[header]
    return answer


def _timestamp(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _metadata(status: int, headers: dict[str, str]) -> dict:
    """botocore's ResponseMetadata; ``headers`` are already lower-cased (s3_wire reads them so)."""
    return {"HTTPStatusCode": status, "HTTPHeaders": headers, "RequestId": headers.get("x-amz-request-id", ""),
            "HostId": headers.get("x-amz-id-2", ""), "RetryAttempts": 0}


def _client_error(status: int, root, headers):
    """The ClientError botocore raises for this answer: the <Error> fields, or the status alone."""
    from botocore.exceptions import ClientError

    error: dict = {}
    if root is not None and _local(root.tag) == "Error":
        error = {_local(child.tag): child.text or "" for child in root}
    if not error.get("Code"):
        error = {"Code": str(status), "Message": _REASONS.get(status, "")}
    return ClientError({"Error": error, "ResponseMetadata": _metadata(status, headers)}, "CopyObject")


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None


def _credentials_of(client):
    getter = getattr(client, "_get_credentials", None)  # botocore's (private) accessor
    return getter() if getter else client._request_signer._credentials


def _describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{response.get('Error', {}).get('Code')} (HTTP {status})"
    return type(exc).__name__


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
