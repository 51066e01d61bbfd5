"""Error translation (``messaging.broker.errors``), the exceptions' ``temporary`` flags and
the try-each-URL loop, on pika's exception objects built by hand: no broker."""

from __future__ import annotations

import pika
import pika.exceptions as pe
import pytest
from pika.adapters.blocking_connection import ReturnedMessage

from messaging import exceptions
from messaging.broker import Outgoing, connect_first, is_temporary, translate, translating
from messaging.broker.errors import refusal
from messaging.exceptions import (
    AccessRefused,
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConfirmTimeout,
    ConsumerTimedOut,
    MessageRefused,
    NotFound,
    PublishInterrupted,
    PublishNacked,
    QueueMismatch,
    QueueUnavailable,
    Unroutable,
)

pytestmark = pytest.mark.unit

URL = "amqp://guest:s3cret@rabbit.example:5672/%2F"


def returned(exchange: str, routing_key: str) -> pe.UnroutableError:
    method = pika.spec.Basic.Return(312, "NO_ROUTE", exchange, routing_key)
    return pe.UnroutableError([ReturnedMessage(method, pika.BasicProperties(), b"x")])


# --------------------------------------------------------------------------- translate


def test_our_own_errors_pass_through_unchanged():
    error = NotFound("gone")
    assert translate(error) is error


def test_refused_password_names_the_url_without_the_password():
    error = translate(pe.ProbableAuthenticationError("closed"), url=URL)
    assert type(error) is AuthenticationFailed
    assert str(error) == (
        "broker refused the username/password at amqp://guest:***@rabbit.example:5672/%2F"
    )


def test_refused_vhost_quotes_the_brokers_reply():
    closed = pe.ConnectionClosedByBroker(530, "NOT_ALLOWED - vhost nope not found")
    error = translate(pe.ProbableAccessDeniedError(repr(closed)), url=URL)
    assert type(error) is AccessRefused
    assert str(error).endswith(": NOT_ALLOWED - vhost nope not found")
    assert "s3cret" not in str(error)


def test_returned_message_is_unroutable_naming_its_destination():
    assert type(translate(returned("amq.direct", "nobody"))) is Unroutable
    assert str(translate(returned("amq.direct", "nobody"))) == (
        "unroutable: no queue bound for exchange amq.direct routing key nobody"
    )
    assert "exchange (default) routing key q1" in str(translate(returned("", "q1")))
    assert str(translate(pe.UnroutableError([]))) == "unroutable: the broker returned the message"


def test_nack_is_publish_nacked():
    assert type(translate(pe.NackError([]))) is PublishNacked


def test_inequivalent_declaration_is_a_queue_mismatch_naming_the_argument():
    text = (
        "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q1' in vhost '/': "
        "received the value '20' of type 'signedint' but current is the value '10' of type "
        "'signedint'"
    )
    error = translate(pe.ChannelClosedByBroker(406, text), queue="other")
    assert type(error) is QueueMismatch
    assert (error.queue, error.argument) == ("q1", "x-max-length")
    assert "PRECONDITION_FAILED" in str(error)


def test_other_precondition_failures():
    timed_out = "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out"
    assert type(translate(pe.ChannelClosedByBroker(406, timed_out))) is ConsumerTimedOut
    error = translate(pe.ChannelClosedByBroker(406, "PRECONDITION_FAILED - other"), queue="q9")
    assert type(error) is QueueMismatch
    assert error.queue == "q9"


@pytest.mark.parametrize(
    ("closed", "expected"),
    [
        (pe.ChannelClosedByBroker(403, "ACCESS_REFUSED"), AccessRefused),
        (pe.ChannelClosedByBroker(404, "NOT_FOUND - no exchange 'x'"), NotFound),
        (pe.ChannelClosedByBroker(320, "CONNECTION_FORCED"), BrokerUnavailable),
        (pe.ConnectionClosedByBroker(541, "INTERNAL_ERROR"), BrokerUnavailable),
        # INTERNAL_ERROR: the broker failing (a quorum queue without a leader), never
        # the message: so it is temporary.
        (pe.ChannelClosedByBroker(541, "INTERNAL_ERROR"), BrokerUnavailable),
    ],
)
def test_closed_by_the_broker(closed, expected):
    error = translate(closed)
    assert type(error) is expected
    assert closed.reply_text in str(error)


def test_connection_errors_say_the_most_specific_thing():
    wrapped = pe.AMQPConnectionError(ConnectionRefusedError(111, "Connection refused"))
    error = translate(wrapped, url=URL)
    assert type(error) is BrokerUnavailable
    assert str(error) == (
        "cannot reach the broker at amqp://guest:***@rabbit.example:5672/%2F: connection refused"
    )
    assert isinstance(translate(pe.StreamLostError("lost")), BrokerUnavailable)


