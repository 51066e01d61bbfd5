"""What Django's docs say a task backend does, against this backend with a real broker
and a real ``runconsumer --tasks`` worker."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from messaging.models import Message, Receipt, TaskRecord
from messaging.task_backend.compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
)
from tests.support.consumers import wait_running
from tests.tasks import jobs
from tests.tasks.conftest import PREFIX, wait_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_flags_say_what_the_backend_does() -> None:
    backend = task_backends["default"]
    assert backend.supports_get_result and backend.supports_defer
    assert backend.supports_async_task and backend.supports_priority


def test_a_task_runs_and_its_result_goes_ready_running_successful(task_worker, tmp_path) -> None:
    worker = task_worker()
    flag = tmp_path / "go"
    result = jobs.wait_for_file.enqueue(str(flag))
    assert result.status == TaskResultStatus.READY
    assert result.enqueued_at is not None and result.started_at is None
    assert jobs.wait_for_file.get_result(result.id).status == TaskResultStatus.READY

    if connection.features.has_select_for_update:  # SQLite: RUNNING is never visible
        wait_status(result, "RUNNING", worker=worker)
        assert result.started_at >= result.enqueued_at
        assert result.last_attempted_at == result.started_at
        assert result.finished_at is None
        assert result.worker_ids == [worker.name]
        with pytest.raises(ValueError, match="not finished"):
            result.return_value  # noqa: B018 - the property raises
    else:
        wait_running(worker, lambda: "Waiting for messages" in worker.stderr)
    Path(flag).touch()

    wait_status(result, "SUCCESSFUL", worker=worker)
    assert result.return_value == "done"
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert result.errors == [] and result.attempts == 1 and result.worker_ids == [worker.name]
    assert result.args == [str(flag)] and result.kwargs == {}
    receipt = Receipt.objects.get(message_id=result.id)
    assert (receipt.queue_name, receipt.outcome) == (f"{PREFIX}default", "acked")


def test_return_values_args_and_kwargs_are_json(task_worker) -> None:
    worker = task_worker()
    result = jobs.add.enqueue(2, b=3)
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert result.return_value == 5 and result.args == [2] and result.kwargs == {"b": 3}
    fresh = task_backends["default"].get_result(result.id)
    assert fresh.task.func is jobs.add.func and fresh.return_value == 5


def test_a_return_value_that_is_not_json_fails_the_task(task_worker) -> None:
    worker = task_worker(MAX_ATTEMPTS=1)
    result = jobs.returns_set.enqueue()
    wait_status(result, "FAILED", worker=worker)
    assert result.errors[0].exception_class_path == "builtins.TypeError"


def test_an_async_task_runs(task_worker) -> None:
    worker = task_worker()
    result = jobs.async_add.enqueue(20, 22)
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert result.return_value == 42


def test_takes_context_sees_the_attempt_and_its_result(task_worker) -> None:
    worker = task_worker()
    result = jobs.attempt_seen.enqueue(fail_until=2)
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert result.return_value == {"attempt": 2, "id": result.id}
    assert result.attempts == 2 and len(result.errors) == 1
    assert result.errors[0].exception_class_path == "builtins.ValueError"
    assert "attempt 1 fails" in result.errors[0].traceback


def test_using_changes_queue_and_priority(task_worker) -> None:
    worker = task_worker()
    result = jobs.add.using(queue_name="other", priority=50).enqueue(1, 1)
    message = Message.objects.get(message_id=result.id)
    assert message.queue.name == f"{PREFIX}other" and message.priority == 8
    assert message.queue.arguments == {"x-max-priority": 10}
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert result.task.queue_name == "other" and result.task.priority == 50


def test_an_unknown_id_does_not_exist() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        jobs.add.get_result(str(uuid.uuid4()))
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("nope")


def test_aenqueue_and_aget_result() -> None:
    async def enqueue_and_get() -> tuple[Any, Any]:
        result = await jobs.add.aenqueue(1, 2)
        return result, await jobs.add.aget_result(result.id)

    result, fetched = async_to_sync(enqueue_and_get)()
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
    assert TaskRecord.objects.get(result_id=result.id).args == [1, 2]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"priority": 101}, "priority"),
        ({"priority": -101}, "priority"),
        ({"queue_name": "nowhere"}, "nowhere"),
        ({"run_after": datetime(2030, 1, 1)}, "aware"),  # noqa: DTZ001 - naive on purpose
    ],
)
def test_invalid_tasks_are_refused(change: dict, says: str) -> None:
    with pytest.raises(InvalidTask, match=says):
        jobs.add.using(**change)
    assert not TaskRecord.objects.exists() and not Message.objects.exists()


def test_a_quorum_task_queue_refuses_a_priority() -> None:
    quorum = jobs.add.using(backend="quorum")
    with pytest.raises(InvalidTask, match="quorum queues, which have no priorities"):
        quorum.using(priority=1)
    result = quorum.enqueue(1, 2)  # the default priority is fine
    assert Message.objects.get(message_id=result.id).priority is None


def test_a_deferred_task_waits_in_the_outbox() -> None:
    later = timezone.now() + timedelta(hours=1)
    result = jobs.add.using(run_after=later).enqueue(1, 2)
    message = Message.objects.get(message_id=result.id)
    assert (message.status, message.attempts, message.next_attempt_at) == ("pending", 0, later)
    assert jobs.add.get_result(result.id).task.run_after == later


def test_a_task_s_database_work_commits_with_it(task_worker) -> None:
    worker = task_worker()
    result = jobs.make_group.enqueue("made by a task")
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert Group.objects.get(name="made by a task").pk == result.return_value
