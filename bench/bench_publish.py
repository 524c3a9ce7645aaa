"""Publish benchmark: atomicsite vs ``aws s3 sync`` on one moto server, plus a GCS column.

    pip install -e '.[bench]'
    python bench/bench_publish.py                 # 10,000 files, ~80 MB
    python bench/bench_publish.py --files 2000    # quicker
    python bench/bench_publish.py --skip-gcs

Three scenarios, measured in the same run for each tool:

  (a) fresh publish of the site        (b) re-publish of the same build
  (c) publish after changing 10 files

For each: wall time, client CPU time (user+system of the client process), HTTP requests and request
bytes. S3 figures are counted by the server (bench/moto_counting_server.py), so both tools are
measured the same way; both run as CLI subprocesses. The GCS column runs atomicsite in-process against
fake-gcs-server and counts at the client's HTTP transport (GCSStore.http_stats). Not part of the test
run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.synthetic import change_files, generate_site  # noqa: E402

CHANGED = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class CountingMoto:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "moto_counting_server.py"), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()
        wait_http(self.url + "/__bench")

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/__bench/reset", method="POST")).read()

    def stats(self) -> dict:
        return json.loads(urllib.request.urlopen(self.url + "/__bench").read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def timed_subprocess(cmd: list[str], env: dict) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def row(tool: str, scenario: str, wall: float, cpu: float, requests: int, sent: int, note: str = "") -> dict:
    print(f"  done: {tool} {scenario}: {wall:.1f}s wall, {requests} requests", file=sys.stderr, flush=True)
    return {"tool": tool, "scenario": scenario, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "requests": requests, "bytes_sent": sent, "note": note}


def bench_s3(site: Path, moto: CountingMoto, files: int, rows: list, *, changed_bytes: int | None = None,
             scenarios=("a", "b")) -> None:
    import boto3

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "ATOMICSITE_ENDPOINT_URL": moto.url}
    env = {k: v for k, v in env.items() if not k.startswith("ATOMICSITE_") or k == "ATOMICSITE_ENDPOINT_URL"}
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    for bucket in ("bench-atomicsite", "bench-awscli"):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    names = {"a": "(a) fresh", "b": "(b) re-publish", "c": f"(c) {CHANGED} changed"}
    for scenario in scenarios:
        moto.reset()
        wall, cpu, out = timed_subprocess(
            [sys.executable, "-m", "atomicsite", "publish", str(site), "--target", "s3://bench-atomicsite/site",
             "--json"], env)
        st = moto.stats()
        result = json.loads(out)
        note = f"upload {result['upload']['files']}, copy {result['copy']['files']}, skip {result['skip']['files']}"
        if scenario == "c" and changed_bytes is not None:
            v = result["version"]
            manifest = s3.head_object(Bucket="bench-atomicsite", Key=f"site/_atomicsite/manifests/{v}.json")
            pointer = s3.head_object(Bucket="bench-atomicsite", Key="site/_atomicsite/channels/live.json")
            bound = changed_bytes + manifest["ContentLength"] + pointer["ContentLength"]
            note += f"; bound {bound} B ({'met' if st['bytes_in'] <= bound else 'MISSED'})"
        rows.append(row("atomicsite", names[scenario], wall, cpu, st["requests"], st["bytes_in"], note))

        moto.reset()
        wall, cpu, _ = timed_subprocess(
            ["aws", "s3", "sync", str(site), "s3://bench-awscli/site", "--endpoint-url", moto.url, "--only-show-errors"],
            env)
        st = moto.stats()
        rows.append(row("aws s3 sync", names[scenario], wall, cpu, st["requests"], st["bytes_in"]))


def bench_gcs(site: Path, rows: list, scenarios=("a", "b"), state: dict | None = None) -> None:
    import atomicsite
    from atomicsite.config import Settings

    names = {"a": "(a) fresh", "b": "(b) re-publish", "c": f"(c) {CHANGED} changed"}
    store = state["store"]
    for scenario in scenarios:
        store.reset_http_stats()
        cpu0, start = time.process_time(), time.perf_counter()
        result = atomicsite.publish(site, store, settings=Settings(), source={})
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        st = store.http_stats()
        s = result.plan.summary()
        rows.append(row("atomicsite → GCS", names[scenario], wall, cpu, st["requests"], st["bytes_sent"],
                        f"upload {s['upload']['files']}, copy {s['copy']['files']}, skip {s['skip']['files']}"))


def start_gcs() -> dict:
    """fake-gcs-server started exactly as the test rig starts it; a fresh bucket; a GCSStore on it."""
    from atomicsite.stores import StoreOptions
    from atomicsite.stores.gcs import GCSStore
    from tests.rigs.gcs import FakeGCS, _binary, _start, _stop

    log = tempfile.TemporaryFile()
    proc, endpoint = _start(_binary(), log)
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    bucket = FakeGCS(endpoint).new_bucket()
    store = GCSStore.from_url(f"gs://{bucket}/site", StoreOptions(project="bench"))

    def stop() -> None:
        store.close()
        _stop(proc)
        log.close()

    return {"store": store, "stop": stop}


def print_table(rows: list, files: int, total_bytes: int) -> None:
    print(f"\nsite: {files} files, {total_bytes / 1e6:.1f} MB; {CHANGED} files changed for (c)\n")
    header = f"{'tool':<18} {'scenario':<16} {'wall s':>8} {'cpu s':>7} {'requests':>9} {'bytes sent':>12}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['tool']:<18} {r['scenario']:<16} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} {r['requests']:>9} "
              f"{r['bytes_sent']:>12}  {r['note']}")


def check_targets(rows: list, files: int) -> list[str]:
    by = {(r["tool"], r["scenario"][:3]): r for r in rows}
    lines = []
    a, base_a = by.get(("atomicsite", "(a)")), by.get(("aws s3 sync", "(a)"))
    if a and base_a:
        lines.append(f"(a) wall {a['wall_s']}s vs aws {base_a['wall_s']}s: "
                     f"{'met' if a['wall_s'] <= base_a['wall_s'] else 'MISSED'}; requests {a['requests']} "
                     f"<= {files + 10}: {'met' if a['requests'] <= files + 10 else 'MISSED'}")
    b = by.get(("atomicsite", "(b)"))
    if b:
        lines.append(f"(b) requests {b['requests']} <= 5 and no object bytes ({b['bytes_sent']} B sent): "
                     f"{'met' if b['requests'] <= 5 and b['bytes_sent'] == 0 else 'MISSED'}")
    c = by.get(("atomicsite", "(c)"))
    if c:
        lines.append(f"(c) {c['note'].split('; ')[-1]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="atomicsite publish benchmark")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--skip-gcs", action="store_true")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    if not args.skip_s3 and not shutil.which("aws"):
        sys.exit("the baseline needs the aws CLI: pip install -e '.[bench]'")

    work = Path(tempfile.mkdtemp(prefix="atomicsite-bench-"))
    rows: list = []
    moto = gcs = None
    try:
        site = generate_site(work / "site", files=args.files)
        total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        if not args.skip_s3:
            moto = CountingMoto()
            bench_s3(site, moto, args.files, rows)
        if not args.skip_gcs:
            gcs = start_gcs()
            bench_gcs(site, rows, state=gcs)
        changed = change_files(site, CHANGED)
        changed_bytes = sum(p.stat().st_size for p in changed)
        if moto:
            bench_s3(site, moto, args.files, rows, changed_bytes=changed_bytes, scenarios=("c",))
        if gcs:
            bench_gcs(site, rows, scenarios=("c",), state=gcs)
        print_table(rows, args.files, total)
        print("\ntargets:")
        for line in check_targets(rows, args.files):
            print("  " + line)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    finally:
        if moto:
            moto.stop()
        if gcs:
            gcs["stop"]()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
