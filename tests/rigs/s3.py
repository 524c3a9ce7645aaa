import pytest


@pytest.fixture
def s3_rig():
    pytest.skip("S3 rig not built yet")
