"""Router benchmark: ``atomicsite serve`` against nginx serving the same files, in the same run.

    python bench/bench_serve.py                          # 1 worker each, 3 rounds of 5 s per column
    python bench/bench_serve.py --workers 2 --rounds 5 --seconds 8
    python bench/bench_serve.py --compare                # also granian-ASGI and uvicorn(uvloop+httptools)

Publishes fixtures/blog plus a 50 MB file to a local store in a temp dir, then for each server, on a
free 127.0.0.1 port with the same number of worker processes:

- ``nginx``: ``current/`` (the live version's tree) from disk, sendfile on, access log off;
- ``atomicsite serve``: the router as ``atomicsite serve`` runs it (granian, RSGI), access log off;
- with ``--compare``: the router under granian's ASGI interface and under uvicorn with uvloop and
  httptools: the measurement behind the choice of server stack (docs/serve.md).

Load comes from ``wrk`` (``-t1``; 16 connections for the small file, 4 for the 50 MB one) with its
latency percentiles. Besides throughput, it reports the CPU time each server (all its processes)
spent per small request and per GB of the large file, read from /proc: on a shared machine that
figure moves far less with other people's load than requests per second do. The servers are measured in interleaved rounds (nginx, router, nginx, router…)
and the median round is reported, because this machine is shared and its load drifts. When ``nginx``
or ``wrk`` is not installed (Debian: ``apt-get install nginx wrk``), the bench says so: without nginx
that column is left out; without wrk a Python load generator (httpx, keep-alive clients) is used, which
saturates long before either server, so its figures compare little.

Goals (issue 15): small cached file ≥ 1/3 of nginx's requests/s; 50 MB file ≥ 1/2 of nginx's MB/s.
The load generator shares the machine with the server: compare columns, not absolute capacity.
"""

from __future__ import annotations

import argparse
import os
import re
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

SMALL = "/robots.txt"
LARGE = "/big.bin"
LARGE_SIZE = 50 * 1000 * 1000


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


# -- load generators --------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def wrk(url: str, seconds: float, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()
    p99v, p99u = re.search(r"99%\s+([\d.]+)(\w+)", out).groups()
    p50v, p50u = re.search(r"50%\s+([\d.]+)(\w+)", out).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "mbps": float(value) * _BYTES[unit] / 1e6, "p50": float(p50v) * _UNITS[p50u],
            "p99": float(p99v) * _UNITS[p99u], "errors": int(errors.group(1)) if errors else 0,
            "note": socket_errors.group(1) if socket_errors else ""}


def pyload(url: str, seconds: float, connections: int) -> dict:
    """A fallback when wrk is absent: keep-alive httpx clients in threads for ``seconds``."""
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        mine, got, bad = [], 0, 0
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = client.get(url)
                mine.append(time.perf_counter() - t0)
                got += len(r.content)
                bad += r.status_code != 200
        with lock:
            latencies.extend(mine)
            sizes.append(got)
            errors += bad

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "mbps": sum(sizes) / elapsed / 1e6,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, "errors": errors,
            "note": ""}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc (Linux; 0 elsewhere).

    Throughput on a shared machine moves with everyone else's load; the CPU a server spends per
    request hardly does, so it is the steadier figure for comparing servers."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def measured(load, proc: subprocess.Popen, url: str, seconds: float, connections: int) -> dict:
    before = cpu_seconds(proc.pid)
    result = load(url, seconds, connections)
    spent = cpu_seconds(proc.pid) - before
    requests = result["rps"] * seconds
    result["cpu_us"] = spent / requests * 1e6 if requests else float("nan")
    result["cpu_s_per_gb"] = spent / (result["mbps"] * seconds / 1000) if result["mbps"] else float("nan")
    return result


# -- servers ----------------------------------------------------------------------------------------

