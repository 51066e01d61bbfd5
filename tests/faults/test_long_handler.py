"""A handler that runs for 10x the heartbeat interval (HEARTBEAT=2, the handler sleeps
20 s) finishes and acks on the same connection: the broker never saw a missed heartbeat
and the consumer never reconnected."""

from __future__ import annotations

import pytest

from messaging.models import Receipt
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import acked_ids, check_exactly_once, publish_many
from tests.support.rabbitmq import broker_connections, queue_depth, rabbitmqctl
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

HEARTBEAT = 2
SLEEP = 10 * HEARTBEAT


def test_handler_running_ten_heartbeats_acks_on_the_same_connection(
    start_consumer, fault_queue, tmp_path
):
    marker = tmp_path / "inside"
    (slow_id,) = publish_many(fault_queue, 1, prefix="slow")
    consumer = start_consumer(
        fault_queue,
        "-v",
        "2",
        handler="tests.support.handlers.record_paced",
        env={
            "MESSAGING_TEST_MARKER": str(marker),
            "MESSAGING_TEST_SLEEP": str(SLEEP),
            **settings_env(HEARTBEAT=HEARTBEAT),
        },
    )
    wait_running(consumer, marker.exists, timeout=60)
    before = broker_connections(consumer.name)
    assert len(before) == 1, before
    # The broker agreed to the 2 s heartbeat (so 20 s without one would be fatal).
    out = rabbitmqctl("-q", "list_connections", "timeout", "client_properties")
    timeouts = [line.split("\t")[0] for line in out.splitlines() if consumer.name in line]
    assert timeouts == [str(HEARTBEAT)]

    wait_running(consumer, lambda: slow_id in acked_ids(fault_queue), timeout=SLEEP + 60)
    assert consumer.alive(), consumer.describe()
    assert wait_for(lambda: queue_depth(fault_queue) == 0)
    # The same connection is still there, and it still works: one more message goes
    # through it.
    assert broker_connections(consumer.name) == before
    (next_id,) = publish_many(fault_queue, 1, prefix="next")
    wait_running(consumer, lambda: next_id in acked_ids(fault_queue), timeout=60)
    assert broker_connections(consumer.name) == before
    stop_and_wait(consumer)

    receipt = Receipt.objects.get(queue_name=fault_queue, message_id=slow_id)
    assert receipt.outcome == "acked" and not receipt.redelivered
    assert (receipt.finished_at - receipt.received_at).total_seconds() >= SLEEP
    check_exactly_once(fault_queue, [slow_id, next_id])
