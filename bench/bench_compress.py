"""Compressed variants: bytes saved and what compressing costs a publish, measured in one run.

    python bench/bench_compress.py                      # 2,000-file synthetic site + fixtures/generators
    python bench/bench_compress.py --files 10000 --rounds 3

Two tables:

  bytes    per site: the bytes of every file as stored (identity) and the bytes a client taking only
           br / only gzip would be sent for the whole site (each file's variant where it has one,
           else the file), with the default ``compress_min_size`` (1 KiB) and types, and how many
           files got variants. Sites: the synthetic generator (its filler is random hex, so it
           compresses worse than real text) and each site in fixtures/generators/ (real generator
           output, but small pages: many are under 1 KiB, so a second row uses min size 1 byte).
  publish  (a) a fresh ``publish`` of the synthetic site to a new local target and (c) a publish
           after changing 10 files, with compress off (the baseline) and with ``["br", "gzip"]``,
           alternating, ``--rounds`` times each: wall time and process CPU (user+system of every
           thread, from ``os.times``), the median of the rounds; plus the compress step alone
           (``add_variants``). (c) shows that unchanged files are not compressed again.

Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.synthetic import change_files, generate_site  # noqa: E402

import atomicsite  # noqa: E402
from atomicsite.compress import CompressSettings, VariantFiles, add_variants, savings  # noqa: E402
from atomicsite.config import Settings  # noqa: E402
from atomicsite.report import human_bytes  # noqa: E402
from atomicsite.routing.build import scan_site  # noqa: E402

ON = CompressSettings(("br", "gzip"))


def bytes_row(name: str, site: Path, compress: CompressSettings) -> dict:
    settings = Settings(compress=compress)
    files, _ = scan_site(site, settings)
    with VariantFiles() as out:
        t0 = time.perf_counter()
        files = add_variants(files, compress, out)
        seconds = time.perf_counter() - t0
    totals = savings([f.entry for f in files])
    with_variants = sum(1 for f in files if f.entry.variants)
    return {"site": name, "files": len(files), "compressed": with_variants, "min_size": compress.min_size,
            **totals, "seconds": seconds}


def print_bytes(rows: list[dict]) -> None:
    print(f"\n{'site':<28} {'min':>5} {'files':>6} {'w/ var':>6} {'identity':>10} {'br':>10} {'saved':>6} "
          f"{'gzip':>10} {'saved':>6}")
    for r in rows:
        br, gz, ident = r["br"], r["gzip"], r["identity"] or 1
        print(f"{r['site']:<28} {r['min_size']:>5} {r['files']:>6} {r['compressed']:>6} {human_bytes(r['identity']):>10} "
              f"{human_bytes(br):>10} {100 * (1 - br / ident):>5.1f}% {human_bytes(gz):>10} {100 * (1 - gz / ident):>5.1f}%")


def timed_publish(site: Path, target: Path, compress: CompressSettings) -> tuple[float, float]:
    settings = Settings(compress=compress, layout="tree")
    c0, t0 = os.times(), time.perf_counter()
    atomicsite.publish(site, str(target), settings=settings, source={})
    c1, t1 = os.times(), time.perf_counter()
    return t1 - t0, (c1.user - c0.user) + (c1.system - c0.system)


def main() -> None:
    parser = argparse.ArgumentParser(description="atomicsite compressed-variants benchmark")
    parser.add_argument("--files", type=int, default=2_000, help="synthetic site size")
    parser.add_argument("--rounds", type=int, default=3, help="publishes per setting (median reported)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        work = Path(tmp)
        synthetic = generate_site(work / "synthetic", files=args.files)
        rows = [bytes_row(f"synthetic ({args.files} files)", synthetic, ON),
                bytes_row("synthetic, br quality 5", synthetic, replace(ON, brotli_quality=5))]
        for site in sorted((ROOT / "fixtures" / "generators").iterdir()):
            if site.is_dir():
                rows.append(bytes_row(f"generators/{site.name}", site, ON))
                rows.append(bytes_row(f"generators/{site.name}", site, replace(ON, min_size=1)))
        print("bytes: identity = every file as stored; br / gzip = what a client taking only that encoding is sent")
        print_bytes(rows)

        print(f"\npublish: synthetic site ({args.files} files, {human_bytes(rows[0]['identity'])}), local store, tree "
              f"layout, fresh target each time; median of {args.rounds} rounds, off and on alternating")
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for i in range(args.rounds):
            for label, setting in (("off", CompressSettings()), ("br+gzip", ON),
                                   ("br5+gzip", replace(ON, brotli_quality=5))):
                site = work / f"site-{label}-{i}"
                shutil.copytree(synthetic, site)
                target = work / f"target-{label}-{i}"
                results.setdefault(("(a) fresh", label), []).append(timed_publish(site, target, setting))
                change_files(site, 10, seed=i + 1)
                results.setdefault(("(c) 10 changed", label), []).append(timed_publish(site, target, setting))
                shutil.rmtree(site)
                shutil.rmtree(target)
        print(f"{'publish':<16} {'compress':<10} {'wall s':>8} {'cpu s':>8} {'wall x':>7} {'cpu x':>7}")
        for (scenario, label), runs in results.items():
            base = results[(scenario, "off")]
            base_wall, base_cpu = statistics.median(w for w, _ in base), statistics.median(c for _, c in base)
            wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
            print(f"{scenario:<16} {label:<10} {wall:>8.2f} {cpu:>8.2f} {wall / base_wall:>7.2f} {cpu / base_cpu:>7.2f}")
        print(f"compress step alone (add_variants, {os.cpu_count()} CPUs): {rows[0]['seconds']:.2f} s for "
              f"{rows[0]['compressed']} files ({human_bytes(rows[0]['identity'])} scanned)")
    print(f"\n(bench ran {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
