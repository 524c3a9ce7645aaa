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

from atomicsite.cdn import cloudfront_function
from atomicsite.cdn.function import cloudfront_function_code, preview_host_parts
from atomicsite.config import Settings
from atomicsite.errors import UsageError
from atomicsite.previews import PreviewUrl

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
