"""Store rigs: one module per backend, each a pytest plugin providing a ``<name>_rig`` fixture.

A rig fixture yields a :class:`tests.rigs.Rig` for a fresh, empty target of that backend.
"""

from __future__ import annotations

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
