"""``messaging.publish()``: the row, the message on the real broker, and transactions.

``publish()`` sends at once only outside ``transaction.atomic()``; pytest-django's
``db`` fixture wraps each test in a transaction, so the "outside a transaction" tests
use ``transactional_db`` (real commits), and the ``db`` variants capture the on-commit
callbacks with ``django_capture_on_commit_callbacks``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from messaging import QueueMismatch, Unroutable, broker, publish
from messaging.exceptions import InvalidQueueName, NotFound
from messaging.models import Message, Queue
from messaging.publishing import flush, publish_messages
from tests.support.ports import closed_port
from tests.support.rabbitmq import queue_depth

PASSWORD = "s3cr3t-Pa55w0rd"


class Boom(Exception):
    pass


def broker_down():
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{closed_port()}/%2F"
    return override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": url})


def get_one(channel, queue: str):
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None, f"no message in {queue}"
    return properties, body


def assert_empty(channel, queue: str) -> None:
    assert channel.basic_get(queue, auto_ack=True)[0] is None


# --------------------------------------------------------------------------- outside a transaction


def test_publish_outside_a_transaction(transactional_db, queue_name, channel):
    body = bytes(range(256))
    headers = {
        "source": "tests",
        "count": 3,
        "ok": True,
        "ratio": "0.25",
        "nested": {"items": [1, "two", None]},
    }
    message = publish(queue_name, body, headers=headers, content_type="application/octet-stream")

    assert message.status == Message.Status.PUBLISHED
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.PUBLISHED
    assert row.attempts == 1
    assert row.published_at is not None
    assert row.last_error == ""
    assert row.body_bytes == body
    assert row.headers == headers
    assert row.queue.name == queue_name
    assert row.queue.durable is True

    properties, received = get_one(channel, queue_name)
    assert received == body
    assert properties.message_id == row.message_id
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/octet-stream"
    assert properties.headers == headers
    assert_empty(channel, queue_name)


def test_publish_declares_the_queue_durable(transactional_db, queue_name):
    publish(queue_name, b"x")
    with broker.connection() as conn:
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, durable=False))
        assert info.value.argument == "durable"
        # Declared with no extra arguments: a plain durable redeclare matches.
        broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, durable=True))


def test_publish_not_persistent(transactional_db, queue_name, channel):
    message = publish(queue_name, b"fleeting", persistent=False)
    assert Message.objects.get(pk=message.pk).persistent is False
    properties, body = get_one(channel, queue_name)
    assert body == b"fleeting"
    assert properties.delivery_mode == 1


def test_publish_without_headers_or_content_type(transactional_db, queue_name, channel):
    publish(queue_name, b"plain")
    properties, _ = get_one(channel, queue_name)
    assert properties.headers is None
    assert properties.content_type is None


def test_publish_records_the_user(transactional_db, queue_name):
    user = get_user_model().objects.create_user("alice")
    message = publish(queue_name, b"x", user=user)
    assert Message.objects.get(pk=message.pk).published_by == user


def test_str_body_is_utf8_encoded(transactional_db, queue_name, channel):
    message = publish(queue_name, "héllo wörld ✓")
    assert Message.objects.get(pk=message.pk).body_bytes == "héllo wörld ✓".encode()
    assert get_one(channel, queue_name)[1] == "héllo wörld ✓".encode()


@pytest.mark.parametrize("body", [b"", bytearray(b"\x00\x01"), memoryview(b"\xff\xfe")])
def test_empty_and_bytes_like_bodies(transactional_db, queue_name, channel, body):
    message = publish(queue_name, body)
    assert Message.objects.get(pk=message.pk).body_bytes == bytes(body)
    assert get_one(channel, queue_name)[1] == bytes(body)


def test_publish_to_a_queue_row_declares_it_as_the_row_says(transactional_db, queue_name):
    queue = Queue.objects.create(name=queue_name, arguments={"x-max-length": 1})
    publish(queue, b"first")
    publish(queue, b"second")
    assert queue_depth(queue_name) == 1  # x-max-length 1 is in force on the broker


def test_queue_row_that_differs_from_the_broker_fails_the_row(transactional_db, queue_name):
    with broker.connection() as conn:
        broker.declare_queue(conn.channel(), queue_name)  # durable on the broker
    queue = Queue.objects.create(name=queue_name, durable=False)
    with pytest.raises(QueueMismatch):
        publish(queue, b"x")
    row = Message.objects.get()
    assert row.status == Message.Status.FAILED
    assert "durable" in row.last_error


def test_publish_to_an_exchange(transactional_db, queue_name, channel):
    key = f"rk-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue_name)
    channel.queue_bind(queue_name, "amq.direct", routing_key=key)
    message = publish(exchange="amq.direct", routing_key=key, body=b"routed")
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.PUBLISHED
    assert row.queue is None
    properties, body = get_one(channel, queue_name)
    assert body == b"routed"
    assert properties.message_id == row.message_id


# --------------------------------------------------------------------------- failures


def test_broker_down_leaves_the_row_pending_without_an_exception(transactional_db, queue_name):
    before = timezone.now()
    with broker_down():
        message = publish(queue_name, b"x")  # no exception: the relay sends it later
    assert message.status == Message.Status.PENDING
    row = Message.objects.get()
    assert row.status == Message.Status.PENDING
    assert row.attempts == 1
    assert row.published_at is None
    assert "connection refused" in row.last_error
    assert PASSWORD not in row.last_error
    # Backoff: the first retry is PUBLISH_RETRY_DELAY (1 s by default) after the failure.
    assert row.next_attempt_at is not None
    assert (
        before + timedelta(seconds=0.5)
        < row.next_attempt_at
        < timezone.now() + timedelta(seconds=2)
    )


def test_pending_row_backs_off_exponentially_up_to_the_cap(transactional_db, queue_name):
    settings_ = {**settings.MESSAGING, "PUBLISH_RETRY_DELAY": 10, "PUBLISH_RETRY_MAX_DELAY": 35}
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{closed_port()}/%2F"
    with override_settings(MESSAGING={**settings_, "BROKER_URL": url}):
        message = publish(queue_name, b"x")
        delays = []
        for _ in range(3):
            row = Message.objects.get(pk=message.pk)
            delays.append((row.next_attempt_at - timezone.now()).total_seconds())
            publish_messages([row])
        row = Message.objects.get(pk=message.pk)
        delays.append((row.next_attempt_at - timezone.now()).total_seconds())
    assert row.attempts == 4
    assert row.status == Message.Status.PENDING
    assert [round(d) for d in delays] == [10, 20, 35, 35]


def test_unroutable_exchange_publish_raises_and_row_is_failed(transactional_db):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Unroutable) as info:
        publish(exchange="amq.direct", routing_key=key, body=b"x")
    expected = f"unroutable: no queue bound for exchange amq.direct routing key {key}"
    assert str(info.value) == expected
    row = Message.objects.get()
    assert row.status == Message.Status.FAILED
    assert row.last_error == expected
    assert row.exchange == "amq.direct"
    assert row.routing_key == key


def test_missing_exchange_raises_not_found_and_row_is_failed(transactional_db):
    exchange = f"no-such-exchange-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFound):
        publish(exchange=exchange, routing_key="rk", body=b"x")
    row = Message.objects.get()
    assert row.status == Message.Status.FAILED
    assert exchange in row.last_error


def test_routing_key_without_exchange_is_a_value_error(db):
    with pytest.raises(ValueError, match="routing_key needs an exchange"):
        publish("orders", b"x", routing_key="rk")
    assert not Message.objects.exists()
    assert not Queue.objects.exists()  # a refused call leaves nothing behind


def test_no_destination_is_a_value_error(db):
    with pytest.raises(ValueError, match="needs a queue or an exchange"):
        publish(body=b"x")
    assert not Message.objects.exists()


@pytest.mark.parametrize("name", ["amq.tasks", "é" * 128, ""])
def test_invalid_queue_name_is_refused_before_anything_is_saved(db, name):
    with pytest.raises(InvalidQueueName):
        publish(name, b"x")
    assert not Message.objects.exists()
    assert not Queue.objects.exists()


def test_body_of_another_type_is_a_type_error(db):
    with pytest.raises(TypeError, match="body must be bytes or str"):
        publish("orders", {"not": "bytes"})
    assert not Message.objects.exists()


# --------------------------------------------------------------------------- transactions


def test_rolled_back_transaction_publishes_nothing(transactional_db, queue_name):
    with pytest.raises(Boom), transaction.atomic():
        message = publish(queue_name, b"never")
        assert message.status == Message.Status.PENDING
        raise Boom
    assert not Message.objects.exists()
    assert not Queue.objects.exists()
    assert queue_depth(queue_name) is None  # never even declared


def test_committed_transaction_publishes_after_commit(transactional_db, queue_name, channel):
    body = b"later \x00\xff" + bytes(range(256))
    with transaction.atomic():
        message = publish(queue_name, body)
        assert message.status == Message.Status.PENDING
        assert queue_depth(queue_name) is None  # nothing sent before the commit
    assert flush(10)  # handed to the publisher thread at the commit
    assert message.status == Message.Status.PUBLISHED
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.PUBLISHED
    assert row.published_at is not None
    assert row.next_attempt_at is None
    properties, received = get_one(channel, queue_name)
    assert received == body
    assert properties.message_id == row.message_id
    assert_empty(channel, queue_name)  # exactly one


def test_rolled_back_savepoint_drops_only_its_message(transactional_db, queue_name, channel):
    with transaction.atomic():
        kept = publish(queue_name, b"kept")
        with pytest.raises(Boom), transaction.atomic():
            publish(queue_name, b"dropped")
            raise Boom
    assert flush(10)
    assert list(Message.objects.values_list("message_id", flat=True)) == [kept.message_id]
    assert get_one(channel, queue_name)[1] == b"kept"
    assert_empty(channel, queue_name)


def test_broker_down_after_commit_is_logged_and_left_pending(transactional_db, queue_name, caplog):
    with broker_down(), caplog.at_level(logging.WARNING, logger="messaging"):
        with transaction.atomic():
            message = publish(queue_name, b"x")
        assert flush(30)  # the publisher thread tried while the broker was down
    # Published on commit, inside broker_down(): no exception (the data is committed).
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.PENDING
    assert row.attempts == 1
    assert row.next_attempt_at is not None
    assert "connection refused" in row.last_error
    assert any(message.message_id in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_unroutable_after_commit_is_failed_without_an_exception(transactional_db):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        message = publish(exchange="amq.direct", routing_key=key, body=b"x")
    assert flush(10)
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.FAILED
    assert row.last_error == f"unroutable: no queue bound for exchange amq.direct routing key {key}"
    assert row.next_attempt_at is None


def test_relay_mode_only_writes_the_row(transactional_db, queue_name):
    with override_settings(MESSAGING={**settings.MESSAGING, "PUBLISH_MODE": "relay"}):
        outside = publish(queue_name, b"outside")
        with transaction.atomic():
            inside = publish(queue_name, b"inside")
    for message in (outside, inside):
        row = Message.objects.get(pk=message.pk)
        assert row.status == Message.Status.PENDING
        assert row.attempts == 0
        assert row.next_attempt_at is None  # due at once for the relay
    assert queue_depth(queue_name) is None  # nothing was sent (not even declared)


def test_a_row_its_creator_is_publishing_is_not_due_for_the_relay(transactional_db, queue_name):
    from messaging.publishing.relay import due

    with transaction.atomic():
        message = publish(queue_name, b"x")
        # Committed but not yet published (on_commit): the creator owns it for a while.
        row = Message.objects.get(pk=message.pk)
        assert row.next_attempt_at > timezone.now() + timedelta(seconds=30)
        assert not due().filter(pk=message.pk).exists()
    assert flush(10)
    assert Message.objects.get(pk=message.pk).status == Message.Status.PUBLISHED


def test_in_test_transaction_publishes_when_callbacks_run(
    db, queue_name, channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message = publish(queue_name, b"captured")
        assert queue_depth(queue_name) is None
    assert len(callbacks) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    properties, body = get_one(channel, queue_name)
    assert body == b"captured"
    assert properties.message_id == message.message_id


def test_in_test_transaction_nothing_is_sent_before_commit(
    db, queue_name, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = publish(queue_name, b"pending")
    assert len(callbacks) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING
    assert message.attempts == 0
    assert queue_depth(queue_name) is None


@pytest.mark.parametrize(
    "headers, where",
    [
        ({"ratio": 0.25}, "'ratio'"),
        ({"nested": {"items": [1, 1 / 3]}}, "'nested'.items[1]"),
        ({"big": 2**70}, "'big'"),
    ],
)
def test_headers_that_amqp_cannot_carry_are_refused_before_saving(
    transactional_db, queue_name, headers, where
):
    with pytest.raises(ValueError, match=r"^header ") as info:
        publish(queue_name, b"x", headers=headers)
    assert where in str(info.value) and "\n" not in str(info.value)
    assert not Message.objects.exists()


def test_queue_and_exchange_together_are_refused(transactional_db, queue_name):
    with pytest.raises(ValueError, match="not both"):
        publish(queue_name, b"x", exchange="amq.direct")
    assert not Message.objects.exists()
