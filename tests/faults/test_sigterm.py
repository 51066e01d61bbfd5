"""SIGTERM while a handler is running (with batched receipts at prefetch 10): the message
in hand and the receipts batched with it are committed and acked, the process exits 0
within the handler's remaining time + 2 s, its registry row says stopped, and the
messages it had not started go back to the queue for the next consumer."""

from __future__ import annotations

import time

import pytest

from messaging.models import Consumer, Receipt
from tests.support.consumers import wait_running
from tests.support.draining import drain_with_consumer
from tests.support.environment import settings_env
from tests.support.exactly_once import acked_ids, check_exactly_once, handled_counts, publish_many
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

SLEEP = 3.0


def test_sigterm_mid_handler_finishes_acks_and_exits_zero(
    start_consumer, manage, fault_queue, tmp_path
):
    marker = tmp_path / "inside"
    before = publish_many(fault_queue, 5, prefix="a")
    (slow_id,) = publish_many(fault_queue, 1, prefix="slow")
    after = publish_many(fault_queue, 5, prefix="b")
    ids = [*before, slow_id, *after]
    consumer = start_consumer(
        fault_queue,
        "--prefetch",
        "10",
        "--batch-size",
        "5",
        handler="tests.support.handlers.record_paced",
        env={
            "MESSAGING_TEST_MARKER": str(marker),
            "MESSAGING_TEST_SLEEP": str(SLEEP),
            **settings_env(CONSUMER_HEARTBEAT_INTERVAL=1),
        },
    )
    wait_running(consumer, marker.exists, timeout=60)
    started = time.monotonic()
    consumer.terminate()
    rc = consumer.wait(timeout=60)
    elapsed = time.monotonic() - started
    assert rc == 0, consumer.describe()
    # The handler's remaining time (< SLEEP) + 2 s, with 1 s of slack for process exit.
    assert elapsed < SLEEP + 2 + 1, f"took {elapsed:.1f}s to stop"

    acked = acked_ids(fault_queue)
    assert slow_id in acked, "the message in hand was not acked"
    assert set(before) <= acked, "receipts before the message in hand were not acked"
    # Whatever was handled was also acked (no work committed without its ack), and the
    # rest went back to the queue.
    assert set(handled_counts()) == acked
    assert wait_for(lambda: queue_depth(fault_queue) == len(ids) - len(acked))
    assert not Receipt.objects.filter(queue_name=fault_queue, redelivered=True).exists()

    row = Consumer.objects.get(name=consumer.name)
    assert row.state == "stopped" and row.stopped_at is not None
    assert row.pid == consumer.pid
    assert row.status == "stopped"

    drain_with_consumer(manage, fault_queue)
    check_exactly_once(fault_queue, ids, context="SIGTERM mid-handler")
