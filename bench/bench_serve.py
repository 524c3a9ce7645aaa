"""Router benchmark: ``atomicsite serve`` (uvicorn) vs ``python -m http.server`` on the same files.

    python bench/bench_serve.py                       # 5,000 requests, 8 concurrent clients
    python bench/bench_serve.py --requests 20000 --concurrency 16 --path /assets/main.3f9a1c2b.css

Publishes fixtures/blog to a local store in a temp dir, then starts, each in its own subprocess on a
free 127.0.0.1 port: the router over that store, and ``python -m http.server`` serving the live
version's directory (``current``) from disk. Each gets a warm-up, then a bounded load: N requests
spread over K threads, each with one keep-alive httpx client, all for the same small file. Prints
requests per second and p50/p99 latency for both. Not part of the test run.

The load generator shares the machine with the server: the figures compare the two servers under
the same client, they are not absolute capacity numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def load(url: str, requests: int, concurrency: int, expect: bytes) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_worker = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    start_line = threading.Barrier(concurrency + 1)

    def worker(n: int) -> None:
        nonlocal errors
        mine, bad = [], 0
        with httpx.Client(timeout=10) as client:
            client.get(url)  # connect before the clock starts
            start_line.wait()
            for _ in range(n):
                t0 = time.perf_counter()
                r = client.get(url)
                mine.append(time.perf_counter() - t0)
                bad += r.status_code != 200 or r.content != expect
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_worker]
    for t in threads:
        t.start()
    start_line.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
        "n": len(latencies),
    }


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--path", default="/robots.txt", help="a small file of fixtures/blog")
    args = parser.parse_args()

    import atomicsite
    from atomicsite.config import Settings

    with tempfile.TemporaryDirectory(prefix="atomicsite-bench-serve-") as tmp:
        tmp = Path(tmp)
        build = tmp / "blog"
        shutil.copytree(ROOT / "fixtures" / "blog", build)
        target = tmp / "site"
        version = atomicsite.publish(build, str(target), settings=Settings(), source={}).version
        expect = (target / "current" / args.path.lstrip("/")).read_bytes()
        print(f"published {version}; {args.requests} requests for {args.path} ({len(expect)} bytes), "
              f"{args.concurrency} concurrent keep-alive clients, on {os.cpu_count()} cores\n")

        router_port, disk_port = free_port(), free_port()
        code = ("import logging\nfrom atomicsite.serve import create_app, run\n"
                f"run(create_app({str(target)!r}), port={router_port}, log_level='warning')\n")
        servers = {
            "atomicsite serve": (start([sys.executable, "-c", code], tmp), router_port),
            "python -m http.server": (start([sys.executable, "-m", "http.server", "-b", "127.0.0.1",
                                             "-d", str(target / "current"), str(disk_port)], tmp), disk_port),
        }
        results = {}
        try:
            for name, (proc, port) in servers.items():
                url = f"http://127.0.0.1:{port}{args.path}"
                wait_http(url, proc)
                load(url, min(500, args.requests), args.concurrency, expect)  # warm-up
                results[name] = load(url, args.requests, args.concurrency, expect)
        finally:
            for proc, _ in servers.values():
                stop(proc)

        print(f"{'server':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for name, r in results.items():
            print(f"{name:<24}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>8}")
        if any(r["errors"] for r in results.values()):
            sys.exit("some responses were wrong")


if __name__ == "__main__":
    main()
