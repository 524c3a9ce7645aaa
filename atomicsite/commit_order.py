"""The older-commit guard: a publish or promote never moves a channel to a build of an older commit.

A queued or re-run CI job of an earlier commit that finishes last would otherwise put production back
on stale code. Before the pointer write, the build's source commit (from its manifest) is compared
with the commit of the version the channel serves, by the first rule that can tell:

1. **git ancestry**: the repository atomicsite runs in knows both commits; the new one is older when it
   is an ancestor of the live one (``git merge-base --is-ancestor``). A shallow checkout only trusts
   a "yes": a "no" may just be history it did not fetch.
2. **recorded ancestry**: either manifest lists the other's commit among its recent ancestors.
3. **committer time**: both manifests record it (``git log -1 --format=%cI``); older is earlier.

When none can tell (no source info, different repositories, equal times) the switch goes ahead and
the verdict says the guard could not judge. ``rollback`` and ``pin`` are explicit and never judged;
``--allow-older`` lets a publish or promote through and records why.

>>> compare_sources({"commit": "b" * 40, "committed_at": "2026-01-02T00:00:00+00:00"},
...                 {"commit": "a" * 40, "committed_at": "2026-01-01T00:00:00+00:00"}).decision
'older'
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .errors import IntegrityError, OlderBuildRefused
from .manifest import Manifest

NEWER, SAME, OLDER, DIVERGED, UNKNOWN = "newer", "same", "older", "diverged", "unknown"
GIT_ANCESTRY, RECORDED_ANCESTRY, COMMITTER_TIME = "git ancestry", "recorded ancestry", "committer time"

Ancestry = Callable[[str, str], "bool | None"]
"""``is_ancestor(a, b)``: True if commit ``a`` is an ancestor of ``b``, False if not, None if unknown."""


@dataclass(frozen=True)
class OrderVerdict:
    """How the new build's commit relates to the live one, and which rule decided."""

    decision: str  # NEWER | SAME | OLDER | DIVERGED | UNKNOWN
    rule: str  # GIT_ANCESTRY | RECORDED_ANCESTRY | COMMITTER_TIME, or why no rule could tell
    detail: str
    live_commit: str | None = None
    new_commit: str | None = None
    allowed_by_flag: bool = False

    @property
    def older(self) -> bool:
        return self.decision == OLDER

    def to_dict(self) -> dict:
        return {"decision": self.decision, "rule": self.rule, "detail": self.detail, "live_commit": self.live_commit,
                "new_commit": self.new_commit, "refused": self.older and not self.allowed_by_flag,
                "allowed_by_flag": self.allowed_by_flag}


def short(commit: str | None) -> str:
    return (commit or "?")[:12]


def _time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else None  # a naive time cannot be compared across machines


def compare_sources(live: dict, new: dict, ancestry: Ancestry | None = None) -> OrderVerdict:
    """Judge ``new`` (the build to switch to) against ``live`` (what the channel serves); both are
    manifests' ``source`` dicts. Pure apart from ``ancestry``, the local repository's answer."""
    lc, nc = live.get("commit"), new.get("commit")
    if not isinstance(nc, str) or not nc:
        return OrderVerdict(UNKNOWN, "no source info", "the new build records no source commit", lc, None)
    if not isinstance(lc, str) or not lc:
        return OrderVerdict(UNKNOWN, "no source info", "the version the channel serves records no source commit", None, nc)
    if lc == nc:
        return OrderVerdict(SAME, "same commit", f"both builds are of commit {short(nc)}", lc, nc)
    lr, nr = live.get("repository"), new.get("repository")
    if lr and nr and lr != nr:
        return OrderVerdict(UNKNOWN, "different repositories", f"the builds come from {lr} and {nr}", lc, nc)

    if ancestry is not None:
        back = ancestry(nc, lc)
        if back:
            return OrderVerdict(OLDER, GIT_ANCESTRY, f"{short(nc)} is an ancestor of {short(lc)}", lc, nc)
        forward = ancestry(lc, nc)
        if forward:
            return OrderVerdict(NEWER, GIT_ANCESTRY, f"{short(nc)} descends from {short(lc)}", lc, nc)
        if back is False and forward is False:
            return OrderVerdict(DIVERGED, GIT_ANCESTRY,
                                f"{short(nc)} and {short(lc)} are on different branches (neither contains the other)", lc, nc)

    if nc in (live.get("ancestors") or ()):
        return OrderVerdict(OLDER, RECORDED_ANCESTRY, f"{short(nc)} is among {short(lc)}'s recorded ancestors", lc, nc)
    if lc in (new.get("ancestors") or ()):
        return OrderVerdict(NEWER, RECORDED_ANCESTRY, f"{short(lc)} is among {short(nc)}'s recorded ancestors", lc, nc)

    lt, nt = _time(live.get("committed_at")), _time(new.get("committed_at"))
    if lt is None or nt is None:
        which = "either build" if lt is None and nt is None else ("the live build" if lt is None else "the new build")
        return OrderVerdict(UNKNOWN, "no committer time",
                            f"ancestry unknown here and {which} records no committer time", lc, nc)
    stamp = f"{short(nc)} committed {new['committed_at']}, {short(lc)} committed {live['committed_at']}"
    if nt < lt:
        return OrderVerdict(OLDER, COMMITTER_TIME, stamp, lc, nc)
    if nt > lt:
        return OrderVerdict(NEWER, COMMITTER_TIME, stamp, lc, nc)
    return OrderVerdict(UNKNOWN, "same committer time", stamp, lc, nc)


