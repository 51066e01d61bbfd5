"""The AMQP properties a message is published with, and those of a dead-letter copy: the
pika objects of :class:`messaging.amqp.properties.Properties` (the header names and
delivery modes are pure AMQP facts, defined in :mod:`messaging.amqp` and importable from
here as before)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pika
from django.core.exceptions import ValidationError

from ..amqp.headers import ATTEMPTS_HEADER, DEATH_HEADER, DELIVERY_COUNT_HEADER, validate_headers
from ..amqp.headers import RETRY_HEADER as RETRY_HEADER
from ..amqp.properties import PERSISTENT, TRANSIENT, Properties, pika_kwargs
from ..amqp.short_strings import first_message

#: Broker-managed header (quorum queues) that must not travel with a copy, and the
#: attempt count, which only a delayed copy carries (a dead letter replayed starts over).
_DROPPED_HEADERS = (DELIVERY_COUNT_HEADER, ATTEMPTS_HEADER)


def properties(
    *,
    message_id: str | None = None,
    content_type: str | None = None,
    headers: Mapping[str, Any] | None = None,
    persistent: bool = True,
    timestamp: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> pika.BasicProperties:
    """The properties of one message. ``timestamp`` is whole seconds since the epoch
    (AMQP's timestamp); ``extra`` holds the other properties a producer may set
    (``correlation_id``, ``reply_to``, ``priority``, ``expiration`` as a string of
    milliseconds, ``type``, ``app_id``), as :func:`messaging.amqp.properties.pika_kwargs`
    builds them."""
    return pika.BasicProperties(
        message_id=message_id or None,
        content_type=content_type or None,
        headers=dict(headers) if headers else None,
        delivery_mode=PERSISTENT if persistent else TRANSIENT,
        timestamp=timestamp,
        **dict(extra or {}),
    )


def basic_properties(
    props: Properties, *, message_id: str | None = None, timestamp: int | None = None
) -> pika.BasicProperties:
    """The pika object of a message's checked :class:`~messaging.amqp.properties.Properties`
    with the ``message_id`` and ``timestamp`` (whole seconds) of the one sent."""
    return properties(
        message_id=message_id,
        content_type=props.content_type,
        headers=props.headers,
        persistent=props.persistent,
        timestamp=timestamp,
        extra=pika_kwargs(props),
    )


def reply_properties(correlation_id: str | None, content_type: str = "") -> pika.BasicProperties:
    """The properties of a reply to a request with ``correlation_id``: that id, the
    reply's content type, transient (a reply is for a caller waiting now), timestamped."""
    return pika.BasicProperties(
        correlation_id=correlation_id or None,
        content_type=content_type or None,
        delivery_mode=TRANSIENT,
        timestamp=int(time.time()),
    )


def check_headers(headers: Mapping[str, Any] | None) -> None:
    """Raise ``ValueError`` (one line) if ``headers`` cannot be sent as an AMQP table or
    sets a header the broker or the app owns (see :func:`validators.validate_headers`)."""
    try:
        validate_headers(headers)
    except ValidationError as exc:
        raise ValueError(first_message(exc)) from None


def copy_properties(
    props: pika.BasicProperties,
    *,
    extra_death: Mapping[str, Any] | None = None,
    extra_headers: Mapping[str, Any] | None = None,
) -> pika.BasicProperties:
    """The same properties (message_id, headers, content type, …) for a re-published
    copy, minus broker-managed headers and the attempt count; ``extra_death`` is appended
    to the death history, ``extra_headers`` set (a delayed copy's attempt headers)."""
    headers = {k: v for k, v in (props.headers or {}).items() if k not in _DROPPED_HEADERS}
    headers.update(extra_headers or {})
    if extra_death is not None:
        headers[DEATH_HEADER] = [*list(headers.get(DEATH_HEADER) or []), dict(extra_death)]
    return pika.BasicProperties(
        content_type=props.content_type,
        content_encoding=props.content_encoding,
        headers=headers or None,
        delivery_mode=props.delivery_mode,
        priority=props.priority,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        expiration=None,  # a dead letter must not expire out of its queue
        message_id=props.message_id,
        timestamp=props.timestamp,
        type=props.type,
        user_id=props.user_id,
        app_id=props.app_id,
    )
