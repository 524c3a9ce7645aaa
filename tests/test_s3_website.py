"""S3 website hosting: redirect rules as per-object x-amz-website-redirect-location (moto over HTTP)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import atomicsite
from atomicsite.manifest import FileEntry, Manifest
from atomicsite.routing import SiteRules
from atomicsite.routing.s3_website import website_redirects

from .helpers import SETTINGS
from .test_serve import make_build

RULES = """\
/old-page        /new-page/           301
/old.html        /docs/               301
/blog/legacy     https://blog.example.com/
/temp            /new-page/           302
/spa/*           /spa/index.html      200
/fr/*            /fr/404.html         404
/news/*          /blog/:splat         301
/docs            /elsewhere           301
/about           /elsewhere           301!
/caf%C3%A9       /menu/               301
"""


def test_s3_website_plan_lists_what_it_cannot_express():
    files = [FileEntry(p, "0" * 64, 1, "0" * 32, "text/html", "no-cache") for p in
             ["index.html", "docs/index.html", "about.html", "new-page/index.html"]]
    from atomicsite.routing import parse_redirects

    m = Manifest.build(files, rules=SiteRules(redirects=parse_redirects(RULES, "_redirects")))
    plan = website_redirects(m)
    assert plan.objects == (
        ("blog/legacy", "https://blog.example.com/"), ("blog/legacy/index.html", "https://blog.example.com/"),
        ("café", "/menu/"), ("café/index.html", "/menu/"),
        ("old-page", "/new-page/"), ("old-page/index.html", "/new-page/"), ("old.html", "/docs/"),
    )
    unsupported = "\n".join(plan.unsupported)
    assert len(plan.unsupported) == 5  # /docs is shadowed by docs/index.html, as on every serving path
    for expected in ["/temp /new-page/ 302: S3 object redirects are always 301, not 302",
                     "/spa/* /spa/index.html 200: a 200 rewrite", "/fr/* /fr/404.html 404: a 404 rule",
                     "/news/* /blog/:splat 301: * and :placeholders", "/about /elsewhere 301!: a file exists there"]:
        assert expected in unsupported


def test_publish_writes_redirect_objects_on_s3(s3_rig, s3_admin, tmp_path):
    build = make_build(tmp_path / "b", {"index.html": "i", "new-page/index.html": "n", "docs/index.html": "d",
                                        "about.html": "a", "_redirects": RULES})
    settings = replace(SETTINGS, website_redirects=True)
    result = atomicsite.publish(build, s3_rig.store, settings=settings, source={})
    bucket, prefix = s3_rig.store.bucket, s3_rig.store.prefix
    base = f"{prefix}/v/{result.version}/" if prefix else f"v/{result.version}/"
    for path, location in [("old-page", "/new-page/"), ("old-page/index.html", "/new-page/"), ("old.html", "/docs/"),
                           ("blog/legacy", "https://blog.example.com/"), ("café", "/menu/")]:
        head = s3_admin.head_object(Bucket=bucket, Key=base + path)
        assert head["WebsiteRedirectLocation"] == location, path
        assert head["ContentLength"] == 0
    listed = {o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket, Prefix=base)["Contents"]}
    assert base + "temp" not in listed and base + "_redirects" not in listed
    report = result.to_dict()["website_redirects"]
    assert len(report["objects"]) == 7 and any(u.startswith("/temp ") for u in report["unsupported"])
    # not content: the manifest does not list them, so verify passes and reports them as extra
    assert "old-page" not in result.plan.manifest.by_path
    v = atomicsite.verify(result.version, s3_rig.store, settings=settings)
    assert v.ok and "old-page" in v.extra


def test_website_redirects_need_s3(local_rig, tmp_path):
    from atomicsite.errors import UsageError

    build = make_build(tmp_path / "b", {"index.html": "i", "_redirects": "/a /b\n"})
    with pytest.raises(UsageError, match="website_redirects needs an s3:// target"):
        atomicsite.publish(build, local_rig.store, settings=replace(SETTINGS, website_redirects=True), source={})


def test_cli_lists_the_rules_s3_cannot_express(s3_rig, tmp_path, monkeypatch):
    import os

    from typer.testing import CliRunner

    from atomicsite.cli import app

    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    for key, value in s3_rig.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "atomicsite.toml").write_text(f'target = "{s3_rig.url}"\nwebsite_redirects = true\n')
    build = make_build(tmp_path / "b", {"index.html": "i", "_redirects": "/old /new 301\n/temp /new 302\n"})
    result = CliRunner().invoke(app, ["publish", str(build)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "s3 website redirects: 2 objects" in result.stdout
    assert "not expressible on S3 website hosting: /temp /new 302: S3 object redirects are always 301" in \
        " ".join(result.stdout.split())
