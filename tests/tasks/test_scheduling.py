"""run_after (the outbox holds the task until it is due), priorities on classic task
queues, and which queues ``runconsumer --tasks`` consumes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message, Receipt, TaskRecord
from tests.support.consumers import stop_and_wait, wait_running
from tests.tasks import jobs
from tests.tasks.conftest import PREFIX, wait_status

pytestmark = pytest.mark.django_db(transaction=True)

#: The relay's pass interval in these tests: run_after's precision.
RELAY_INTERVAL = 0.2


def test_run_after_in_3_seconds_runs_after_not_before(task_worker, spawn) -> None:
    worker = task_worker()
    spawn("relay", "--interval", str(RELAY_INTERVAL))
    due = timezone.now() + timedelta(seconds=3)
    result = jobs.add.using(run_after=due).enqueue(1, 2)
    wait_running(worker, lambda: timezone.now() > due - timedelta(seconds=0.5), timeout=10)
    assert not Receipt.objects.filter(message_id=result.id).exists()
    assert Message.objects.get(message_id=result.id).status == "pending"
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert result.started_at >= due
    message = Message.objects.get(message_id=result.id)
    assert due <= message.published_at <= due + timedelta(seconds=RELAY_INTERVAL + 2)
    assert result.task.run_after == due


def test_a_run_after_in_the_past_is_sent_at_once(task_worker) -> None:
    worker = task_worker()
    result = jobs.add.using(run_after=timezone.now() - timedelta(seconds=1)).enqueue(1, 2)
    wait_status(result, "SUCCESSFUL", worker=worker)


def test_higher_priority_tasks_run_first(task_worker) -> None:
    low = [jobs.add.using(priority=-100).enqueue(i, 0) for i in range(3)]
    high = jobs.add.using(priority=100).enqueue(9, 9)
    worker = task_worker("--prefetch", "1")
    for result in [*low, high]:
        wait_status(result, "SUCCESSFUL", worker=worker)
    assert all(high.started_at < r.started_at for r in low[1:])
    stop_and_wait(worker)


def test_tasks_alias_consumes_only_that_backend_s_queues(task_worker) -> None:
    quorum_result = jobs.add.using(backend="quorum").enqueue(2, 2)
    default_result = jobs.add.enqueue(3, 3)
    worker = task_worker(alias="quorum")
    wait_status(quorum_result, "SUCCESSFUL", worker=worker)
    assert f"{PREFIX}quorum.default" in worker.stderr
    stop_and_wait(worker)
    assert TaskRecord.objects.get(result_id=default_result.id).status == "READY"


def test_tasks_with_an_unknown_alias_fails_with_one_line(manage) -> None:
    done = manage("runconsumer", "--tasks", "nope")
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        "CommandError: --tasks nope: TASKS has no RabbitMQBackend named 'nope' "
        "(it has: default, quorum)"
    )
