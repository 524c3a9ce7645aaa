"""Crawl check: the gate agrees with what the router really serves.

Each fixture site is published, then crawled through the router (the ASGI app, over httpx) the way a
browser loads it: every page, every reference it makes, resolved by the standard library's
``urljoin`` (not by atomicsite.links' own resolver) against the page URL and its ``<base href>``.
A reference the gate passes must be served 200; one it reports must be the router's 404.
"""

import asyncio
from dataclasses import replace
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

import atomicsite
from atomicsite.links import LinkSettings, check_links, css_references, html_references
from atomicsite.scan import scan
from atomicsite.stores.local import LocalStore

from .helpers import FIXTURES, SETTINGS

ORIGIN = "http://site.test"
SITES = ["link-sites/hugo", "link-sites/mkdocs", "link-sites/docusaurus", "link-sites/vite", "blog", "spa",
         "broken-refs"]


def crawl(store) -> dict[str, int]:
    """{absolute same-site URL: status} for every reference of every page and stylesheet reached."""
    from atomicsite.serve import create_app

    app = create_app(store, settings=SETTINGS, pointer_ttl=60)

    async def go():
        seen: dict[str, int] = {}
        queue = [ORIGIN + "/"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as client:
            while queue:
                url = queue.pop()
                if url in seen:
                    continue
                r = await client.get(urlsplit(url)._replace(scheme="", netloc="", fragment="").geturl(),
                                     headers={"accept": "text/html,*/*"}, follow_redirects=True)
                seen[url] = r.status_code
                ctype = r.headers.get("content-type", "")
                if r.status_code != 200:
                    continue
                if ctype.startswith("text/html"):
                    base, refs = html_references(r.content)
                    page_base = urljoin(url, base) if base else url
                    refs = [ref for _, ref in refs]
                elif ctype.startswith("text/css"):
                    page_base, refs = url, css_references(r.text)
                else:
                    continue
                for ref in refs:
                    target = urljoin(page_base, ref.strip())
                    parts = urlsplit(target)
                    if f"{parts.scheme}://{parts.netloc}" == ORIGIN:
                        queue.append(parts._replace(fragment="").geturl())
        return seen

    return asyncio.run(go())


@pytest.mark.parametrize("name", SITES)
def test_gate_and_router_agree(name, tmp_path):
    build = FIXTURES / name
    store = LocalStore(tmp_path / "site")
    atomicsite.publish(build, store, settings=replace(SETTINGS, links=LinkSettings("warn", "warn")), source={})
    statuses = crawl(store)
    assert len(statuses) >= 3
    missing = {urlsplit(u).path for u, code in statuses.items() if code == 404}
    assert all(code in (200, 404) for code in statuses.values()), statuses
    reported = {"/" + f.target for f in check_links(scan(build), LinkSettings("error", "error")).findings}
    # what the crawl met that the router cannot serve is exactly what the gate reported
    assert missing == reported
    if name == "broken-refs":
        assert missing == {"/assets/chunk-Q7wE2rT9.js", "/assets/style.4e5f6a7b.css", "/pricing"}
    else:
        assert missing == set()
