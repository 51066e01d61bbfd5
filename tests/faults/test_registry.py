"""The consumer registry under faults: a runconsumer's row appears while it runs, with a
last_heartbeat that keeps moving and processed counts that match its receipts; it says
stopped after a clean exit; a SIGKILLed consumer (which cannot say anything) shows as
lost once it has been silent for 3 heartbeat intervals (CONSUMER_HEARTBEAT_INTERVAL=1)."""

from __future__ import annotations

import socket

import pytest

from messaging.models import Consumer, Queue
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import all_acked, check_exactly_once, publish_many
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

INTERVAL = 1
MESSAGES = 20


@pytest.fixture
def heartbeat_interval(settings):
    """This process judges "lost" with the same interval the consumers write with."""
    settings.MESSAGING = {**settings.MESSAGING, "CONSUMER_HEARTBEAT_INTERVAL": INTERVAL}
    return settings_env(CONSUMER_HEARTBEAT_INTERVAL=INTERVAL)


def row_of(consumer) -> Consumer | None:
    return Consumer.objects.filter(name=consumer.name).first()


def test_registry_row_heartbeats_counts_and_stops(start_consumer, fault_queue, heartbeat_interval):
    ids = publish_many(fault_queue, MESSAGES)
    consumer = start_consumer(fault_queue, "--prefetch", "4", env=heartbeat_interval)
    row = wait_running(consumer, lambda: row_of(consumer), timeout=60)
    assert row.pid == consumer.pid
    assert row.host == socket.gethostname()
    assert row.queues == [fault_queue]
    assert row.prefetch == 4
    assert row.state == "running" and row.status == "running"
    assert row.started_at <= row.last_heartbeat
    assert row in Consumer.objects.live()

    wait_running(consumer, lambda: all_acked(fault_queue, ids), timeout=60)
    # The counts reach the table on the next heartbeats, and the heartbeat keeps moving.
    row = wait_running(
        consumer, lambda: (r := row_of(consumer)).processed == MESSAGES and r, timeout=30
    )
    first_beat = row.last_heartbeat
    row = wait_running(
        consumer, lambda: (r := row_of(consumer)).last_heartbeat > first_beat and r, timeout=30
    )
    assert row.failed == 0 and row.state == "running"
    assert consumer.alive(), consumer.describe()

    stop_and_wait(consumer)
    row = row_of(consumer)
    assert row.state == "stopped" and row.status == "stopped"
    assert row.stopped_at is not None and row.stopped_at >= row.started_at
    assert row.processed == MESSAGES and row.failed == 0
    assert row not in Consumer.objects.live() and row not in Consumer.objects.lost()
    check_exactly_once(fault_queue, ids)


def test_sigkilled_consumer_shows_as_lost_after_three_intervals(
    start_consumer, fault_queue, heartbeat_interval
):
    Queue.objects.create(name=fault_queue)
    consumer = start_consumer(fault_queue, env=heartbeat_interval)
    first = wait_running(consumer, lambda: row_of(consumer), timeout=60)
    wait_running(
        consumer, lambda: row_of(consumer).last_heartbeat > first.last_heartbeat, timeout=30
    )
    assert row_of(consumer).status == "running"
    consumer.kill()
    row = row_of(consumer)
    assert row.state == "running"  # a killed process cannot mark itself stopped
    # Silent for more than 3 intervals: lost (and not live).
    row = wait_for(
        lambda: (r := row_of(consumer)).status == "lost" and r, timeout=3 * INTERVAL + 30
    )
    assert row.state == "running" and row.is_lost
    assert row in Consumer.objects.lost() and row not in Consumer.objects.live()
