"""AWS calls for the CDN code: one wrapper mapping failures to the error tree, clients, polling.

boto3 is imported on first use; the KeyValueStore data plane also needs ``botocore[crt]`` (SigV4A).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import AccessDenied, ConfigError, ConflictError, NotFound, StoreError, TransientStoreError
from .settings import KVS_SERVICE, CloudFrontSettings, _bad

ClientFactory = Callable[[str], Any]  # service name ("cloudfront", "cloudfront-keyvaluestore") -> client

_CONFLICT = {"PreconditionFailed", "ConflictException", "InvalidIfMatchVersion"}
_NOT_FOUND = {"NoSuchDistribution", "NoSuchInvalidation", "NoSuchFunctionExists", "ResourceNotFoundException",
              "NoSuchResource", "NotFound"}
_DENIED = {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
           "ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException"}
_TRANSIENT = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
              "ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalServerException",
              "InternalFailure", "TooManyInvalidationsInProgress"}


def _call(action: str, on: str, fn: Callable[..., Any], /, **kwargs) -> Any:
    """Call one API (``action`` is its IAM name) and turn its failures into the error tree."""
    from botocore.exceptions import (ClientError, ConnectionError as BotoConnectionError, HTTPClientError,
                                     MissingDependencyException, NoCredentialsError)

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, msg = error.get("Code", ""), error.get("Message") or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        where = f"{action} on {on}"
        if code in _CONFLICT:
            raise ConflictError(
                f"{where}: changed by someone else since atomicsite read it ({code})",
                hint="Re-run `atomicsite promote <version>`; it re-reads the current state and re-applies.",
            ) from None
        if code in _NOT_FOUND or status == 404:
            raise NotFound(f"{where}: not found ({msg})", hint="Check the ids in the [cloudfront] config.") from None
        if code in _DENIED or status == 403:
            raise AccessDenied(f"{where}: denied ({msg})",
                               hint=f"Allow {action} to these credentials (docs/cloudfront.md lists the policy).") from None
        if code in _TRANSIENT or status >= 500:
            raise TransientStoreError(f"{where}: {code or status} ({msg})") from None
        raise StoreError(f"{where}: {code or status} ({msg})") from None
    except NoCredentialsError:
        raise AccessDenied(f"{action}: no AWS credentials found",
                           hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.") from None
    except MissingDependencyException:
        raise ConfigError(f"{action} needs botocore's CRT extension (SigV4A signing)",
                          hint="pip install 'botocore[crt]'") from None
    except (BotoConnectionError, HTTPClientError) as exc:
        raise TransientStoreError(f"{action} on {on}: {exc}") from None


def pin_kvs_endpoint(client: Any, endpoint_url: str) -> None:
    """Send KeyValueStore requests to exactly ``endpoint_url``.

    The service's endpoint rules put the account id in front of any host
    (``123456789012.127.0.0.1:4566``), which an emulator's address does not resolve. Rewriting before
    signing keeps the signed Host equal to the host actually contacted.
    """
    authority = urlsplit(endpoint_url).netloc

    def strip_account(request, **_):
        parts = urlsplit(request.url)
        if parts.netloc != authority and parts.netloc.endswith("." + authority):
            request.url = urlunsplit(parts._replace(netloc=authority))

    client.meta.events.register_first(f"before-sign.{KVS_SERVICE}", strip_account)


_SESSIONS: dict[str | None, Any] = {}  # per profile: a new session re-reads every service model (~0.2 s)
_SESSION_LOCK = threading.Lock()  # a boto3 session is not thread-safe; clients made from it are


def _new_client(service: str, profile: str | None, **kwargs) -> Any:
    try:
        import boto3
        from botocore.exceptions import ProfileNotFound
    except ImportError:
        raise ConfigError("CloudFront support needs boto3", hint="pip install 'atomicsite[s3]'") from None
    with _SESSION_LOCK:
        if profile not in _SESSIONS:
            try:
                _SESSIONS[profile] = boto3.session.Session(profile_name=profile)
            except ProfileNotFound:
                raise _bad("profile", f"no AWS profile named {profile!r}") from None
        return _SESSIONS[profile].client(service, **kwargs)


def boto3_client_factory(settings: CloudFrontSettings) -> ClientFactory:
    """Clients with the SDK's own retries off (:class:`RetryPolicy` is the one place that retries)."""
    cache: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in cache:
            from botocore.config import Config

            endpoint = settings.endpoint_url if service == "cloudfront" else (settings.kvs_endpoint_url or settings.endpoint_url)
            config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
            client = _new_client(service, settings.profile, region_name=settings.region, endpoint_url=endpoint, config=config)
            if service == KVS_SERVICE and endpoint:
                pin_kvs_endpoint(client, endpoint)
            cache[service] = client
        return cache[service]

    return make


def _poll(what: str, fetch: Callable[[], str], done: Callable[[str], bool], settings: CloudFrontSettings,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> str:
    deadline = clock() + settings.wait_timeout
    while True:
        status = fetch()
        if done(status):
            return status
        remaining = deadline - clock()
        if remaining <= 0:
            raise StoreError(
                f"{what} still {status} after {settings.wait_timeout:g}s",
                hint="The change is submitted and keeps propagating; check later, or raise cloudfront.wait_timeout.",
            )
        sleep(min(settings.poll_interval, remaining))


