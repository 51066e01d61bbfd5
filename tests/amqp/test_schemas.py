"""JSON bodies and queue schemas, the parts that need no broker: JSON encoding and decoding, schema
checks, rows refused when saved, publish() refusing before anything is saved, and
Delivery.json(). (A real publish, send and the consumer: tests/publishing/test_json_bodies.py.)"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.core.exceptions import ValidationError

from messaging import publish
from messaging.amqp.schemas import (
    body_problem,
    check_schema,
    data_problem,
    decode_json,
    encode_json,
)
from messaging.exceptions import InvalidMessage
from messaging.models import Message, Queue
from tests.support.examples import ORDER_SCHEMA

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- pure logic


def test_encode_json_uses_djangos_encoder_and_keeps_unicode() -> None:
    value = {
        "when": datetime.datetime(2026, 12, 1, 8, 30, tzinfo=datetime.UTC),
        "price": decimal.Decimal("9.90"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "name": "Zoë ✓",
    }
    body = encode_json(value)
    assert json.loads(body) == {
        "when": "2026-12-01T08:30:00Z",
        "price": "9.90",
        "id": "12345678-1234-5678-1234-567812345678",
        "name": "Zoë ✓",
    }
    assert "Zoë ✓".encode() in body  # not \\u escapes


def test_encode_json_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError, match="json: cannot encode"):
        encode_json({"x": object()})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_decode_json_errors_are_one_line(body: bytes, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_json(body)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_check_schema_refuses_an_invalid_schema() -> None:
    check_schema(ORDER_SCHEMA)
    check_schema(None)
    with pytest.raises(ValidationError, match="Not a valid JSON Schema"):
        check_schema({"type": "no-such-type"})
    with pytest.raises(ValidationError, match="JSON object"):
        check_schema([1, 2])


def test_data_problem_names_the_failing_path() -> None:
    assert data_problem(ORDER_SCHEMA, {"id": 1, "items": [{"price": 2.5}]}) is None
    problem = data_problem(ORDER_SCHEMA, {"id": 1, "items": [{"price": "x"}]})
    assert problem == "$.items[0].price: 'x' is not of type 'number'"
    assert data_problem(ORDER_SCHEMA, {"items": []}) == "$: 'id' is a required property"
    assert body_problem(ORDER_SCHEMA, b"nope").startswith("the body is not valid JSON")
    assert body_problem(None, b"nope") is None


# --------------------------------------------------------------------------- rows


@pytest.mark.django_db
def test_a_queue_with_an_invalid_schema_is_refused_when_saved() -> None:
    with pytest.raises(ValidationError, match="Not a valid JSON Schema"):
        Queue.objects.create(name="orders", schema={"type": 12})
    assert not Queue.objects.exists()
    queue = Queue(name="orders", schema={"minimum": "zero"})
    with pytest.raises(ValidationError) as info:
        queue.full_clean()
    assert "schema" in info.value.error_dict


# --------------------------------------------------------------------------- publish()


@pytest.mark.django_db
def test_publish_json_null_is_a_value_and_body_plus_json_is_refused() -> None:
    Queue.objects.create(name="valid.queue")
    with pytest.raises(ValueError, match="body or json=, not both"):
        publish("valid.queue", b"x", json={"a": 1})
    with pytest.raises(InvalidMessage, match="cannot encode"):
        publish("valid.queue", json={"x": object()})
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"json": {"id": "seven", "items": []}}, "$.id: 'seven' is not of type 'integer'"),
        ({"json": {"id": 1}}, "$: 'items' is a required property"),
        ({"body": b"{broken"}, "the body is not valid JSON"),
        ({"body": "plain text"}, "the body is not valid JSON"),
    ],
)
def test_publish_refuses_a_body_the_schema_refuses(kwargs: dict, expected: str) -> None:
    Queue.objects.create(name="orders", schema=ORDER_SCHEMA)
    with pytest.raises(InvalidMessage) as info:
        publish("orders", **kwargs)
    text = str(info.value)
    assert text.startswith(f"body does not match the schema of queue orders: {expected}")
    assert not Message.objects.exists()


# --------------------------------------------------------------------------- deliveries


def test_delivery_json() -> None:
    import pika

    from messaging.consumer.handlers import Delivery

    delivery = Delivery("q", b'{"a": [1, "\\u00fc"]}', pika.BasicProperties(), 1, False)
    assert delivery.json() == {"a": [1, "ü"]}
    with pytest.raises(ValueError, match="not valid JSON"):
        Delivery("q", b"nope", pika.BasicProperties(), 1, False).json()