def start(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nginx_server(tmp: Path, root: Path, port: int, workers: int) -> subprocess.Popen:
    conf_dir = tmp / "nginx"
    conf_dir.mkdir(exist_ok=True)
    temp = " ".join(f"{kind}_temp_path {conf_dir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # run as root, nginx's workers drop to 'nobody', who cannot read the private temp dir
    user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    (conf_dir / "nginx.conf").write_text(f"""
{user}
worker_processes {workers};
daemon off;
pid {conf_dir / 'nginx.pid'};
error_log {conf_dir / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  {temp}
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    return start(["nginx", "-c", str(conf_dir / "nginx.conf"), "-p", str(conf_dir)], tmp)


def router_server(tmp: Path, target: Path, port: int, workers: int, interface: str) -> subprocess.Popen:
    code = ("from atomicsite.serve import AppRecipe, create_app, run\n"
            f"run(AppRecipe(create_app, ({str(target)!r},)), port={port}, workers={workers}, "
            f"log_level='warning', interface={interface!r})\n")
    return start([sys.executable, "-c", code], tmp)


def uvicorn_server(tmp: Path, target: Path, port: int, workers: int) -> subprocess.Popen:
    return start([sys.executable, "-m", "uvicorn", "--factory", "atomicsite.serve:app_from_env", "--host", "127.0.0.1",
                  "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
                  "--log-level", "warning", "--no-access-log"], tmp, {"ATOMICSITE_TARGET": str(target)})


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="worker processes for every server (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--seconds", type=float, default=5, help="length of one measurement")
    parser.add_argument("--compare", action="store_true", help="also granian-ASGI and uvicorn (uvloop, httptools)")
    args = parser.parse_args()

    import atomicsite
    from atomicsite.config import Settings

    have_nginx, have_wrk = shutil.which("nginx") is not None, shutil.which("wrk") is not None
    load = wrk if have_wrk else pyload
    if not have_nginx:
        print("nginx is not installed (apt-get install nginx): its column is left out")
    if not have_wrk:
        print("wrk is not installed (apt-get install wrk): using a Python load generator, which saturates first")

    with tempfile.TemporaryDirectory(prefix="atomicsite-bench-serve-") as tmp:
        tmp = Path(tmp)
        build = tmp / "blog"
        shutil.copytree(ROOT / "fixtures" / "blog", build)
        with open(build / LARGE.lstrip("/"), "wb") as fh:
            fh.write(os.urandom(LARGE_SIZE))
        target = tmp / "site"
        version = atomicsite.publish(build, str(target), settings=Settings(), source={}).version
        small = (target / "current" / SMALL.lstrip("/")).stat().st_size
        print(f"published {version}; {SMALL} ({small} bytes, 16 connections) and {LARGE} ({LARGE_SIZE // 10**6} MB,"
              f" 4 connections); {args.workers} worker(s) per server; {args.rounds} interleaved rounds of "
              f"{args.seconds:g}s, median shown; {os.cpu_count()} cores; load: {'wrk -t1' if have_wrk else 'httpx'}; "
              f"machine load average before: {_loadavg()}\n")

        servers = {}
        if have_nginx:
            servers["nginx"] = lambda port: nginx_server(tmp, target / "current", port, args.workers)
        servers["atomicsite serve"] = lambda port: router_server(tmp, target, port, args.workers, "rsgi")
        if args.compare:
            servers["router, granian ASGI"] = lambda port: router_server(tmp, target, port, args.workers, "asgi")
            servers["router, uvicorn+uvloop"] = lambda port: uvicorn_server(tmp, target, port, args.workers)

        results: dict[str, dict[str, list[dict]]] = {name: {"small": [], "large": []} for name in servers}
        for round_ in range(args.rounds):
            for name, starter in servers.items():
                port = free_port()
                proc = starter(port)
                try:
                    base = f"http://127.0.0.1:{port}"
                    wait_http(base + SMALL, proc)
                    load(base + SMALL, 1, 16)  # warm-up: caches, connections, JIT-free but page cache
                    results[name]["small"].append(measured(load, proc, base + SMALL, args.seconds, 16))
                    results[name]["large"].append(measured(load, proc, base + LARGE, args.seconds, 4))
                finally:
                    stop(proc)
            print(f"round {round_ + 1}: " + ", ".join(
                f"{n} {r['small'][-1]['rps']:.0f} req/s {r['large'][-1]['mbps']:.0f} MB/s" for n, r in results.items()))

        def median(runs: list[dict], key: str) -> dict:
            return sorted(runs, key=lambda r: r[key])[len(runs) // 2]

        print(f"\n{'server':<24}{'small req/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>11}"
              f"{'50MB MB/s':>11}{'p99 ms':>9}{'CPU s/GB':>10}{'errors':>8}")
        table = {}
        for name, r in results.items():
            s, big = median(r["small"], "rps"), median(r["large"], "mbps")
            table[name] = (s, big)
            errors = sum(x["errors"] for x in r["small"] + r["large"])
            cpu_small = statistics.median(x["cpu_us"] for x in r["small"])
            cpu_large = statistics.median(x["cpu_s_per_gb"] for x in r["large"])
            print(f"{name:<24}{s['rps']:>12.0f}{s['p50']:>9.2f}{s['p99']:>9.2f}{cpu_small:>11.1f}"
                  f"{big['mbps']:>11.0f}{big['p99']:>9.0f}{cpu_large:>10.2f}{errors:>8}")
        print(f"machine load average after: {_loadavg()} (others' work on a shared machine skews every column)")
        if "nginx" in table:
            ns, nb = table["nginx"]
            print()
            for name, (s, big) in table.items():
                if name == "nginx":
                    continue
                small_ratio, large_ratio = s["rps"] / ns["rps"], big["mbps"] / nb["mbps"]
                print(f"{name}: small {small_ratio:.2f}× nginx (goal ≥ 0.33: {'met' if small_ratio >= 1 / 3 else 'NOT met'}),"
                      f" 50 MB {large_ratio:.2f}× nginx (goal ≥ 0.50: {'met' if large_ratio >= 0.5 else 'NOT met'})")
        if any(x["errors"] for r in results.values() for x in r["small"] + r["large"]):
            sys.exit("some responses were errors")


if __name__ == "__main__":
    main()
