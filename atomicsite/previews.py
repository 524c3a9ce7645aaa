"""Preview channels people can click: a URL per channel, and channels that expire.

- ``preview_url = "https://{channel}.preview.example.com"`` in config gives every channel but ``live``
  a URL; ``publish`` prints and returns it (the GitHub Action posts it on the pull request). The
  template is checked when the config loads.
- ``publish --channel pr-12 --expires 7d`` records an expiry in the channel pointer;
  :func:`remove_expired_channels` is prune's first step: it removes each expired, unpinned preview
  channel by compare-and-delete against the pointer it read, so a channel re-published meanwhile stays.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from .channels import delete_pointer_if_unchanged, read_all_pointers
from .errors import ConfigError, UnsupportedCondition
from .layout import DEFAULT_CHANNEL
from .stores.base import Store

SWITCHERS_RECORD = "_atomicsite/switchers/{channel}.json"  # as atomicsite.switch writes it


@dataclass(frozen=True)
class PreviewUrl:
    """A checked ``preview_url`` template: ``PreviewUrl.parse("https://{channel}.p.example.com", where=…)``."""

    template: str

    @classmethod
    def parse(cls, value, *, where: str) -> PreviewUrl:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: must be a URL template like 'https://{{channel}}.preview.example.com'")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ConfigError(f"{where}: {value!r} is not a valid template ({exc})",
                              hint="Write braces only around channel: https://{channel}.preview.example.com") from None
        if fields != {"channel"}:
            extra = sorted(fields - {"channel"})
            raise ConfigError(
                f"{where}: {value!r} " + (f"has unknown placeholder {{{extra[0]}}}" if extra else "has no {channel}"),
                hint="Use {channel} once or more and no other placeholder: https://{channel}.preview.example.com")
        parts = urlsplit(value.replace("{channel}", "x"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: {value!r} is not an absolute http(s) URL",
                              hint="e.g. https://{channel}.preview.example.com")
        return cls(value)

    def url_for(self, channel: str) -> str | None:
        """The channel's preview URL; None for ``live`` (it is the site itself)."""
        return None if channel == DEFAULT_CHANNEL else self.template.replace("{channel}", channel)


@dataclass
class ExpiredChannels:
    """What prune's first step did: channels removed, and expired ones it had to leave (with why)."""

    removed: dict[str, str] = field(default_factory=dict)  # channel -> the version it served
    kept: dict[str, str] = field(default_factory=dict)  # channel -> why it was left
    cdn: dict[str, str] = field(default_factory=dict)  # removed channel -> what its CDN key removal did

    def to_dict(self) -> dict:
        return {"removed": self.removed, "kept": self.kept, "cdn": self.cdn}


def remove_expired_channels(store: Store, *, dry_run: bool = False, now: datetime | None = None,
                            on_removed: Callable[[str, str], str | None] | None = None) -> ExpiredChannels:
    """Remove every expired preview channel (never ``live``, never a pinned one).

    Each removal is a compare-and-delete against the pointer as read here: a channel that someone
    re-published, moved or pinned since keeps its new pointer. The versions it served are then
    ordinary prune candidates (prune's version step re-reads every pointer). ``on_removed(channel,
    version)`` runs after each removal (prune deletes the channel's CloudFront edge key there) and may
    return a note for the report.
    """
    now = now or datetime.now(timezone.utc)
    out = ExpiredChannels()
    for name, state in sorted(read_all_pointers(store).items()):
        p = state.pointer
        if name == DEFAULT_CHANNEL or not p.expired(now):
            continue
        if dry_run:
            out.removed[name] = p.version
            continue
        try:
            gone = delete_pointer_if_unchanged(store, state)
        except UnsupportedCondition as exc:  # the store cannot delete conditionally: leave it for 'channel delete'
            out.kept[name] = f"not removed: {exc.message}"
            continue
        if gone:
            out.removed[name] = p.version
            store.delete_many([SWITCHERS_RECORD.format(channel=name)])  # its CDN record, if any
            note = on_removed(name, p.version) if on_removed else None
            if note:
                out.cdn[name] = note
        else:
            out.kept[name] = "not removed: it was re-published or moved while prune ran"
    return out


__all__ = ["PreviewUrl", "ExpiredChannels", "remove_expired_channels"]
