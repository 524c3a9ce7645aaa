"""CloudFront switchers, invalidation policy, and the edge function.

What is proven where (see docs/cloudfront.md):
- moto server over HTTP: origin path update (the right origin only, If-Match = the ETag just read),
  waiting for Deployed, invalidations with the right paths, a wrong origin id, a missing distribution.
- tests/cloudfront_standin.py over HTTP: what moto cannot do. moto accepts a stale distribution ETag,
  has no CloudFront Functions API and no KeyValueStore data plane; the stand-in enforces ETags like AWS,
  so it proves the conflict paths, the KVS switcher and the function deploy.
- Node.js: the generated CloudFront Function, run against a stub of the 'cloudfront' module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from atomicsite.cdn import (CloudFrontSettings, EdgeKeySwitcher, InvalidationSwitcher, OriginPathSwitcher,
                                       boto3_client_factory, cloudfront_function_code, deploy_cloudfront_function,
                                       encode_invalidation_path, invalidation_paths, origin_path,
                                       switchers_from_settings)
from atomicsite.errors import ConfigError, ConflictError, NotFound, StoreError, UsageError
from atomicsite.headers import headers_for
from dataclasses import replace

from atomicsite.manifest import FileEntry, Manifest
from atomicsite.retry import RetryPolicy
from atomicsite.cdn import SwitchContext
from tests.cloudfront_standin import CloudFrontStandIn

FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.02)
HARNESS = Path(__file__).with_name("edge_harness.mjs")


@pytest.fixture(autouse=True)
def _aws(aws_env):
    """Fake credentials for every test here (tests/conftest.py)."""


def entry(path: str, content: str = "x") -> FileEntry:
    h = headers_for(path)
    data = content.encode()
    return FileEntry(path, hashlib.sha256(data).hexdigest(), len(data), hashlib.md5(data).hexdigest(),
                     h.content_type, h.cache_control)


def manifest(files: dict[str, str]) -> Manifest:
    return Manifest.build(entry(p, c) for p, c in files.items())


SITE_V1 = {"index.html": "home 1", "about/index.html": "about", "assets/app.3f9a1c2b.js": "js 1",
           "style.css": "css", "old.html": "old", "assets/old.5e6f7a8b.js": "old js",
           "assets/logo.1a2b3c4d.svg": "logo v1"}
SITE_V2 = {"index.html": "home 2", "about/index.html": "about", "assets/app.9d8e7f6a.js": "js 2",
           "style.css": "css", "café menu.html": "menu", "assets/logo.1a2b3c4d.svg": "logo v2"}


def ctx(new: Manifest, old: Manifest | None = None, *, channel="live", prefix="site") -> SwitchContext:
    return SwitchContext(target_url=f"s3://bucket/{prefix}", root_prefix=prefix, channel=channel,
                         version=new.version, previous=old.version if old else None, manifest=new,
                         previous_manifest=old)


# --- settings --------------------------------------------------------------------------------------

def test_settings_infer_mode_and_defaults():
    s = CloudFrontSettings.from_mapping({"distribution_id": "E1", "origin_id": "site", "wait": True,
                                         "wait_timeout": "20m", "poll_interval": 5})
    assert (s.mode, s.channel, s.wait, s.invalidate, s.max_invalidation_paths) == ("origin-path", "live", True, True, 1000)
    assert (s.wait_timeout, s.poll_interval) == (1200.0, 5.0)
    arn = "arn:aws:cloudfront::123456789012:key-value-store/0f1e2d3c-aaaa"
    e = CloudFrontSettings.from_mapping({"kvs_arn": arn})
    assert e.mode == "edge-key" and e.kvs_key("live") == "atomicsite:live" and e.kvs_key("pr-7") == "atomicsite:pr-7"


@pytest.mark.parametrize("table, key", [
    ({"distribution_id": "E1", "origin_id": "o", "wiat": True}, "cloudfront.wiat"),
    ({"distribution_id": "E1", "origin_id": "o", "wait": "yes"}, "cloudfront.wait"),
    ({"distribution_id": "E1", "origin_id": "o", "max_invalidation_paths": 5000}, "cloudfront.max_invalidation_paths"),
    ({"distribution_id": "E1", "origin_id": "o", "wait_timeout": 0}, "cloudfront.wait_timeout"),
    ({"distribution_id": "E1", "origin_id": "o", "wait_timeout": "soon"}, "cloudfront.wait_timeout"),
    ({"distribution_id": "E1", "origin_id": "o", "region": ""}, "cloudfront.region"),
    ({"distribution_id": "E1", "origin_id": "o", "channel": "Live!"}, "cloudfront.channel"),
    ({"distribution_id": "E1"}, "cloudfront.mode"),
    ({"mode": "origin-path", "distribution_id": "E1"}, "cloudfront.origin_id"),
    ({"distribution_id": "E1", "origin_id": "o", "kvs_arn": "arn:aws:cloudfront::123456789012:key-value-store/k"},
     "cloudfront.mode"),
    ({"kvs_arn": "arn:aws:s3:::bucket"}, "cloudfront.kvs_arn"),
    ({"kvs_arn": "arn:aws:cloudfront::123456789012:key-value-store/k", "function_name": "a b"}, "cloudfront.function_name"),
    ({"distribution_id": "E1", "origin_id": "o", "endpoint_url": "localhost:4566"}, "cloudfront.endpoint_url"),
])
def test_settings_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as err:
        CloudFrontSettings.from_mapping(table)
    assert str(err.value).startswith(key + ":")


def test_switchers_from_settings_by_mode():
    origin = CloudFrontSettings.from_mapping({"distribution_id": "E1", "origin_id": "o"})
    assert [s.name for s in switchers_from_settings(origin)] == ["cloudfront-origin", "cloudfront-invalidation"]
    quiet = CloudFrontSettings.from_mapping({"distribution_id": "E1", "origin_id": "o", "invalidate": False})
    assert [s.name for s in switchers_from_settings(quiet)] == ["cloudfront-origin"]
    edge = {"kvs_arn": "arn:aws:cloudfront::123456789012:key-value-store/k"}  # the raw config table works too
    assert [s.name for s in switchers_from_settings(edge)] == ["cloudfront-kvs"]
    with pytest.raises(ConfigError, match="cloudfront.kvs_arn"):
        switchers_from_settings({"kvs_arn": "nope"})


def test_unknown_profile_is_a_config_error():
    settings = CloudFrontSettings.from_mapping({"distribution_id": "E1", "origin_id": "o", "profile": "no-such-profile"})
    with pytest.raises(ConfigError, match="cloudfront.profile: no AWS profile named 'no-such-profile'"):
        boto3_client_factory(settings)("cloudfront")


# --- pure path logic ------------------------------------------------------------------------------

def test_origin_path_has_no_double_slashes():
    v = "0123456789abcdef"
    assert origin_path("site", v) == f"/site/v/{v}"
    assert origin_path("", v) == f"/v/{v}"
    assert origin_path("/sites/blog/", v) == f"/sites/blog/v/{v}"
    with pytest.raises(UsageError):
        origin_path("my site", v)
    with pytest.raises(UsageError):
        origin_path("site", "../etc")


def test_invalidation_paths_skip_unchanged_immutable_assets():
    v1, v2 = manifest(SITE_V1), manifest(SITE_V2)
    assert invalidation_paths(v2, v1) == sorted([
        "/index.html", "/",  # the root index, also cached as "/"
        "/about/index.html", "/about/", "/about",  # unchanged, but not immutable: re-validated
        "/style.css",
        "/caf%C3%A9%20menu.html",  # new page, percent-encoded per CloudFront
        "/old.html",  # removed page: the edge must stop serving it
        "/assets/logo.1a2b3c4d.svg",  # "immutable" but its bytes changed under the same name
    ])
    # Without a previous manifest: every non-immutable path of the new version, no asset.
    assert invalidation_paths(v2) == sorted(["/index.html", "/", "/about/index.html", "/about/", "/about",
                                             "/style.css", "/caf%C3%A9%20menu.html"])


def test_invalidation_paths_fall_back_to_wildcard_over_the_limit():
    many = manifest({f"p{i}.html": str(i) for i in range(12)})
    assert len(invalidation_paths(many, limit=12)) == 12
    assert invalidation_paths(many, limit=11) == ["/*"]
    assets_only = manifest({"a.3f9a1c2b.js": "1"})
    assert invalidation_paths(assets_only, manifest({"b.4e5f6a7b.js": "2"})) == []


def test_encode_invalidation_path():
    assert encode_invalidation_path("/a b/c#d?e%f*g~h+i.html") == "/a%20b/c%23d%3Fe%25f%2Ag~h+i.html"
    assert encode_invalidation_path("/日本/") == "/%E6%97%A5%E6%9C%AC/"


# --- moto server over HTTP -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def two_origin_config(reference: str) -> dict:
    return {
        "CallerReference": reference, "Comment": "atomicsite test", "Enabled": True,
        "Origins": {"Quantity": 2, "Items": [
            {"Id": "api", "DomainName": "api.example.com", "OriginPath": "/prod",
             "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}},
            {"Id": "site", "DomainName": "site-bucket.s3.amazonaws.com", "OriginPath": "",
             "S3OriginConfig": {"OriginAccessIdentity": ""}},
        ]},
        "DefaultCacheBehavior": {"TargetOriginId": "site", "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    }


@pytest.fixture
def moto(moto_url):
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    settings = CloudFrontSettings(distribution_id="PLACEHOLDER", origin_id="site", endpoint_url=moto_url,
                                  poll_interval=0.01, wait_timeout=5)
    client = boto3_client_factory(settings)("cloudfront")
    dist_id = client.create_distribution(DistributionConfig=two_origin_config(uuid.uuid4().hex))["Distribution"]["Id"]
    return moto_url, client, dist_id


def moto_settings(moto_url, dist_id, **kw) -> CloudFrontSettings:
    return CloudFrontSettings(distribution_id=dist_id, origin_id="site", endpoint_url=moto_url, poll_interval=0.01,
                              wait_timeout=5, **kw)


def origin_paths(client, dist_id) -> dict[str, str]:
    items = client.get_distribution_config(Id=dist_id)["DistributionConfig"]["Origins"]["Items"]
    return {o["Id"]: o["OriginPath"] for o in items}


def test_moto_origin_path_switch_uses_the_etag_and_waits_for_deployed(moto):
    url, client, _ = moto
    # A distribution created now stays InProgress for its first six reads, so the wait has to poll.
    requests.post(f"{url}/moto-api/state-manager/set-transition", timeout=10, json={
        "model_name": "cloudfront::distribution", "transition": {"progression": "manual", "times": 6}})
    try:
        dist_id = client.create_distribution(DistributionConfig=two_origin_config("slow"))["Distribution"]["Id"]
        settings = moto_settings(url, dist_id, wait=True)
        switcher = OriginPathSwitcher(settings, boto3_client_factory(settings), retry=FAST)
        sent = []
        switcher.client.meta.events.register("before-send.cloudfront.UpdateDistribution",
                                             lambda request, **_: sent.append(request.headers.get("If-Match")))
        polls = []
        switcher.client.meta.events.register("before-send.cloudfront.GetDistribution",
                                             lambda request, **_: polls.append(1))
        etag = client.get_distribution_config(Id=dist_id)["ETag"]
        new = manifest(SITE_V1)
        report = switcher.apply(ctx(new))
    finally:
        requests.post(f"{url}/moto-api/state-manager/unset-transition", timeout=10,
                      json={"model_name": "cloudfront::distribution"})
    assert origin_paths(client, dist_id) == {"site": f"/site/v/{new.version}", "api": "/prod"}
    assert [s.decode() if isinstance(s, bytes) else s for s in sent] == [etag]
    assert report.ok and report.data["deployed"] is True and report.data["changed"] is True
    assert len(polls) >= 2
    assert f"/site/v/{new.version}" in report.detail

    # Re-applying the same version reads, finds the path set, and does not write again.
    again = switcher.apply(ctx(new))
    assert again.data["changed"] is False and len(sent) == 1


def test_moto_root_prefix_empty_and_other_channel_skipped(moto):
    url, client, dist_id = moto
    settings = moto_settings(url, dist_id)
    new = manifest(SITE_V1)
    skipped = OriginPathSwitcher(settings, retry=FAST).apply(ctx(new, channel="staging"))
    assert skipped.data["skipped"] and origin_paths(client, dist_id)["site"] == ""
    report = OriginPathSwitcher(settings, retry=FAST).apply(ctx(new, prefix=""))
    assert origin_paths(client, dist_id)["site"] == f"/v/{new.version}"
    assert report.data["deployed"] is None and "propagating" in report.detail


def test_moto_unknown_origin_names_the_origins_present(moto):
    url, client, dist_id = moto
    settings = CloudFrontSettings(distribution_id=dist_id, origin_id="s3-site", endpoint_url=url)
    with pytest.raises(ConfigError, match=r"cloudfront\.origin_id: .*no origin 's3-site' \(its origins: 'api', 'site'\)"):
        OriginPathSwitcher(settings, retry=FAST).apply(ctx(manifest(SITE_V1)))


def test_moto_missing_distribution_is_not_found(moto):
    url, _, _ = moto
    with pytest.raises(NotFound, match="cloudfront:GetDistributionConfig on distribution ENOPE"):
        OriginPathSwitcher(moto_settings(url, "ENOPE"), retry=FAST).apply(ctx(manifest(SITE_V1)))


def test_moto_invalidation_paths_and_id(moto):
    url, client, dist_id = moto
    v1, v2 = manifest(SITE_V1), manifest(SITE_V2)
    report = InvalidationSwitcher(moto_settings(url, dist_id, wait=True), retry=FAST).apply(ctx(v2, v1))
    listed = client.list_invalidations(DistributionId=dist_id)["InvalidationList"]["Items"]
    assert [i["Id"] for i in listed] == [report.data["invalidation_id"]]
    batch = client.get_invalidation(DistributionId=dist_id, Id=report.data["invalidation_id"])["Invalidation"]
    assert sorted(batch["InvalidationBatch"]["Paths"]["Items"]) == invalidation_paths(v2, v1)
    assert "/assets/app.9d8e7f6a.js" not in batch["InvalidationBatch"]["Paths"]["Items"]
    assert batch["InvalidationBatch"]["CallerReference"] == report.data["caller_reference"]
    assert report.data["status"] == "COMPLETED"  # moto's spelling, accepted by the wait
    assert report.detail.startswith(f"invalidation {report.data['invalidation_id']} of 9 paths")


def test_moto_invalidation_wildcard_and_nothing_to_do(moto):
    url, client, dist_id = moto
    v1, v2 = manifest(SITE_V1), manifest(SITE_V2)
    report = InvalidationSwitcher(moto_settings(url, dist_id, max_invalidation_paths=3), retry=FAST).apply(ctx(v2, v1))
    inv = client.get_invalidation(DistributionId=dist_id, Id=report.data["invalidation_id"])["Invalidation"]
    assert inv["InvalidationBatch"]["Paths"]["Items"] == ["/*"]
    assets = manifest({"a.3f9a1c2b.js": "1"})
    none = InvalidationSwitcher(moto_settings(url, dist_id), retry=FAST).apply(ctx(assets, manifest({"b.4e5f6a7b.js": "2"})))
    assert none.data["invalidation_id"] is None
    assert len(client.list_invalidations(DistributionId=dist_id)["InvalidationList"]["Items"]) == 1


# --- the stand-in: ETag enforcement moto lacks --------------------------------------------------

@pytest.fixture
def standin():
    with CloudFrontStandIn() as server:
        yield server


def standin_origin(standin) -> tuple[CloudFrontSettings, str]:
    etag = standin.add_distribution("EDIST1", two_origin_config("ref"))
    return CloudFrontSettings(distribution_id="EDIST1", origin_id="site", endpoint_url=standin.url,
                              poll_interval=0.01, wait_timeout=2), etag


def test_standin_origin_path_update_with_current_etag(standin):
    settings, etag = standin_origin(standin)
    new = manifest(SITE_V1)
    report = OriginPathSwitcher(settings, retry=FAST).apply(ctx(new))
    client = boto3_client_factory(settings)("cloudfront")
    assert origin_paths(client, "EDIST1") == {"site": f"/site/v/{new.version}", "api": "/prod"}
    assert [h["if-match"] for h in standin.requests_to("PUT", "/config")] == [etag]
    assert report.data["etag"] == standin.state.distributions["EDIST1"]["etag"] != etag


def test_standin_stale_etag_is_a_conflict_and_writes_nothing(standin):
    settings, _ = standin_origin(standin)
    standin.race_next("EDIST1")  # another writer updates the distribution right after our read
    with pytest.raises(ConflictError) as err:
        OriginPathSwitcher(settings, retry=FAST).apply(ctx(manifest(SITE_V1)))
    assert "changed while atomicsite was updating its origin path" in str(err.value)
    assert "\n" not in str(err.value) and err.value.exit_code == 3
    assert len(standin.requests_to("PUT", "/config")) == 1  # a conflict is not retried
    client = boto3_client_factory(settings)("cloudfront")
    assert origin_paths(client, "EDIST1")["site"] == ""


def test_standin_lost_answer_is_retried_without_a_second_write(standin):
    settings, _ = standin_origin(standin)
    standin.fail_next("PUT", "/config", status=503, after_apply=True)
    new = manifest(SITE_V1)
    report = OriginPathSwitcher(settings, retry=FAST).apply(ctx(new))
    assert len(standin.requests_to("PUT", "/config")) == 1
    assert len(standin.requests_to("GET", "/config")) == 2
    client = boto3_client_factory(settings)("cloudfront")
    assert origin_paths(client, "EDIST1")["site"] == f"/site/v/{new.version}"
    assert report.ok and report.data["changed"] is False  # the retry found it done


def test_standin_wait_times_out_with_a_clear_error(standin):
    standin.add_distribution("EDIST1", two_origin_config("ref"), status="InProgress")
    settings = CloudFrontSettings(distribution_id="EDIST1", origin_id="site", endpoint_url=standin.url, wait=True,
                                  poll_interval=1, wait_timeout=3)
    ticks, slept = iter(range(100)), []
    switcher = OriginPathSwitcher(settings, retry=FAST, sleep=slept.append, clock=lambda: float(next(ticks)))
    with pytest.raises(StoreError, match=r"distribution EDIST1 still InProgress after 3s") as err:
        switcher.apply(ctx(manifest(SITE_V1)))
    assert "keeps propagating" in str(err.value)
    status_reads = [p for m, p, _ in standin.state.requests if m == "GET" and p.endswith("/distribution/EDIST1")]
    assert slept and len(status_reads) == len(slept) + 1


KVS_V = "0123456789abcdef"


def kvs_settings(standin, arn) -> CloudFrontSettings:
    return CloudFrontSettings(mode="edge-key", kvs_arn=arn, endpoint_url=standin.url)


def test_standin_kvs_switch_writes_the_key_with_the_etag(standin):
    arn = standin.add_kvs("kvs-1")
    etag = standin.state.kvs[arn]["etag"]
    new = manifest(SITE_V1)
    report = EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(new))
    # the version's routes first (old.html answers /old: a pretty URL), then the channel's key
    routes = {f"atomicsite:routes:{new.version}": '1|{"r":[],"p":["/old"],"e":[]}'}
    assert standin.state.kvs[arn]["items"] == {**routes, "atomicsite:live": new.version}
    puts = standin.requests_to("PUT", "/keys/")
    assert puts[0]["if-match"] == etag and len(puts) == 2 and puts[1]["if-match"] != etag
    # The account-id host prefix was removed before signing: the signed Host is the stand-in's, SigV4A.
    assert puts[0]["host"] == standin.url.removeprefix("http://")
    assert puts[0]["authorization"].startswith("AWS4-ECDSA-P256-SHA256 ")
    assert report.data["key"] == "atomicsite:live" and report.data["previous_value"] is None

    # Another channel gets its own key; the same version again writes nothing.
    EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(new, channel="pr-7"))
    again = EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(new))
    assert again.data["changed"] is False and len(standin.requests_to("PUT", "/keys/")) == 3
    assert standin.state.kvs[arn]["items"] == {**routes, "atomicsite:live": new.version, "atomicsite:pr-7": new.version}


def test_standin_kvs_switch_writes_routes_in_several_values_and_reports_edge_notes(standin):
    from atomicsite.routing import Redirect, SiteRules

    arn = standin.add_kvs("kvs-1")
    rules = tuple(Redirect(f"/legacy/section-{i}/*", f"/archive/section-{i}/:splat") for i in range(40))
    new = Manifest.build(manifest(SITE_V1).files, rules=SiteRules(rules + (Redirect("/fr/*", "/fr/404.html", 404),)))
    report = EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(new))
    items = standin.state.kvs[arn]["items"]
    keys = report.data["routes_keys"]
    assert len(keys) >= 2 and all(k in items and len(items[k].encode()) <= 1024 for k in keys)
    assert items[keys[0]].startswith(f"{len(keys)}|") and items["atomicsite:live"] == new.version
    assert len(report.data["edge_notes"]) == 1 and "404 rules are not applied at the edge" in report.data["edge_notes"][0]
    assert "1 rule(s) work differently at the edge" in report.detail


def test_standin_kvs_routes_too_large_write_nothing(standin):
    from atomicsite.cdn.edge_routes import EdgeRoutesTooLarge
    from atomicsite.routing import Redirect, SiteRules

    arn = standin.add_kvs("kvs-1", {"atomicsite:live": KVS_V})
    rules = tuple(Redirect(f"/old/page-number-{i}", f"/new/page-number-{i}/") for i in range(300))
    new = Manifest.build(manifest(SITE_V1).files, rules=SiteRules(rules))
    with pytest.raises(EdgeRoutesTooLarge, match="8 KeyValueStore values of 1024 bytes"):
        EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(new))
    assert standin.state.kvs[arn]["items"] == {"atomicsite:live": KVS_V}
    assert standin.requests_to("PUT", "/keys/") == []


def test_standin_kvs_conflict(standin):
    arn = standin.add_kvs("kvs-1", {"atomicsite:live": KVS_V})
    standin.race_next(arn)  # someone writes another key between our describe and our put
    with pytest.raises(ConflictError, match="changed while atomicsite was writing 'atomicsite:routes:"):  # routes go first
        EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(manifest(SITE_V1)))
    assert standin.state.kvs[arn]["items"]["atomicsite:live"] == KVS_V


def test_standin_kvs_missing_store_is_not_found(standin):
    arn = "arn:aws:cloudfront::123456789012:key-value-store/nope"
    with pytest.raises(NotFound, match="DescribeKeyValueStore"):
        EdgeKeySwitcher(kvs_settings(standin, arn), retry=FAST).apply(ctx(manifest(SITE_V1)))


def test_standin_deploy_function_creates_then_updates_and_publishes(standin):
    arn = standin.add_kvs("kvs-1")
    settings = CloudFrontSettings(mode="edge-key", kvs_arn=arn, endpoint_url=standin.url, function_name="site-router")
    client = boto3_client_factory(settings)("cloudfront")
    code = cloudfront_function_code(settings.kvs_key("live"), "site")
    first = deploy_cloudfront_function(settings, code, client, retry=FAST)
    fn = standin.state.functions["site-router"]
    assert first.action == "created" and first.stage == "LIVE"
    assert first.arn == "arn:aws:cloudfront::123456789012:function/site-router"
    assert (fn["runtime"], fn["kvs_arns"], fn["live_code"], fn["published"]) == ("cloudfront-js-2.0", [arn], code, 1)

    etag = fn["etag"]
    code2 = cloudfront_function_code(settings.kvs_key("live"), "other")
    second = deploy_cloudfront_function(settings, code2, client, retry=FAST)
    assert second.action == "updated" and fn["live_code"] == code2 and fn["published"] == 2
    assert standin.requests_to("PUT", "/function/site-router")[0]["if-match"] == etag


# --- the CloudFront Function under Node ----------------------------------------------------------

def test_function_code_fills_the_template():
    code = cloudfront_function_code('we"ird:key', "sites/blog")
    assert "import cf from 'cloudfront';" in code and "const kvsHandle = cf.kvs();" in code
    assert 'const KVS_KEY = "we\\"ird:key";' in code and 'const SITE_ROOT = "/sites/blog";' in code
    assert "__ATOMICSITE" not in code and "export" not in code
    assert len(code.encode()) < 10 * 1024  # CloudFront's function size limit
    with pytest.raises(UsageError):
        cloudfront_function_code("", "site")


EDGE_CASES = [
    ("/", "/index.html"),
    ("/about/", "/about/index.html"),
    ("/a.js", "/a.js"),
    ("/assets/app.3f9a1c2b.js", "/assets/app.3f9a1c2b.js"),
    ("/caf%C3%A9/", "/caf%C3%A9/index.html"),  # percent-encoding kept as CloudFront gives it
    ("/日本語.html", "/日本語.html"),
]
# No '.' in the last segment and no trailing slash: a directory, redirected so relative links work
# (only the last segment decides; the query is kept).
EDGE_REDIRECTS = [("/about", "/about/?q=1"), ("/café/menu", "/café/menu/?q=1"), ("/v1.2/notes", "/v1.2/notes/?q=1")]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: cannot run the CloudFront Function")
@pytest.mark.parametrize("prefix, root", [("site", "/site"), ("", "")])
def test_function_rewrites_under_node(tmp_path, prefix, root):
    fn = tmp_path / "fn.js"
    fn.write_text(cloudfront_function_code("atomicsite:live", prefix), encoding="utf-8")
    live = {"atomicsite:live": KVS_V}
    cases = [{"uri": uri, "kvs": live} for uri, _ in EDGE_CASES + EDGE_REDIRECTS] + [
        {"uri": "/about", "kvs": {}},  # key missing
        {"uri": "/about", "kvs": {"atomicsite:live": "../../etc"}},  # not a version id
        {"uri": "/../_atomicsite/channels/live.json", "kvs": live},
        {"uri": "/a/%2E%2E/b", "kvs": live},
    ]
    run = subprocess.run(["node", str(HARNESS), str(fn)], input=json.dumps({"cases": cases}), capture_output=True,
                         text=True, timeout=20, encoding="utf-8")
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
    served = len(EDGE_CASES) + len(EDGE_REDIRECTS)
    # the version's routes are looked up (this version has none: the key is absent)
    assert all(r["reads"] == ["atomicsite:live", f"atomicsite:routes:{KVS_V}"] for r in results[:served])
    assert all(r["reads"] == ["atomicsite:live"] for r in results[served:])

    for (uri, want), r in zip(EDGE_CASES, results):
        assert r["result"]["uri"] == f"{root}/v/{KVS_V}{want}", uri
        assert r["result"]["querystring"] == {"q": {"value": "1"}}  # the rest of the request is untouched
    for (uri, location), r in zip(EDGE_REDIRECTS, results[len(EDGE_CASES):]):
        assert r["result"]["statusCode"] == 301 and r["result"]["headers"]["location"]["value"] == location, uri
    missing, bad, dotdot, encoded_dotdot = (r["result"] for r in results[served:])
    for response in (missing, bad):
        assert response["statusCode"] == 503 and "uri" not in response
        assert response["headers"]["cache-control"]["value"] == "no-store"
        assert response["body"]["encoding"] == "text" and response["body"]["data"]
    assert dotdot["statusCode"] == 400 and encoded_dotdot["statusCode"] == 400


def test_invalidation_covers_a_path_marked_immutable_by_a_rule_that_leaves_and_comes_back():
    """A has fonts/brand.woff2 marked immutable by a header rule; B drops it; C brings new bytes back."""
    a = manifest({"index.html": "a", "fonts/brand.woff2": "old"})
    imm = {f.path: f for f in a.files}
    a = Manifest.build([replace(f, cache_control="public, max-age=31536000, immutable") if f.path.endswith("woff2")
                        else f for f in imm.values()])
    b = manifest({"index.html": "b"})
    c = Manifest.build([replace(f, sha256="c" * 64) if f.path.endswith("woff2") else f for f in a.files])
    assert "/fonts/brand.woff2" in invalidation_paths(b, a)  # removed: edges may keep it a year
    assert "/fonts/brand.woff2" in invalidation_paths(c, b)  # added back under the same name
