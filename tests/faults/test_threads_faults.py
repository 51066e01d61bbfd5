"""``runconsumer --threads 8`` under faults: SIGKILL at random points, the broker
closing the connection with 8 handlers in flight, SIGTERM with 8 handlers running (a
clean drain, and a deadline that runs out), and GNU ``timeout`` signalled once around
it. Each ends with the exactly-once check: nothing lost, no effect twice."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from messaging.models import Consumer, Receipt
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.draining import drain_with_consumer
from tests.support.environment import ROOT, manage_env, settings_env
from tests.support.exactly_once import (
    acked_ids,
    all_acked,
    check_exactly_once,
    handled_counts,
    publish_many,
)
from tests.support.rabbitmq import (
    broker_connections,
    close_broker_connections,
    consumers_on,
    queue_depth,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

THREADS = ("--threads", "8")


def test_sigkill_at_random_points_with_threads_loses_nothing(start_consumer, manage, fault_queue):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ids = publish_many(fault_queue, 1000)
    kills = 0
    while kills < 5 and queue_depth(fault_queue):
        consumer = start_consumer(
            fault_queue,
            *THREADS,
            "-v",
            "0",
            handler="tests.support.handlers.record_paced",
            env={"MESSAGING_TEST_PACE": "0.02"},
        )
        wait_for(lambda c=consumer: consumers_on(fault_queue) or not c.alive(), timeout=60)
        assert consumer.alive(), consumer.describe()
        time.sleep(rng.uniform(0.3, 1.5))
        consumer.kill()
        kills += 1
        wait_for(lambda: consumers_on(fault_queue) == 0, timeout=30)
    drain_with_consumer(manage, fault_queue, "--prefetch", "50")
    check_exactly_once(fault_queue, ids, context=f"seed={seed} kills={kills} --threads 8")
    assert kills >= 3, f"the queue drained after {kills} kills: kill sooner"


def test_broker_closes_the_connection_with_eight_in_flight(start_consumer, fault_queue):
    ids = publish_many(fault_queue, 800)
    consumer = start_consumer(
        fault_queue,
        *THREADS,
        handler="tests.support.handlers.record_paced",
        env={"MESSAGING_TEST_PACE": "0.05", **settings_env(RECONNECT_MAX_DELAY=1)},
    )
    closes, progress = 0, 0
    while closes < 3:
        floor = progress + 40
        progress = wait_running(
            consumer, lambda f=floor: (n := sum(handled_counts().values())) >= f and n, timeout=60
        )
        if progress > len(ids) - 80:
            break  # nearly drained: what is left must still go through
        # Handlers are mid-flight (8 at once, 50 ms each) when the broker cuts in.
        assert wait_running(consumer, lambda: close_broker_connections(consumer.name), 30) == 1
        closes += 1
    assert closes >= 2, f"drained after {closes} forced closes: slow the handler down"
    wait_running(consumer, lambda: all_acked(fault_queue, ids), timeout=120)
    assert consumer.alive() and len(broker_connections(consumer.name)) == 1
    stop_and_wait(consumer)
    check_exactly_once(fault_queue, ids, context=f"{closes} forced closes, --threads 8")


def test_sigterm_with_eight_running_drains_and_hands_the_rest_on(
    start_consumer, manage, fault_queue
):
    ids = publish_many(fault_queue, 40)
    consumer = start_consumer(
        fault_queue,
        *THREADS,
        "--prefetch",
        "20",
        handler="tests.support.thread_handlers.timed_record",
        env={"MESSAGING_TEST_PACE": "1.5", **settings_env(CONSUMER_HEARTBEAT_INTERVAL=1)},
    )
    wait_running(
        consumer, lambda: Consumer.objects.filter(name=consumer.name, in_flight=8).exists()
    )
    consumer.terminate()
    # A second consumer takes the prefetched rest while the first drains.
    second = start_consumer(fault_queue, handler="tests.support.handlers.record")
    rc = consumer.wait(timeout=30)
    assert rc == 0, consumer.describe()
    assert "Second signal" not in consumer.stderr
    first = set(
        Receipt.objects.filter(queue_name=fault_queue, consumer_name=consumer.name).values_list(
            "message_id", flat=True
        )
    )
    assert 8 <= len(first) < len(ids), f"{len(first)} handled before the stop"
    row = Consumer.objects.get(name=consumer.name)
    assert (row.state, row.in_flight) == ("stopped", 0) and row.stopped_at is not None
    wait_running(second, lambda: all_acked(fault_queue, ids), timeout=60)
    stop_and_wait(second)
    check_exactly_once(fault_queue, ids, context="SIGTERM with 8 running")


def test_shutdown_deadline_exits_non_zero_and_the_broker_redelivers(
    start_consumer, manage, fault_queue
):
    ids = publish_many(fault_queue, 8, prefix="slow")
    consumer = start_consumer(
        fault_queue,
        *THREADS,
        "--shutdown-timeout",
        "2",
        handler="tests.support.thread_handlers.timed_record",
        env={"MESSAGING_TEST_SLEEP": "8", **settings_env(CONSUMER_HEARTBEAT_INTERVAL=1)},
    )
    wait_running(
        consumer, lambda: Consumer.objects.filter(name=consumer.name, in_flight=8).exists()
    )
    started = time.monotonic()
    consumer.terminate()
    rc = consumer.wait(timeout=30)
    assert rc == 1, consumer.describe()
    assert time.monotonic() - started < 6
    last = consumer.stderr.strip().splitlines()[-1]
    assert "shutdown deadline of 2s passed with 8 handler(s) still running" in last, last
    row = Consumer.objects.get(name=consumer.name)
    assert row.state == "stopped" and "deadline" in row.last_error
    assert not acked_ids(fault_queue)
    drain_with_consumer(manage, fault_queue, "--threads", "8")
    check_exactly_once(fault_queue, ids, context="shutdown deadline passed")


def test_timeout_signalled_once_around_runconsumer_drains_cleanly(manage, fault_queue, tmp_path):
    ids = publish_many(fault_queue, 20)
    name = f"timeout-{fault_queue[-8:]}"
    err = tmp_path / "err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            ["timeout", "--preserve-status", "600", sys.executable, str(ROOT / "manage.py"),
             "runconsumer", fault_queue, *THREADS, "--name", name,
             "--handler", "tests.support.handlers.record_paced"],
            env=manage_env(MESSAGING_TEST_PACE="0.5"), cwd=ROOT, stderr=stderr,
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(lambda: sum(handled_counts().values()) >= 8, timeout=60)
            proc.send_signal(signal.SIGTERM)  # timeout passes it on twice
            assert proc.wait(timeout=30) == 0, err.read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):  # timeout and runconsumer
                os.killpg(proc.pid, signal.SIGKILL)
    assert "Second signal" not in err.read_text()
    assert Consumer.objects.get(name=name).state == "stopped"
    drain_with_consumer(manage, fault_queue)
    check_exactly_once(fault_queue, ids, context="timeout around runconsumer")
