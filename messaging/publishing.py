"""Recording and publishing messages: ``publish()`` and the batch path used by
``manage.py send`` and the admin."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import broker
from .exceptions import BrokerError, BrokerUnavailable, InvalidQueueName
from .models import Message, Queue
from .validators import validate_queue_name

logger = logging.getLogger(__name__)


@dataclass
class PublishResult:
    """What happened to a batch: message_ids published, and failures with reasons."""

    published: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    first_error: BrokerError | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def get_queue(name: str, *, create: bool = True) -> Queue:
    """The ``Queue`` row for ``name``; creates a durable classic one when missing."""
    try:
        validate_queue_name(name)
    except ValidationError as exc:
        raise InvalidQueueName(f"invalid queue name {name!r}: {exc.messages[0]}") from exc
    if create:
        return Queue.objects.get_or_create(name=name)[0]
    return Queue.objects.get(name=name)


def build_message(
    queue: Queue | str | None = None,
    body: bytes | str = b"",
    *,
    exchange: str = "",
    routing_key: str = "",
    content_type: str = "",
    headers: Mapping[str, Any] | None = None,
    persistent: bool = True,
) -> Message:
    """An unsaved ``pending`` Message (validated destination)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif isinstance(body, bytearray | memoryview):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    if queue is None and not exchange:
        raise ValueError("publish needs a queue or an exchange")
    if routing_key and not exchange:
        raise ValueError("routing_key needs an exchange (the default exchange routes by queue)")
    if queue is not None and exchange:
        raise ValueError("give a queue or an exchange, not both")
    broker.check_headers(headers)
    if isinstance(queue, str):
        queue = get_queue(queue)
    return Message(
        queue=queue,
        exchange=exchange,
        routing_key=routing_key,
        body=body,
        content_type=content_type,
        headers=dict(headers or {}),
        persistent=persistent,
    )


def publish(
    queue: Queue | str | None = None,
    body: bytes | str = b"",
    *,
    exchange: str = "",
    routing_key: str = "",
    content_type: str = "",
    headers: Mapping[str, Any] | None = None,
    persistent: bool = True,
    user: Any = None,
) -> Message:
    """Record a message and publish it (persistent, confirmed, mandatory).

    Outside a transaction it is published at once: on success the returned row is
    ``published``; on failure the row is ``failed`` with the reason and the
    :class:`~messaging.exceptions.BrokerError` is raised. Inside
    ``transaction.atomic()`` the row is written in that transaction and published
    only after it commits (nothing is sent if it rolls back); a failure then is logged
    and left on the row.
    """
    message = build_message(
        queue,
        body,
        exchange=exchange,
        routing_key=routing_key,
        content_type=content_type,
        headers=headers,
        persistent=persistent,
    )
    message.save()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(partial(_publish_after_commit, message, user), robust=True)
        return message
    result = publish_messages([message], user=user)
    if result.first_error is not None:
        raise result.first_error
    return message


def _publish_after_commit(message: Message, user: Any) -> None:
    result = publish_messages([message], user=user)
    if result.first_error is not None:
        logger.error("message %s not published: %s", message.message_id, result.first_error)


def publish_messages(
    messages: Sequence[Message],
    *,
    user: Any = None,
    publisher: broker.Publisher | None = None,
) -> PublishResult:
    """Publish saved Message rows over one connection and store each outcome.

    Confirmed → ``published`` (``published_at``, ``published_by``); refused,
    unroutable or broker down → ``failed`` with the reason in ``last_error``. Never
    raises a broker error: it is in the result and on the rows.
    """
    result = PublishResult()
    if not messages:
        return result
    own = publisher is None
    pub = publisher or broker.Publisher()
    try:
        pub.open()
        for index, message in enumerate(messages):
            try:
                _publish_one(pub, message)
            except BrokerUnavailable as exc:
                # The connection is gone: nothing after this one can go out either.
                for rest in messages[index:]:
                    result.failed[rest.message_id] = str(exc)
                result.first_error = result.first_error or exc
                break
            except BrokerError as exc:
                result.failed[message.message_id] = str(exc)
                result.first_error = result.first_error or exc
            else:
                result.published.append(message.message_id)
    except BrokerError as exc:  # could not connect at all
        for message in messages:
            result.failed.setdefault(message.message_id, str(exc))
        result.first_error = result.first_error or exc
    finally:
        if own:
            pub.close()
    _store(messages, result, user)
    return result


def _publish_one(pub: broker.Publisher, message: Message) -> None:
    if message.queue_id is not None and not message.exchange:
        pub.ensure_declared(message.queue)
    exchange, routing_key = message.destination
    pub.publish(
        exchange=exchange,
        routing_key=routing_key,
        body=message.body_bytes,
        props=broker.properties(
            message_id=message.message_id,
            content_type=message.content_type,
            headers=message.headers,
            persistent=message.persistent,
        ),
    )


def _store(messages: Iterable[Message], result: PublishResult, user: Any) -> None:
    now = timezone.now()
    user_id = getattr(user, "pk", None)
    if result.published:
        Message.objects.filter(message_id__in=result.published).update(
            status=Message.Status.PUBLISHED,
            published_at=now,
            published_by_id=user_id,
            attempts=F("attempts") + 1,
            last_error="",
        )
    by_error: dict[str, list[str]] = {}
    for message_id, error in result.failed.items():
        by_error.setdefault(error, []).append(message_id)
    for error, ids in by_error.items():
        Message.objects.filter(message_id__in=ids).update(
            status=Message.Status.FAILED, attempts=F("attempts") + 1, last_error=error
        )
    published = set(result.published)
    for message in messages:
        if message.message_id in published:
            message.status = Message.Status.PUBLISHED
            message.published_at = now
            message.published_by_id = user_id
            message.attempts += 1
            message.last_error = ""
        elif message.message_id in result.failed:
            message.status = Message.Status.FAILED
            message.attempts += 1
            message.last_error = result.failed[message.message_id]
