"""One error tree for atomicsite.

Every failure a user can cause or meet is an :class:`AtomicsiteError` whose message says what is wrong
and what to do. The CLI catches the root class in exactly one place and maps it to :attr:`exit_code`;
anything else is a bug and is allowed to show a traceback.

Exit codes (documented in docs/cli.md):

====  ===========================================================================
0     success
1     general error (store failure, unexpected server answer)
2     usage: bad flag, bad config, bad build dir, bad input
3     conflict: the pointer moved under us, a concurrent publisher, a pinned channel, an older commit
4     not found: unknown version / channel / bucket
5     integrity: corrupt pointer or manifest, incomplete version, verify mismatch
6     access: denied credentials, target not writable
7     health check failed after a switch (the switch was undone)
8     the build references files it does not contain (links gate); nothing was uploaded
130   interrupted (Ctrl-C); the message says what state the site is in
143   terminated (SIGTERM); likewise
====  ===========================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_NOT_FOUND = 4
EXIT_INTEGRITY = 5
EXIT_ACCESS = 6
EXIT_HEALTH = 7
EXIT_BROKEN_REFERENCES = 8  # raised by atomicsite.links.BrokenReferences
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class AtomicsiteError(Exception):
    """Root of every error atomicsite raises on purpose. ``str(err)`` is one actionable line."""

    exit_code = EXIT_ERROR
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        if hint and not message.rstrip().endswith((".", "!", "?")):
            message = message.rstrip() + "."
        self.message = message
        super().__init__(f"{message} {hint}" if hint else message)

    def to_json(self) -> dict:
        return {"error": self.kind, "message": self.message, "hint": self.hint, "exit_code": self.exit_code}


class UsageError(AtomicsiteError):
    """Bad flags, config or input (the build dir, a version name)."""

    exit_code = EXIT_USAGE
    kind = "usage"


class ConfigError(UsageError):
    kind = "config"


class BuildDirError(UsageError):
    """The build dir is missing, empty, not a dir, or holds something we refuse to publish."""

    kind = "build_dir"


class ConflictError(AtomicsiteError):
    """Someone else changed the pointer, or a rule (pinned channel) forbids the switch."""

    exit_code = EXIT_CONFLICT
    kind = "conflict"


class OlderBuildRefused(ConflictError):
    """publish/promote would move a channel to a build of an older commit than it serves."""

    kind = "older_commit"


class PreconditionFailed(ConflictError):
    """A conditional write lost: the object changed (or exists) since it was read."""

    kind = "precondition_failed"


class AlreadyExists(PreconditionFailed):
    """A create-only write found the object already there."""

    kind = "already_exists"


class NotFound(AtomicsiteError):
    exit_code = EXIT_NOT_FOUND
    kind = "not_found"


class ObjectNotFound(NotFound):
    """A key is not in the store. Raised by stores; the API turns it into something user-facing."""

    kind = "object_not_found"

    def __init__(self, key: str, message: str | None = None):
        self.key = key
        super().__init__(message or f"no object at {key!r}")


class VersionNotFound(NotFound):
    kind = "version_not_found"


class ChannelNotFound(NotFound):
    kind = "channel_not_found"


class BucketNotFound(NotFound):
    kind = "bucket_not_found"


class TargetNotFound(NotFound):
    """A read command was pointed at a target where nothing was ever published (a typo, the wrong dir)."""

    kind = "target_not_found"


class IntegrityError(AtomicsiteError):
    """Stored data is corrupt, incomplete or does not match its manifest."""

    exit_code = EXIT_INTEGRITY
    kind = "integrity"


class AccessDenied(AtomicsiteError):
    exit_code = EXIT_ACCESS
    kind = "access_denied"


class StoreError(AtomicsiteError):
    """A store operation failed for a reason that is not the user's input."""

    kind = "store"


class TransientStoreError(StoreError):
    """A failure worth retrying (throttling, 5xx, reset connection). Retried by the transfer layer."""

    kind = "transient"


class UnsafeStoreError(StoreError):
    """The store accepts conditional-write headers but ignores them: switching there could lose updates."""

    kind = "unsafe_store"


class UnsupportedCondition(StoreError):
    """The store cannot make this operation conditional (e.g. a delete with If-Match); nothing was done."""

    kind = "unsupported_condition"


class HealthCheckFailed(AtomicsiteError):
    exit_code = EXIT_HEALTH
    kind = "health_check_failed"
