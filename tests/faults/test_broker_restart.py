"""The broker restarts (`rabbitmqctl stop_app` / `start_app`) under a running consumer
with persistent messages in a durable queue: nothing is lost, and the consumer resumes
by itself (same process, no restart from outside).

The broker is shared with other test runs on this machine: it is down for a few seconds
only, and always started again (``broker_stopped`` restarts it in ``finally`` and waits
until it answers)."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import all_acked, check_exactly_once, handled_counts, publish_many
from tests.support.outages import broker_stopped
from tests.support.rabbitmq import broker_connections, queue_depth

pytestmark = [pytest.mark.faults, pytest.mark.broker_control]

MESSAGES = 600
DOWN = 3.0


def test_broker_restart_loses_nothing_and_consumer_resumes_by_itself(start_consumer, fault_queue):
    if not shutil.which("rabbitmqctl"):
        pytest.skip("needs rabbitmqctl to restart the broker")  # never the case in CI here
    ids = publish_many(fault_queue, MESSAGES)
    consumer = start_consumer(
        fault_queue,
        "--prefetch",
        "10",
        handler="tests.support.handlers.record_paced",
        env={
            "MESSAGING_TEST_PACE": "0.01",
            **settings_env(RECONNECT_DELAY=0.2, RECONNECT_MAX_DELAY=1),
        },
    )
    wait_running(consumer, lambda: sum(handled_counts().values()) >= 50, timeout=60)
    with broker_stopped():
        time.sleep(DOWN)
        assert consumer.alive(), consumer.describe()
    done_at_restart = sum(handled_counts().values())
    assert done_at_restart < MESSAGES, "drained before the restart: slow it down"
    # The durable queue kept the persistent messages that were not acked yet.
    assert queue_depth(fault_queue) is not None

    wait_running(consumer, lambda: all_acked(fault_queue, ids), timeout=180)
    assert consumer.alive(), consumer.describe()
    assert len(broker_connections(consumer.name)) == 1  # reconnected by itself
    stop_and_wait(consumer)
    check_exactly_once(fault_queue, ids, context=f"broker restart after {done_at_restart}")
