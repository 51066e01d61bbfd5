"""The admin against the real broker (both databases): messages composed without the
publish permission are held, "Save and publish", big bodies (bounded page, download), and
admin log entries for every action that touches the broker."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from messaging.admin import audit
from messaging.admin.body_preview import (
    BIG_BODY,
    BIG_BODY_PREVIEW,
    body_preview,
    bounded_preview,
    prefix_as_text,
)
from messaging.admin.feedback import saved_and_published
from messaging.models import Message, Queue
from messaging.publishing import PublishResult, build_message
from messaging.publishing.relay import relay_once
from tests.support.admin import (
    CLOSED_PORT,
    ESCAPED_SCRIPT,
    SCRIPT,
    change_form_data,
    declared,
    pending,
    published,
    purge,
    put,
    run_action,
    shown_messages,
    staff,
    url,
)
from tests.support.rabbitmq import queue_depth

pytestmark = pytest.mark.django_db

BIG = 20_000_000
AUTHOR_PERMS = ("add_message", "change_message", "view_message")
PUBLISHER_PERMS = (*AUTHOR_PERMS, "publish_message")
PUBLISH_BUTTON = 'name="_publish"'


# --------------------------------------------------------------------------- helpers


def compose(queue: Queue, body: str = "hello", **extra: str) -> dict[str, Any]:
    return {
        "queue": queue.pk,
        "exchange": "",
        "routing_key": "",
        "content_type": "text/plain",
        "body_text": body,
        "headers": "{}",
        "persistent": "on",
        "_save": "Save",
        **extra,
    }


def publish_post(data: dict[str, Any]) -> dict[str, Any]:
    """What the browser sends for the "Save and publish" button (not "_save")."""
    data = dict(data)
    data.pop("_save", None)
    data["_publish"] = "Save and publish"
    return data


def held(queue: Queue | str, body: bytes = b"held body") -> Message:
    message = build_message(queue, body)
    message.status = Message.Status.HELD
    message.save()
    return message


def logged(model: type, **filters: Any) -> list[LogEntry]:
    content_type = ContentType.objects.get_for_model(model)
    return list(LogEntry.objects.filter(content_type=content_type, **filters).order_by("pk"))


def loads_whole_body(queries: list[dict[str, str]]) -> bool:
    """True if a query selects or writes the body column itself (not just its first
    bytes or its length)."""
    column = re.compile(r'(?<!\()"messaging_message"\."body"|"body" = ')
    return any(column.search(q["sql"]) for q in queries)


# --------------------------------------------------------------------------- held


def test_author_without_publish_permission_composes_a_held_message(
    client: Client, queue_name: str
) -> None:
    queue = Queue.objects.create(name=queue_name)
    client.force_login(staff(*AUTHOR_PERMS))

    form = client.get(url("message_add"))
    assert form.status_code == 200
    assert PUBLISH_BUTTON not in form.content.decode()

    response = client.post(url("message_add"), compose(queue, "from an author"), follow=True)

    message = Message.objects.get()
    assert message.status == Message.Status.HELD
    assert message.body_bytes == b"from an author"
    assert any(
        level == messages.WARNING and "is held" in text for level, text in shown_messages(response)
    )
    result = relay_once()
    assert result.published == 0
    message.refresh_from_db()
    assert message.status == Message.Status.HELD
    assert message.attempts == 0
    assert queue_depth(queue_name) is None  # never declared: nothing was sent


def test_forged_save_and_publish_without_the_permission_does_not_publish(
    client: Client, queue_name: str
) -> None:
    queue = Queue.objects.create(name=queue_name)
    client.force_login(staff(*AUTHOR_PERMS))

    response = client.post(url("message_add"), publish_post(compose(queue, "forged")))

    assert response.status_code == 302
    message = Message.objects.get()
    assert message.status == Message.Status.HELD
    assert message.published_by is None
    assert message.attempts == 0
    assert queue_depth(queue_name) is None
    relay_once()
    message.refresh_from_db()
    assert message.status == Message.Status.HELD


def test_author_editing_a_pending_message_holds_it(client: Client, queue_name: str) -> None:
    message = pending(queue_name, b"approved text")
    client.force_login(staff(*AUTHOR_PERMS))
    page = client.get(url("message_change", message.pk))
    assert PUBLISH_BUTTON not in page.content.decode()

    client.post(url("message_change", message.pk), change_form_data(page, body_text="edited"))

    message.refresh_from_db()
    assert message.body_bytes == b"edited"
    assert message.status == Message.Status.HELD
    relay_once()
    message.refresh_from_db()
    assert message.status == Message.Status.HELD
    assert queue_depth(queue_name) is None


def test_publisher_plain_save_keeps_the_row_pending_for_the_relay(
    client: Client, queue_name: str
) -> None:
    queue = Queue.objects.create(name=queue_name)
    client.force_login(staff(*PUBLISHER_PERMS))
    assert PUBLISH_BUTTON in client.get(url("message_add")).content.decode()

    client.post(url("message_add"), compose(queue, "relayed"))

    message = Message.objects.get()
    assert message.status == Message.Status.PENDING
    assert relay_once().published == 1
    assert queue_depth(queue_name) == 1


@pytest.mark.django_db(transaction=True)
def test_save_and_publish_publishes_at_once_with_published_by(
    client: Client, queue_name: str, channel: Any
) -> None:
    queue = Queue.objects.create(name=queue_name)
    user = staff(*PUBLISHER_PERMS)
    client.force_login(user)

    response = client.post(
        url("message_add"), publish_post(compose(queue, "now, please")), follow=True
    )

    message = Message.objects.get()
    assert message.status == Message.Status.PUBLISHED
    assert message.published_by == user
    # One message saying what happened: not Django's "“… (held)” was added".
    ((level, text),) = shown_messages(response)
    assert level == messages.SUCCESS
    assert f"{message.message_id}</a>” saved and published to {queue_name}." in text
    _method, props, body = channel.basic_get(queue_name, auto_ack=True)
    assert body == b"now, please"
    assert props.message_id == message.message_id
    entries = logged(Message, object_id=str(message.pk), action_flag=CHANGE, user=user)
    assert len(entries) == 1
    assert "Save and publish" in entries[0].change_message
    assert "Published to the broker" in entries[0].change_message


@pytest.mark.django_db(transaction=True)
def test_save_and_publish_on_the_change_page_of_a_held_row(client: Client, queue_name: str) -> None:
    message = held(queue_name, b"waiting")
    user = staff(*PUBLISHER_PERMS)
    client.force_login(user)
    page = client.get(url("message_change", message.pk))
    assert PUBLISH_BUTTON in page.content.decode()

    response = client.post(
        url("message_change", message.pk),
        publish_post(change_form_data(page, body_text="waiting, reviewed")),
        follow=True,
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert message.published_by == user
    assert message.body_bytes == b"waiting, reviewed"
    assert queue_depth(queue_name) == 1


def test_publisher_plain_save_of_a_held_row_keeps_it_held(client: Client, queue_name: str) -> None:
    message = held(queue_name)
    client.force_login(staff(*PUBLISHER_PERMS))
    page = client.get(url("message_change", message.pk))

    client.post(url("message_change", message.pk), change_form_data(page, body_text="tweak"))

    message.refresh_from_db()
    assert message.status == Message.Status.HELD
    assert message.body_bytes == b"tweak"


def test_publish_action_publishes_held_rows(
    admin_client: Client, admin_user: User, queue_name: str
) -> None:
    message = held(queue_name)

    response = run_action(admin_client, "message", "publish_messages", message)

    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert message.published_by == admin_user
    assert (messages.SUCCESS, "1 message published.") in shown_messages(response)
    assert queue_depth(queue_name) == 1


def test_retry_failed_leaves_held_rows_alone(admin_client: Client, queue_name: str) -> None:
    message = held(queue_name)

    run_action(admin_client, "message", "retry_failed", message)

    message.refresh_from_db()
    assert message.status == Message.Status.HELD
    assert queue_depth(queue_name) is None


def test_no_save_and_publish_on_a_published_row(admin_client: Client) -> None:
    sent = published(Queue.objects.create(name="sent.queue"))
    assert PUBLISH_BUTTON not in admin_client.get(url("message_change", sent.pk)).content.decode()


# --------------------------------------------------------------------------- big bodies


def test_big_text_body_page_is_bounded_and_kept_on_save(admin_client: Client) -> None:
    body = (SCRIPT + "é" * (BIG // 2)).encode()[:BIG]  # cut inside a character at the end
    message = pending(Queue.objects.create(name="big.queue"), body)

    with CaptureQueriesContext(connection) as reading:
        page = admin_client.get(url("message_change", message.pk))

    assert page.status_code == 200
    content = page.content.decode()
    assert len(page.content) < 200_000
    assert f"{len(body):,} bytes" in content
    assert SCRIPT not in content
    assert ESCAPED_SCRIPT in content
    assert url("message_body", message.pk) in content
    assert page.context["adminform"].form.fields["body_text"].disabled
    assert not loads_whole_body(reading.captured_queries)

    with CaptureQueriesContext(connection) as saving:
        response = admin_client.post(
            url("message_change", message.pk),
            change_form_data(page, content_type="text/x-big", body_text="overwritten?"),
        )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert not loads_whole_body(saving.captured_queries)
    message.refresh_from_db()
    assert message.content_type == "text/x-big"
    assert message.body_bytes == body


def test_big_binary_body_is_shown_as_a_bounded_bytes_literal(admin_client: Client) -> None:
    body = b"\xff\x00" * (BIG // 2)
    message = pending(Queue.objects.create(name="bigbin.queue"), body)

    page = admin_client.get(url("message_change", message.pk))

    assert len(page.content) < 200_000
    assert page.context["adminform"].form["body_text"].value().startswith("b'\\xff\\x00")


def test_big_body_download_returns_the_exact_bytes(client: Client) -> None:
    body = bytes(range(256)) * (BIG // 256) + b"<html>end"
    message = pending(Queue.objects.create(name="download.queue"), body)
    client.force_login(staff("view_message"))

    response = client.get(url("message_body", message.pk))

    assert response.status_code == 200
    assert response.content == body
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_download_needs_view_permission(client: Client) -> None:
    message = pending(Queue.objects.create(name="secret.queue"), b"secret")
    client.force_login(staff("view_queue"))

    assert client.get(url("message_body", message.pk)).status_code == 403


def test_download_of_a_missing_message_is_404(admin_client: Client) -> None:
    assert admin_client.get(url("message_body", 987654)).status_code == 404


def test_published_big_body_view_only_page_is_bounded(admin_client: Client) -> None:
    sent = published(Queue.objects.create(name="bigsent.queue"), SCRIPT + "x" * BIG)

    page = admin_client.get(url("message_change", sent.pk))

    assert len(page.content) < 200_000
    content = page.content.decode()
    assert ESCAPED_SCRIPT in content
    assert SCRIPT not in content
    assert f"{len(SCRIPT) + BIG:,} bytes" in content


def test_changelist_with_a_big_body_is_small_and_previews_its_start(admin_client: Client) -> None:
    pending(Queue.objects.create(name="bigcl.queue"), "Zoë says hi " + "z" * BIG)

    with CaptureQueriesContext(connection) as listing:
        page = admin_client.get(url("message_changelist"))

    assert page.status_code == 200
    assert len(page.content) < 200_000
    assert "Zoë says hi zzz" in page.content.decode()
    assert not loads_whole_body(listing.captured_queries)


def test_small_body_is_still_edited_in_the_textarea(admin_client: Client) -> None:
    body = "a" * (BIG_BODY - 10)
    message = pending(Queue.objects.create(name="small.queue"), body)
    page = admin_client.get(url("message_change", message.pk))
    form = page.context["adminform"].form
    assert not form.fields["body_text"].disabled
    assert form["body_text"].value() == body


def test_previews_decode_only_a_prefix() -> None:
    body = b"a" * 300 + b"\xff" * BIG  # not UTF-8 as a whole: only its start is decoded
    assert body_preview(body) == "a" * 59 + "…"  # Truncator counts its ellipsis
    assert body_preview(b"short") == "short"
    assert body_preview(b"\xff\xfe" * 100) == repr(b"\xff\xfe" * 30) + "…"
    assert body_preview("é".encode() * 10, size=10_000) == "é" * 10 + "…"
    assert prefix_as_text("ab€".encode()[:-1], truncated=True) == "ab"
    assert prefix_as_text("ab€".encode()[:-1], truncated=False) is None
    assert bounded_preview(b"x" * BIG, BIG) == "x" * BIG_BODY_PREVIEW


# --------------------------------------------------------------------------- admin log


def test_publish_action_logs_one_entry_per_published_message(
    admin_client: Client, admin_user: User, queue_name: str
) -> None:
    rows = [pending(queue_name, f"m{i}".encode()) for i in range(3)]
    already = published(rows[0].queue)

    run_action(admin_client, "message", "publish_messages", *rows, already)

    entries = logged(Message)
    assert sorted(e.object_id for e in entries) == sorted(str(r.pk) for r in rows)
    for entry in entries:
        assert entry.user == admin_user
        assert entry.action_flag == CHANGE
        assert "Publish selected messages" in entry.change_message
        assert "3 messages published" in entry.change_message
        assert entry.get_change_message() == entry.change_message


def test_failed_publish_is_logged_with_its_reason(admin_client: Client) -> None:
    message = pending(None, b"lost", exchange="amq.direct", routing_key="nobody.binds.here")

    run_action(admin_client, "message", "publish_messages", message)

    [entry] = logged(Message)
    assert entry.object_id == str(message.pk)
    assert "marked failed" in entry.change_message
    assert "unroutable" in entry.change_message


def test_broker_down_publish_is_logged_as_still_pending(admin_client: Client) -> None:
    message = pending("down.queue")

    with override_settings(MESSAGING=CLOSED_PORT):
        run_action(admin_client, "message", "publish_messages", message)

    [entry] = logged(Message)
    assert "Stays pending" in entry.change_message


def test_retry_and_republish_are_logged(
    admin_client: Client, admin_user: User, queue_name: str
) -> None:
    failed = pending(queue_name, b"again")
    Message.objects.filter(pk=failed.pk).update(status=Message.Status.FAILED)
    sent = published(failed.queue, b"copy me")

    run_action(admin_client, "message", "retry_failed", failed)
    [retried] = logged(Message)
    assert retried.object_id == str(failed.pk)
    assert "Retry failed messages" in retried.change_message

    run_action(admin_client, "message", "republish", sent)

    copy = Message.objects.exclude(pk__in=[failed.pk, sent.pk]).get()
    added = logged(Message, action_flag=ADDITION)
    assert [(e.object_id, e.user) for e in added] == [(str(copy.pk), admin_user)]
    assert sent.message_id in added[0].change_message
    changed = logged(Message, action_flag=CHANGE, object_id=str(copy.pk))
    assert len(changed) == 1
    assert "Republish" in changed[0].change_message
    assert "Published to the broker" in changed[0].change_message


def test_logging_ten_thousand_messages_takes_few_queries(admin_user: User) -> None:
    queue = Queue.objects.create(name="many.queue")
    rows = Message.objects.bulk_create(
        [Message(queue=queue, status=Message.Status.PUBLISHED) for _ in range(10_000)],
        batch_size=1000,
    )
    result = PublishResult(published=[r.message_id for r in rows])

    with CaptureQueriesContext(connection) as queries:
        count = audit.log_publish_result(admin_user, result, "a test")

    assert count == 10_000
    assert LogEntry.objects.count() == 10_000
    # A few SELECTs and bulk INSERTs (SQLite: about 140 rows per INSERT), not 10,000.
    assert len(queries.captured_queries) < 100


def test_purge_logs_the_count_per_queue(
    admin_client: Client, admin_user: User, queue_name: str, request: pytest.FixtureRequest
) -> None:
    row = declared(queue_name, 12)
    empty = declared(request.node.make_queue_name())

    purge(admin_client, row, empty, confirm=False)
    assert logged(Queue) == []  # the confirmation page does nothing
    purge(admin_client, row, empty, confirm=True)

    entries = {e.object_id: e for e in logged(Queue)}
    assert entries[str(row.pk)].change_message == "Purged 12 messages on the broker."
    assert entries[str(empty.pk)].change_message == "Purged 0 messages on the broker."
    assert {e.user for e in entries.values()} == {admin_user}


def test_purge_with_broker_down_is_logged(admin_client: Client, queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name)

    with override_settings(MESSAGING=CLOSED_PORT):
        purge(admin_client, row, confirm=True)

    [entry] = logged(Queue)
    assert entry.change_message.startswith("Not purged:")


def test_replay_and_declare_are_logged(
    admin_client: Client, admin_user: User, queue_name: str
) -> None:
    row = declared(queue_name)
    put(row.dead_letter_queue, 2)
    plain = Queue.objects.create(name=f"{queue_name}.plain", dead_lettering=False)

    run_action(admin_client, "queue", "replay_dead_letters", row, plain)

    [replayed] = logged(Queue)
    assert replayed.object_id == str(row.pk)
    assert replayed.change_message == (
        "Replayed 2 dead letters from the dead-letter queue (0 left there)."
    )

    run_action(admin_client, "queue", "declare_on_broker", row)

    [declared_entry] = logged(Queue, change_message="Declared on the broker.")
    assert declared_entry.object_id == str(row.pk)
    assert declared_entry.user == admin_user


def test_log_entries_are_escaped_on_the_history_page(admin_client: Client) -> None:
    message = pending(None, b"x", exchange="amq.direct", routing_key=SCRIPT)
    run_action(admin_client, "message", "publish_messages", message)
    assert logged(Message)

    page = admin_client.get(url("message_history", message.pk))

    content = page.content.decode()
    assert SCRIPT not in content
    assert ESCAPED_SCRIPT in content


@pytest.mark.parametrize(
    ("result", "level", "words"),
    [
        (PublishResult(published=["m-1"]), messages.SUCCESS, "saved and published to ex/rk."),
        (
            PublishResult(failed={"m-1": "connection refused"}, retrying=["m-1"]),
            messages.WARNING,
            "saved but not published yet (connection refused): it is pending, and the relay",
        ),
        (
            PublishResult(failed={"m-1": "NO_ROUTE"}),
            messages.ERROR,
            "saved but failed: the broker refused it (NO_ROUTE). It is failed.",
        ),
        (PublishResult(busy=["m-1"]), messages.WARNING, "another process was publishing it"),
        (PublishResult(), messages.WARNING, "another user or process changed it first"),
    ],
)
def test_save_and_publish_says_what_happened(result: Any, level: int, words: str) -> None:
    message = Message(message_id="m-1", exchange="ex", routing_key="rk")
    shown_level, text = saved_and_published(message, result, "/m/1/")
    assert shown_level == level
    assert words in text and '“<a href="/m/1/">m-1</a>”' in text
    assert "held" not in text and "added" not in text
