"""Routing benchmark: the cost of URL rules per request in the router's pure routing step.

    python bench/bench_routing.py                # 1,000 files, rules 0 / 100 / 1,000
    python bench/bench_routing.py --files 10000

Times atomicsite.routing.route() (what the router runs per request, before any store read) over a mix
of requests: existing pages, directory redirects, rule hits and misses. The baseline, measured in the
same run, is the same mix with no rules at all. Prints microseconds per request. Not part of the test
run.
"""

from __future__ import annotations

import argparse
import random
import time

from atomicsite.routing import Redirect, SiteRules, route


def site(files: int) -> set[str]:
    out = {"index.html", "404.html"}
    for i in range(files):
        out.add(f"section-{i % 20}/page-{i}/index.html" if i % 3 else f"assets/app-{i}.3f9a1c2b.js")
    return out


def rules(n: int) -> SiteRules:
    redirects = []
    for i in range(n):
        if i % 10 == 0:
            redirects.append(Redirect(f"/old-section-{i}/*", f"/section-{i % 20}/:splat", 301))
        elif i % 10 == 1:
            redirects.append(Redirect(f"/blog/{i}/:slug", f"/section-{i % 20}/:slug/", 302))
        else:
            redirects.append(Redirect(f"/legacy/page-{i}.html", f"/section-{i % 20}/page-{i}/", 301))
    redirects.append(Redirect("/app/*", "/index.html", 200))
    return SiteRules(redirects=tuple(redirects))


def requests(files: set[str], n_rules: int, count: int) -> list[str]:
    pages = sorted(files)
    rng = random.Random(7)
    out = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            out.append(rng.choice(pages).removesuffix("index.html"))  # a page or asset
        elif kind == 1:
            out.append(rng.choice(pages).removesuffix("/index.html"))  # a directory without its slash
        elif kind == 2:
            out.append(f"legacy/page-{rng.randrange(max(n_rules, 1))}.html")  # a literal rule (or a miss)
        elif kind == 3:
            out.append(f"app/settings/{i}")  # the SPA rewrite
        else:
            out.append(f"missing/{i}")  # nothing
    return out


def measure(files: set[str], site_rules: SiteRules, paths: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for rel in paths:
            route(files, site_rules, rel, "")
        best = min(best, time.perf_counter() - start)
    return best / len(paths) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    files = site(args.files)
    print(f"{len(files)} files, {args.requests} requests per run, best of 3")
    print(f"{'rules':>6} {'us/request':>11} {'vs no rules':>12}")
    base_paths = requests(files, 0, args.requests)
    baseline = measure(files, SiteRules(), base_paths)
    print(f"{0:>6} {baseline:>11.2f} {'(baseline)':>12}")
    for n in (100, 1000):
        us = measure(files, rules(n), requests(files, n, args.requests))
        print(f"{n + 1:>6} {us:>11.2f} {us / baseline:>11.1f}x")


if __name__ == "__main__":
    main()
