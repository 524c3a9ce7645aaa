"""Stores, and opening one from a target URL.

``s3://`` and ``gs://`` stores import their SDKs only when opened, so the CLI and the local store
start without them; a missing SDK is a one-line error naming the extra to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import UsageError
from .base import Store


@dataclass(frozen=True)
class StoreOptions:
    """Backend settings, validated once by :mod:`atomicsite.config`."""

    endpoint_url: str | None = None  # S3-compatible stores (MinIO, R2, B2, Ceph), or a test server
    region: str | None = None
    profile: str | None = None
    addressing_style: str | None = None  # "auto" | "path" | "virtual"
    checksums: str | None = None  # "when_required" | "when_supported"; None = choose (custom endpoint → when_required)
    allow_unsafe_cas: bool = False  # switch even where conditional writes are ignored (lost updates possible)
    project: str | None = None  # GCS project
    max_workers: int = 32


def split_bucket_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``."""
    parsed = urlparse(url)
    bucket = parsed.netloc
    if not bucket:
        raise UsageError(f"target {url!r} names no bucket", hint=f"Use {parsed.scheme}://BUCKET[/PREFIX].")
    return bucket, parsed.path.strip("/")


def open_store(target: str, options: StoreOptions | None = None) -> Store:
    options = options or StoreOptions()
    scheme = urlparse(target).scheme if "://" in target else ""
    if scheme == "s3":
        from .s3 import S3Store

        return S3Store.from_url(target, options)
    if scheme in ("gs", "gcs"):
        from .gcs import GCSStore

        return GCSStore.from_url(target, options)
    if scheme in ("", "file"):
        from .local import LocalStore

        path = unquote(urlparse(target).path) if scheme == "file" else target
        return LocalStore(Path(path))
    raise UsageError(
        f"unsupported target {target!r}",
        hint="Use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, file:///PATH or a local path.",
    )


def require_sdk(module: str, extra: str):
    """Import a cloud SDK, or fail with the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"this target needs the {module!r} package, which is not installed",
            hint=f"Install it with: pip install 'atomicsite[{extra}]'",
        ) from None
