"""Request/reply on the server side, as plain code: what a handler's return value sends
to the request's ``reply_to`` (and keeps on its receipt), and the publishes a
tutorial-style pika callback asks for. The consumer sends them after the receipt
commits and before the ack (:mod:`messaging.consumer.acks`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..amqp.schemas import JSON_CONTENT_TYPE, encode_json

TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    """The body a handler returned and its content type (stored on the receipt)."""

    body: bytes
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to publish after the commit: a reply, or what a pika callback's
    ``ch.basic_publish`` asked for (then ``properties`` are its own)."""

    exchange: str
    routing_key: str
    body: bytes
    correlation_id: str | None = None
    content_type: str = ""
    properties: Any = None


class CallbackPublishes(list):
    """What a pika-style callback published through its ``ch`` (a list of Outbound)."""


def as_reply(result: Any) -> Reply | None:
    """A handler's return value as a reply: ``None`` is none; ``bytes`` as they are;
    ``str`` as UTF-8 text; anything else as JSON (Django's encoder) — a value JSON cannot
    encode raises ``TypeError`` (a failed attempt, like any handler exception)."""
    if result is None:
        return None
    if isinstance(result, bytes | bytearray | memoryview):
        return Reply(bytes(result))
    if isinstance(result, str):
        return Reply(result.encode("utf-8"), TEXT_CONTENT_TYPE)
    try:
        return Reply(encode_json(result), JSON_CONTENT_TYPE)
    except ValueError as exc:
        raise TypeError(f"the handler's return value cannot be sent as a reply: {exc}") from None


def outcome_of(result: Any, reply_to: str, correlation_id: str | None) -> tuple[Any, tuple]:
    """``(reply to store on the receipt, messages to publish after the commit)`` for a
    handler's return value and its request's ``reply_to``/``correlation_id``. Without a
    ``reply_to`` nothing is sent or stored."""
    if isinstance(result, CallbackPublishes):
        replies = [o for o in result if reply_to and o.routing_key == reply_to]
        stored = Reply(replies[0].body, replies[0].content_type) if replies else None
        return stored, tuple(result)
    if not reply_to:
        return None, ()
    reply = as_reply(result)
    if reply is None:
        return None, ()
    return reply, (to_reply_to(reply, reply_to, correlation_id),)


def to_reply_to(reply: Reply, reply_to: str, correlation_id: str | None) -> Outbound:
    """``reply`` addressed to ``reply_to`` (default exchange) with ``correlation_id``."""
    return Outbound("", reply_to, reply.body, correlation_id, reply.content_type)
