"""The Celery tasks run by a real worker (celery's own test worker, in a thread of this
process, so it shares the test database) on the same RabbitMQ; no eager mode.

Each test's tasks go to a queue of its own, so tasks other suites leave on the default
``celery`` queue never reach this worker (and ours never reach theirs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.utils import timezone

from messaging import conf
from messaging.models import Message, Queue, Receipt
from messaging.tasks import publish_messages_task, purge_messages, relay_outbox
from project.celery import app
from tests.support.draining import drain
from tests.support.waiting import wait_for


@pytest.fixture
def worker_queue(transactional_db, queue_name: str, request) -> Iterator[str]:
    """A running worker that consumes only the queue whose name it yields."""
    name = request.node.make_queue_name(".celery")
    app.conf.broker_url = conf.broker_urls()[0]
    app.loader.import_default_modules()
    with start_worker(app, perform_ping_check=False, queues=[name], shutdown_timeout=30):
        yield name


def pending(queue: Queue, n: int, **fields) -> list[Message]:
    return Message.objects.bulk_create(
        [Message(queue=queue, body=f"m{i}".encode(), **fields) for i in range(n)]
    )


def test_tasks_are_registered_and_scheduled():
    app.loader.import_default_modules()
    for name in (
        "messaging.tasks.relay_outbox",
        "messaging.tasks.purge_messages",
        "messaging.tasks.publish_messages_task",
    ):
        assert name in app.tasks
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled == {"messaging.tasks.relay_outbox", "messaging.tasks.purge_messages"}


def test_worker_runs_relay_outbox(worker_queue, queue_name, channel):
    rows = pending(Queue.objects.create(name=queue_name), 50)
    relay_outbox.apply_async(queue=worker_queue)
    wait_for(lambda: Message.objects.published().count() == 50, timeout=60)
    assert drain(queue_name, channel, ids=True) == [row.message_id for row in rows]


def test_worker_publishes_selected_messages_for_the_admin(worker_queue, queue_name, channel):
    user = get_user_model().objects.create_user("operator")
    queue = Queue.objects.create(name=queue_name)
    todo = pending(queue, 3) + pending(queue, 2, status=Message.Status.FAILED, attempts=1)
    publish_messages_task.apply_async(args=([m.pk for m in todo], user.pk), queue=worker_queue)
    wait_for(lambda: Message.objects.published().count() == 5, timeout=60)
    assert set(Message.objects.values_list("published_by", flat=True)) == {user.pk}
    assert sorted(drain(queue_name, channel, ids=True)) == sorted(m.message_id for m in todo)


def test_worker_purges_old_messages_in_batches(worker_queue, queue_name):
    queue = Queue.objects.create(name=queue_name)
    old = pending(queue, 5, status=Message.Status.PUBLISHED)
    fresh = pending(queue, 1, status=Message.Status.PUBLISHED)[0]
    Message.objects.filter(pk__in=[m.pk for m in old]).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    long_ago = timezone.now() - timedelta(days=40)
    Receipt.objects.create(
        message_id=old[0].message_id,
        queue_name=queue_name,
        outcome="acked",
        received_at=long_ago,
        finished_at=long_ago,
    )
    purge_messages.apply_async(kwargs={"older_than": "30d", "batch_size": 2}, queue=worker_queue)
    wait_for(lambda: not Receipt.objects.exists() and Message.objects.count() == 1, timeout=60)
    assert list(Message.objects.values_list("pk", flat=True)) == [fresh.pk]
