"""Metadata benchmark: bytes `versions` and `status` download, and manifest bytes per file.

    python bench/bench_metadata.py                          # 50 versions of a 10,000-file site, local + S3 (moto)
    python bench/bench_metadata.py --files 2000 --versions 10 --skip-s3     # quicker

Builds, on each store, two targets holding the same 50 versions (each changes ``--changed`` files of the
synthetic site from the one before; real sha256/md5 of the generated files):

- ``before``: what atomicsite 0.1 and the code before issue 11 stored: format-1 manifests, no summaries;
- ``now``: what this code stores: format-3 manifests and a summary per version (written by the real
  commit step, ``atomicsite.publish._commit``).

Only metadata is written: ``versions`` and ``status`` never read a version's files, so uploading 50
times 80 MB of objects would change nothing measured here. One channel pointer names the newest.

Then it runs, in the same process, the real ``atomicsite.versions``/``status`` through a counting
wrapper around the store (bytes of every GET and ranged read, and the number of requests of each kind),
and on S3 also the bytes the moto server sent back (listing XML included), and prints:

- baseline: ``versions`` on ``before`` as atomicsite read it (every manifest, whole);
- this code on ``before`` (first run: falls back to the manifests and backfills summaries; second run);
- this code on ``now``; and ``status``.

Target (issue 11): ``versions`` on 50 versions of a 10,000-file site downloads <= 1 MB.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from atomicsite import status, versions  # noqa: E402
from atomicsite.config import Settings  # noqa: E402
from atomicsite.layout import manifest_key  # noqa: E402
from atomicsite.manifest import FileEntry, Manifest, canonical_json  # noqa: E402
from atomicsite.publish import _commit  # noqa: E402
from atomicsite.scan import scan  # noqa: E402
from atomicsite.switch import promote  # noqa: E402
from atomicsite.targets import list_manifest_infos, read_manifest  # noqa: E402
from fixtures.synthetic import generate_site  # noqa: E402

TARGET_BYTES = 1_000_000


class CountingStore:
    """Wraps a store: counts requests by verb and the bytes of every object body read."""

    def __init__(self, inner):
        self.inner = inner
        self.url = inner.url
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.bytes_read = 0
        self.calls: dict[str, int] = {}

    def _count(self, op: str, n: int = 0) -> None:
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            self.bytes_read += n

    def get(self, key):
        body = self.inner.get(key)
        self._count("get", len(body.data))
        return body

    def open(self, key, start=0, end=None):
        self._count("open")
        for chunk in self.inner.open(key, start, end):
            with self.lock:
                self.bytes_read += len(chunk)
            yield chunk

    def list(self, prefix):
        self._count("list")
        return self.inner.list(prefix)

    def __getattr__(self, name):
        fn = getattr(self.inner, name)
        if name in ("put", "head", "copy", "delete_many"):
            def counted(*args, **kwargs):
                self._count(name)
                return fn(*args, **kwargs)
            return counted
        return fn


def history_of(entries: list[FileEntry], count: int, changed: int, seed: int = 7) -> list[Manifest]:
    """``count`` manifests, each changing ``changed`` files of the one before (new content: new digests)."""
    rng = random.Random(seed)
    current = list(entries)
    out = []
    for i in range(count):
        if i:
            for j in rng.sample(range(len(current)), changed):
                e = current[j]
                current[j] = FileEntry(e.path, f"{rng.getrandbits(256):064x}", e.size + 40, f"{rng.getrandbits(128):032x}",
                                       e.content_type, e.cache_control)
        m = Manifest.build(current, source={"commit": f"{rng.getrandbits(160):040x}", "ref": "main"},
                           message=f"deploy {i}")
        out.append(m)
        time.sleep(0.002)  # distinct created times, as real publishes have
    return out


def fill(store, manifests: list[Manifest], *, old: bool, settings: Settings) -> None:
    for m in manifests:
        if old:  # exactly what 0.1 stored: canonical format-1 JSON, no summary
            store.put(manifest_key(m.version), canonical_json(m.to_dict()), content_type="application/json",
                      cache_control="no-store")
        else:
            _commit(store, m, None)
    promote(manifests[-1].version, store, channel="staging", settings=settings)


def old_versions(store) -> int:
    """What `versions` did before summaries: read every manifest whole."""
    rows = 0
    for v, _ in list_manifest_infos(store):
        read_manifest(store, v)
        rows += 1
    return rows


def measure(label: str, store: CountingStore, fn, moto=None) -> dict:
    store.reset()
    if moto:
        moto.reset()
    start = time.perf_counter()
    n = fn()
    wall = time.perf_counter() - start
    row = {"what": label, "rows": n, "bytes": store.bytes_read, "gets": store.calls.get("get", 0),
           "lists": store.calls.get("list", 0), "puts": store.calls.get("put", 0), "wall_s": round(wall, 2)}
    if moto:
        row["wire_bytes_out"] = moto.stats()["bytes_out"]
    return row


def run_store(name: str, make_store, manifests: list[Manifest], settings: Settings, moto=None) -> list[dict]:
    rows = []
    before, now = CountingStore(make_store("before")), CountingStore(make_store("now"))
    print(f"  {name}: writing {len(manifests)} versions twice …", file=sys.stderr, flush=True)
    fill(before, manifests, old=True, settings=settings)
    fill(now, manifests, old=False, settings=settings)
    n = lambda rows_: len(rows_)  # noqa: E731
    rows.append(measure(f"{name} BASELINE versions, format 1, no summaries (atomicsite before)", before,
                        lambda: old_versions(before), moto))
    rows.append(measure(f"{name} versions, format-1 target, 1st run (reads manifests, backfills)", before,
                        lambda: n(versions(before, settings=settings)), moto))
    rows.append(measure(f"{name} versions, format-1 target, 2nd run (summaries now there)", before,
                        lambda: n(versions(before, settings=settings)), moto))
    rows.append(measure(f"{name} BASELINE versions on this code's target, reading manifests (format 3)", now,
                        lambda: old_versions(now), moto))
    rows.append(measure(f"{name} versions, this code (format 3 + summaries)", now,
                        lambda: n(versions(now, settings=settings)), moto))
    rows.append(measure(f"{name} status, this code", now,
                        lambda: int(bool(status(now, channel="staging", settings=settings))), moto))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=50)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--skip-s3", action="store_true")
    args = ap.parse_args()
    settings = Settings(concurrency=8)
    with tempfile.TemporaryDirectory(prefix="bench-metadata-") as tmp:
        tmp = Path(tmp)
        print(f"generating and scanning a {args.files}-file site …", file=sys.stderr, flush=True)
        site = generate_site(tmp / "site", files=args.files)
        entries = [f.entry for f in scan(site)]
        manifests = history_of(entries, args.versions, args.changed)

        m = manifests[-1]
        plain, packed = len(canonical_json(m.to_dict())), len(m.to_json())
        print(f"\nManifest of one version ({len(m.files)} files): format 1 {plain:,} B ({plain / len(m.files):.1f} B/file), "
              f"format 3 {packed:,} B ({packed / len(m.files):.1f} B/file)")
        fixtures = ROOT.parent / "fixtures"
        for name in ("blog", "spa", "odd-names"):
            fm = Manifest.build(f.entry for f in scan(fixtures / name))
            a, b = len(canonical_json(fm.to_dict())), len(fm.to_json())
            print(f"  fixtures/{name}: {len(fm.files)} files, format 1 {a:,} B ({a / len(fm.files):.0f} B/file), "
                  f"format 3 {b:,} B ({b / len(fm.files):.0f} B/file)")

        from atomicsite.stores.local import LocalStore

        rows = run_store("local", lambda t: LocalStore(tmp / t), manifests, settings)
        if not args.skip_s3:
            rows += bench_s3(manifests, settings)

    print(f"\n{args.versions} versions of a {args.files}-file site, {args.changed} files changed per version\n")
    print(f"{'what':<84} {'bytes read':>12} {'wire out':>10} {'GETs':>5} {'lists':>5} {'PUTs':>5} {'wall':>6}")
    for r in rows:
        wire = f"{r['wire_bytes_out']:,}" if "wire_bytes_out" in r else "-"
        print(f"{r['what']:<84} {r['bytes']:>12,} {wire:>10} {r['gets']:>5} {r['lists']:>5} {r['puts']:>5} "
              f"{r['wall_s']:>5.2f}s")
    for r in rows:
        if r["what"].endswith("versions, this code (format 3 + summaries)"):
            got = max(r["bytes"], r.get("wire_bytes_out", 0))
            verdict = "met" if got <= TARGET_BYTES else "MISSED"
            print(f"target: versions <= {TARGET_BYTES:,} B downloaded on {r['what'].split()[0]}: {got:,} B ({verdict})")


def bench_s3(manifests: list[Manifest], settings: Settings) -> list[dict]:
    import os

    from bench_publish import CountingMoto

    from atomicsite.stores import StoreOptions, open_store

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    moto = CountingMoto()
    try:
        import boto3

        s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
        s3.create_bucket(Bucket="bench-metadata")
        opts = StoreOptions(endpoint_url=moto.url)
        stores = []

        def make(t: str):
            stores.append(open_store(f"s3://bench-metadata/{t}", opts))
            return stores[-1]

        try:
            return run_store("s3", make, manifests, settings, moto)
        finally:
            for s in stores:
                s.close()
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
