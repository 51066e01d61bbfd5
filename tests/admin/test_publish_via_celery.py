"""The admin's publish actions with ``MESSAGING["PUBLISH_VIA_CELERY"]``: the ids go to
``messaging.tasks.publish_messages_task``, run by a real Celery worker (celery's test
worker, in a thread of this process) on the real RabbitMQ, on a queue of the test's own
(Celery's routing, :mod:`tests.support.celery_queues`); with Celery's broker down (a
current Celery app whose broker is a closed port), the rows stay as they were."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib import messages
from django.contrib.auth.models import User
from django.test import Client

from messaging import conf
from messaging.models import Message, Queue
from project.celery import app
from tests.support.admin import errors, pending, published, run_action, shown_messages
from tests.support.celery_queues import celery_broker_refusing, tasks_routed_to
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def via_celery(settings: Any) -> None:
    settings.MESSAGING = {**settings.MESSAGING, "PUBLISH_VIA_CELERY": True}


@pytest.fixture
def worker(via_celery: None, queue_name: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A worker on a Celery queue of this test's own; the admin's tasks are routed there
    (tasks other suites leave on the default queue never reach it)."""
    name = request.node.make_queue_name(".celery")
    app.conf.broker_url = conf.broker_urls()[0]
    app.loader.import_default_modules()
    with (
        tasks_routed_to(name),
        start_worker(app, perform_ping_check=False, queues=[name], shutdown_timeout=30),
    ):
        yield name


def test_publish_hands_the_ids_to_celery(
    admin_client: Client, admin_user: User, queue_name: str, worker: str
) -> None:
    queue = Queue.objects.create(name=queue_name)
    rows = [pending(queue, f"m{i}") for i in range(3)]
    done = published(queue)

    response = run_action(admin_client, "message", "publish_messages", *rows, done)

    shown = shown_messages(response)
    assert (
        messages.SUCCESS,
        "3 messages handed to Celery for publishing; their status changes when a worker "
        "has published them.",
    ) in shown
    assert (messages.WARNING, "1 message was already published and was skipped.") in shown
    wait_for(lambda: Message.objects.filter(status="published").count() == 4, timeout=30)
    assert set(
        Message.objects.filter(pk__in=[r.pk for r in rows]).values_list("published_by", flat=True)
    ) == {admin_user.pk}
    assert queue_depth(queue_name) == 3


def test_republish_hands_the_copies_to_celery(
    admin_client: Client, queue_name: str, worker: str
) -> None:
    original = published(Queue.objects.create(name=queue_name), b"again")

    response = run_action(admin_client, "message", "republish", original)

    assert any("1 message handed to Celery" in text for _level, text in shown_messages(response))
    copy = Message.objects.exclude(pk=original.pk).get()
    wait_for(lambda: Message.objects.get(pk=copy.pk).status == "published", timeout=30)
    assert queue_depth(queue_name) == 1


def test_celery_unavailable_leaves_the_rows_alone(
    admin_client: Client, queue_name: str, via_celery: None
) -> None:
    message = pending(queue_name, b"waiting")

    with celery_broker_refusing():
        response = run_action(admin_client, "message", "publish_messages", message)

    (error,) = errors(response)
    assert "Could not hand the messages to Celery" in error
    assert "Connection refused" in error
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Message.Status.PENDING, 0)
    assert queue_depth(queue_name) is None
