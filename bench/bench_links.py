"""Link gate benchmark: what the broken-reference gate costs next to a local publish, in the same run.

    python bench/bench_links.py                  # 10,000-file synthetic site
    python bench/bench_links.py --files 2000     # quicker

Prints, for the synthetic site (pages and stylesheets that really reference each other):

- a local publish (scan → plan → transfer → verify → commit → switch to a fresh local target) with
  the gate off, and the same with the gate on (the default), interleaved, each the best of
  ``--repeat`` runs (the difference of two noisy wall times: read it with the next line);
- the gate alone (``check_links`` on the scanned files), so its share of a publish is explicit;
- the HTML extraction step over every page of the site with selectolax (lexbor, the one the gate
  uses), the standard library's ``html.parser`` and, when installed, lxml: the reason for the choice.

Goal (issue 12): the gate adds at most 20% to a local publish. Not part of the test run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import atomicsite  # noqa: E402
from atomicsite.config import Settings  # noqa: E402
from atomicsite.links import LinkSettings, check_links, html_references  # noqa: E402
from atomicsite.scan import scan  # noqa: E402
from fixtures.synthetic import generate_site  # noqa: E402


class _StdlibRefs(HTMLParser):
    """The same extraction as atomicsite.links.html_references, on html.parser, for comparison only."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []
        self.base = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "base" and self.base is None:
            self.base = a.get("href")
        for name in ("href", "src", "srcset", "imagesrcset", "poster", "style"):
            if a.get(name):
                self.refs.append((tag, a[name]))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.refs.append(("style", data))


def lxml_references(html: bytes):
    """The same extraction on lxml (libxml2), when it is installed: comparison only."""
    import lxml.html

    doc = lxml.html.fromstring(html)
    return [(e.tag, dict(e.attrib), e.text) for e in
            doc.xpath("//*[@href or @src or @srcset or @imagesrcset or @poster or @style] | //style")]


def stdlib_references(html: bytes):
    p = _StdlibRefs()
    p.feed(html.decode("utf-8", "replace"))
    p.close()
    return p.base, p.refs


def best(fn, repeat: int) -> float:
    return min(timed(fn)[0] for _ in range(repeat))


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU is this process's, every thread included, so it is far
    less disturbed than wall time by other work on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description="link gate benchmark")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="atomicsite-bench-links-"))
    try:
        site = generate_site(work / "site", files=args.files)
        base = Settings(concurrency=8)
        off = replace(base, links=LinkSettings(resources="off", pages="off"))
        runs = {"n": 0}

        def publish(settings):
            runs["n"] += 1  # a fresh target each time: a full publish, not a re-point
            atomicsite.publish(site, str(work / f"target-{runs['n']}"), settings=settings, source={})

        publish(base)  # warm the page cache and imports once, measured by neither
        files = scan(site)
        report = check_links(files)
        off_runs, on_runs, gate_runs = [], [], []
        for _ in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits all three
            off_runs.append(timed(lambda: publish(off)))
            on_runs.append(timed(lambda: publish(base)))
            gate_runs.append(timed(lambda: check_links(files)))
        (t_off, c_off), (t_on, c_on), (t_gate, c_gate) = (
            (min(w for w, _ in runs_), min(c for _, c in runs_)) for runs_ in (off_runs, on_runs, gate_runs))

        pages = [f.source.read_bytes() for f in files if f.entry.content_type.startswith("text/html")]
        extractors = {"selectolax": html_references, "html.parser": stdlib_references}
        if importlib.util.find_spec("lxml"):  # not a dependency: measured when present
            extractors["lxml"] = lxml_references
        parse_times = {name: [] for name in extractors}
        for _ in range(args.repeat):  # interleaved as well
            for name, extract in extractors.items():
                parse_times[name].append(best(lambda: [extract(p) for p in pages], 1))
        parse_best = {name: min(ts) for name, ts in parse_times.items()}

        print(f"site: {len(files)} files, {report.documents} pages+stylesheets, {report.references} same-site "
              f"references, {len(report.findings)} findings")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {args.repeat}")
        print(f"{'':32}{'wall s':>9}{'CPU s':>9}")
        print(f"{'local publish, gate off':32}{t_off:9.3f}{c_off:9.3f}   (the baseline)")
        print(f"{'local publish, gate on':32}{t_on:9.3f}{c_on:9.3f}   ({(t_on - t_off) / t_off:+.1%} wall, "
              f"{(c_on - c_off) / c_off:+.1%} CPU)")
        print(f"{'gate alone (check_links)':32}{t_gate:9.3f}{c_gate:9.3f}   ({t_gate / t_off:.1%} of the baseline's "
              f"wall, {c_gate / c_off:.1%} of its CPU)")
        base_t = parse_best["selectolax"]
        print(f"extract references from {len(pages)} pages: "
              + ", ".join(f"{name} {t:.3f} s" + ("" if name == "selectolax" else f" ({t / base_t:.1f}x)")
                          for name, t in parse_best.items()))
        share = t_gate / t_off
        print(f"goal: gate <= 20% of a local publish (wall): {'met' if share <= 0.20 else 'MISSED'} ({share:.1%})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
