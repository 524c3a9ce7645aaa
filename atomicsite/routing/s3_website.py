"""Redirect rules for plain S3 website hosting: per-object ``x-amz-website-redirect-location``.

An S3 website endpoint answers a GET for an object carrying ``WebsiteRedirectLocation`` with a 301 to
that location. So each rule S3 can express becomes an empty object under the version's tree
(``v/<version>/old-page``, and ``v/<version>/old-page/index.html`` so ``/old-page/`` redirects too),
written before the manifest is committed, like every other object of the version. They are not in the
manifest's file table (they are not content), so nothing else serves them; pruning the version's
tree removes them.

What S3 cannot express, listed by :func:`website_redirects` (and in publish's result):
- statuses other than 301 (an object redirect is always a 301), 200 rewrites and 404 rules;
- ``*`` and ``:placeholder`` rules (one object per literal path; the bucket's prefix-based
  RoutingRules are the S3 way, but they are not versioned with the build);
- a forced rule where a file exists (the object there holds the file).
S3 also drops the request's query string on such a redirect.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import UsageError
from ..layout import object_key
from ..manifest import Manifest
from ..retry import RetryPolicy
from .patterns import normal_path
from .route import is_directory, static_file


@dataclass(frozen=True)
class WebsiteRedirects:
    objects: tuple[tuple[str, str], ...]  # (path in the version, Location)
    unsupported: tuple[str, ...]  # "<rule>: why", one line each

    def to_dict(self) -> dict:
        return {"objects": [{"path": p, "location": loc} for p, loc in self.objects],
                "unsupported": list(self.unsupported)}


def website_redirects(manifest: Manifest) -> WebsiteRedirects:
    """The redirect objects for ``manifest``'s rules, and the rules S3 website hosting cannot express."""
    files = manifest.by_path
    objects: dict[str, str] = {}
    unsupported = []
    for r in manifest.rules.redirects:
        line = f"{r.source} {r.to} {r.status}{'!' if r.force else ''}"
        if r.status != 301:
            why = ("a 200 rewrite serves other content at this URL" if r.status == 200 else
                   "a 404 rule needs the bucket's single error document" if r.status == 404 else
                   f"S3 object redirects are always 301, not {r.status}")
            unsupported.append(f"{line}: {why}")
            continue
        if not r.pattern.is_literal:
            unsupported.append(f"{line}: * and :placeholders need one object per path; S3 can only redirect "
                               "literal paths (bucket RoutingRules are not versioned with the build)")
            continue
        rel = normal_path(unquote(r.source))[1:]
        candidates = [rel] if rel else []
        if rel and "." not in rel.rsplit("/", 1)[-1]:
            candidates.append(rel + "/index.html")
        if not rel:
            candidates = ["index.html"]
        exists = static_file(files, rel) or static_file(files, rel + "/" if rel else "") or is_directory(files, rel)
        if exists:
            if r.force:
                unsupported.append(f"{line}: a file exists there, and an S3 object cannot be both the file and "
                                   "the redirect")
            continue  # shadowed, as everywhere else: the file is served
        for path in candidates:
            objects.setdefault(path, r.to)
    return WebsiteRedirects(tuple(sorted(objects.items())), tuple(unsupported))


def write_website_redirects(store, manifest: Manifest) -> WebsiteRedirects:
    """Put the redirect objects under the version's tree on an S3 store (before the manifest commits)."""
    plan = website_redirects(manifest)
    # The store protocol has no verb for this S3-only header, so this reaches the S3 store's client
    # (through any wrapper: RetryingStore passes attributes through) and its error mapping.
    client, bucket, full, calling = (getattr(store, n, None) for n in ("client", "bucket", "_full", "_calling"))
    if None in (client, bucket, full, calling) or not hasattr(client, "put_object"):
        raise UsageError(f"website_redirects needs an s3:// target; {store.url} is not one",
                         hint="Remove website_redirects from the config, or publish to S3.")
    retry = RetryPolicy()
    for path, location in plan.objects:
        key = object_key(manifest.version, path)

        def put(key=key, location=location):
            with calling("put", key):
                client.put_object(Bucket=bucket, Key=full(key), Body=b"", WebsiteRedirectLocation=location,
                                  ContentType="text/html; charset=utf-8",
                                  CacheControl="public, max-age=0, must-revalidate")

        retry.call(put)
    return plan
