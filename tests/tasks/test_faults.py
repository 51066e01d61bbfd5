"""A worker SIGKILLed mid-task: the broker redelivers, the task runs again, its result
ends SUCCESSFUL once and its database effects happen once (the killed attempt's
transaction never committed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from messaging.models import Receipt
from tests.support.consumers import stop_and_wait, wait_running
from tests.tasks import jobs
from tests.tasks.conftest import wait_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigkill_mid_task_runs_it_again_once(task_worker, tmp_path: Path) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    first = task_worker()
    result = jobs.make_group_and_wait.enqueue("once", str(started), str(go))
    wait_running(first, started.exists)
    first.kill()  # SIGKILL: the task's transaction is rolled back, the delivery unacked
    started.unlink()
    second = task_worker()
    wait_running(second, started.exists)  # redelivered, running again
    go.touch()
    wait_status(result, "SUCCESSFUL", worker=second)
    stop_and_wait(second)
    assert Group.objects.filter(name="once").count() == 1
    assert Group.objects.get(name="once").pk == result.return_value
    receipts = Receipt.objects.filter(message_id=result.id)
    assert [(r.outcome, r.redelivered) for r in receipts] == [("acked", True)]
    assert result.worker_ids[-1] == second.name and result.errors == []
