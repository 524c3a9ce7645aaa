import os

import pytest

pytest_plugins = ["tests.rigs.local", "tests.rigs.s3", "tests.rigs.gcs"]

# The behavioural suite runs unchanged against each of these (memory is only for the store contract).
STORES = ["local", "s3", "gcs"]


@pytest.fixture(params=STORES)
def rig(request):
    """A fresh, empty target on each real store backend."""
    return request.getfixturevalue(f"{request.param}_rig")


@pytest.fixture
def store(rig):
    return rig.store


@pytest.fixture(params=["tree", "objects"])
def layout(request, monkeypatch):
    """Run a test over both storage layouts: what a new target gets when publish is not told.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("layout")``; a test that asserts
    something layout-specific takes the fixture and reads its value."""
    import importlib

    module = importlib.import_module("atomicsite.publish")  # the module, not the function the package exports
    monkeypatch.setattr(module, "_default_layout", lambda *args: request.param)
    return request.param


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Publishes keep the link gate's cache (atomicsite.link_cache) here, not in the user's ~/.cache."""
    where = tmp_path_factory.mktemp("cache")
    os.environ["ATOMICSITE_CACHE_DIR"] = str(where / "atomicsite")
    os.environ["XDG_CACHE_HOME"] = str(where)  # for tests that clear every ATOMICSITE_* variable


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake AWS credentials and no shared config, for SDK clients pointed at local servers."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
