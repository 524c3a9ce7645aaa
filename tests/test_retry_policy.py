"""RetryPolicy: a first attempt without tenacity's machinery, then the same backoff as before."""

import time

import pytest

from atomicsite.errors import AccessDenied, TransientStoreError
from atomicsite.retry import RetryPolicy


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)  # tenacity sleeps through time.sleep as well
    return waited


def failing(times: int, exc=TransientStoreError("slow down")):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"

    return fn, calls


def test_a_first_success_neither_waits_nor_retries(sleeps, monkeypatch):
    """...nor builds a retry loop: the first attempt is a plain call (a copy per file pays for it)."""
    import atomicsite.retry as retry

    def no_loop(*args, **kwargs):
        raise AssertionError("a tenacity loop was built for a call that succeeded at once")

    monkeypatch.setattr(retry, "Retrying", no_loop)
    fn, calls = failing(0)
    assert RetryPolicy().call(fn) == "done"
    assert (len(calls), sleeps) == (1, [])


def test_backoff_doubles_from_initial_up_to_maximum_with_jitter(sleeps):
    fn, calls = failing(10)
    with pytest.raises(TransientStoreError):
        RetryPolicy(attempts=5, initial=0.1, maximum=0.25).call(fn)
    assert len(calls) == 5 and len(sleeps) == 4
    for waited, base in zip(sleeps, [0.1, 0.2, 0.25, 0.25]):
        assert base <= waited <= base + 0.1 + 1e-9


def test_success_on_a_later_attempt(sleeps):
    fn, calls = failing(2)
    assert RetryPolicy(attempts=3, initial=0.01).call(fn) == "done"
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("attempts", [1, 0])
def test_one_attempt_means_no_retry(sleeps, attempts):
    fn, calls = failing(1)
    with pytest.raises(TransientStoreError):
        RetryPolicy(attempts=attempts).call(fn)
    assert (len(calls), sleeps) == (1, [])


def test_permanent_errors_are_not_retried(sleeps):
    fn, calls = failing(1, AccessDenied("no"))
    with pytest.raises(AccessDenied):
        RetryPolicy().call(fn)
    assert (len(calls), sleeps) == (1, [])
