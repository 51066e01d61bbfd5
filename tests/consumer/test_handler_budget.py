"""A handler running past its queue's time budget, against the real broker: logged with
its message_id and counted, never stopped (its outcome is unchanged)."""

from __future__ import annotations

import logging
import time

import pytest

from messaging import publish
from messaging.consumer import Consumer
from messaging.models import Queue, Receipt

pytestmark = pytest.mark.django_db(transaction=True)


def slow(delivery):
    time.sleep(0.3 if delivery.body == b"slow" else 0)


def test_a_slow_handler_is_logged_and_counted_not_stopped(queue_name, caplog):
    row = Queue.objects.create(name=queue_name, handler_time_budget=0.1)
    slow_one = publish(queue_name, b"slow")
    publish(queue_name, b"quick")
    consumer = Consumer([row], {queue_name: slow}, max_messages=2)
    with caplog.at_level(logging.WARNING, logger="messaging.consumer"):
        stats = consumer.run()
    assert stats.over_budget == 1 and stats.acked == 2
    warnings = [r.getMessage() for r in caplog.records if "time budget" in r.getMessage()]
    assert len(warnings) == 1 and slow_one.message_id in warnings[0]
    assert Receipt.objects.filter(queue_name=queue_name, outcome="acked").count() == 2


def test_the_setting_is_the_default_budget(queue_name, settings, caplog):
    settings.MESSAGING = {**settings.MESSAGING, "HANDLER_TIME_BUDGET": 0.1}
    publish(queue_name, b"slow")
    with caplog.at_level(logging.WARNING, logger="messaging.consumer"):
        stats = Consumer([queue_name], {queue_name: slow}, max_messages=1).run()
    assert stats.over_budget == 1
