"""Prometheus metrics of the router: ``atomicsite serve --metrics-port PORT``.

Every worker process records into prometheus-client's multi-process files; one small HTTP server in
the parent process (started before the workers) adds them up at scrape time, so a scrape sees the
whole replica whichever worker would have answered. Metrics (all prefixed ``atomicsite_``):

- ``requests_total{channel,status}`` and ``request_duration_seconds{channel}`` (histogram);
- ``channel_version{channel,version}``: 1 for the version each channel serves (0 once moved on);
- ``pointer_read_timestamp_seconds{channel}`` (unix time of the last good read) and, computed at
  scrape time, ``pointer_age_seconds{channel}``;
- ``store_request_duration_seconds{op}`` (histogram) and ``store_errors_total{op}`` for every store
  call the router makes (a missing object is an answer, not an error);
- ``body_cache_hits_total`` / ``body_cache_misses_total``: small files served from memory or read.

In your own process (no ``--metrics-port``): ``RouterMetrics(registry)`` and ``router.observe(m)``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time

from ..errors import ObjectNotFound
from ..stores import require_sdk

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ENV = "PROMETHEUS_MULTIPROC_DIR"


class RouterMetrics:
    """The router's metrics. In a ``--metrics-port`` worker they go to the multi-process files; else
    to ``registry`` (a new ``CollectorRegistry`` if None)."""

    def __init__(self, registry=None):
        prometheus_client = require_sdk("prometheus_client", "serve")
        from prometheus_client import Counter, Gauge, Histogram

        if os.environ.get(_ENV):
            registry = None  # the parent's collector reads the files; nothing to register here
        elif registry is None:
            registry = prometheus_client.CollectorRegistry()
        self.registry = registry
        kw = {"registry": registry}
        self.requests = Counter("atomicsite_requests_total", "HTTP requests answered.", ["channel", "status"], **kw)
        self.duration = Histogram("atomicsite_request_duration_seconds", "Time to answer a request.",
                                  ["channel"], buckets=_LATENCY, **kw)
        self.version = Gauge("atomicsite_channel_version", "1 for the version a channel serves.",
                             ["channel", "version"], multiprocess_mode="livemax", **kw)
        self.read_at = Gauge("atomicsite_pointer_read_timestamp_seconds",
                             "Unix time the last good pointer read started.", ["channel"],
                             multiprocess_mode="livemax", **kw)
        self.store_duration = Histogram("atomicsite_store_request_duration_seconds", "Store calls.", ["op"],
                                        buckets=_LATENCY, **kw)
        self.store_errors = Counter("atomicsite_store_errors_total", "Store calls that failed.", ["op"], **kw)
        self.cache_hits = Counter("atomicsite_body_cache_hits_total", "Small files answered from memory.", **kw)
        self.cache_misses = Counter("atomicsite_body_cache_misses_total", "Small files read from the store.", **kw)
        self._serving: dict[str, str] = {}
        self._lock = threading.Lock()

    def request(self, channel: str, status: int, seconds: float) -> None:
        self.requests.labels(channel, str(status)).inc()
        self.duration.labels(channel).observe(seconds)

    def body_cache(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()

    def pointer_read(self, name: str, channel, seconds: float) -> None:
        self.read_at.labels(name).set(time.time() - seconds)
        version = channel.pointer.version if channel.pointer else ""
        with self._lock:
            old = self._serving.get(name)
            self._serving[name] = version
        if old is not None and old != version:
            self.version.labels(name, old).set(0)
        if version:
            self.version.labels(name, version).set(1)

    def close(self) -> None:
        """This worker is going away: drop its live gauges (the version it served, its last read)."""
        if os.environ.get(_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def measure(self, store):
        return MeasuredStore(store, self)


class MeasuredStore:
    """A store whose calls are timed and whose failures are counted (wraps the router's store)."""

    _OPS = ("get", "head", "open", "list")

    def __init__(self, inner, metrics: RouterMetrics):
        self.inner = inner
        self.url = inner.url
        self.metrics = metrics

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in self._OPS:
            return attr

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            except ObjectNotFound:
                raise
            except Exception:
                self.metrics.store_errors.labels(name).inc()
                raise
            finally:
                self.metrics.store_duration.labels(name).observe(time.perf_counter() - started)

        return timed


class _PointerAge:
    """Turns the workers' last-read timestamps into ``atomicsite_pointer_age_seconds`` at scrape time."""

    def __init__(self, path: str):
        self.path = path

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        from prometheus_client.multiprocess import MultiProcessCollector

        age = GaugeMetricFamily("atomicsite_pointer_age_seconds",
                                "Seconds since the newest good read of each channel's pointer.", labels=["channel"])
        now = time.time()
        for family in MultiProcessCollector(None, self.path).collect():
            if family.name == "atomicsite_pointer_read_timestamp_seconds":
                for sample in family.samples:
                    age.add_metric([sample.labels["channel"]], max(0.0, now - sample.value))
        yield age


def start_metrics_server(port: int, host: str) -> tuple[str, bool]:
    """Serve the workers' metrics on ``host:port`` from this (the parent) process. Returns the
    multi-process directory and whether it was made here (then the caller removes it on exit).
    Call before any worker starts: prometheus-client picks its multi-process mode at import."""
    path, made = os.environ.get(_ENV), False
    if not path:
        path, made = tempfile.mkdtemp(prefix="atomicsite-metrics-"), True
    os.environ[_ENV] = path
    prometheus_client = require_sdk("prometheus_client", "serve")
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = prometheus_client.CollectorRegistry()
    MultiProcessCollector(registry, path)
    registry.register(_PointerAge(path))
    prometheus_client.start_http_server(port, addr=host, registry=registry)
    return path, made
