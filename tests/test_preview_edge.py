"""One wildcard CloudFront distribution for every preview: the function maps the Host to a channel's key.

Run under Node with the stub of CloudFront's 'cloudfront' module (tests/edge_harness.mjs), as the
other function tests are; skipped when node is not installed.
"""

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from atomicsite.cdn import CloudFrontSettings, EdgeKeySwitcher, cloudfront_function
from atomicsite.cdn.function import cloudfront_function_code, preview_host_parts
from atomicsite.config import Settings
from atomicsite.errors import UsageError
from atomicsite.previews import PreviewUrl
from atomicsite.retry import RetryPolicy

FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.02)

HARNESS = Path(__file__).with_name("edge_harness.mjs")
LIVE_V, PR7_V = "0123456789abcdef", "fedcba9876543210"
KVS = {"atomicsite:live": LIVE_V, "atomicsite:pr-7": PR7_V}
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: cannot run the CloudFront Function")


def run_function(tmp_path, code: str, cases: list[dict]) -> list[dict]:
    fn = tmp_path / "fn.js"
    fn.write_text(code, encoding="utf-8")
    run = subprocess.run(["node", str(HARNESS), str(fn)], input=json.dumps({"cases": cases}), capture_output=True,
                         text=True, timeout=30, encoding="utf-8")
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
    return results


def host(value: str) -> dict:
    return {"host": {"value": value}}


@needs_node
def test_the_host_picks_the_preview_channels_key(tmp_path):
    code = cloudfront_function_code("atomicsite:live", "site", preview_host="{channel}.preview.example.com")
    cases = [
        {"uri": "/", "kvs": KVS, "headers": host("pr-7.preview.example.com")},
        {"uri": "/about/", "kvs": KVS, "headers": host("PR-7.Preview.Example.com.")},  # case, trailing dot
        {"uri": "/a.js", "kvs": KVS, "headers": host("pr-7.preview.example.com:443")},
        {"uri": "/", "kvs": KVS, "headers": host("www.example.com")},  # not a preview host: the default key
        {"uri": "/", "kvs": KVS, "headers": host("preview.example.com")},  # no channel label
        {"uri": "/", "kvs": KVS, "headers": host("a.b.preview.example.com")},  # two labels: not a channel
        {"uri": "/", "kvs": KVS, "headers": {}},  # no Host at all
        {"uri": "/docs", "kvs": KVS, "headers": host("pr-7.preview.example.com")},
        {"uri": "/", "kvs": KVS, "headers": host("pr-99.preview.example.com")},  # expired or never published
    ]
    r = run_function(tmp_path, code, cases)
    assert r[0]["result"]["uri"] == f"/site/v/{PR7_V}/index.html"
    assert r[0]["reads"] == ["atomicsite:pr-7", f"atomicsite:routes:{PR7_V}"]
    assert r[1]["result"]["uri"] == f"/site/v/{PR7_V}/about/index.html"
    assert r[2]["result"]["uri"] == f"/site/v/{PR7_V}/a.js"
    for i in (3, 4, 5, 6):
        assert r[i]["result"]["uri"] == f"/site/v/{LIVE_V}/index.html", cases[i]
        assert r[i]["reads"][0] == "atomicsite:live"
    assert r[7]["result"]["statusCode"] == 301 and r[7]["result"]["headers"]["location"]["value"] == "/docs/?q=1"
    gone = r[8]["result"]
    assert gone["statusCode"] == 404 and "uri" not in gone and r[8]["reads"] == ["atomicsite:pr-99"]
    assert gone["headers"]["cache-control"]["value"] == "no-store" and "pr-99" in gone["body"]["data"]


@needs_node
def test_a_prefixed_label_and_another_key_prefix(tmp_path):
    code = cloudfront_function_code("site:live", "", "site:routes:", preview_host="pr-{channel}.example.com",
                                    key_prefix="site:")
    kvs = {"site:live": LIVE_V, "site:7": PR7_V}
    r = run_function(tmp_path, code, [{"uri": "/", "kvs": kvs, "headers": host("pr-7.example.com")},
                                      {"uri": "/", "kvs": kvs, "headers": host("www.example.com")}])
    assert r[0]["result"]["uri"] == f"/v/{PR7_V}/index.html" and r[0]["reads"][0] == "site:7"
    assert r[1]["result"]["uri"] == f"/v/{LIVE_V}/index.html"


@needs_node
def test_without_a_preview_host_every_host_serves_the_one_key(tmp_path):
    r = run_function(tmp_path, cloudfront_function_code("atomicsite:live", "site"),
                     [{"uri": "/", "kvs": KVS, "headers": host("pr-7.preview.example.com")}])
    assert r[0]["result"]["uri"] == f"/site/v/{LIVE_V}/index.html" and r[0]["reads"][0] == "atomicsite:live"


def test_preview_host_patterns_the_edge_can_and_cannot_match():
    assert preview_host_parts("{channel}.preview.example.com") == ("", ".preview.example.com")
    assert preview_host_parts("PR-{channel}.Example.com.") == ("pr-", ".example.com")
    for bad in ("www.{channel}.example.com", "{channel}", "preview.example.com", "{channel}.ex_ample.com"):
        with pytest.raises(UsageError):
            preview_host_parts(bad)
    code = cloudfront_function_code("atomicsite:live", "site", preview_host="{channel}.preview.example.com")
    assert 'const PREVIEW_POST = ".preview.example.com";' in code and "__ATOMICSITE" not in code
    assert len(code.encode()) <= 10 * 1024


