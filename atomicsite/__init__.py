"""atomicsite: atomic, content-addressed static site deploys to your own bucket.

The public API; every CLI command is one call here::

    import atomicsite
    result = atomicsite.publish("dist", "s3://my-bucket/site")
    atomicsite.rollback("s3://my-bucket/site")

Cloud SDKs are imported only when a target needs them.
"""

__version__ = "0.2.0"

from .config import Settings, load_settings  # noqa: E402
from .errors import AtomicsiteError  # noqa: E402
from .prune import prune  # noqa: E402
from .publish import PublishEvents, PublishResult, publish  # noqa: E402
from .query import diff, history, status, verify, versions  # noqa: E402
from .switch import delete_channel, list_channels, pin, promote, rollback, unpin  # noqa: E402

__all__ = [
    "__version__", "AtomicsiteError", "Settings", "load_settings", "publish", "PublishResult", "PublishEvents",
    "promote", "pin", "unpin", "rollback", "status", "versions", "history", "diff", "verify", "prune",
    "list_channels", "delete_channel",
]
