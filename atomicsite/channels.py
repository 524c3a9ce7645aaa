"""Channel pointers: which version a channel serves, written only by compare-and-swap.

A pointer is a small JSON object at ``_atomicsite/channels/<channel>.json``: the version, the one
before it, whether it is pinned, who switched it, when and why, and the last few switches. Routers and
edge code read it, so it stays a few KB.

A preview channel may carry ``expires`` (UTC, like ``updated``): after it, ``prune`` removes the
channel unless it is pinned (``live`` never expires). The field was added within format 1 and is
written only when set, so a pointer without it is byte-for-byte what earlier versions wrote and never
expires; an earlier atomicsite reading a pointer with it ignores it (and drops it when it next moves
that channel, which only means the channel no longer expires: the safe side).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta, timezone

from .errors import ConflictError, IntegrityError, ObjectNotFound, PreconditionFailed
from .layout import CHANNELS, VERSION_RE, channel_key, channel_of_key, check_channel
from .manifest import canonical_json, parse_time, utcnow
from .stores.base import IfMatch, Store, WriteMode

FORMAT = 1
HISTORY_LIMIT = 20


@dataclass(frozen=True)
class Switch:
    """One move of a channel, as kept in the pointer's history."""

    version: str
    previous: str | None
    action: str
    at: str
    by: str
    message: str | None = None


