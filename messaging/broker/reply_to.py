"""Request/reply over RabbitMQ's direct reply-to (the RPC tutorial without a reply
queue): consume ``amq.rabbitmq.reply-to`` (no-ack, as the broker requires) *before*
publishing the request with ``reply_to`` set to it, then wait for the reply with the
request's ``correlation_id``."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pika

from .connecting import connection, default_connection_name
from .errors import translating

#: The pseudo-queue of direct reply-to.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
#: Longest single wait for the broker while a reply is awaited (seconds).
_SLICE = 0.5


class _Waiter:
    """Keeps the first reply carrying the expected ``correlation_id``."""

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id
        self.reply: tuple[Any, pika.BasicProperties, bytes] | None = None

    def on_reply(self, _channel: Any, method: Any, props: pika.BasicProperties, body: bytes):
        if self.reply is None and props.correlation_id == self.correlation_id:
            self.reply = (method, props, body)


def request(
    exchange: str,
    routing_key: str,
    body: bytes,
    props: pika.BasicProperties,
    timeout: float,
    urls: Iterable[str] | None = None,
) -> tuple[Any, pika.BasicProperties, bytes] | None:
    """Publish a request (``props`` must carry a ``correlation_id``; ``reply_to`` is set
    here) ``mandatory`` and confirmed, and wait up to ``timeout`` seconds for its reply:
    ``(method, properties, body)``, or ``None`` when none came. A request no queue takes
    raises :class:`~messaging.exceptions.Unroutable` at once; a missing exchange
    :class:`~messaging.exceptions.NotFound`; a broker that cannot be reached
    :class:`~messaging.exceptions.BrokerUnavailable`."""
    deadline = time.monotonic() + timeout
    waiter = _Waiter(props.correlation_id)
    name = f"{default_connection_name()} call"
    with (
        connection(urls, connection_name=name) as conn,
        translating(queue="" if exchange else routing_key),
    ):
        channel = conn.channel()
        channel.basic_consume(DIRECT_REPLY_TO, waiter.on_reply, auto_ack=True)
        channel.confirm_delivery()
        props.reply_to = DIRECT_REPLY_TO
        channel.basic_publish(exchange, routing_key, body, props, mandatory=True)
        while waiter.reply is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            conn.process_data_events(time_limit=min(left, _SLICE))
    return waiter.reply
