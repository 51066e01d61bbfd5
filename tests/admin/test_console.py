"""The admin: pages, composing messages, the publish and declare actions (real broker),
permissions, escaping, and the read-only receipt log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib import messages
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from messaging import broker
from messaging.admin import publish_selected
from messaging.broker import declare_queues as declare_selected
from messaging.exceptions import QueueMismatch
from messaging.models import Message, Queue, Receipt
from tests.support.admin import (
    CLOSED_PORT,
    ESCAPED_SCRIPT,
    SCRIPT,
    change_form_data,
    errors,
    pending,
    published,
    run_action,
    shown_messages,
    staff,
    url,
)
from tests.support.rabbitmq import queue_depth

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- helpers


def receipt(message_id: str, **kwargs: Any) -> Receipt:
    now = timezone.now()
    values: dict[str, Any] = {
        "queue_name": "some.queue",
        "outcome": Receipt.Outcome.ACKED,
        "consumer_name": "worker-1",
        "consumer_host": "host-a",
        "consumer_pid": 4242,
        "received_at": now,
        "finished_at": now,
    }
    values.update(kwargs)
    return Receipt.objects.create(message_id=message_id, **values)


# --------------------------------------------------------------------------- pages


def test_superuser_opens_every_page(admin_client: Client) -> None:
    queue = Queue.objects.create(name="pages.queue")
    message = pending(queue)
    sent = published(queue)
    linked = receipt(sent.message_id, error="boom")
    orphan = receipt("not-one-of-ours", outcome=Receipt.Outcome.REJECTED)

    pages = [
        url("queue_changelist"),
        url("queue_changelist") + "?q=pages&durable__exact=1",
        url("queue_add"),
        url("queue_change", queue.pk),
        url("message_changelist"),
        url("message_changelist") + f"?status__exact=pending&queue__id__exact={queue.pk}",
        url("message_changelist") + f"?q={message.message_id[:8]}",
        url("message_add"),
        url("message_change", message.pk),
        url("message_change", sent.pk),
        url("receipt_changelist"),
        url("receipt_changelist") + f"?q={sent.message_id}&outcome__exact=acked",
        url("receipt_change", linked.pk),
        url("receipt_change", orphan.pk),
    ]
    for page in pages:
        assert admin_client.get(page).status_code == 200, page


def test_changelists_show_destination_and_preview(admin_client: Client) -> None:
    queue = Queue.objects.create(name="orders")
    pending(queue, b"\xff\xfe binary")
    pending(None, "to an exchange", exchange="events", routing_key="order.created")

    content = admin_client.get(url("message_changelist")).content.decode()

    assert "orders" in content
    assert "events/order.created" in content
    assert "to an exchange" in content
    assert "b&#x27;\\xff\\xfe binary&#x27;" in content


# --------------------------------------------------------------------------- composing


def test_add_form_creates_pending_message_with_exact_bytes(admin_client: Client) -> None:
    queue = Queue.objects.create(name="compose.queue")
    body = '  {"name": "Zoë", "sign": "✓"}\r\nsecond line \n'

    response = admin_client.post(
        url("message_add"),
        {
            "queue": queue.pk,
            "exchange": "",
            "routing_key": "",
            "content_type": "application/json",
            "body_text": body,
            "headers": '{"x-tenant": "acme", "retry": 2}',
            "persistent": "on",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    message = Message.objects.get()
    assert message.body_bytes == body.encode("utf-8")
    assert message.status == Message.Status.PENDING
    assert message.queue == queue
    assert message.headers == {"x-tenant": "acme", "retry": 2}
    assert message.persistent is True
    assert message.content_type == "application/json"
    uuid.UUID(message.message_id)


def test_add_form_defaults_to_persistent(admin_client: Client) -> None:
    form = admin_client.get(url("message_add")).context["adminform"].form
    assert form["persistent"].value() is True


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"headers": "{not json"}, "headers", "valid JSON"),
        ({"headers": "[1, 2]"}, "headers", "JSON object"),
        ({"headers": '"text"'}, "headers", "JSON object"),
        ({"routing_key": "rk"}, "routing_key", "needs an exchange"),
        ({"queue": ""}, "__all__", "one of the two"),
        ({"exchange": "amq.direct"}, "exchange", "not both"),
        ({"headers": '{"ratio": 0.5}'}, "headers", "float"),
    ],
)
def test_add_form_refuses_bad_input(
    admin_client: Client, data: dict[str, str], field: str, text: str
) -> None:
    queue = Queue.objects.create(name="invalid.queue")
    post = {"queue": queue.pk, "body_text": "x", "headers": "{}", "persistent": "on"}
    post.update(data)

    response = admin_client.post(url("message_add"), post)

    assert response.status_code == 200
    form_errors = response.context["adminform"].form.errors
    assert text in " ".join(form_errors.get(field, [])), form_errors
    assert not Message.objects.exists()


def test_non_utf8_body_is_read_only_and_kept_byte_identical(admin_client: Client) -> None:
    body = b"\xff\x00\xfe"
    message = pending(Queue.objects.create(name="binary.queue"), body)
    page = admin_client.get(url("message_change", message.pk))
    assert page.status_code == 200
    assert page.context["adminform"].form.fields["body_text"].disabled
    assert "b&#x27;\\xff\\x00\\xfe&#x27;" in page.content.decode()

    # Change another field; a forged body_text is ignored for a disabled field.
    response = admin_client.post(
        url("message_change", message.pk),
        change_form_data(page, content_type="application/octet-stream", body_text="hacked"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    message.refresh_from_db()
    assert message.body_bytes == body
    assert message.content_type == "application/octet-stream"


def test_text_body_survives_browser_line_endings(admin_client: Client) -> None:
    message = pending(Queue.objects.create(name="text.queue"), b"line 1\nline 2\n")
    page = admin_client.get(url("message_change", message.pk))

    # Browsers send every textarea line break as CRLF: that alone is not an edit.
    admin_client.post(
        url("message_change", message.pk),
        change_form_data(page, body_text="line 1\r\nline 2\r\n", content_type="text/plain"),
    )
    message.refresh_from_db()
    assert message.body_bytes == b"line 1\nline 2\n"
    assert message.content_type == "text/plain"

    admin_client.post(url("message_change", message.pk), change_form_data(page, body_text="édité"))
    message.refresh_from_db()
    assert message.body_bytes == "édité".encode()


def test_published_message_is_read_only(admin_client: Client) -> None:
    sent = published(Queue.objects.create(name="done.queue"), b"final")

    page = admin_client.get(url("message_change", sent.pk))

    content = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in content
    assert 'name="body_text"' not in content
    assert "final" in content
    post = admin_client.post(
        url("message_change", sent.pk), {"body_text": "changed", "_save": "Save"}
    )
    assert post.status_code == 403
    sent.refresh_from_db()
    assert sent.body_bytes == b"final"


def test_message_page_lists_receipts_read_only(admin_client: Client) -> None:
    sent = published(Queue.objects.create(name="receipts.queue"))
    receipt(sent.message_id, outcome=Receipt.Outcome.REQUEUED, error="handler crashed")

    page = admin_client.get(url("message_change", sent.pk))

    content = page.content.decode()
    assert "handler crashed" in content
    assert "worker-1" in content
    (inline,) = page.context["inline_admin_formsets"]
    assert not inline.has_add_permission
    assert not inline.has_delete_permission


# --------------------------------------------------------------------------- publishing


def test_publish_action_publishes_pending_message(
    admin_client: Client, admin_user: User, queue_name: str, channel: Any
) -> None:
    body = b"exact \x00\xff bytes"
    message = pending(queue_name, body, content_type="application/octet-stream")
    already = published(message.queue)

    response = run_action(admin_client, "message", "publish_messages", message, already)

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert message.published_by == admin_user
    assert message.published_at is not None
    assert queue_depth(queue_name) == 1
    method, props, got = channel.basic_get(queue_name, auto_ack=True)
    assert got == body
    assert props.message_id == message.message_id
    assert props.delivery_mode == 2
    shown = shown_messages(response)
    assert (messages.SUCCESS, "1 message published.") in shown
    assert (messages.WARNING, "1 message was already published and was skipped.") in shown
    already.refresh_from_db()
    assert already.attempts == 1


def test_publish_unroutable_marks_failed(admin_client: Client) -> None:
    message = pending(
        None, b"lost", exchange="amq.direct", routing_key=f"nobody.binds.{uuid.uuid4().hex}"
    )

    response = run_action(admin_client, "message", "publish_messages", message)

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert "unroutable" in message.last_error
    (error,) = errors(response)
    assert error.startswith("1 message failed: unroutable")


def test_publish_with_broker_down_shows_error(admin_client: Client, queue_name: str) -> None:
    message = pending(queue_name, b"waiting")

    with override_settings(MESSAGING=CLOSED_PORT):
        response = run_action(admin_client, "message", "publish_messages", message, follow=False)
        assert response.status_code == 302
        page = admin_client.get(response["Location"])

    assert page.status_code == 200
    (error,) = errors(page)
    assert error.startswith("1 message not published yet: cannot reach the broker")
    assert "stays pending" in error
    message.refresh_from_db()
    # Not the message's fault: it stays pending, with the reason, for a retry.
    assert message.status == Message.Status.PENDING
    assert "cannot reach the broker" in message.last_error
    assert message.attempts == 1
    assert queue_depth(queue_name) is None


def test_failed_message_can_be_published_again(admin_client: Client, queue_name: str) -> None:
    message = pending(queue_name, b"retry me")
    Message.objects.filter(pk=message.pk).update(status="failed", attempts=1, last_error="x")

    run_action(admin_client, "message", "publish_messages", message)

    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert message.attempts == 2
    assert message.last_error == ""
    assert queue_depth(queue_name) == 1


def test_publish_selected_works_without_a_request(queue_name: str) -> None:
    ok = pending(queue_name, b"one")
    lost = pending(None, b"two", exchange="amq.direct", routing_key=f"x.{uuid.uuid4().hex}")
    done = published(ok.queue)

    result = publish_selected(Message.objects.all(), user=None)

    assert result.published == [ok.message_id]
    assert list(result.failed) == [lost.message_id]
    assert result.skipped == 1
    assert done.message_id not in result.published
    assert queue_depth(queue_name) == 1


def test_publish_needs_the_publish_permission(client: Client, queue_name: str) -> None:
    message = pending(queue_name, b"not yours to send")
    client.force_login(staff("view_message", "change_message"))

    page = client.get(url("message_changelist"))
    assert page.status_code == 200
    assert "Publish selected messages" not in page.content.decode()

    forged = run_action(client, "message", "publish_messages", message)

    assert forged.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING
    assert message.attempts == 0
    assert queue_depth(queue_name) is None


def test_publish_permission_shows_the_action(client: Client) -> None:
    pending(Queue.objects.create(name="perm.queue"))
    client.force_login(staff("view_message", "publish_message"))

    page = client.get(url("message_changelist"))

    assert "Publish selected messages" in page.content.decode()


# --------------------------------------------------------------------------- escaping


def test_user_data_is_escaped(admin_client: Client) -> None:
    queue = Queue.objects.create(name="xss.queue")
    editable = pending(queue, SCRIPT, content_type=SCRIPT, headers={"x": SCRIPT})
    sent = published(queue, SCRIPT)
    logged = receipt(sent.message_id, error=SCRIPT, consumer_name=SCRIPT)

    for page in [
        url("message_changelist"),
        url("message_change", editable.pk),
        url("message_change", sent.pk),
        url("receipt_changelist"),
        url("receipt_change", logged.pk),
    ]:
        content = admin_client.get(page).content.decode()
        assert SCRIPT not in content, page
        assert ESCAPED_SCRIPT in content, page


# --------------------------------------------------------------------------- queues


def test_declare_action_declares_and_reports_drift(
    admin_client: Client, queue_name: str, request: pytest.FixtureRequest
) -> None:
    with broker.connection() as conn:
        conn.channel().queue_declare(queue_name, durable=False)
    drifted = Queue.objects.create(name=queue_name, durable=True)
    fresh = Queue.objects.create(name=request.node.make_queue_name())

    response = run_action(admin_client, "queue", "declare_on_broker", drifted, fresh)

    assert response.status_code == 200
    assert (messages.SUCCESS, "1 queue declared on the broker.") in shown_messages(response)
    (error,) = errors(response)
    assert queue_name in error
    assert "durable" in error
    assert queue_depth(fresh.name) == 0


def test_declare_selected_works_without_a_request(
    queue_name: str, request: pytest.FixtureRequest
) -> None:
    with broker.connection() as conn:
        conn.channel().queue_declare(queue_name, durable=True)
    drifted = Queue.objects.create(name=queue_name, queue_type=Queue.QueueType.QUORUM)
    fresh = Queue.objects.create(name=request.node.make_queue_name(), arguments={"x-max-length": 5})

    result = declare_selected([drifted, fresh])

    assert result.declared == [fresh.name]
    assert isinstance(result.failed[queue_name], QueueMismatch)
    assert result.error is None


def test_declare_with_broker_down_shows_one_error(admin_client: Client) -> None:
    rows = [Queue.objects.create(name="down.a"), Queue.objects.create(name="down.b")]

    with override_settings(MESSAGING=CLOSED_PORT):
        response = run_action(admin_client, "queue", "declare_on_broker", *rows)

    assert response.status_code == 200
    (error,) = errors(response)
    assert "2 queues not declared" in error
    assert "cannot reach the broker" in error


def test_deleting_a_queue_row_leaves_the_broker_queue(
    admin_client: Client, queue_name: str
) -> None:
    row = Queue.objects.create(name=queue_name)
    declare_selected([row])

    response = admin_client.post(url("queue_delete", row.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Queue.objects.exists()
    assert queue_depth(queue_name) == 0


# --------------------------------------------------------------------------- receipts


def test_receipt_admin_is_read_only(admin_client: Client) -> None:
    logged = receipt("some-id", error="boom")

    assert admin_client.get(url("receipt_add")).status_code == 403
    page = admin_client.get(url("receipt_change", logged.pk))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="_save"' not in content
    assert "boom" in content
    assert page.context["adminform"].form.fields == {}
    post = admin_client.post(url("receipt_change", logged.pk), {"error": "edited"})
    assert post.status_code == 403
    assert admin_client.post(url("receipt_delete", logged.pk), {"post": "yes"}).status_code == 403
    logged.refresh_from_db()
    assert logged.error == "boom"


def test_receipt_links_to_its_message_when_there_is_one(admin_client: Client) -> None:
    sent = published(Queue.objects.create(name="link.queue"))
    receipt(sent.message_id)
    receipt("foreign-producer-id", queue_name="other.queue")

    content = admin_client.get(url("receipt_changelist")).content.decode()

    assert f'<a href="{url("message_change", sent.pk)}">{sent.message_id}</a>' in content
    assert "foreign-producer-id" in content
    assert "foreign-producer-id</a>" not in content


# --------------------------------------------------------------------------- more actions


def test_retry_failed_publishes_only_failed_messages(admin_client: Client, queue_name: str) -> None:
    failed = pending(queue_name, b"failed once")
    Message.objects.filter(pk=failed.pk).update(status="failed", attempts=1, last_error="x")
    waiting = pending(queue_name, b"still pending")

    response = run_action(admin_client, "message", "retry_failed", failed, waiting)

    failed.refresh_from_db()
    waiting.refresh_from_db()
    assert failed.status == Message.Status.PUBLISHED
    assert failed.attempts == 2
    assert waiting.status == Message.Status.PENDING
    assert queue_depth(queue_name) == 1
    shown = shown_messages(response)
    assert (messages.SUCCESS, "1 message published.") in shown
    assert (messages.WARNING, "1 message was not failed and was skipped.") in shown


def test_republish_publishes_a_copy_with_a_new_id(
    admin_client: Client, admin_user: User, queue_name: str, channel: Any
) -> None:
    original = published(Queue.objects.create(name=queue_name), b"\x00 again \xff")
    Message.objects.filter(pk=original.pk).update(
        headers={"k": "v"}, content_type="application/x-thing", persistent=False
    )

    response = run_action(admin_client, "message", "republish", original)

    copy = Message.objects.exclude(pk=original.pk).get()
    assert copy.message_id != original.message_id
    assert copy.body_bytes == b"\x00 again \xff"
    assert copy.headers == {"k": "v"}
    assert copy.content_type == "application/x-thing"
    assert copy.persistent is False
    assert copy.status == Message.Status.PUBLISHED
    assert copy.published_by == admin_user
    original.refresh_from_db()
    assert original.attempts == 1  # untouched
    method, props, body = channel.basic_get(queue_name, auto_ack=True)
    assert (body, props.message_id, props.delivery_mode) == (
        b"\x00 again \xff",
        copy.message_id,
        1,
    )
    shown = shown_messages(response)
    assert (messages.INFO, "1 copy created (new message id).") in shown
    assert (messages.SUCCESS, "1 message published.") in shown


@pytest.mark.parametrize("action", ["publish_messages", "retry_failed", "republish"])
def test_every_publishing_action_needs_the_publish_permission(
    client: Client, queue_name: str, action: str
) -> None:
    message = pending(queue_name, b"not yours")
    Message.objects.filter(pk=message.pk).update(status="failed")
    client.force_login(staff("view_message", "add_message", "change_message"))

    content = client.get(url("message_changelist")).content.decode()
    assert f'value="{action}"' not in content

    forged = run_action(client, "message", action, message)

    assert forged.status_code == 200
    assert Message.objects.count() == 1
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert queue_depth(queue_name) is None

    client.force_login(staff("view_message", "publish_message"))
    assert f'value="{action}"' in client.get(url("message_changelist")).content.decode()


def test_publish_all_across_pages_has_no_row_cap(admin_client: Client, queue_name: str) -> None:
    queue = Queue.objects.create(name=queue_name)
    Message.objects.bulk_create([Message(queue=queue, body=f"m{i}".encode()) for i in range(1200)])

    response = admin_client.post(
        url("message_changelist"),
        {"action": "publish_messages", "select_across": "1", "_selected_action": ["0"]},
        follow=True,
    )

    assert (messages.SUCCESS, "1200 messages published.") in shown_messages(response)
    assert Message.objects.filter(status="published").count() == 1200
    assert queue_depth(queue_name) == 1200


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("needle", {"text"}),
        ("NEEDLE", {"text"}),
        ("Zoë", {"accent"}),
        ('"two words"', {"text"}),
        ("absent", set()),
    ],
)
def test_search_finds_body_text(admin_client: Client, term: str, found: set[str]) -> None:
    queue = Queue.objects.create(name="search.queue")
    rows = {
        "text": pending(queue, "hay needle hay, two words"),
        "accent": pending(queue, "chez Zoë \\ backslash"),
        "binary": pending(queue, b"\xff\x00needle-ish? no: \xfe"),
    }
    Message.objects.filter(pk=rows["binary"].pk).update(body=b"\xff\x00\xfe")

    page = admin_client.get(url("message_changelist"), {"q": term})

    assert page.status_code == 200
    assert {m.pk for m in page.context["cl"].result_list} == {rows[k].pk for k in found}


def test_search_finds_message_id(admin_client: Client) -> None:
    queue = Queue.objects.create(name="search.id")
    one, _two = pending(queue, "a"), pending(queue, "b")

    page = admin_client.get(url("message_changelist"), {"q": one.message_id[:13]})

    assert [m.pk for m in page.context["cl"].result_list] == [one.pk]


def test_message_filters(admin_client: Client) -> None:
    queue = Queue.objects.create(name="filter.queue")
    waiting = pending(queue)
    done = published(queue)

    by_status = admin_client.get(url("message_changelist"), {"status__exact": "published"})
    by_queue = admin_client.get(url("message_changelist"), {"queue__id__exact": queue.pk})
    by_date = admin_client.get(url("message_changelist"), {"published_at__isnull": "False"})

    assert [m.pk for m in by_status.context["cl"].result_list] == [done.pk]
    assert {m.pk for m in by_queue.context["cl"].result_list} == {waiting.pk, done.pk}
    assert [m.pk for m in by_date.context["cl"].result_list] == [done.pk]


def test_receipt_filters_take_choices_from_queue_and_consumer_tables(
    admin_client: Client,
) -> None:
    from messaging.models import Consumer

    Queue.objects.create(name="filter.a")
    now = timezone.now()
    Consumer.objects.create(name="worker-1", host="h", pid=1, started_at=now, last_heartbeat=now)
    receipt("id-a", queue_name="filter.a", consumer_name="worker-1")
    receipt("id-b", queue_name="filter.b", consumer_name="worker-2")

    page = admin_client.get(url("receipt_changelist")).content.decode()
    assert "?queue_name=filter.a" in page and "?consumer_name=worker-1" in page

    by_queue = admin_client.get(url("receipt_changelist"), {"queue_name": "filter.b"})
    assert "id-b" in by_queue.content.decode() and "id-a" not in by_queue.content.decode()
    by_consumer = admin_client.get(url("receipt_changelist"), {"consumer_name": "worker-1"})
    assert "id-a" in by_consumer.content.decode() and "id-b" not in by_consumer.content.decode()


# --------------------------------------------------------------------------- times


def test_message_and_consumer_pages_show_times_to_the_second(admin_client: Client) -> None:
    from datetime import UTC, datetime, timedelta

    from messaging.models import Consumer

    moment = datetime(2026, 12, 7, 18, 2, 11, tzinfo=UTC)
    sent = published(Queue.objects.create(name="times.queue"))
    Message.objects.filter(pk=sent.pk).update(created_at=moment, published_at=moment)
    receipt(sent.message_id, received_at=moment, finished_at=moment)
    now = timezone.now()
    worker = Consumer.objects.create(
        name="times-worker",
        host="h",
        pid=1,
        started_at=moment,
        last_heartbeat=now - timedelta(seconds=12),
        stopped_at=moment,
    )

    pages = {
        "message list": url("message_changelist"),
        "message page": url("message_change", sent.pk),
        "consumer list": url("consumer_changelist"),
        "consumer page": url("consumer_change", worker.pk),
    }
    for name, page in pages.items():
        content = admin_client.get(page).content.decode()
        assert "2026-12-07 18:02:11" in content, name
        assert "Dec. 7, 2026" not in content and "p.m." not in content, name
    consumer_page = admin_client.get(pages["consumer page"]).content.decode()
    heartbeat = timezone.localtime(worker.last_heartbeat).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{heartbeat} (12 s ago)" in consumer_page or f"{heartbeat} (13 s ago)" in consumer_page
