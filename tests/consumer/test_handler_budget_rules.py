"""Handler time budgets as plain code: which budget applies, and what going over does."""

from __future__ import annotations

import logging

import pika
import pytest

from messaging.consumer.budget import HandlerBudget, budget_for, over_budget
from messaging.consumer.handlers import Delivery
from messaging.consumer.stats import ConsumerStats

pytestmark = pytest.mark.unit


def delivery(queue: str = "q", message_id: str = "m-1") -> Delivery:
    return Delivery(
        queue=queue,
        body=b"",
        properties=pika.BasicProperties(message_id=message_id),
        delivery_tag=1,
        redelivered=False,
    )


def test_the_queue_budget_wins_over_the_setting():
    assert budget_for(2.0, 5) == 2.0
    assert budget_for(None, 5) == 5.0
    assert budget_for(None, None) is None
    assert not over_budget(10, None)
    assert over_budget(2.5, 2.0) and not over_budget(2.0, 2.0)


def test_a_handler_over_budget_is_logged_with_its_message_id_and_counted(caplog):
    stats = ConsumerStats()
    budget = HandlerBudget({"q": 0.5, "free": None}, stats)
    assert budget.active
    with caplog.at_level(logging.WARNING, logger="messaging.consumer"):
        budget.check(delivery(), 0.2)
        budget.check(delivery("free"), 100)
        budget.check(delivery(message_id="slow-1"), 0.75)
    assert stats.over_budget == 1
    (record,) = caplog.records
    assert "slow-1" in record.getMessage() and "time budget of 0.5s" in record.getMessage()
    assert "not stopped" in record.getMessage()
    assert not HandlerBudget({"q": None}, ConsumerStats()).active
