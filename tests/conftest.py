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
