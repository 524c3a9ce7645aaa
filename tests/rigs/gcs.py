import pytest


@pytest.fixture
def gcs_rig():
    pytest.skip("GCS rig not built yet")
