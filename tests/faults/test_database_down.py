"""The database becomes unavailable mid-run (SQLite: another connection holds an
EXCLUSIVE lock; PostgreSQL: the database refuses connections and the consumer's backends
are terminated). That is not the handler's fault: nothing is acked, nothing is
dead-lettered, the consumer keeps running and backs off, and once the database is back
every message is handled exactly once."""

from __future__ import annotations

import time

import pytest

from messaging.models import Receipt
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import all_acked, check_exactly_once, handled_counts, publish_many
from tests.support.outages import database_unavailable, outage_env

pytestmark = pytest.mark.faults

MESSAGES = 300
OUTAGE = 5.0


def test_database_outage_mid_run_acks_nothing_loses_nothing_and_recovers(
    start_consumer, fault_queue
):
    ids = publish_many(fault_queue, MESSAGES)
    consumer = start_consumer(
        fault_queue,
        "--prefetch",
        "5",
        handler="tests.support.handlers.record_paced",
        # A low MAX_ATTEMPTS: database errors must not count as handler attempts.
        env={"MESSAGING_TEST_PACE": "0.01", **outage_env(), **settings_env(MAX_ATTEMPTS=2)},
    )
    wait_running(consumer, lambda: sum(handled_counts().values()) >= 30, timeout=60)
    with database_unavailable():
        started = time.monotonic()
        while time.monotonic() - started < OUTAGE:
            assert consumer.alive(), consumer.describe()
            time.sleep(0.25)
    assert consumer.alive(), consumer.describe()
    done_at_outage_end = sum(handled_counts().values())
    assert done_at_outage_end < MESSAGES, "drained before the outage: slow it down"

    wait_running(consumer, lambda: all_acked(fault_queue, ids), timeout=180)
    assert consumer.alive(), consumer.describe()  # the same process recovered by itself
    stop_and_wait(consumer)
    # The outage really reached the message path (not only the registry's heartbeat),
    # and the consumer said it requeued.
    said = [
        line
        for line in consumer.stderr.lower().splitlines()
        if "database" in line and "requeue" in line
    ]
    assert said, consumer.describe()
    assert not Receipt.objects.filter(
        queue_name=fault_queue, outcome__in=["dead_lettered", "rejected"]
    ).exists()
    check_exactly_once(fault_queue, ids, context="database outage")
