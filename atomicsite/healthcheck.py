"""Post-switch verification: is the new version really what visitors get?

Each URL is fetched (identity encoding, no cache) until its body's sha256 equals the manifest's file
for that path, or the overall timeout passes. CDNs converge over seconds to minutes, so a miss is
retried with backoff; a URL that maps to no file of the version fails at once (a config mistake).
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from urllib.parse import unquote, urlparse

from .manifest import FileEntry, Manifest


def entry_for_url(url: str, manifest: Manifest) -> FileEntry | None:
    path = unquote(urlparse(url).path).lstrip("/")
    if path == "" or path.endswith("/"):
        candidates = [path + "index.html"]
    else:
        candidates = [path, path + ".html", path + "/index.html"]
    return next((manifest.by_path[c] for c in candidates if c in manifest.by_path), None)


def _fetch_sha256(url: str, timeout: float) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "identity", "Cache-Control": "no-cache",
                                               "User-Agent": "atomicsite-healthcheck"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            digest = hashlib.sha256()
            while chunk := resp.read(1 << 16):
                digest.update(chunk)
            return resp.status, digest.hexdigest()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def check_urls(urls, manifest: Manifest, *, timeout: float = 120.0, attempt_timeout: float = 10.0) -> str | None:
    """None when every URL serves this version's bytes; else one line saying which did not.

    Keeps trying until the whole ``timeout`` has passed: the last wait is cut short to end exactly at
    the deadline and one more attempt is made there, so a CDN that converges at 2.9 s of 3 s passes.
    """
    deadline = time.monotonic() + timeout
    for url in urls:
        entry = entry_for_url(url, manifest)
        if entry is None:
            return f"{url} maps to no file of version {manifest.version}"
        wait, last = 0.25, ""
        while True:
            try:
                status, sha = _fetch_sha256(url, min(attempt_timeout, max(0.1, deadline - time.monotonic())))
                if status == 200 and sha == entry.sha256:
                    break
                last = f"HTTP {status}" if status != 200 else "the body is not this version's"
            except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
                last = f"cannot fetch it ({getattr(exc, 'reason', exc)})"
            left = deadline - time.monotonic()
            if left <= 0:
                return f"{url} did not serve version {manifest.version} within {timeout:g}s ({last})"
            time.sleep(min(wait, left))
            wait = min(wait * 2, 5.0)
    return None
