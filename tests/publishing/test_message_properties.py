"""Message properties (correlation_id, reply_to, priority, expiration, type, app_id,
timestamp) through publish(), send, the relay and the admin, to the wire and to the
handler's Delivery; bad values refused with one line and nothing saved."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from messaging import publish
from messaging.exceptions import InvalidMessage
from messaging.models import Message, Queue, Receipt
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PROPS = {
    "correlation_id": "corr-1",
    "reply_to": "answers",
    "priority": 7,
    "expiration": 60000,
    "type": "order.created",
    "app_id": "shop",
}


def fetch(channel, queue: str):
    def one():
        got = channel.basic_get(queue, auto_ack=True)
        return got if got[0] is not None else None

    return wait_for(one)


def assert_wire(props, started: float) -> None:
    assert props.correlation_id == "corr-1"
    assert props.reply_to == "answers"
    assert props.priority == 7
    assert props.expiration == "60000"
    assert props.type == "order.created"
    assert props.app_id == "shop"
    assert started - 1 <= props.timestamp <= time.time() + 1


def test_publish_sends_and_stores_the_properties(queue_name, channel):
    started = time.time()
    message = publish(queue_name, b"x", **PROPS)
    message.refresh_from_db()
    assert message.status == "published"
    assert {name: getattr(message, name) for name in PROPS} == PROPS
    _method, props, _body = fetch(channel, queue_name)
    assert_wire(props, started)
    assert props.message_id == message.message_id


def test_every_message_gets_a_timestamp(queue_name, channel):
    publish(queue_name, b"plain")
    _method, props, _body = fetch(channel, queue_name)
    assert isinstance(props.timestamp, int) and abs(props.timestamp - time.time()) < 60


def test_expiration_as_a_timedelta(queue_name):
    message = publish(queue_name, b"x", expiration=timedelta(seconds=1.5))
    message.refresh_from_db()
    assert message.expiration == 1500


def test_the_relay_sends_the_stored_properties(queue_name, channel, settings, manage):
    settings.MESSAGING = {**settings.MESSAGING, "PUBLISH_MODE": "relay"}
    started = time.time()
    message = publish(queue_name, b"later", **PROPS)
    assert Message.objects.get(pk=message.pk).status == "pending"
    r = manage("relay", "--once")
    assert r.returncode == 0, r.stderr
    _method, props, _body = fetch(channel, queue_name)
    assert_wire(props, started)


def test_send_flags(manage, queue_name, channel):
    started = time.time()
    r = manage(
        "send",
        queue_name,
        "hi",
        "--correlation-id",
        "corr-1",
        "--reply-to",
        "answers",
        "--priority",
        "7",
        "--expiration",
        "60000",
        "--type",
        "order.created",
    )
    assert r.returncode == 0, r.stderr
    _method, props, _body = fetch(channel, queue_name)
    assert (props.correlation_id, props.reply_to, props.priority) == ("corr-1", "answers", 7)
    assert (props.expiration, props.type) == ("60000", "order.created")
    assert props.timestamp >= started - 1
    row = Message.objects.get()
    assert (row.priority, row.expiration, row.type) == (7, 60000, "order.created")


def test_send_count_copies_carry_the_properties(manage, queue_name, channel):
    r = manage("send", queue_name, "hi", "--count", "3", "--priority", "2", "--type", "t")
    assert r.returncode == 0, r.stderr
    for _ in range(3):
        _method, props, _body = fetch(channel, queue_name)
        assert (props.priority, props.type) == (2, "t") and props.timestamp


@pytest.mark.parametrize(
    ("flag", "value", "error"),
    [
        ("--priority", "300", "argument --priority: must be between 0 and 255, got '300'"),
        ("--expiration", "-5", "argument --expiration: must be between 0 and 4294967295"),
    ],
)
def test_send_bad_property_is_one_line_and_saves_nothing(manage, queue_name, flag, value, error):
    r = manage("send", queue_name, "x", flag, value)
    assert r.returncode == 2
    errors = [line for line in r.stderr.decode().splitlines() if "error:" in line]
    assert len(errors) == 1 and error in errors[0]
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("props", "error"),
    [
        ({"priority": 300}, "priority must be between 0 and 255, got 300"),
        ({"priority": -1}, "priority must be between 0 and 255, got -1"),
        ({"expiration": -5}, "expiration must not be negative, got -5 ms"),
        ({"expiration": timedelta(seconds=-1)}, "expiration must not be negative, got -1000 ms"),
        ({"correlation_id": "a\nb"}, "correlation_id: contains the control character U+000A"),
    ],
)
def test_publish_bad_property_raises_and_saves_nothing(queue_name, props, error):
    with pytest.raises(InvalidMessage, match=re.escape(error)):
        publish(queue_name, b"x", **props)
    assert not Message.objects.exists()


def test_priority_orders_on_a_queue_with_x_max_priority(queue_name, channel):
    Queue.objects.create(name=queue_name, arguments={"x-max-priority": 10})
    publish(queue_name, b"low", priority=1)
    publish(queue_name, b"high", priority=9)
    assert fetch(channel, queue_name)[2] == b"high"
    assert fetch(channel, queue_name)[2] == b"low"


def test_handler_sees_the_properties_and_receipt_the_source(manage, queue_name):
    message = publish(queue_name, b"x", **PROPS)
    r = manage(
        "runconsumer",
        queue_name,
        "--handler",
        "tests.support.rpc_handlers.record_properties",
        "--max-messages",
        "1",
    )
    assert r.returncode == 0, r.stderr
    seen = json.loads(bytes(Message.objects.get(exchange="seen").body))
    assert {k: seen[k] for k in PROPS} == PROPS
    assert seen["timestamp"] is not None and seen["stream_offset"] is None
    receipt = Receipt.objects.get(queue_name=queue_name)
    assert (receipt.exchange, receipt.routing_key) == ("", queue_name)
    assert receipt.message_id == message.message_id
    # reply_to was set but the handler returned nothing: no reply stored.
    assert receipt.reply is None


def test_admin_compose_with_properties(client, queue_name):
    admin = User.objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(admin)
    queue = Queue.objects.create(name=queue_name)
    url = reverse("admin:messaging_message_add")
    form = {
        "queue": queue.pk,
        "body_text": "hello",
        "body_format": "text",
        "headers": "{}",
        "persistent": "on",
        **{k: str(v) for k, v in PROPS.items()},
    }
    page = client.post(url, {**form, "priority": "300"})
    assert page.status_code == 200
    assert "priority must be between 0 and 255, got 300" in page.content.decode()
    assert not Message.objects.exists()
    assert client.post(url, form).status_code == 302
    row = Message.objects.get()
    assert {name: getattr(row, name) for name in PROPS} == PROPS
    change = client.get(reverse("admin:messaging_message_change", args=[row.pk]))
    assert "order.created" in change.content.decode()


def test_capture_keeps_the_properties_and_deliver_stores_a_reply(queue_name):
    from messaging.testing import capture

    with capture() as captured:
        publish(queue_name, b"21", reply_to="amq.rabbitmq.reply-to.x", correlation_id="c9")
        (message,) = captured
        assert message.properties.reply_to == "amq.rabbitmq.reply-to.x"
        assert message.properties.timestamp
        result = captured.deliver(handlers={queue_name: lambda d: int(d.body) * 2})
    (receipt,) = result.receipts
    assert receipt.outcome == "acked"
    assert (bytes(receipt.reply), receipt.reply_content_type) == (b"42", "application/json")
