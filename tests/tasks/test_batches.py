"""A worker at a high prefetch runs a batch of tasks in one transaction: their results
are written as one statement after the batch's last task, with the receipts; a failing
task redoes the batch one by one; a task still running after RUNNING_AFTER is stamped
RUNNING although the batch's earlier tasks have finished (uncommitted)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from messaging.consumer.deferred import deferring
from messaging.models import Receipt, TaskRecord
from messaging.task_backend.finish import Success, record_success
from messaging.task_backend.records import insert_ready
from messaging.task_backend.results import new_record
from messaging.task_backend.wire import TaskMessage
from tests.support.consumers import stop_and_wait
from tests.tasks import jobs
from tests.tasks.conftest import wait_status

MESSAGE = TaskMessage(task="tests.tasks.jobs.add", args=[1, 2])


def success(result_id: str, attempt: int = 1, value: object = 3) -> Success:
    now = timezone.now()
    return Success(result_id, MESSAGE, attempt, now - timedelta(seconds=1), now, value)


def saved(**fields: object) -> str:
    result_id = str(uuid.uuid4())
    new_record(result_id, MESSAGE, **fields).save(force_insert=True)
    return result_id


@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_in_one_transaction_and_a_failure_redoes_it(task_worker) -> None:
    results = [jobs.add.enqueue(i, i) for i in range(30)]
    failing = jobs.always_fails.enqueue("in the batch")
    results += [jobs.add.enqueue(i, 100) for i in range(10)]
    worker = task_worker("--prefetch", "60", MAX_ATTEMPTS=2)
    wait_status(failing, "FAILED", worker=worker)
    for result in results:
        wait_status(result, "SUCCESSFUL", worker=worker)
    stop_and_wait(worker)
    for index, result in enumerate(results):
        a, b = (index, index) if index < 30 else (index - 30, 100)
        assert result.return_value == a + b
        assert result.worker_ids == [worker.name] and result.errors == []
        assert result.enqueued_at <= result.started_at <= result.finished_at
        assert result.last_attempted_at == result.started_at
        receipts = Receipt.objects.filter(message_id=result.id)
        assert [r.outcome for r in receipts] == ["acked"]
    assert len(failing.errors) == 2 and failing.worker_ids == [worker.name] * 2


@pytest.mark.django_db(transaction=True)
def test_a_long_task_in_a_batch_is_seen_running(task_worker, tmp_path: Path) -> None:
    if not connection.features.has_select_for_update:
        pytest.skip("SQLite: no RUNNING stamp (the whole database locks)")
    flag = tmp_path / "go"
    before = [jobs.add.enqueue(i, 1) for i in range(5)]
    long = jobs.wait_for_file.enqueue(str(flag))
    after = [jobs.add.enqueue(i, 2) for i in range(5)]
    worker = task_worker("--prefetch", "33")  # a batch of 11
    wait_status(long, "RUNNING", worker=worker)
    assert long.worker_ids == [worker.name] and long.started_at is not None
    for result in before + after:  # finished (uncommitted, or in an earlier batch) or waiting
        result.refresh()
        assert result.status in ("READY", "SUCCESSFUL")
    assert {r.status for r in after} == {"READY"}
    flag.touch()
    for result in [*before, long, *after]:
        wait_status(result, "SUCCESSFUL", worker=worker)
    assert long.return_value == "done" and long.worker_ids == [worker.name]
    assert all(r.worker_ids == [worker.name] for r in before + after)


@pytest.mark.django_db(transaction=True)
def test_successes_wait_for_the_end_of_the_transaction() -> None:
    ids = [saved(), saved(), saved()]
    with deferring() as deferred, transaction.atomic():
        for result_id in ids:
            record_success(success(result_id), "w1")
        assert set(TaskRecord.objects.values_list("status", flat=True)) == {"READY"}
        deferred.flush()
        assert set(TaskRecord.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    for row in TaskRecord.objects.all():
        assert row.worker_ids == ["w1"] and row.return_value == 3
        assert row.started_at == row.last_attempted_at < row.finished_at


@pytest.mark.django_db(transaction=True)
def test_a_failed_transaction_drops_its_successes() -> None:
    result_id = saved()
    with pytest.raises(ZeroDivisionError), deferring(), transaction.atomic():
        record_success(success(result_id), "w1")
        1 / 0  # noqa: B018
    with deferring() as deferred, transaction.atomic():
        deferred.flush()  # nothing left over from the failed one
    assert TaskRecord.objects.get(result_id=result_id).status == "READY"


@pytest.mark.django_db(transaction=True)
def test_outside_a_dispatcher_a_success_is_written_at_once() -> None:
    result_id = saved()
    record_success(success(result_id, value=None), "w1")
    row = TaskRecord.objects.get(result_id=result_id)
    assert row.status == "SUCCESSFUL" and row.return_value is None


@pytest.mark.django_db(transaction=True)
def test_rows_missing_and_retried_and_already_started() -> None:
    earlier = timezone.now() - timedelta(minutes=5)
    started = saved(started_at=earlier, worker_ids=["w0"])
    retried = saved(worker_ids=["w0"], started_at=earlier, errors=[{"attempt": 1, "worker": "w0"}])
    missing = str(uuid.uuid4())
    with deferring() as deferred, transaction.atomic():
        record_success(success(started), "w1")
        record_success(success(retried, attempt=2, value={"a": [1]}), "w1")
        record_success(success(missing), "w1")
        deferred.flush()
    rows = {row.result_id: row for row in TaskRecord.objects.all()}
    assert rows[started].started_at == earlier and rows[started].worker_ids == ["w1"]
    assert rows[retried].worker_ids == ["w0", "w1"] and rows[retried].return_value == {"a": [1]}
    assert rows[retried].started_at == earlier and len(rows[retried].errors) == 1
    assert rows[missing].task_path == "tests.tasks.jobs.add" and rows[missing].worker_ids == ["w1"]
    assert {row.status for row in rows.values()} == {"SUCCESSFUL"}


@pytest.mark.django_db(transaction=True)
def test_the_ready_row_of_an_enqueue_reaches_a_post_save_receiver() -> None:
    seen: list[str] = []

    def saved_row(sender: object, instance: TaskRecord, created: bool, **kwargs: object) -> None:
        seen.append(instance.result_id)

    message = TaskMessage(task="tests.tasks.jobs.add", args=[1], enqueued_at=timezone.now())
    insert_ready("without-receiver", message)
    post_save.connect(saved_row, sender=TaskRecord)
    try:
        insert_ready("with-receiver", message)
    finally:
        post_save.disconnect(saved_row, sender=TaskRecord)
    assert seen == ["with-receiver"]
    rows = TaskRecord.objects.order_by("id")
    assert [(r.result_id, r.status, r.args, r.worker_ids, r.errors) for r in rows] == [
        ("without-receiver", "READY", [1], [], []),
        ("with-receiver", "READY", [1], [], []),
    ]
    assert rows[0].enqueued_at == message.enqueued_at and rows[0].rerun_of == ""
