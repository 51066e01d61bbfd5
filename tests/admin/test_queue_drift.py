"""The queue list flags drift: a queue the broker has with other arguments than its row
(compared on the page's one connection; a missing queue is never declared by it)."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging import broker
from messaging.models import Queue
from tests.support.admin import url
from tests.support.rabbitmq import queue_depth

pytestmark = pytest.mark.django_db


def test_list_says_which_queue_differs_from_its_row(admin_client: Client, queue_name, request):
    drifted, matching, missing = (
        queue_name,
        request.node.make_queue_name(),
        request.node.make_queue_name(),
    )
    with broker.connection() as conn:
        conn.channel().queue_declare(drifted, durable=True, arguments={"x-max-length": 10})
    Queue.objects.create(name=drifted)  # the row says: no x-max-length
    row = Queue.objects.create(name=matching)
    broker.declare_queues([row])
    Queue.objects.create(name=missing)
    page = admin_client.get(url("queue_changelist"))
    rows = {r.name: r for r in page.context["cl"].result_list}
    assert rows[drifted].drift is not None and "x-max-length" in str(rows[drifted].drift)
    assert rows[matching].drift is None
    content = page.content.decode()
    assert content.count("messaging-drift") == 1 and "matches" in content
    assert queue_depth(missing) is None  # never declared by looking
