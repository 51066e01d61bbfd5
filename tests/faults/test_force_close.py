"""The broker closes the consumer's connection mid-stream (as `rabbitmqctl
close_connection` / `close_all_connections` would): the same process reconnects by itself
and finishes; nothing lost, nothing handled twice."""

from __future__ import annotations

import pytest

from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import all_acked, check_exactly_once, handled_counts, publish_many
from tests.support.rabbitmq import broker_connections, close_broker_connections

pytestmark = pytest.mark.faults

MESSAGES = 1000
CLOSES = 5
#: Messages handled on each connection before the broker cuts it.
BETWEEN = 40


def test_connection_closed_by_broker_mid_stream_reconnects_and_finishes(
    start_consumer, fault_queue
):
    ids = publish_many(fault_queue, MESSAGES)
    consumer = start_consumer(
        fault_queue,
        "--prefetch",
        "10",
        handler="tests.support.handlers.record_paced",
        env={"MESSAGING_TEST_PACE": "0.02", **settings_env(RECONNECT_MAX_DELAY=1)},
    )
    closes = progress = 0
    while closes < CLOSES:
        # Let it make progress on the current connection, then cut that connection.
        floor = progress + BETWEEN
        progress = wait_running(
            consumer, lambda f=floor: (n := sum(handled_counts().values())) >= f and n, timeout=60
        )
        if progress > MESSAGES - 2 * BETWEEN:
            break  # nearly drained: what is left must still go through
        closed = wait_running(consumer, lambda: close_broker_connections(consumer.name), 30)
        assert closed == 1, f"{closed} connections named {consumer.name}"
        closes += 1
    assert closes >= 3, f"drained after {closes} forced closes: slow the handler down"
    wait_running(consumer, lambda: all_acked(fault_queue, ids), timeout=120)
    assert consumer.alive(), consumer.describe()  # one process did it all
    assert len(broker_connections(consumer.name)) == 1  # and it is connected again
    stop_and_wait(consumer)
    check_exactly_once(fault_queue, ids, context=f"{closes} forced closes")
