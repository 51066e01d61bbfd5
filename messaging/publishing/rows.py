"""Building ``Message`` rows: the destination, properties and body checked before
anything is saved."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.exceptions import ValidationError

from ..amqp import schemas
from ..amqp.properties import FIELDS, Properties
from ..amqp.validators import first_message, validate_message_fields, validate_queue_name
from ..exceptions import InvalidMessage, InvalidQueueName
from ..models import Message, Queue
from .queue_cache import cached_queue, remembered

#: ``json=`` not given (``None`` is a JSON value: ``null``).
NO_JSON: Any = object()


def get_queue(name: str, *, create: bool = True) -> Queue:
    """The ``Queue`` row for ``name``; creates a durable one of
    ``MESSAGING["DEFAULT_QUEUE_TYPE"]`` (classic unless set) when missing (``create``:
    from this process's cache when it has it, see :mod:`.queue_cache`: a cached name
    was checked when it was cached)."""
    if create:
        row = remembered(name)
        if row is not None:
            return row
    try:
        validate_queue_name(name)
    except ValidationError as exc:
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "…"
        raise InvalidQueueName(f"invalid queue name {shown}: {exc.messages[0]}") from None
    if create:
        return cached_queue(name)
    return Queue.objects.get(name=name)


def _json_body(value: Any, body: Any, content_type: str) -> tuple[bytes, str]:
    if body:
        raise ValueError("give a body or json=, not both")
    try:
        encoded = schemas.encode_json(value)
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from None
    return encoded, content_type or schemas.JSON_CONTENT_TYPE


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, not {type(body).__name__}")


def _check_destination(queue: Queue | str | None, exchange: str, routing_key: str) -> None:
    if queue is None and not exchange:
        raise ValueError("publish needs a queue or an exchange")
    if routing_key and not exchange:
        raise ValueError("routing_key needs an exchange (the default exchange routes by queue)")
    if queue is not None and exchange:
        raise ValueError("give a queue or an exchange, not both")


def _properties(properties: Properties | None, values: dict[str, Any]) -> Properties:
    """``properties``, or the :class:`Properties` built from their keyword arguments."""
    if properties is not None:
        if values:
            raise TypeError("give properties= or their keyword arguments, not both")
        return properties
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise InvalidMessage(f"unknown message properties: {', '.join(sorted(unknown))}")
    return Properties(**values)


def build_message(
    queue: Queue | str | None = None,
    body: bytes | str = b"",
    *,
    exchange: str = "",
    routing_key: str = "",
    json: Any = NO_JSON,
    properties: Properties | None = None,
    **values: Any,
) -> Message:
    """An unsaved ``pending`` Message (validated destination, properties and — when the
    queue has a schema — body). ``json=obj`` encodes ``obj`` as the body (content type
    ``application/json`` unless one is set). ``properties`` are the message's checked
    :class:`~messaging.amqp.properties.Properties`; without them, ``values`` are their
    keyword arguments (``content_type``, ``headers``, ``persistent`` and those of
    :data:`messaging.amqp.properties.NAMES`, ``expiration`` in milliseconds or a
    ``timedelta``)."""
    props = _properties(properties, values)
    if json is not NO_JSON:
        body, content_type = _json_body(json, body, props.content_type)
        props = replace(props, content_type=content_type)
    body = _as_bytes(body)
    _check_destination(queue, exchange, routing_key)
    try:
        validate_message_fields(exchange=exchange, routing_key=routing_key)
    except ValidationError as exc:
        raise InvalidMessage(first_message(exc)) from None
    if isinstance(queue, str):
        queue = get_queue(queue)
    if queue is not None and queue.schema is not None:
        problem = schemas.body_problem(queue.schema, body)
        if problem is not None:
            raise InvalidMessage(f"body does not match the schema of queue {queue.name}: {problem}")
    return Message(
        queue=queue, exchange=exchange, routing_key=routing_key, body=body, **props.fields()
    )
