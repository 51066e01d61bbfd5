"""Names and fields are validated in bytes, before anything is saved —
by the same validators in the models, publish(), send and the admin forms. (send's own
refusals, run as manage.py subprocesses, are in tests/commands/test_send_validation.py.)"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from messaging import publish
from messaging.amqp.validators import (
    MAX_HEADER_DEPTH,
    message_problem,
    validate_content_type,
    validate_exchange_name,
    validate_headers,
    validate_queue_name,
    validate_routing_key,
)
from messaging.exceptions import InvalidMessage, InvalidQueueName
from messaging.models import Message, Queue
from tests.support.examples import BAD_QUEUE_NAMES

pytestmark = pytest.mark.unit


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(("name", "expected"), BAD_QUEUE_NAMES)
def test_queue_name_rules(name: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_queue_name(name)
    assert expected in info.value.messages[0]


def test_queue_name_of_251_bytes_is_the_longest_accepted() -> None:
    validate_queue_name("a" * 251)
    validate_queue_name("é" * 125 + "a")


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (validate_exchange_name, "ex\nchange", "control character"),
        (validate_exchange_name, " ex", "whitespace"),
        (validate_exchange_name, "e" * 256, "256 bytes"),
        (validate_routing_key, "r" * 256, "256 bytes"),
        (validate_routing_key, "a\x00b", "control character U+0000"),
        (validate_content_type, "é" * 200, "400 bytes"),
        (validate_content_type, "text/plain\r\n", "control character"),
    ],
)
def test_short_string_rules(check, value: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        check(value)
    assert expected in info.value.messages[0]


def test_empty_exchange_and_routing_key_are_fine() -> None:
    validate_exchange_name("")
    validate_routing_key("")
    validate_content_type("")
    validate_routing_key("order.*.created #")  # spaces are fine inside a routing key


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"k" * 256: "v"}, "256 bytes"),
        ({1: "x"}, "keys must be strings, not int"),
        ({"": "x"}, "cannot be empty"),
        ({"x": b"bytes"}, "bytes values cannot be sent"),
        ({"x": {b"k"}}, "set values cannot be sent"),
        ({"x": 1.5}, "float"),
        ({"x": 2**64}, "64 bits"),
        ({"x": {1: "y"}}, "keys must be strings"),
        ({"x": nested(MAX_HEADER_DEPTH + 1)}, "nested deeper than 16"),
        ({"x-death": []}, "reserved"),
        ({"x-delivery-count": 1}, "reserved"),
        ({"x-messaging-death": []}, "reserved"),
        ({"x-first-death-queue": "q"}, "reserved"),
        ([1, 2], "JSON object"),
    ],
)
def test_header_rules(headers: object, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_headers(headers)
    assert expected in info.value.messages[0]


def test_good_headers_pass() -> None:
    validate_headers(
        {"x-tenant": "acme", "n": 2**63 - 1, "ok": True, "none": None, "l": [1, {"a": "b"}]}
    )
    validate_headers({"deep": nested(MAX_HEADER_DEPTH - 1)})
    validate_headers(None)


def test_message_problem_names_the_field() -> None:
    queue = Queue(name="fine")
    assert message_problem(Message(queue=queue)) is None
    bad = Message(queue=queue, content_type="é" * 200)
    assert message_problem(bad) == (
        "invalid message: Content type is 400 bytes of UTF-8; AMQP allows at most 255."
    )
    bad_queue = Message(queue=Queue(name="bad\nname"))
    assert "control character U+000A" in message_problem(bad_queue)


# --------------------------------------------------------------------------- publish()


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "expected"), BAD_QUEUE_NAMES)
def test_publish_refuses_bad_queue_names_and_saves_nothing(name: str, expected: str) -> None:
    with pytest.raises(InvalidQueueName) as info:
        publish(name, b"x")
    assert expected in one_line(info.value)
    assert not Queue.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"content_type": "é" * 200}, "Content type is 400 bytes"),
        ({"content_type": "c" * 300}, "Content type is 300 bytes"),
        ({"headers": {"k" * 300: "v"}}, "300 bytes"),
        ({"headers": {1: "x"}}, "keys must be strings"),
        ({"headers": {"x": b"v"}}, "bytes values"),
        ({"headers": {"x-death": []}}, "reserved"),
        ({"headers": {"x": nested(40)}}, "nested deeper"),
    ],
)
def test_publish_refuses_bad_properties_and_saves_nothing(kwargs: dict, expected: str) -> None:
    Queue.objects.create(name="valid.queue")
    with pytest.raises(InvalidMessage) as info:
        publish("valid.queue", b"x", **kwargs)
    assert expected in one_line(info.value)
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_publish_refuses_bad_exchange_names() -> None:
    with pytest.raises(InvalidMessage) as info:
        publish(exchange="ex\nchange", routing_key="rk")
    assert "control character" in one_line(info.value)
    with pytest.raises(InvalidMessage):
        publish(exchange="logs", routing_key="r" * 256)
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_model_full_clean_uses_the_same_rules() -> None:
    queue = Queue.objects.create(name="valid.queue")
    message = Message(queue=queue, content_type="é" * 200, headers={"x-death": []})
    with pytest.raises(ValidationError) as info:
        message.full_clean()
    assert set(info.value.error_dict) == {"content_type", "headers"}
