"""The producer and consumer side's pure code: AMQP property validation, replies
from handler return values, binding and stream-offset arguments."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pika
import pytest

from messaging import broker
from messaging.amqp.properties import Properties, clean_properties, expiration_ms, pika_kwargs
from messaging.amqp.stream_offsets import consume_arguments, parse_offset
from messaging.amqp.validators import message_problem
from messaging.broker.pika_properties import basic_properties
from messaging.consumer.handlers import Delivery, pika_style
from messaging.exceptions import InvalidMessage
from messaging.management.commands.runconsumer import parse_binding
from messaging.models import Message, Queue
from messaging.rpc.replies import CallbackPublishes, Reply, as_reply, outcome_of

pytestmark = pytest.mark.unit

# --------------------------------------------------------------------------- properties


def test_clean_properties_normalises():
    cleaned = clean_properties({"priority": 0, "expiration": timedelta(minutes=1), "type": "t"})
    assert cleaned == {
        "correlation_id": "",
        "reply_to": "",
        "type": "t",
        "app_id": "",
        "priority": 0,
        "expiration": 60000,
    }


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"priority": 256}, "priority must be between 0 and 255, got 256"),
        ({"priority": True}, "priority must be a whole number from 0 to 255, got True"),
        ({"priority": "5"}, "priority must be a whole number from 0 to 255, got '5'"),
        ({"expiration": -1}, "expiration must not be negative, got -1 ms"),
        ({"expiration": 2**32}, "expiration must be at most 4294967295 ms"),
        ({"expiration": 1.5}, "expiration must be whole milliseconds, got 1.5"),
        ({"reply_to": "x" * 256}, "reply_to: is 256 bytes of UTF-8; AMQP allows at most 255."),
        ({"colour": "red"}, "unknown message properties: colour"),
    ],
)
def test_clean_properties_refuses_with_one_line(values, error):
    with pytest.raises(ValueError) as info:
        clean_properties(values)
    assert error in str(info.value) and "\n" not in str(info.value)


def test_expiration_ms():
    assert expiration_ms(None) is None
    assert expiration_ms(timedelta(seconds=1, microseconds=999)) == 1000
    assert expiration_ms("250") == 250
    with pytest.raises(ValueError, match="whole milliseconds"):
        expiration_ms("soon")


def test_pika_kwargs_leave_out_what_is_unset():
    row = Message(priority=0, expiration=5, correlation_id="c")
    assert pika_kwargs(row) == {"correlation_id": "c", "priority": 0, "expiration": "5"}
    assert pika_kwargs(Message()) == {}


def test_message_problem_catches_a_stored_bad_priority():
    row = Message(queue=Queue(name="q"), priority=999)
    assert message_problem(row) == "invalid message: priority must be between 0 and 255, got 999"


def test_properties_carry_timestamp_and_extra():
    props = broker.properties(message_id="m", timestamp=12, extra={"priority": 3, "type": "t"})
    assert (props.timestamp, props.priority, props.type) == (12, 3, "t")


def test_properties_are_one_checked_value():
    props = Properties(
        content_type=None, headers={}, expiration=timedelta(seconds=2), reply_to=None
    )
    assert (props.content_type, props.headers, props.expiration, props.reply_to) == (
        "",
        None,
        2000,
        "",
    )
    assert props.delivery_mode == 2 and Properties(persistent=False).delivery_mode == 1
    assert Properties(headers={"k": 1}).fields()["headers"] == {"k": 1}
    assert Properties().fields()["headers"] == {}  # a Message field, never None


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"content_type": "a\nb"}, "Content type contains the control character U+000A"),
        ({"headers": {"x-death": []}}, "header 'x-death': reserved"),
        ({"headers": {"f": 1.5}}, "is a float"),
        ({"priority": 256}, "priority must be between 0 and 255, got 256"),
        ({"expiration": "soon"}, "expiration must be whole milliseconds, got 'soon'"),
        ({"app_id": "a\x00"}, "app_id: contains the control character U+0000"),
    ],
)
def test_properties_refuse_with_one_line(values, error):
    with pytest.raises(InvalidMessage) as info:
        Properties(**values)
    assert error in str(info.value) and "\n" not in str(info.value)


def test_properties_of_a_row_and_on_the_wire():
    row = Message(content_type="text/plain", headers={"k": "v"}, priority=4, type="t")
    props = Properties.of(row)
    assert (props.content_type, props.headers, props.priority, props.type) == (
        "text/plain",
        {"k": "v"},
        4,
        "t",
    )
    wire = basic_properties(props, message_id="m", timestamp=7)
    assert (wire.message_id, wire.timestamp, wire.delivery_mode) == ("m", 7, 2)
    assert (wire.content_type, wire.headers, wire.priority, wire.type) == (
        "text/plain",
        {"k": "v"},
        4,
        "t",
    )
    assert wire.correlation_id is None and wire.expiration is None
    assert basic_properties(Properties(expiration=5)).expiration == "5"


def test_stream_rows_declare_x_queue_type():
    assert Queue(name="s", queue_type="stream").declare_arguments() == {"x-queue-type": "stream"}


# --------------------------------------------------------------------------- replies


def test_as_reply_kinds():
    assert as_reply(None) is None
    assert as_reply(b"\x00") == Reply(b"\x00", "")
    assert as_reply("héllo") == Reply("héllo".encode(), "text/plain; charset=utf-8")
    assert as_reply({"a": [1]}) == Reply(b'{"a":[1]}', "application/json")
    with pytest.raises(TypeError, match="cannot be sent as a reply"):
        as_reply(object())


def test_outcome_needs_reply_to():
    assert outcome_of("x", "", "c") == (None, ())
    stored, outbound = outcome_of("42", "amq.rabbitmq.reply-to.abc", "c1")
    assert stored == Reply(b"42", "text/plain; charset=utf-8")
    (reply,) = outbound
    assert (reply.exchange, reply.routing_key, reply.correlation_id) == (
        "",
        "amq.rabbitmq.reply-to.abc",
        "c1",
    )


def delivery(reply_to: str = "cb", correlation_id: str = "c") -> Delivery:
    props = pika.BasicProperties(reply_to=reply_to, correlation_id=correlation_id)
    return Delivery(queue="q", body=b"5", properties=props, delivery_tag=1, redelivered=False)


def test_a_pika_callback_publishing_its_reply_is_recorded_not_sent():
    def on_request(ch, method, props, body):
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(int(body) * 2),
        )
        ch.basic_ack(delivery_tag=1)

    result = pika_style(on_request)(delivery())
    assert isinstance(result, CallbackPublishes)
    stored, outbound = outcome_of(result, "cb", "c")
    assert stored == Reply(b"10", "")
    assert outbound[0].properties.correlation_id == "c"


# --------------------------------------------------------------------------- arguments


def test_parse_binding():
    assert parse_binding("logs") == ("logs", "")
    assert parse_binding("topic_logs:*.critical") == ("topic_logs", "*.critical")
    assert parse_binding("x:a:b") == ("x", "a:b")
    with pytest.raises(argparse.ArgumentTypeError, match="default exchange takes no bindings"):
        parse_binding(":key")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("first", "first"),
        ("last", "last"),
        ("next", "next"),
        ("0", 0),
        ("42", 42),
        ("2026-12-01T12:00:00+01:00", datetime(2026, 12, 1, 11, tzinfo=UTC)),
        ("2026-12-01T12:00:00", datetime(2026, 12, 1, 12, tzinfo=UTC)),
    ],
)
def test_parse_offset(text, value):
    assert parse_offset(text) == value


@pytest.mark.parametrize("text", ["-1", "1.5", "yesterday", "", "First"])
def test_parse_offset_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected first, last, next"):
        parse_offset(text)


def test_consume_arguments():
    assert consume_arguments(None) is None
    assert consume_arguments(7) == {"x-stream-offset": 7}


def test_a_stream_failure_dead_letters_at_once():
    from messaging.consumer import QueuePolicy, RetryPolicy, Verdict

    stream = QueuePolicy(dead_letter_queue="s.dlq", stream=True)
    decision = RetryPolicy(max_attempts=5).decide(1, stream)
    assert (decision.outcome, decision.verdict) == ("dead_lettered", Verdict.DEAD_LETTER)
    assert QueuePolicy(stream=True).dead_letter_verdict is Verdict.ACK  # never a nack
    assert RetryPolicy(max_attempts=5).decide(1, QueuePolicy()).verdict is Verdict.REQUEUE
