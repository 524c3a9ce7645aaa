"""Switchers: what makes real traffic follow a channel pointer after it moves.

The pointer object is the source of truth. After a successful compare-and-swap of the pointer
(publish, promote, pin, rollback, and a switch-back after a failed health check), every configured
switcher's ``apply`` runs with a :class:`SwitchContext`; each returns a :class:`SwitchReport`, which
the command prints and records in ``_atomicsite/switchers/<channel>.json`` for ``status``.

A switcher failure does not undo the pointer switch (the pointer already moved); it makes the
command exit non-zero with the switcher's message so the user can re-run ``promote`` for the same
version, which re-applies every switcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..manifest import Manifest


@dataclass(frozen=True)
class SwitchContext:
    target_url: str  # "s3://bucket/site"
    root_prefix: str  # the key prefix of the site's root inside the bucket ("site"; "" for none)
    channel: str
    version: str
    previous: str | None
    manifest: Manifest  # the version now served
    previous_manifest: Manifest | None  # the version served before, when known


@dataclass(frozen=True)
class SwitchReport:
    switcher: str  # "cloudfront-origin", "cloudfront-kvs", "cloudfront-invalidation"
    ok: bool
    detail: str  # one line for humans
    data: dict = field(default_factory=dict)  # ids, ETags, paths: for --json and status


class Switcher(Protocol):
    name: str

    def apply(self, ctx: SwitchContext) -> SwitchReport:
        ...
