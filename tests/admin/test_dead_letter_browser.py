"""The admin's dead-letter browser against the real broker: a bounded peek that puts the
messages back, replay selected / all (publish permission), discard selected after a
confirmation page (purge permission), each recorded in the admin log with the user."""

from __future__ import annotations

import pika
import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from messaging import broker
from messaging.admin.dead_letter_browser import describe
from tests.support.admin import declared, staff, url
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db


def put_dead(queue: str, count: int, body: bytes = b"<b>payload</b>") -> list[str]:
    """``count`` messages in ``<queue>.dlq`` as the consumer leaves them; their ids."""
    ids = [f"dead-{queue[-8:]}-{i}" for i in range(count)]
    death = {"queue": queue, "reason": "max_attempts", "attempts": 3, "error": "KeyError: 'x'"}
    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for message_id in ids:
            props = pika.BasicProperties(
                message_id=message_id, delivery_mode=2, headers={"x-messaging-death": [death]}
            )
            channel.basic_publish("", f"{queue}.dlq", body, props)
    return ids


def page_ids(content: str, ids: list[str]) -> list[str]:
    return [i for i in ids if f'value="{i}"' in content]


def test_browser_lists_dead_letters_safely_and_puts_them_back(admin_client: Client, queue_name):
    row = declared(queue_name)
    ids = put_dead(queue_name, 3)
    page = admin_client.get(url("queue_dead_letters", row.pk))
    content = page.content.decode()
    assert page.status_code == 200
    assert page_ids(content, ids) == ids
    assert "max_attempts" in content and "KeyError: &#x27;x&#x27;" in content
    assert "&lt;b&gt;payload&lt;/b&gt;" in content and "<b>payload</b>" not in content
    assert "marks them redelivered" in content
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 3)
    # the queue list links to it
    listing = admin_client.get(url("queue_changelist")).content.decode()
    assert url("queue_dead_letters", row.pk) in listing


def test_describe_reads_the_newest_death_and_cuts_big_bodies():
    death = [{"reason": "rejected", "attempts": 1, "error": "old"}, {"reason": "max_attempts",
             "attempts": 5, "error": "new"}]  # fmt: skip
    props = pika.BasicProperties(message_id="m", headers={"x-messaging-death": death})
    row = describe(broker.Peeked(props, b"\xff" * 500, True))
    assert (row.reason, row.attempts, row.error) == ("max_attempts", 5, "new")
    assert row.preview.endswith("… (500 bytes)") and row.size == 500
    broker_dead = pika.BasicProperties(headers={"x-death": [{"reason": "expired", "count": 2}]})
    assert describe(broker.Peeked(broker_dead, b"", False)).reason == "expired"


def test_replay_selected_then_all_logged_with_the_user(admin_client: Client, queue_name):
    row = declared(queue_name)
    ids = put_dead(queue_name, 3)
    target = url("queue_dead_letters", row.pk)
    response = admin_client.post(
        target, {"action": "replay_selected", "message_id": [ids[1]]}, follow=True
    )
    assert "1 message replayed." in response.content.decode()
    assert wait_for(lambda: queue_depth(queue_name) == 1)
    assert queue_depth(f"{queue_name}.dlq") == 2
    admin_client.post(target, {"action": "replay_all"})
    assert wait_for(lambda: queue_depth(queue_name) == 3)
    entries = list(LogEntry.objects.filter(object_id=str(row.pk)).order_by("id"))
    assert [e.user.username for e in entries] == ["admin", "admin"]
    assert (
        ids[1] in entries[0].change_message
        and "Replayed 1 dead letter" in entries[0].change_message
    )
    assert "Replayed 2 dead letters" in entries[1].change_message


def test_discard_asks_first_needs_purge_permission_and_is_logged(
    admin_client: Client, client: Client, queue_name
):
    row = declared(queue_name)
    ids = put_dead(queue_name, 2)
    target = url("queue_dead_letters", row.pk)
    confirm = admin_client.post(target, {"action": "discard_selected", "message_id": [ids[0]]})
    assert "will be removed from" in confirm.content.decode()
    assert queue_depth(f"{queue_name}.dlq") == 2  # nothing yet
    admin_client.post(target, {"action": "discard_selected", "message_id": [ids[0]], "post": "yes"})
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)
    (entry,) = LogEntry.objects.filter(object_id=str(row.pk))
    assert "Discarded 1 dead letter" in entry.change_message and ids[0] in entry.change_message

    client.force_login(staff("view_queue"))  # may look, not replay or discard
    content = client.get(target).content.decode()
    assert ids[1] in content and "Replay selected" not in content and "Discard" not in content
    for action in ("replay_all", "discard_selected"):
        forged = client.post(target, {"action": action, "message_id": [ids[1]], "post": "yes"})
        assert forged.status_code == 403
    assert queue_depth(f"{queue_name}.dlq") == 1 and queue_depth(queue_name) == 0
