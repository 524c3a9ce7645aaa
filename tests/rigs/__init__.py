"""Store rigs: one module per backend, each a pytest plugin providing a ``<name>_rig`` fixture.

A rig fixture yields a :class:`tests.rigs.Rig` for a fresh, empty target of that backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from atomicsite.stores.base import Store


@dataclass
class Rig:
    name: str
    store: Store
    url: str
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables that make ``atomicsite --target URL`` (CLI, subprocess) reach this store."""
    keeps_headers: bool = True
    """False where the store keeps no per-object Content-Type/Cache-Control (the local store)."""
    fresh: Callable[[str], Store] | None = None
    """Another empty target of the same backend (a sibling prefix or directory named by the argument),
    for tests that need a clean target per iteration. The caller closes it."""
