"""Running the router: granian, N worker processes, each following the pointer on its own.

Why granian: measured (issue 15; bench/bench_serve.py --compare), with nginx at 74,000 req/s for a
small file on one worker, the router served 5,600 under uvicorn with h11, 11,000 under uvicorn with
uvloop + httptools, and 26,000 under granian (Rust HTTP, the app on uvloop); the RSGI adapter
(rsgi.py) and a leaner request path add to that. A large file on a local store is sent by granian
itself (``http.response.pathsend``, sendfile underneath). The router stays a plain ASGI app, so any
ASGI server can still run it (``uvicorn --factory atomicsite.serve:app_from_env``).

Each worker is a separate process that builds its own router (its own caches and store client) from
a picklable recipe: replicas and workers share nothing but the store.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError
from ..stores import require_sdk

log = logging.getLogger("atomicsite.serve")

INTERFACES = ("rsgi", "asgi")


@dataclass(frozen=True)
class AppRecipe:
    """How a worker process builds its router (picklable, so it also works with the spawn start method)."""

    factory: Callable[..., object]
    args: tuple = ()
    kwargs: tuple = ()  # (key, value) pairs: hashable and picklable

    def build(self):
        return self.factory(*self.args, **dict(self.kwargs))


class _Loader:
    """granian's per-worker callback loader: build the router, wrap it for the interface in use."""

    def __init__(self, app, interface: str, trusted: str | None, metrics_dir: str | None):
        self.app, self.interface, self.trusted, self.metrics_dir = app, interface, trusted, metrics_dir

    def __call__(self, *args):
        app = self.app.build() if isinstance(self.app, AppRecipe) else self.app
        if self.metrics_dir:
            from .metrics import RouterMetrics

            if hasattr(app, "observe"):
                app.observe(RouterMetrics())
        if self.trusted:
            app = ProxyHeaders(app, self.trusted)
        if self.interface == "rsgi":
            from .rsgi import RSGIRouter

            return RSGIRouter(app)
        return app


def run(
    app,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    graceful_timeout: float | None = None,
    log_level: str = "info",
    forwarded_allow_ips: str | None = "127.0.0.1",
    metrics_port: int | None = None,
    metrics_host: str | None = None,
    interface: str = "rsgi",
) -> None:
    """Serve ``app`` with granian until SIGINT/SIGTERM; in-flight responses get ``graceful_timeout`` s.

    ``app`` is a Router, any ASGI app, or an :class:`AppRecipe` (what the CLI passes, so that each of
    ``workers`` processes builds its own router). ``host``/``port``/``graceful_timeout`` default to the
    app's config. Access lines go to the ``atomicsite.serve`` logger, printed on stdout.
    ``forwarded_allow_ips``: comma-separated addresses or networks (or ``*``) whose
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed. ``metrics_port``: serve Prometheus text
    there (docs/serve.md), gathered from every worker.

    >>> run(create_app("gs://my-bucket/site"), host="0.0.0.0", port=8080, workers=2)  # doctest: +SKIP
    """
    require_sdk("granian", "serve")
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.server import Server

    if interface not in INTERFACES:
        raise ConfigError(f"serve interface: {interface!r} is not one of {', '.join(INTERFACES)}")
    if workers < 1:
        raise ConfigError(f"--workers: must be 1 or more, got {workers}")
    config = _config_of(app)
    if forwarded_allow_ips:
        try:
            ProxyHeaders(None, forwarded_allow_ips)
        except ValueError as exc:
            raise ConfigError(f"--forwarded-allow-ips: {exc}",
                              hint="Give addresses or networks separated by commas (10.0.0.0/8,127.0.0.1), or *.") from None
    metrics_dir, made = None, False
    if metrics_port is not None:
        from .metrics import start_metrics_server

        metrics_dir, made = start_metrics_server(metrics_port, metrics_host or (host or config.host))
    timeout = config.graceful_timeout if graceful_timeout is None else graceful_timeout
    server = Server(
        "atomicsite.serve",  # a label only: the loader below builds the app
        address=host or config.host,
        port=config.port if port is None else port,
        interface=Interfaces.RSGI if interface == "rsgi" else Interfaces.ASGI,
        workers=workers,
        loop=Loops.auto,  # uvloop when installed (the serve extra installs it off Windows)
        http=HTTPModes.http1,
        websockets=False,
        log_level=_granian_level(log_level),
        log_dictconfig=_log_config(log_level),
        log_access=False,  # the router writes its own access line, with channel and version
        workers_kill_timeout=max(1, round(timeout)) if timeout else None,
        respawn_failed_workers=True,
    )
    try:
        server.serve(target_loader=_Loader(app, interface, forwarded_allow_ips, metrics_dir), wrap_loader=False)
    finally:
        if made:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _config_of(app):
    from .config import ServeConfig

    if isinstance(app, AppRecipe):
        given = dict(app.kwargs).get("config") or (app.args[1] if len(app.args) > 1 else None)
        return given if isinstance(given, ServeConfig) else ServeConfig()
    return getattr(app, "config", None) or ServeConfig()


def _granian_level(level: str):
    from granian.log import LogLevels

    return LogLevels(level.lower())


def _log_config(level: str) -> dict:
    from granian.log import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["router"] = {"()": "logging.Formatter", "fmt": "%(asctime)s %(message)s"}
    config["handlers"]["router"] = {"formatter": "router", "class": "logging.StreamHandler",
                                    "stream": "ext://sys.stdout"}
    config["loggers"]["atomicsite.serve"] = {"handlers": ["router"], "level": level.upper(), "propagate": False}
    return config


class ProxyHeaders:
    """Believe ``X-Forwarded-Proto`` / ``X-Forwarded-For`` from trusted peers (the cookie's ``Secure``
    and the access log's client depend on them). granian, unlike uvicorn, does not do this itself."""

    def __init__(self, app, trusted: str):
        self.app = app
        self.any = trusted.strip() == "*"
        self.networks = [] if self.any else [ipaddress.ip_network(t.strip(), strict=False)
                                              for t in trusted.split(",") if t.strip()]
        self.config = getattr(app, "config", None)

    def __getattr__(self, name):  # close(), observe(), … of the wrapped router
        return getattr(self.app, name)

    def _trusts(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            proto = forwarded_for = None
            for name, value in scope.get("headers", ()):
                if name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()
                elif name == b"x-forwarded-for":
                    forwarded_for = value.decode("latin-1").split(",")[-1].strip()
            client = scope.get("client")
            # headers first, the peer's address only when there are some: parsing it costs more
            if (proto in ("http", "https") or forwarded_for) and client and self._trusts(client[0]):
                scope = dict(scope)
                if proto in ("http", "https"):
                    scope["scheme"] = proto
                if forwarded_for:
                    scope["client"] = (forwarded_for, 0)
        await self.app(scope, receive, send)


__all__ = ["run", "AppRecipe", "ProxyHeaders", "INTERFACES"]
