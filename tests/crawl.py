"""A small link checker for tests: fetch pages over real HTTP, follow same-site links, report broken ones.

Like a browser, it resolves a page's relative links against the URL the page was finally served at
(after redirects), which is what makes ``/dir`` vs ``/dir/`` matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

_LINK_ATTRS = {"a": "href", "link": "href", "script": "src", "img": "src", "iframe": "src", "source": "src"}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attr = _LINK_ATTRS.get(tag)
        for name, value in attrs:
            if name == attr and value:
                self.links.append(value)


@dataclass
class CrawlResult:
    pages: int = 0  # URLs fetched
    broken: dict[str, tuple[int, str]] = field(default_factory=dict)  # url → (status, first page linking it)
    redirects: dict[str, str] = field(default_factory=dict)  # url → where it finally landed


def crawl(base: str, start: str = "/", *, limit: int = 500) -> CrawlResult:
    site = urlsplit(base)
    result = CrawlResult()
    seen = {urljoin(base, start)}
    queue = [(urljoin(base, start), "(start)")]
    with httpx.Client(follow_redirects=True, timeout=10) as client:
        while queue:
            url, referrer = queue.pop(0)
            result.pages += 1
            assert result.pages <= limit, "the crawl does not end: a redirect or link loop?"
            r = client.get(url)
            final = str(r.url)
            if final != url:
                result.redirects[url] = final
            if r.status_code >= 400:
                result.broken[url] = (r.status_code, referrer)
                continue
            if not r.headers.get("content-type", "").startswith("text/html"):
                continue
            parser = _Links()
            parser.feed(r.text)
            for link in parser.links:
                target, _ = urldefrag(urljoin(final, link))
                parts = urlsplit(target)
                if parts.scheme not in ("http", "https") or parts.netloc != site.netloc:
                    continue  # mailto:, other sites
                if target not in seen:
                    seen.add(target)
                    queue.append((target, url))
    return result
