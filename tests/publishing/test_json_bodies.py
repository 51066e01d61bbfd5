"""JSON bodies and queue schemas against the broker: publish(json=...) and a matching body reach
the queue, send --json, and the consumer rejecting bodies a queue's schema refuses before
the handler runs. (Encoding, schema checks and refusals: tests/amqp/test_schemas.py.)"""

from __future__ import annotations

import json

import pytest

from messaging import publish
from messaging.amqp.schemas import encode_json
from messaging.models import Message, Queue
from tests.support.examples import ORDER_SCHEMA

# --------------------------------------------------------------------------- publish()


@pytest.mark.django_db(transaction=True)
def test_publish_json_sets_body_and_content_type(queue_name: str, channel) -> None:
    message = publish(queue_name, json={"id": 7, "name": "Zoë"})
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert message.content_type == "application/json"
    assert json.loads(message.body_bytes) == {"id": 7, "name": "Zoë"}
    method, props, body = channel.basic_get(queue_name, auto_ack=True)
    assert props.content_type == "application/json"
    assert json.loads(body) == {"id": 7, "name": "Zoë"}


@pytest.mark.django_db(transaction=True)
def test_publish_accepts_a_matching_body(queue_name: str) -> None:
    Queue.objects.create(name=queue_name, schema=ORDER_SCHEMA)
    message = publish(queue_name, json={"id": 1, "items": [{"price": 1.25}]})
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED


# --------------------------------------------------------------------------- send


def test_send_json(manage, queue_name: str, channel) -> None:
    result = manage("send", queue_name, "--json", '{"id": 3, "tags": ["ü"]}')
    assert result.returncode == 0, result.stderr
    assert """ [x] Sent b'{"id":3,"tags":[""" in result.stdout.decode()
    message = Message.objects.get()
    assert message.content_type == "application/json"
    assert json.loads(message.body_bytes) == {"id": 3, "tags": ["ü"]}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--json", "{bad"], "--json is not valid JSON"),
        (["body", "--json", "1"], "give BODY or --json, not both"),
        (["--json", '{"id": "x", "items": []}'], "$.id: 'x' is not of type 'integer'"),
    ],
)
def test_send_json_errors(manage, args: list[str], expected: str) -> None:
    Queue.objects.create(name="orders", schema=ORDER_SCHEMA)
    result = manage("send", "orders", *args)
    assert result.returncode == 1
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert expected in err
    assert not Message.objects.exists()


# --------------------------------------------------------------------------- the consumer


def raw_publish(queue: str, bodies: list[bytes]) -> None:
    """Publish as another producer would (no schema check on the way in)."""
    import pika

    from messaging import broker

    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for index, body in enumerate(bodies):
            channel.basic_publish(
                "",
                queue,
                body,
                pika.BasicProperties(message_id=f"m{index}", delivery_mode=2),
            )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prefetch", [1, 10])
def test_consumer_rejects_bodies_the_schema_refuses_without_running_the_handler(
    queue_name: str, prefetch: int
) -> None:
    from messaging.consumer import Consumer
    from messaging.models import Receipt
    from tests.support.rabbitmq import queue_depth
    from tests.support.waiting import wait_for

    queue = Queue.objects.create(name=queue_name, schema=ORDER_SCHEMA)
    from messaging import broker

    broker.declare_queues([queue])
    good = encode_json({"id": 1, "items": []})
    raw_publish(queue_name, [good, b'{"id": "x", "items": []}', b"not json", good])
    seen: list[dict] = []
    consumer = Consumer([queue], {queue_name: lambda d: seen.append(d.json())}, prefetch=prefetch)
    consumer.max_messages = 4
    consumer.idle_timeout = 5
    consumer.run()

    assert seen == [{"id": 1, "items": []}, {"id": 1, "items": []}]
    rows = dict(Receipt.objects.filter(queue_name=queue_name).values_list("message_id", "outcome"))
    assert rows == {"m0": "acked", "m1": "rejected", "m2": "rejected", "m3": "acked"}
    errors = dict(Receipt.objects.filter(outcome="rejected").values_list("message_id", "error"))
    assert errors["m1"] == (
        "body does not match the queue's schema: $.id: 'x' is not of type 'integer'"
    )
    assert errors["m2"].startswith("body does not match the queue's schema: the body is not")
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 2)
    assert consumer.stats.rejected == 2
