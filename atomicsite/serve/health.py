"""``GET /_atomicsite/healthz``: can this replica follow switches? For load balancers and probes.

200 while the replica holds a pointer of the Host's channel read within a few TTLs and its latest
read succeeded; 503, with the reason in a one-line body, when the store is unreachable, the pointer
is corrupt, or reads have not finished for too long. A replica answering 503 may still be serving
its last good pointer to visitors; the point is that it can no longer promise to follow a switch,
so a load balancer should send traffic elsewhere. The probe itself triggers a read when the pointer
is due, so an idle replica stays healthy while the store answers.

The body names the kind of failure, not store details (bucket names, endpoints): those are logged.
"""

from __future__ import annotations

import time

from ..errors import AtomicsiteError, IntegrityError

PATH = "_atomicsite/healthz"


def max_age(ttl: float) -> float:
    """How old the last good pointer read may be before the replica reports itself unhealthy."""
    return 3 * ttl + 1.0


async def check(pointers, name: str) -> tuple[int, str]:
    """(status, one-line reason) for channel ``name``."""
    try:
        await pointers.get(name)
    except Exception:  # reported below from the cache's own record of the failure
        pass
    channel, read_at, error, error_at = pointers.status(name)
    now = time.monotonic()
    if error is not None and error_at >= read_at:
        serving = f"; still serving {_version(channel)} read {now - read_at:.1f}s ago" if channel else ""
        return 503, f"unhealthy: {_kind(error, name)}{serving}"
    if channel is None:
        return 503, f"unhealthy: the pointer of channel {name!r} has not been read yet"
    age = now - read_at
    if age > max_age(pointers.ttl):
        return 503, (f"unhealthy: the pointer of channel {name!r} was last read {age:.1f}s ago "
                     f"(limit {max_age(pointers.ttl):.1f}s); the store is slow or unreachable")
    if channel.pointer is None:
        return 200, f"ok: channel {name!r} has nothing published yet (pointer checked {age:.1f}s ago)"
    return 200, f"ok: channel {name!r} serves {channel.pointer.version} (pointer read {age:.1f}s ago)"


def _version(channel) -> str:
    return channel.pointer.version if channel.pointer else "nothing"


def _kind(error: BaseException, name: str) -> str:
    if isinstance(error, IntegrityError):
        return f"the pointer of channel {name!r} is corrupt ({type(error).__name__})"
    if isinstance(error, AtomicsiteError):
        return f"the store did not answer the pointer read of channel {name!r} ({type(error).__name__})"
    return f"reading the pointer of channel {name!r} failed ({type(error).__name__})"
