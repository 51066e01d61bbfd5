""":func:`call`: request/reply (the RabbitMQ RPC tutorial) over direct reply-to.

A request is not an outbox row: it is worth sending only while its caller waits, so
:func:`call` publishes it at once (confirmed, ``mandatory``) or raises. The server side
is any ``runconsumer`` handler: its return value is the reply (see
:mod:`messaging.rpc.replies`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..amqp import schemas
from ..amqp.properties import Properties, expiration_ms
from ..amqp.validators import first_message, validate_message_fields
from ..broker import reply_to
from ..broker.pika_properties import basic_properties
from ..consumer.handlers import Delivery
from ..exceptions import InvalidMessage, RequestTimeout

#: ``json=`` not given.
_NO_JSON: Any = object()


def call(
    queue: Any = None,
    body: bytes | str = b"",
    *,
    exchange: str = "",
    routing_key: str = "",
    timeout: float = 5.0,
    headers: Mapping[str, Any] | None = None,
    content_type: str = "",
    json: Any = _NO_JSON,
    message_id: str | None = None,
    correlation_id: str | None = None,
    priority: int | None = None,
    expiration: int | timedelta | None = None,
    type: str = "",  # noqa: A002 - the AMQP property's name
    app_id: str = "",
    persistent: bool = True,
    urls: Iterable[str] | None = None,
) -> Delivery:
    """Send a request to ``queue`` (a name or ``Queue`` row, via the default exchange) or
    to ``exchange`` with ``routing_key``, and return the reply as a :class:`Delivery`
    (``delivery.body``, ``.json()``, ``.correlation_id``…).

    Raises :class:`~messaging.RequestTimeout` when no reply came within ``timeout``
    seconds; :class:`~messaging.Unroutable` at once when no queue takes the request;
    :class:`~messaging.BrokerUnavailable` when the broker cannot be reached;
    :class:`~messaging.exceptions.InvalidMessage` (one line) for a bad property.
    Calling again with the same ``message_id`` after a timeout gets the reply the
    server stored on its receipt, without running its handler twice."""
    exchange, routing_key = _destination(queue, exchange, routing_key)
    if not timeout or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    data, content_type = _body(body, json, content_type)
    _check_destination(exchange, routing_key)
    props = Properties(
        content_type=content_type,
        headers=headers,
        persistent=persistent,
        correlation_id=correlation_id or uuid.uuid4().hex,
        priority=priority,
        expiration=expiration_ms(expiration),
        type=type,
        app_id=app_id,
    )
    pika_props = basic_properties(
        props,
        message_id=message_id or str(uuid.uuid4()),
        timestamp=int(timezone.now().timestamp()),
    )
    answer = reply_to.request(exchange, routing_key, data, pika_props, float(timeout), urls)
    if answer is None:
        where = f"exchange {exchange!r} routing key {routing_key!r}" if exchange else routing_key
        raise RequestTimeout(f"no reply from {where} within {timeout:g} s")
    return _reply(*answer)


def _reply(method: Any, properties: Any, body: bytes) -> Delivery:
    """The reply read from direct reply-to, as a :class:`Delivery`."""
    return Delivery(
        queue=reply_to.DIRECT_REPLY_TO,
        body=body,
        properties=properties,
        delivery_tag=method.delivery_tag,
        redelivered=False,
        exchange=method.exchange,
        routing_key=method.routing_key,
        received_at=timezone.now(),
    )


def _body(body: bytes | str, json: Any, content_type: str) -> tuple[bytes, str]:
    if json is not _NO_JSON:
        if body:
            raise ValueError("give a body or json=, not both")
        return schemas.encode_json(json), content_type or schemas.JSON_CONTENT_TYPE
    return (body.encode("utf-8") if isinstance(body, str) else bytes(body)), content_type


def _check_destination(exchange: str, routing_key: str) -> None:
    """The exchange and routing key as AMQP takes them (one-line :class:`InvalidMessage`)."""
    try:
        validate_message_fields(exchange=exchange, routing_key=routing_key)
    except ValidationError as exc:
        raise InvalidMessage(first_message(exc)) from None


def _destination(queue: Any, exchange: str, routing_key: str) -> tuple[str, str]:
    if queue is not None and exchange:
        raise ValueError("give a queue or an exchange, not both")
    if queue is None and not exchange:
        raise ValueError("call needs a queue or an exchange")
    if queue is not None:
        if routing_key:
            raise ValueError("routing_key needs an exchange (the default exchange routes by queue)")
        return "", getattr(queue, "name", queue)
    return exchange, routing_key