def git_ancestry(cwd: str | None = None) -> Ancestry:
    """``is_ancestor`` answered by the git repository at ``cwd`` (the process's directory by default).

    None when git, the repository or either commit is missing. In a shallow clone a "no" is None too:
    the path between the commits may lie in history that was not fetched.
    """
    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None

    shallow: list[bool] = []

    def is_ancestor(a: str, b: str) -> bool | None:
        for commit in (a, b):
            found = git("cat-file", "-e", f"{commit}^{{commit}}")
            if found is None or found.returncode != 0:
                return None
        out = git("merge-base", "--is-ancestor", a, b)
        if out is None or out.returncode not in (0, 1):
            return None
        if out.returncode == 0:
            return True
        if not shallow:
            probe = git("rev-parse", "--is-shallow-repository")
            shallow.append(probe is None or probe.stdout.strip() != "false")
        return None if shallow[0] else False

    return is_ancestor


def judge(live_version: str | None, live: Manifest | None, new: Manifest, ancestry: Ancestry | None) -> OrderVerdict:
    """The verdict for switching from ``live_version`` (its manifest ``live``) to ``new``."""
    if live_version is None:
        return OrderVerdict(UNKNOWN, "nothing live", "the channel serves nothing yet", None, new.source.get("commit"))
    if live is None:
        return OrderVerdict(UNKNOWN, "no live manifest", f"the manifest of {live_version} cannot be read",
                            None, new.source.get("commit"))
    return compare_sources(live.source, new.source, ancestry)


def enforce(verdict: OrderVerdict, *, channel: str, live_version: str | None, new_version: str, action: str,
            allow_older: bool) -> OrderVerdict:
    """Raise :class:`OlderBuildRefused` for an older build unless ``allow_older``; return the verdict."""
    if not verdict.older:
        return verdict
    if allow_older:
        return OrderVerdict(**{**verdict.__dict__, "allowed_by_flag": True})
    committed = " (it is committed)" if action == "publish" else ""
    raise OlderBuildRefused(
        f"refusing to switch {channel!r} from {live_version} (commit {short(verdict.live_commit)}) to {new_version} "
        f"(commit {short(verdict.new_commit)}): that commit is older by {verdict.rule}: {verdict.detail}; "
        f"{channel!r} still serves {live_version}{committed}.",
        hint=f"If you mean to go back, run 'atomicsite rollback --to {new_version}' or "
             f"'atomicsite promote {new_version} --allow-older'.",
    )


def live_manifest(read: Callable[[str], Manifest | None], version: str | None) -> Manifest | None:
    """The served version's manifest, or None when there is none or it cannot be read (then the guard
    cannot judge; a corrupt manifest is not this guard's business)."""
    if not version:
        return None
    try:
        return read(version)
    except IntegrityError:
        return None