def test_what_pika_cannot_encode_is_refused_with_one_line():
    error = translate(pe.ShortStringTooLong(b"k" * 300))
    assert type(error) is MessageRefused
    assert str(error) == "cannot be sent: a name or property is 300 bytes; AMQP allows at most 255"
    assert type(translate(TypeError("bad\nvalue"))) is MessageRefused
    assert str(translate(TypeError("bad\nvalue"))) == "cannot be sent: TypeError: bad value"


def test_refusal_of_an_item_says_what_the_validators_say():
    item = Outgoing("", "q1", b"x", headers={"x-delivery-count": 1})
    error = refusal(TypeError("pika's words"), item)
    assert str(error).startswith("cannot be sent: ")
    assert "pika's words" not in str(error)


def test_anything_else_is_a_plain_broker_error():
    error = translate(RuntimeError("odd"))
    assert type(error) is BrokerError
    assert str(error) == "RuntimeError: odd"


# --------------------------------------------------------------------------- translating


def test_translating_raises_ours_from_pikas():
    closed = pe.ChannelClosedByBroker(406, "PRECONDITION_FAILED - other")
    with pytest.raises(QueueMismatch) as info, translating(queue="q1"):
        raise closed
    assert info.value.queue == "q1"
    assert info.value.__cause__ is closed


def test_translating_leaves_our_errors_and_non_errors_alone():
    error = NotFound("gone")
    with pytest.raises(NotFound) as info, translating():
        raise error
    assert info.value is error
    assert info.value.__cause__ is None
    with pytest.raises(KeyboardInterrupt), translating():
        raise KeyboardInterrupt
    with translating():
        pass


# --------------------------------------------------------------------------- temporary


TEMPORARY = {
    BrokerUnavailable,
    ConsumerTimedOut,
    PublishNacked,
    ConfirmTimeout,
    PublishInterrupted,
    QueueUnavailable,
}


def every_error_class() -> list[type[exceptions.MessagingError]]:
    return [
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, exceptions.MessagingError)
    ]


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.__name__)
def test_only_an_outage_or_a_missing_confirm_is_temporary(cls):
    assert cls.temporary is (cls in TEMPORARY)
    error = cls("x") if cls is not QueueMismatch else cls("x", queue="q", argument="a")
    assert is_temporary(error) is (cls in TEMPORARY)


def test_other_exceptions_are_asked_after_translation():
    # A socket error is an outage whether or not it was translated yet; a value error
    # (what pika raises encoding a bad message) is the message's fault.
    assert is_temporary(ConnectionRefusedError(111, "refused"))
    assert not is_temporary(ValueError("x"))


def test_the_outbox_retries_exactly_the_temporary_errors():
    from messaging.publishing.outbox import TRANSIENT_ERRORS, is_transient

    for cls in every_error_class():
        error = cls("x") if cls is not QueueMismatch else cls("x", queue="q", argument="a")
        assert is_transient(error) is is_temporary(error), cls
        assert issubclass(cls, TRANSIENT_ERRORS) is cls.temporary, cls


# --------------------------------------------------------------------------- connect_first


def test_connect_first_returns_the_first_that_answers():
    tried: list[str] = []

    def attempt(url: str) -> str:
        tried.append(url)
        if url == "amqp://dead/":
            raise pe.AMQPConnectionError(ConnectionRefusedError(111, "Connection refused"))
        return f"connected to {url}"

    assert connect_first(["amqp://dead/", "amqp://live/"], attempt) == "connected to amqp://live/"
    assert tried == ["amqp://dead/", "amqp://live/"]


def test_connect_first_raises_a_refused_password_at_once():
    tried: list[str] = []

    def attempt(url: str) -> None:
        tried.append(url)
        raise pe.ProbableAuthenticationError("closed")

    with pytest.raises(AuthenticationFailed) as info:
        connect_first(["amqp://a/", "amqp://b/"], attempt)
    assert tried == ["amqp://a/"]
    assert isinstance(info.value.__cause__, pe.ProbableAuthenticationError)


def test_connect_first_reraises_our_own_error_unchanged():
    error = AccessRefused("vhost refused")

    def attempt(url: str) -> None:
        raise error

    with pytest.raises(AccessRefused) as info:
        connect_first(["amqp://a/", "amqp://b/"], attempt)
    assert info.value is error


def test_connect_first_with_one_url_raises_its_error_with_several_names_each():
    def attempt(url: str) -> None:
        raise BrokerUnavailable(f"cannot reach {url}")

    with pytest.raises(BrokerUnavailable) as info:
        connect_first(["amqp://a/"], attempt)
    assert str(info.value) == "cannot reach amqp://a/"
    with pytest.raises(BrokerUnavailable) as info:
        connect_first(["amqp://a/", "amqp://b/"], attempt)
    assert str(info.value) == "no broker answered: cannot reach amqp://a/; cannot reach amqp://b/"
