"""The admin's dead-letter browser against the real broker: a bounded peek that puts the
messages back, replay selected / all (publish permission), discard selected after a
confirmation page (purge permission), each recorded in the admin log with the user."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pika
import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from messaging import broker
from messaging.admin import dead_letter_browser
from messaging.admin.dead_letter_browser import describe, digest
from messaging.broker.dead_letters import peek_messages
from tests.support.admin import declared, pending, staff, url
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


# --------------------------------------------------------------------------- links, times, totals


def put_raw(queue: str, *messages: tuple[bytes, dict[str, Any]]) -> None:
    """Messages in ``<queue>.dlq`` with the given bodies and properties."""
    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for body, props in messages:
            channel.basic_publish("", f"{queue}.dlq", body, pika.BasicProperties(**props))


def test_ids_link_to_their_message_and_rows_show_when_they_died(
    admin_client: Client, queue_name: str
) -> None:
    row = declared(queue_name)
    ours = pending(row, b"ours")
    died = int(datetime(2026, 12, 7, 18, 2, 11, tzinfo=UTC).timestamp())
    death = {"queue": queue_name, "reason": "max_attempts", "attempts": 5, "time": died}
    put_raw(
        queue_name,
        (b"a", {"message_id": ours.message_id, "headers": {"x-messaging-death": [death]}}),
        (b"b", {"message_id": "another-producers-id"}),
    )

    content = admin_client.get(url("queue_dead_letters", row.pk)).content.decode()

    assert f'<a href="{url("message_change", ours.pk)}">{ours.message_id}</a>' in content
    assert "another-producers-id</td>" in content  # no Message row: not a link
    assert "2026-12-07 18:02:11 (" in content and " ago)" in content


def test_totals_select_all_and_the_wanted_message(
    admin_client: Client, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dead_letter_browser, "PEEK_LIMIT", 3)
    row = declared(queue_name)
    ids = put_dead(queue_name, 5)
    target = url("queue_dead_letters", row.pk)

    content = admin_client.get(target).content.decode()
    assert "<strong>5 dead letters</strong>, 3 shown" in content
    assert 'id="dead-letters-select-all"' in content
    assert content.count('class="dead-letter-select"') == 3

    wanted = admin_client.get(target, {"message_id": ids[1]}).content.decode()
    assert f'value="{ids[1]}" aria-label="select {ids[1]}" checked' in wanted
    assert 'class="dead-letter wanted"' in wanted and "wanted-missing" not in wanted
    further = admin_client.get(target, {"message_id": ids[4]}).content.decode()
    assert 'id="wanted-missing"' in further and "further back" in further
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 5)


def test_rows_without_an_id_are_selectable_and_discard_only_themselves(
    admin_client: Client, queue_name: str
) -> None:
    row = declared(queue_name)
    (kept_id,) = put_dead(queue_name, 1)
    put_raw(queue_name, (b"no id, first", {}), (b"no id, second", {}), (b"no id, first", {}))
    target = url("queue_dead_letters", row.pk)

    page = admin_client.get(target).content.decode()
    tokens = re.findall(r'name="delivery" value="([^"]+)"', page)
    assert len(tokens) == 3 and tokens[0].startswith("2:") and tokens[2].startswith("4:")
    assert tokens[0].split(":")[1] == tokens[2].split(":")[1]  # the same content twice

    confirm = admin_client.post(target, {"action": "discard_selected", "delivery": [tokens[1]]})
    assert "#3 as listed" in confirm.content.decode()
    assert queue_depth(f"{queue_name}.dlq") == 4
    admin_client.post(
        target, {"action": "discard_selected", "delivery": [tokens[1]], "post": "yes"}
    )
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 3)
    left = [d.body for d in peek_messages(f"{queue_name}.dlq", 10)]
    assert left == [b"<b>payload</b>", b"no id, first", b"no id, first"]
    (entry,) = LogEntry.objects.filter(object_id=str(row.pk))
    assert "without a message id" in entry.change_message and "#3" in entry.change_message

    # a token whose message is gone (or changed) discards nothing
    response = admin_client.post(
        target,
        {"action": "discard_selected", "delivery": [tokens[1]], "post": "yes"},
        follow=True,
    )
    assert "0 messages discarded." in response.content.decode()
    assert "#3 (no id)" in response.content.decode()
    assert queue_depth(f"{queue_name}.dlq") == 3
    # ids and tokens together; replaying a row without an id is refused with a reason
    admin_client.post(
        target,
        {"action": "discard_selected", "message_id": [kept_id], "delivery": [tokens[0]],
         "post": "yes"},
    )  # fmt: skip
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)
    refused = admin_client.post(
        target, {"action": "replay_selected", "delivery": [tokens[2]]}, follow=True
    )
    assert "has no message id" in refused.content.decode()
    assert queue_depth(f"{queue_name}.dlq") == 1 and queue_depth(queue_name) == 0


def test_digest_ignores_what_a_look_changes() -> None:
    one = pika.BasicProperties(headers={"k": "v", "x-delivery-count": 1}, content_type="a/b")
    two = pika.BasicProperties(headers={"x-delivery-count": 7, "k": "v"}, content_type="a/b")
    other = pika.BasicProperties(headers={"k": "w"}, content_type="a/b")
    assert digest(one, b"x") == digest(two, b"x")
    assert digest(one, b"x") != digest(one, b"y")
    assert digest(one, b"x") != digest(other, b"x")


def test_broker_death_time_is_read_from_x_death() -> None:
    when = datetime(2026, 12, 7, 18, 2, 11, tzinfo=UTC)
    props = pika.BasicProperties(headers={"x-death": [{"reason": "expired", "time": when}]})
    assert describe(broker.Peeked(props, b"", False)).dead_lettered_at == when


def test_replay_from_the_message_page_comes_back_to_it(
    admin_client: Client, queue_name: str
) -> None:
    row = declared(queue_name)
    message = pending(row, b"poison")
    put_raw(queue_name, (b"poison", {"message_id": message.message_id}))
    page = url("message_change", message.pk)

    response = admin_client.post(
        url("queue_dead_letters", row.pk),
        {"action": "replay_selected", "message_id": [message.message_id], "next": page},
    )

    assert response.status_code == 302 and response["Location"] == page
    assert wait_for(lambda: queue_depth(queue_name) == 1)
    elsewhere = admin_client.post(
        url("queue_dead_letters", row.pk),
        {"action": "replay_all", "next": "https://evil.example/"},
    )
    assert elsewhere["Location"] == url("queue_dead_letters", row.pk)
