"""End to end: a [cloudfront] table in atomicsite.toml makes publish and rollback move CloudFront,
and status shows what the switchers did (moto server over HTTP serves both S3 and CloudFront)."""

import json
import os
import uuid

import boto3
from typer.testing import CliRunner

from atomicsite.cli import app

from .helpers import site
from .test_cloudfront import two_origin_config

runner = CliRunner()


def cli(*args, code=0):
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_publish_and_rollback_move_the_origin_path_and_invalidate(s3_rig, tmp_path, monkeypatch):
    endpoint = s3_rig.env["ATOMICSITE_ENDPOINT_URL"]
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    for key, value in s3_rig.env.items():
        monkeypatch.setenv(key, value)
    cloudfront = boto3.client("cloudfront", endpoint_url=endpoint, region_name="us-east-1")
    dist = cloudfront.create_distribution(DistributionConfig=two_origin_config(uuid.uuid4().hex))["Distribution"]["Id"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "atomicsite.toml").write_text(
        f'target = "{s3_rig.url}"\n[cloudfront]\ndistribution_id = "{dist}"\norigin_id = "site"\n'
        f'endpoint_url = "{endpoint}"\n')
    build = site(tmp_path)

    def origin_path():
        items = cloudfront.get_distribution_config(Id=dist)["DistributionConfig"]["Origins"]["Items"]
        return {o["Id"]: o["OriginPath"] for o in items}

    first = cli("publish", str(build))
    assert origin_path() == {"api": "/prod", "site": f"/site/v/{first['version']}"}
    assert {r["switcher"]: r["ok"] for r in first["after"]} == {"cloudfront-origin": True,
                                                                 "cloudfront-invalidation": True}
    (build / "index.html").write_text("<h1>second</h1>")
    import atomicsite.targets as targets

    reads: list[str] = []
    real = targets.read_manifest
    monkeypatch.setattr(targets, "read_manifest", lambda store, v: reads.append(v) or real(store, v))
    second = cli("publish", str(build))
    assert origin_path()["site"] == f"/site/v/{second['version']}"
    # the version it replaces was read to plan the copies; the switchers reuse it
    assert reads.count(first["version"]) == 1, reads
    monkeypatch.setattr(targets, "read_manifest", real)
    invalidation = next(r for r in second["after"] if r["switcher"] == "cloudfront-invalidation")
    paths = cloudfront.get_invalidation(DistributionId=dist, Id=invalidation["data"]["invalidation_id"])[
        "Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert "/index.html" in paths and "/" in paths
    assert not any("3f9a1c2b" in p for p in paths)  # immutable fingerprinted assets are left alone

    status = cli("status")
    assert status["switchers"]["version"] == second["version"]
    assert [r["switcher"] for r in status["switchers"]["reports"]] == ["cloudfront-origin", "cloudfront-invalidation"]

    back = cli("rollback")
    assert back["version"] == first["version"] and origin_path()["site"] == f"/site/v/{first['version']}"
    assert cli("status")["switchers"]["version"] == first["version"]

    # flags override the table: with invalidation off, only the origin switcher runs
    again = cli("promote", second["version"], "--cloudfront", "invalidate=false")
    assert [r["switcher"] for r in again["after"]] == ["cloudfront-origin"]
    assert origin_path()["site"] == f"/site/v/{second['version']}"
    bad = cli("status", "--cloudfront", "wait=maybe", code=2)
    assert bad["error"] == "config" and "cloudfront.wait" in bad["message"]


def test_a_bad_cloudfront_table_stops_before_anything_is_uploaded(s3_rig, tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    for key, value in s3_rig.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "atomicsite.toml").write_text(f'target = "{s3_rig.url}"\n[cloudfront]\ndistribution_id = "E1"\n')
    err = cli("publish", str(site(tmp_path)), code=2)
    assert err["error"] == "config" and "cloudfront" in err["message"]
    assert list(s3_rig.store.list("")) == []
    # flags alone can configure the switchers (validated just the same)
    (tmp_path / "atomicsite.toml").write_text(f'target = "{s3_rig.url}"\n')
    flags = ["--cloudfront", "distribution_id=E1", "--cloudfront", "origin_id=site"]
    assert cli("publish", str(site(tmp_path, dest="b2")), "--dry-run", *flags)["dry_run"]
    assert cli("status", "--cloudfront", "origin_id=site", code=2)["error"] == "config"
