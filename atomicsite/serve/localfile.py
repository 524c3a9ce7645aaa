"""Which file on local disk holds an object, when the router's store is the local store.

Servers that send files themselves (granian's ``http.response.pathsend``, sendfile underneath) then
move a large file without its bytes passing through Python. Only the plain local store (behind the
router's own retry and metrics wrappers) qualifies: any other wrapper, such as a test's fault
injection, must see every read, so it gets the streamed path.
"""

from __future__ import annotations

import os

from ..retry import RetryingStore
from ..stores.local import LocalStore


def local_file(store, key: str, size: int) -> str | None:
    """The path of ``key`` if ``store`` is a local store and the file has the expected size, else None."""
    from .metrics import MeasuredStore

    while isinstance(store, (RetryingStore, MeasuredStore)):
        store = store.inner
    if type(store) is not LocalStore:
        return None
    path = store.path_of(key)
    try:
        if os.stat(path).st_size != size:
            return None  # damaged: the streamed path reports it properly
    except OSError:
        return None  # missing: the streamed path answers the honest error
    return str(path)
