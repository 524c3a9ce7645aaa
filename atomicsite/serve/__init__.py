"""``atomicsite serve``: a stateless router that serves whatever version a channel points to.

It reads the channel pointer from any store (S3, GCS, local), caches it for ``pointer_ttl`` seconds and
each version's manifest in memory, and streams files from ``v/<version>/<path>``. Run it under uvicorn,
as many replicas as you like behind any load balancer, or mount it in your own ASGI stack::

    from atomicsite.serve import create_app, run
    app = create_app("gs://my-bucket/site", host_channels="{channel}.preview.example.com")
    run(app, host="0.0.0.0", port=8080)

or, one app per worker process: ``uvicorn --factory atomicsite.serve:app_from_env --workers 4``
(the target and store settings come from ``ATOMICSITE_*`` and the config file). See docs/serve.md.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path

from ..config import Settings, find_config_file, load_settings
from ..retry import RetryingStore, RetryPolicy
from ..stores import open_store, require_sdk
from ..stores.base import Store
from .app import Router
from .config import HostRule, ServeConfig, host_rules

__all__ = ["create_app", "run", "app_from_env", "serve_config", "Router", "ServeConfig", "HostRule", "host_rules"]

# A router answers people, not batch jobs: retry a flaky store briefly, then answer 502.
ROUTER_RETRIES = RetryPolicy(attempts=3, initial=0.05, maximum=0.5)


def serve_config(settings: Settings | None = None) -> ServeConfig:
    """The ``[serve]`` table of the settings' config file over the defaults; the default channel is
    the settings' ``channel``."""
    settings = settings or load_settings()
    table = {}
    if settings.config_file:
        found = find_config_file(Path.cwd(), settings.config_file)
        table = dict(found[1].get("serve") or {}) if found else {}
        where = f"{settings.config_file} [serve]"
    else:
        where = "[serve]"
    table.setdefault("channel", settings.channel)
    return ServeConfig.from_mapping(table, where=where)


def create_app(
    target: str | Store | None = None,
    config: ServeConfig | None = None,
    *,
    settings: Settings | None = None,
    channel: str | None = None,
    host_channels=None,
    pointer_ttl: float | None = None,
    spa_fallback: bool | str | None = None,
    skew_protection: bool | None = None,
    **options,
) -> Router:
    """The router as an ASGI app, for ``target`` (a URL or a Store; None = the configured target).

    Options override ``config`` (default: the ``[serve]`` table of the config file, see docs/serve.md);
    None means 'not given'. ``host_channels`` is ``{"host": "channel"}`` and/or patterns such as
    ``"{channel}.preview.example.com"``. Other keyword options are ServeConfig fields.

    >>> app = create_app("s3://my-bucket/site", pointer_ttl=2, spa_fallback=True)  # doctest: +SKIP
    """
    settings = settings or load_settings()
    config = (config or serve_config(settings)).with_overrides(
        channel=channel, host_channels=host_channels, pointer_ttl=pointer_ttl, spa_fallback=spa_fallback,
        skew_protection=skew_protection, **options)
    owns = target is None or isinstance(target, str)
    store = open_store(target or settings.target_or_default, settings.store) if owns else target
    return Router(RetryingStore(store, ROUTER_RETRIES), config, owns_store=owns)


def app_from_env() -> Router:
    """A router for the configured target: the factory for ``uvicorn --factory`` and gunicorn workers."""
    return create_app()


def run(
    app: Router,
    *,
    host: str | None = None,
    port: int | None = None,
    graceful_timeout: float | None = None,
    log_level: str = "info",
    proxy_headers: bool = True,
    forwarded_allow_ips: str | None = None,
    sockets=None,
) -> None:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM; in-flight responses get ``graceful_timeout`` s.

    ``host``/``port``/``graceful_timeout`` default to the app's config. Access lines go to the
    ``atomicsite.serve`` logger (uvicorn's own access log is off). ``sockets``: already bound sockets.
    """
    uvicorn = require_sdk("uvicorn", "serve")
    config = getattr(app, "config", None) or ServeConfig()
    for sock in sockets or ():
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # inherited by accepted connections; asyncio only sets it itself on sockets made with
            # IPPROTO_TCP, and without it each response waits out a delayed ACK (~40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = uvicorn.Server(uvicorn.Config(
        app,
        host=host or config.host,
        port=config.port if port is None else port,
        log_config=_log_config(log_level),
        log_level=log_level,
        access_log=False,
        lifespan="on",
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=config.graceful_timeout if graceful_timeout is None else graceful_timeout,
    ))
    server.run(sockets=sockets)


def _log_config(level: str) -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["router"] = {"format": "%(asctime)s %(message)s"}
    config["handlers"]["router"] = {"formatter": "router", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    config["loggers"]["atomicsite.serve"] = {"handlers": ["router"], "level": level.upper(),
                                           "propagate": False}
    return config
