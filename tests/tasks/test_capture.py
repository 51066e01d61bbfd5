"""Enqueued tasks in ``messaging.testing.capture()``: captured after the commit, found by
task, run by ``deliver()`` through the real task runner against the test database. No
broker: the settings point BROKER_URL at a closed port."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from messaging import conf
from messaging.models import Receipt
from messaging.task_backend.compat import TaskResultStatus, signals
from messaging.testing import capture
from messaging.testing.task_capture import TEST_WORKER
from tests.tasks import jobs

NO_BROKER = {**settings.MESSAGING, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}


@pytest.fixture(autouse=True)
def no_broker(settings) -> None:
    settings.MESSAGING = NO_BROKER


def test_tasks_are_captured_by_task_and_delivered(transactional_db) -> None:
    seen = []

    def record(sender, task_result, **kwargs):
        seen.append(task_result.status)

    signals.task_started.connect(record)
    signals.task_finished.connect(record)
    try:
        with capture() as captured:
            with transaction.atomic():
                result = jobs.make_group.enqueue("captured")
                other = jobs.add.enqueue(1, 2)
            (message,) = captured.filter(task=jobs.make_group)
            assert captured.filter(task="tests.tasks.jobs.add")[0].message_id == other.id
            assert message.message_id == result.id and message.json()["args"] == ["captured"]
            delivered = captured.deliver()
    finally:
        signals.task_started.disconnect(record)
        signals.task_finished.disconnect(record)
    assert len(delivered.acked) == 2
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.worker_ids == [TEST_WORKER]
    assert Group.objects.get(name="captured").pk == result.return_value
    assert seen == ["RUNNING", "SUCCESSFUL"] * 2


def test_a_rolled_back_enqueue_is_not_captured(transactional_db) -> None:
    with capture() as captured:
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            jobs.add.enqueue(1, 2)
            1 / 0  # noqa: B018
        assert captured.filter(task=jobs.add) == []


def test_a_failing_task_is_retried_then_failed_and_dead_lettered(transactional_db) -> None:
    with capture() as captured:
        result = jobs.always_fails.enqueue("x")
        delivered = captured.deliver()
    (dead,) = delivered.dead_letters
    assert dead.message.message_id == result.id and dead.outcome == "dead_lettered"
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    attempts = conf.get("MAX_ATTEMPTS")
    assert [e.exception_class_path for e in result.errors] == ["builtins.KeyError"] * attempts
    assert Receipt.objects.filter(message_id=result.id).count() == attempts
