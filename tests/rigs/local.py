import pytest

from atomicsite.stores.local import LocalStore
from atomicsite.stores.memory import MemoryStore

from . import Rig


@pytest.fixture
def local_rig(tmp_path):
    root = tmp_path / "site"
    yield Rig("local", LocalStore(root), str(root), keeps_headers=False,
              fresh=lambda name: LocalStore(tmp_path / f"site-{name}"))


@pytest.fixture
def memory_rig():
    store = MemoryStore()
    yield Rig("memory", store, store.url)
