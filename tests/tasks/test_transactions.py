"""Enqueueing is atomic with the caller's transaction."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from messaging.models import Message, Receipt, TaskRecord
from messaging.task_backend.compat import TaskResultDoesNotExist
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.rabbitmq import queue_depth
from tests.tasks import jobs
from tests.tasks.conftest import PREFIX, wait_status

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs(task_worker) -> None:
    worker = task_worker()
    with pytest.raises(Rollback), transaction.atomic():
        lost = jobs.make_group.enqueue("rolled back")
        Group.objects.create(name="the caller's own row")
        raise Rollback
    kept = jobs.make_group.enqueue("committed")  # after it, on the same queue
    wait_status(kept, "SUCCESSFUL", worker=worker)
    stop_and_wait(worker)
    with pytest.raises(TaskResultDoesNotExist):
        jobs.make_group.get_result(lost.id)
    assert not Message.objects.filter(message_id=lost.id).exists()
    assert not Receipt.objects.filter(message_id=lost.id).exists()
    assert list(Group.objects.values_list("name", flat=True)) == ["committed"]


def test_a_task_enqueued_in_a_transaction_is_published_after_the_commit(task_worker) -> None:
    worker = task_worker()
    with transaction.atomic():
        result = jobs.make_group.enqueue("after commit")
        Group.objects.create(name="the caller's own row")
        message = Message.objects.get(message_id=result.id)
        assert message.status == "pending"  # not on the broker before the commit
        assert queue_depth(f"{PREFIX}default") in (0, None)
    wait_status(result, "SUCCESSFUL", worker=worker)
    assert Message.objects.get(message_id=result.id).status == "published"
    stop_and_wait(worker)
    assert Group.objects.filter(name="after commit").count() == 1
    assert Receipt.objects.filter(message_id=result.id, outcome="acked").count() == 1


#: A web process that enqueues a task and is SIGKILLed right after its commit, before
#: the publish (an on_commit hook registered before the enqueue runs first).
KILLED_AFTER_COMMIT = """
import os, signal
from django.db import transaction
from django.utils import timezone
from tests.tasks import jobs
with transaction.atomic():
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    print(jobs.make_group.enqueue("via the relay").id, flush=True)
"""


def test_a_committed_task_whose_process_was_killed_is_sent_by_the_relay(
    task_worker, manage, spawn
) -> None:
    web = manage("shell", "-c", KILLED_AFTER_COMMIT)
    assert web.returncode == -9, web.stderr.decode()
    result_id = web.stdout.decode().split()[-1]
    assert Message.objects.get(message_id=result_id).status == "pending"
    assert TaskRecord.objects.get(result_id=result_id).status == "READY"
    # The dead process's lease on its row (outbox.claim_lease, minutes) has run out:
    Message.objects.filter(message_id=result_id).update(next_attempt_at=timezone.now())
    worker = task_worker()
    spawn("relay", "--interval", "0.2")
    wait_running(worker, lambda: TaskRecord.objects.get(result_id=result_id).status == "SUCCESSFUL")
    stop_and_wait(worker)
    assert Group.objects.filter(name="via the relay").count() == 1
    assert Receipt.objects.filter(message_id=result_id, outcome="acked").count() == 1