def test_the_function_takes_its_preview_host_from_preview_url():
    base = Settings(target="s3://bucket/site")
    with_host = replace(base, preview_url=PreviewUrl.parse("https://{channel}.preview.example.com/", where="t"))
    assert cloudfront_function(settings=with_host)["preview_host"] == "{channel}.preview.example.com"
    path_style = replace(base, preview_url=PreviewUrl.parse("https://preview.example.com/{channel}/", where="t"))
    assert cloudfront_function(settings=path_style)["preview_host"] is None
    assert cloudfront_function(settings=base)["preview_host"] is None


# --- removing a channel removes its edge key (against tests/cloudfront_standin.py, our stand-in) -----

@pytest.fixture
def kvs(aws_env):
    from tests.cloudfront_standin import CloudFrontStandIn

    with CloudFrontStandIn() as server:
        arn = server.add_kvs("kvs-previews")
        yield server, arn, CloudFrontSettings(mode="edge-key", kvs_arn=arn, endpoint_url=server.url)


def test_the_edge_key_is_deleted_only_while_it_holds_the_removed_version(kvs):
    server, arn, cf = kvs
    server.state.kvs[arn]["items"].update({"atomicsite:pr-7": PR7_V, "atomicsite:pr-8": LIVE_V})
    etag = server.state.kvs[arn]["etag"]
    switcher = EdgeKeySwitcher(cf, retry=FAST)
    assert switcher.remove("pr-7", PR7_V).data["removed"] is True
    assert "atomicsite:pr-7" not in server.state.kvs[arn]["items"]
    assert server.requests_to("DELETE", "/keys/")[0]["if-match"] == etag
    republished = switcher.remove("pr-8", PR7_V)  # it serves another version now: left alone
    assert republished.data["removed"] is False and "published again" in republished.detail
    assert server.state.kvs[arn]["items"]["atomicsite:pr-8"] == LIVE_V
    assert "was not set" in switcher.remove("pr-9", PR7_V).detail


def test_channel_delete_and_prune_of_an_expired_channel_remove_its_edge_key(kvs, tmp_path):
    import atomicsite
    from atomicsite.channels import read_pointer, with_expiry, write_pointer
    from atomicsite.stores.local import LocalStore

    from .helpers import site

    server, arn, cf = kvs
    settings = Settings(concurrency=4, cloudfront=cf)
    store = LocalStore(tmp_path / "target")
    build = site(tmp_path)
    for channel in ("pr-1", "pr-2"):
        atomicsite.publish(build, store, channel=channel, settings=settings, source={}, expires=3600)
    items = server.state.kvs[arn]["items"]
    assert {"atomicsite:pr-1", "atomicsite:pr-2"} <= set(items)

    atomicsite.delete_channel("pr-1", store, settings=settings)
    assert "atomicsite:pr-1" not in items

    state = read_pointer(store, "pr-2")
    write_pointer(store, state, with_expiry(state.pointer, "2020-01-01T00:00:00Z"))
    pruned = atomicsite.prune(store, settings=settings)
    assert list(pruned.expired_channels.removed) == ["pr-2"] and "atomicsite:pr-2" not in items
    assert "cloudfront-kvs: ok" in pruned.expired_channels.cdn["pr-2"] and "deleted" in pruned.expired_channels.cdn["pr-2"]


def test_prune_deletes_the_routes_keys_of_the_versions_it_deletes(kvs, tmp_path):
    import atomicsite
    from atomicsite.cdn.edge_routes import routes_keys
    from atomicsite.stores.local import LocalStore

    from .helpers import site

    server, arn, cf = kvs
    settings = Settings(concurrency=4, cloudfront=cf)
    store = LocalStore(tmp_path / "target")
    build = site(tmp_path)
    (build / "_redirects").write_text("/old /new 301\n/docs/* /guide/:splat 302\n")
    versions = []
    for i in range(4):
        (build / "index.html").write_text(f"version {i}")
        versions.append(atomicsite.publish(build, store, settings=settings, source={}).version)
    items = server.state.kvs[arn]["items"]
    prefix = cf.routes_key_prefix
    assert all(f"{prefix}{v}" in items for v in versions)
    server.race_next(arn)  # a publish moves the store's ETag between our read and the first delete
    pruned = atomicsite.prune(store, keep=1, grace=0, settings=settings)
    assert sorted(pruned.deleted_versions) == sorted(versions[:2])
    for v in versions[:2]:
        assert not [k for k in items if k.startswith(f"{prefix}{v}")]
    for v in versions[2:]:  # live and its previous keep theirs
        first = items[f"{prefix}{v}"]
        assert all(k in items for k in routes_keys(prefix, v, int(first.partition("|")[0])))
    assert pruned.cdn and pruned.cdn[0].startswith("cloudfront-kvs: ok deleted")
    assert pruned.to_dict()["cdn"] == pruned.cdn
