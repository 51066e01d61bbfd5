"""The pure parts of ``--threads`` and of the shutdown, without a broker: the worker
pool runs batches at once and reports what is still running, and the stop signals'
rules (one request however often it is delivered within a second, exit at once on a
later signal, exit non-zero past the deadline)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from messaging.consumer.stats import ConsumerStats
from messaging.consumer.workers import WorkerPool
from messaging.management import shutdown

pytestmark = pytest.mark.unit


def test_the_pool_runs_batches_at_once_and_counts_them_in_flight():
    release = threading.Event()
    started: list[str] = []

    def handle(batch: list) -> None:
        started.append(threading.current_thread().name)
        release.wait(5)

    stats = ConsumerStats()
    pool = WorkerPool(3, handle, stats)
    pool.start()
    for batch in (["a"], ["b", "c"], ["d"]):
        assert pool.take_slot(1)
        pool.submit(batch)  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(set(started)) == 3  # three workers at once
    assert stats.in_flight == 4 and pool.running() == 3
    assert not pool.take_slot(0.05)  # every worker busy: nothing more is taken
    assert pool.oldest_start() is not None
    release.set()
    assert pool.stop(timeout=5) == 0
    assert stats.in_flight == 0 and pool.running() == 0 and pool.crashed is None


def test_stop_past_its_timeout_says_how_many_still_run():
    release = threading.Event()
    pool = WorkerPool(2, lambda batch: release.wait(5), ConsumerStats())
    pool.start()
    assert pool.take_slot(1)
    pool.submit(["slow"])  # type: ignore[list-item]
    time.sleep(0.05)
    assert pool.stop(timeout=0.1) == 1
    release.set()


def test_a_crashing_batch_is_kept_for_the_loop_to_raise():
    def handle(batch: list) -> None:
        raise KeyError("boom")

    pool = WorkerPool(1, handle, ConsumerStats())
    pool.start()
    assert pool.take_slot(1)
    pool.submit(["x"])  # type: ignore[list-item]
    assert pool.stop(timeout=5) == 0
    assert isinstance(pool.crashed, KeyError)


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []
    monkeypatch.setattr(shutdown.os, "_exit", codes.append)
    return codes


@pytest.fixture
def disarmed() -> Iterator[list[shutdown.GracefulStop]]:
    """GracefulStops whose deadline is disarmed when the test ends: an armed watch
    outlives the test and, once the monkeypatched ``os._exit`` is restored, ends the
    whole pytest process with status 1 when its timeout passes."""
    stoppers: list[shutdown.GracefulStop] = []
    yield stoppers
    for stopper in stoppers:
        stopper.disarm()
    deadline = time.monotonic() + 2
    while watching() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not watching(), "a shutdown deadline is still armed after the test"


def watching() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "messaging-shutdown" and t.is_alive()]


def test_a_second_signal_within_a_second_is_the_same_request(exits, disarmed):
    stops: list[int] = []
    stopper = shutdown.GracefulStop(lambda: stops.append(1), what="messages", timeout=60)
    disarmed.append(stopper)
    stopper._on_signal(signal.SIGTERM, None)
    stopper._on_signal(signal.SIGTERM, None)  # GNU timeout: the child, then its group
    assert stops == [1] and exits == []


def test_a_later_second_signal_exits_at_once_after_marking(exits, disarmed):
    reasons: list[str] = []
    stopper = shutdown.GracefulStop(
        lambda: None, what="messages", timeout=60, on_exit_now=reasons.append
    )
    disarmed.append(stopper)
    stopper._on_signal(signal.SIGTERM, None)
    assert stopper.requested_at is not None
    stopper.requested_at -= shutdown.SAME_REQUEST + 0.5
    stopper._on_signal(signal.SIGINT, None)
    assert exits == [128 + signal.SIGINT]
    assert reasons == ["stopped by a second signal (SIGINT)"]


def test_past_the_deadline_it_exits_non_zero_naming_what_still_runs(exits, capsys):
    reasons: list[str] = []
    stopper = shutdown.GracefulStop(
        lambda: None,
        what="messages",
        timeout=0.05,
        running=lambda: "3 handler(s)",
        on_exit_now=reasons.append,
        command="runconsumer",
    )
    stopper.request()
    deadline = time.monotonic() + 5
    while not exits and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exits == [shutdown.EXIT_DEADLINE]
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("runconsumer: shutdown deadline of 0.05s passed with 3 handler(s)")
    assert reasons == [line]


def test_a_run_that_ends_in_time_disarms_the_deadline(exits):
    stopper = shutdown.GracefulStop(lambda: None, what="batch", timeout=0.1)
    restore = stopper.install()
    stopper.request()
    restore()
    time.sleep(0.3)
    assert exits == []
