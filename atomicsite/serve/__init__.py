"""``atomicsite serve``: a stateless router that serves whatever version a channel points to.

It reads the channel pointer from any store (S3, GCS, local), caches it for ``pointer_ttl`` seconds and
each version's manifest in memory, and streams files from ``v/<version>/<path>``. ``run`` serves it
with granian (N worker processes), as many replicas as you like behind any load balancer; or mount it
in your own ASGI stack::

    from atomicsite.serve import create_app, run
    app = create_app("gs://my-bucket/site", host_channels="{channel}.preview.example.com")
    run(app, host="0.0.0.0", port=8080)

or under another ASGI server: ``uvicorn --factory atomicsite.serve:app_from_env --workers 4`` (the
target and store settings come from ``ATOMICSITE_*`` and the config file). See docs/serve.md.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings, find_config_file, load_settings
from ..retry import RetryingStore, RetryPolicy
from ..stores import open_store
from ..stores.base import Store
from .app import Router
from .config import HostRule, ServeConfig, host_rules
from .server import AppRecipe, run

__all__ = ["create_app", "run", "app_from_env", "serve_config", "Router", "ServeConfig", "HostRule", "host_rules",
           "AppRecipe"]

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