@dataclass(frozen=True)
class ChannelPointer:
    channel: str
    version: str
    previous: str | None = None
    pinned: bool = False
    updated: str = ""
    by: str = ""
    action: str = ""
    message: str | None = None
    history: tuple[Switch, ...] = field(default_factory=tuple)
    format: int = FORMAT
    expires: str | None = None  # UTC time after which prune removes this (preview) channel

    def to_dict(self) -> dict:
        d = asdict(self)
        d["history"] = [asdict(h) for h in self.history]
        if self.expires is None:
            del d["expires"]  # absent, not null: the pointer stays what older versions write and read
        return d

    def expired(self, now: datetime | None = None) -> bool:
        """Past its expiry, and not pinned (a pin keeps a channel, expiry or not)."""
        if self.expires is None or self.pinned:
            return False
        return parse_time(self.expires) <= (now or datetime.now(timezone.utc))

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> ChannelPointer:
        def corrupt(why: str) -> IntegrityError:
            return IntegrityError(
                f"corrupt channel pointer {where}: {why}",
                hint="Point the channel at a known-good version with 'atomicsite promote VERSION --repair' (see 'atomicsite versions').",
            )

        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise corrupt(f"not valid JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise corrupt("not a format-1 pointer object")
        try:
            fields = _checked(raw, _POINTER_FIELDS, "", cls)
            history = raw.get("history")
            if history is None:
                history = []
            if not isinstance(history, list) or len(history) > 10 * HISTORY_LIMIT:
                raise ValueError("history: must be a short list")
            switches = tuple(Switch(**_checked(h, _SWITCH_FIELDS, f"history[{i}].", Switch)) for i, h in enumerate(history))
        except ValueError as exc:
            raise corrupt(str(exc)) from None
        return cls(**fields, history=switches)


def _version_id(value) -> bool:
    return isinstance(value, str) and bool(VERSION_RE.match(value))


def _channel_name(value) -> bool:
    try:
        return isinstance(value, str) and check_channel(value) == value
    except Exception:
        return False


def _text(value) -> bool:
    return isinstance(value, str) and len(value) <= 4096


def _time(value) -> bool:
    try:
        return isinstance(value, str) and bool(parse_time(value))
    except ValueError:
        return False


# Every field a pointer may hold, with its check and its default when absent (None: required).
# Validated on every read: routers and status must never trip over a wrong type deep inside.
_REQUIRED = object()
_POINTER_FIELDS = {
    "channel": (_channel_name, _REQUIRED),
    "version": (_version_id, _REQUIRED),
    "previous": (lambda v: v is None or _version_id(v), None),
    "pinned": (lambda v: isinstance(v, bool), False),
    "updated": (_text, ""),
    "by": (_text, ""),
    "action": (_text, ""),
    "message": (lambda v: v is None or _text(v), None),
    "expires": (lambda v: v is None or _time(v), None),  # preview channels (publish --expires)
}
_SWITCH_FIELDS = {
    "version": (_version_id, _REQUIRED),
    "previous": (lambda v: v is None or _version_id(v), None),
    "action": (_text, _REQUIRED),
    "at": (_text, _REQUIRED),
    "by": (_text, _REQUIRED),
    "message": (lambda v: v is None or _text(v), None),
}


def _checked(raw, spec: dict, where: str, kind) -> dict:
    """The fields of ``spec`` from ``raw``, each checked; ValueError naming the first bad one. Fields
    of ``kind`` that ``spec`` does not list (added later) are passed through as read."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where.rstrip('.') or 'pointer'}: not an object")
    out = {}
    for name, (ok, default) in spec.items():
        if name not in raw or (raw[name] is None and default is not _REQUIRED):
            if default is _REQUIRED:
                raise ValueError(f"missing field {where}{name}")
            out[name] = default
            continue
        value = raw[name]
        if not ok(value):
            raise ValueError(f"bad {where}{name} {_short(value)}")
        out[name] = value
    for f in dataclass_fields(kind):
        if f.name not in spec and f.name not in ("history", "format") and f.name in raw:
            out[f.name] = raw[f.name]
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class PointerState:
    """A pointer as read, with the token a compare-and-swap needs (both None: channel not created)."""

    channel: str
    pointer: ChannelPointer | None
    token: str | None

    @property
    def version(self) -> str | None:
        return self.pointer.version if self.pointer else None


def actor() -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("GITHUB_ACTOR"):
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def read_pointer(store: Store, channel: str) -> PointerState:
    check_channel(channel)
    key = channel_key(channel)
    try:
        body = store.get(key)
    except ObjectNotFound:
        return PointerState(channel, None, None)
    return PointerState(channel, ChannelPointer.from_json(body.data, where=f"{store.url}/{key}"), body.info.token)


def read_all_pointers(store: Store, *, corrupt: dict[str, str] | None = None) -> dict[str, PointerState]:
    """Every channel's pointer, by name (one listing, then one read per channel).

    A corrupt pointer raises IntegrityError, unless ``corrupt`` is given: then it is recorded there
    (name → what is wrong) and the others are still read. Listing commands go on past one bad
    preview channel; prune does not, since it could not tell what that channel protects."""
    out = {}
    for info in store.list(CHANNELS):
        name = channel_of_key(info.key)
        if name:
            try:
                state = read_pointer(store, name)
            except IntegrityError as exc:
                if corrupt is None:
                    raise
                corrupt[name] = exc.message
                continue
            if state.pointer:
                out[name] = state
    return out


def expiry_after(seconds: float, now: datetime | None = None) -> str:
    """The ``expires`` value for a channel that should live ``seconds`` more (``--expires 7d``)."""
    when = (now or datetime.now(timezone.utc)) + timedelta(seconds=seconds)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def next_pointer(
    state: PointerState, version: str, *, action: str, message: str | None = None, pinned: bool | None = None,
    expires: str | None = None,
) -> ChannelPointer:
    """The pointer after a switch; ``expires`` replaces the channel's expiry, None keeps what it had."""
    old = state.pointer
    now, who = utcnow(), actor()
    previous = old.version if old and old.version != version else (old.previous if old else None)
    entry = Switch(version=version, previous=old.version if old else None, action=action, at=now, by=who, message=message)
    history = ((entry,) + (old.history if old else ()))[:HISTORY_LIMIT]
    return ChannelPointer(
        channel=state.channel,
        version=version,
        previous=previous,
        pinned=(old.pinned if old else False) if pinned is None else pinned,
        updated=now,
        by=who,
        action=action,
        message=message,
        history=history,
        expires=expires if expires is not None else (old.expires if old else None),
    )


def write_pointer(store: Store, state: PointerState, pointer: ChannelPointer) -> PointerState:
    """Compare-and-swap ``pointer`` over ``state``; ConflictError if the channel moved since it was read.

    The answer's ``pointer`` is ours, or, when the swap lost to a writer that put the channel exactly
    where we wanted it (same version, same pin), theirs: that is success too, and callers tell the two
    apart by comparing it with what they wrote.
    """
    key = channel_key(state.channel)
    mode = WriteMode.CREATE if state.token is None else IfMatch(state.token)
    data = pointer.to_json()
    try:
        info = store.put(key, data, content_type="application/json", cache_control="no-store", mode=mode)
    except PreconditionFailed:
        try:
            body = store.get(key)
        except Exception:  # the conflict is the news; what it moved to is a courtesy
            body = None
        if body is not None and body.data == data:
            # Our own write landed but its answer was lost, and the retry found it there: that is
            # success, not a conflict (the pointer carries a millisecond timestamp and the actor).
            return PointerState(state.channel, pointer, body.info.token)
        try:
            now = ChannelPointer.from_json(body.data, where=key) if body else None
        except IntegrityError:
            now = None
        if now is not None and now.version == pointer.version and now.pinned == pointer.pinned:
            # Two publishes of the same build (a re-run CI job, two machines): the other one switched
            # first. The channel serves what we wanted, so there is nothing to undo or retry.
            return PointerState(state.channel, now, body.info.token)
        moved = f" (it now serves {now.version})" if now else ""
        raise ConflictError(
            f"channel {state.channel!r} was changed by someone else while this command ran{moved}; nothing was switched.",
            hint="Check 'atomicsite status', then re-run if you still want this switch.",
        ) from None
    return PointerState(state.channel, pointer, info.token)


def delete_pointer_if_unchanged(store: Store, state: PointerState) -> bool:
    """Remove the channel's pointer only if it is still the one ``state`` read (compare-and-delete).

    False when it changed or went meanwhile (someone re-published, moved or deleted the channel): then
    it is left as it is. UnsupportedCondition where the store cannot check (nothing deleted). Used by
    prune for expired channels.
    """
    try:
        store.delete(channel_key(state.channel), if_match=state.token)
    except PreconditionFailed:
        return False
    return True


def with_expiry(pointer: ChannelPointer, expires: str) -> ChannelPointer:
    """The same version with a new expiry (publishing the build a channel already serves, with --expires)."""
    return replace(pointer, expires=expires)


def with_pin(pointer: ChannelPointer, pinned: bool, *, message: str | None = None) -> ChannelPointer:
    """The same version, pinned or not; the change is kept in the history like a switch."""
    action, now, who = ("pin" if pinned else "unpin"), utcnow(), actor()
    entry = Switch(version=pointer.version, previous=pointer.version, action=action, at=now, by=who, message=message)
    return replace(pointer, pinned=pinned, updated=now, by=who, action=action, message=message,
                   history=((entry,) + pointer.history)[:HISTORY_LIMIT])
