"""``runconsumer --health-file``: fresh while the consumer is alive, left to age once
its calling thread is stuck (here: a handler past the consumer timeout)."""

from __future__ import annotations

import time

import pytest

from messaging.publishing import get_queue
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import publish_many

pytestmark = pytest.mark.django_db(transaction=True)


def test_health_file_is_fresh_then_ages_when_stuck(start_consumer, queue_name, tmp_path):
    queue = get_queue(queue_name)
    health = tmp_path / "alive"
    marker = tmp_path / "inside"
    consumer = start_consumer(
        queue_name,
        "--health-file",
        str(health),
        handler="tests.support.handlers.slow",
        env={
            **settings_env(BROKER_CONSUMER_TIMEOUT=3),
            "MESSAGING_TEST_MARKER": str(marker),
            "MESSAGING_TEST_SLEEP": "60",
        },
    )
    wait_running(consumer, health.exists)
    first = health.stat().st_mtime
    wait_running(consumer, lambda: health.stat().st_mtime > first, timeout=20)
    publish_many(queue, 1)
    wait_running(consumer, marker.exists)
    # Stuck in the handler beyond BROKER_CONSUMER_TIMEOUT (3 s): no more touches.
    time.sleep(6)
    stuck_at = health.stat().st_mtime
    time.sleep(5)
    assert health.stat().st_mtime == stuck_at
    assert consumer.alive()
    consumer.kill()


def test_health_file_is_withdrawn_when_the_consumer_stops(start_consumer, queue_name, tmp_path):
    get_queue(queue_name)
    health = tmp_path / "alive"
    consumer = start_consumer(queue_name, "--health-file", str(health))
    wait_running(consumer, health.exists)
    stop_and_wait(consumer)
    # Removed on the stop signal (not ready) and never touched again.
    assert not health.exists()
    time.sleep(3)
    assert not health.exists()
