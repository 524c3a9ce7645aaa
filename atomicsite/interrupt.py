"""What an interrupted command leaves behind, said exactly (Ctrl-C: exit 130, SIGTERM: exit 143).

Publish knows which step it reached (its progress events), and every step's leftovers are part of the
design (docs/layout.md): before the switch the channel is untouched; the switch is one atomic pointer
write, so during it the channel serves the old or the new version, never a mix.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED, AtomicsiteError

READ_ONLY = {"status", "versions", "history", "diff", "verify", "channel list", "edge cloudfront-function"}
POINTER_WRITES = {"promote", "pin", "unpin", "rollback", "channel delete"}


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same unwinding (and ``finally`` clean-up) runs."""


def on_sigterm(signum, frame):
    raise Stopped()


def install_sigterm_handler() -> None:
    """Make SIGTERM unwind like Ctrl-C (only in the real ``atomicsite`` process)."""
    signal.signal(signal.SIGTERM, on_sigterm)


@dataclass
class PublishState:
    """Where a publish has got to: fed by its progress events."""

    stage: str | None = None
    channel: str | None = None
    version: str | None = None
    before: str | None = None


class Interrupted(AtomicsiteError):
    kind = "interrupted"
    exit_code = EXIT_INTERRUPTED


class Terminated(Interrupted):
    kind = "terminated"
    exit_code = EXIT_TERMINATED


def interrupted(command: str, exc: BaseException, publish: PublishState | None = None) -> Interrupted:
    """The error to report for ``command`` stopped by ``exc`` (KeyboardInterrupt or :class:`Stopped`)."""
    cls, how = (Terminated, "terminated (SIGTERM)") if isinstance(exc, Stopped) else (Interrupted, "interrupted")
    state, hint = _state(command, publish or PublishState())
    return cls(f"{command} {how}: {state}", hint=hint)


def _state(command: str, p: PublishState) -> tuple[str, str | None]:
    if command in READ_ONLY:
        return "it only reads, so nothing was changed.", None
    if command == "serve":
        return "stopped serving; the site was not changed.", None
    if command == "prune":
        return ("prune deletes each version's manifest before its objects, so every version is either whole or "
                "no longer listed; the channels are unchanged."), "Run 'atomicsite prune' again to finish."
    if command in POINTER_WRITES:
        return ("the pointer write is atomic: the channel serves either the version it had or the one asked for, "
                "never a mix."), "Run 'atomicsite status' to see which."
    channel = repr(p.channel) if p.channel else "the channel"
    was = f" (still {p.before})" if p.before else ""
    if p.stage in (None, "scan", "plan"):
        return f"nothing was written; {channel} is unchanged{was}.", None
    if p.stage in ("transfer", "verify", "commit"):
        return (f"during {p.stage} of version {p.version}; {channel} is unchanged{was} and nothing points at "
                "the partial upload."), "Run the same publish again to resume it."
    return (f"during the switch to {p.version}; the pointer write is atomic, so {channel} serves either "
            f"{p.before or 'nothing'} or {p.version}, never a mix."), "Run 'atomicsite status' to see which."
