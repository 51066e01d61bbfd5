"""Recording and publishing: :func:`publish` (a new row; :func:`apublish` from async code),
:func:`publish_messages` and
:func:`publish_ids` (existing rows, claimed first)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from .. import broker, conf, observability
from ..amqp.properties import Properties, expiration_ms
from ..exceptions import BrokerError
from ..models import Message, Queue
from .commit import add_after_commit
from .outbox import PublishResult, claim, claiming, lease_end
from .rows import NO_JSON, build_message
from .sending import publish_rows
from .statements import insert_message

logger = logging.getLogger("messaging.publishing")


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
    json: Any = NO_JSON,
    correlation_id: str = "",
    reply_to: str = "",
    priority: int | None = None,
    expiration: int | timedelta | None = None,
    type: str = "",  # noqa: A002 - the AMQP property's name
    app_id: str = "",
) -> Message:
    """Record a message and publish it (persistent, confirmed, ``mandatory``).

    ``json=obj`` sends a JSON body. The AMQP properties (``expiration`` in ms or a
    ``timedelta``; ``timestamp`` always) are stored on the row. A bad property, or a body
    failing the queue's ``schema``, raises :class:`~messaging.exceptions.InvalidMessage`.

    Inside ``atomic()`` the row is sent after the commit, with the transaction's other
    messages (nothing on rollback): handed to the process's publisher thread, so the
    commit returns without waiting for the broker (``PUBLISH_IN_BACKGROUND``; see
    :mod:`.handoff` and :func:`~messaging.publishing.flush`). Outside a transaction it
    is sent at once, on the calling thread. An outage leaves it ``pending`` for the
    relay (no exception); a refusal for good (unroutable, missing exchange, drift) makes
    it ``failed`` and raises that ``BrokerError`` (after a commit: logged,
    ``message_failed`` sent). ``PUBLISH_MODE = "relay"`` only writes the row."""
    props = Properties(
        content_type=content_type,
        headers=headers,
        persistent=persistent,
        correlation_id=correlation_id,
        reply_to=reply_to,
        priority=priority,
        expiration=expiration_ms(expiration),
        type=type,
        app_id=app_id,
    )
    message = build_message(
        queue, body, exchange=exchange, routing_key=routing_key, json=json, properties=props
    )
    with observability.creating(message):
        _save_and_send(message, user)
    return message


def _save_and_send(message: Message, user: Any) -> None:
    """Save the row, then publish it now, after the commit (with the transaction's other
    messages), or (relay mode) leave it."""
    if conf.get("PUBLISH_MODE") == "relay":
        insert_message(message)
        return
    message.next_attempt_at = lease_end(timezone.now())
    insert_message(message)
    if transaction.get_connection().in_atomic_block:
        add_after_commit(message, user)
        return
    _publish_now(message, user)


def _publish_now(message: Message, user: Any) -> None:
    """Publish a row just saved outside a transaction: the broker refusing it for good
    raises; a transient failure leaves it to the relay."""
    result = publish_rows([message], user=user)
    if message.message_id in result.retrying:
        logger.warning(
            "message %s left pending for the relay: %s",
            message.message_id,
            result.failed[message.message_id],
            extra=observability.log_fields(message=message, outcome="pending"),
        )
    elif message.message_id in result.failed:
        raise result.first_error or BrokerError(result.failed[message.message_id])


async def apublish(
    queue: Queue | str | None = None,
    body: bytes | str = b"",
    **kwargs: Any,
) -> Message:
    """:func:`publish` for async code (ASGI views): the same arguments, row and
    guarantees, run in Django's thread for synchronous code
    (``sync_to_async(thread_sensitive=True)``, as Django's own async ORM methods), so
    the event loop never waits for the database or the broker and the row is written
    on the database connection Django manages (opened and closed with the request)."""
    return await sync_to_async(publish, thread_sensitive=True)(queue, body, **kwargs)


# --------------------------------------------------------------------------- existing rows


def publish_messages(
    messages: Sequence[Message],
    *,
    user: Any = None,
    publisher: Any = None,
) -> PublishResult:
    """Publish saved Message rows (``pending`` or ``failed``) and store each outcome.

    The rows are claimed first (see :mod:`messaging.publishing`): a row another publisher
    holds, or one already ``published``, is left alone and listed in ``busy``. Never
    raises a broker error: it is in the result and on the rows. ``publisher`` may be a
    :class:`broker.PublisherBase` to publish on (else the process's publisher).
    """
    result = PublishResult()
    if not messages:
        return result
    now = timezone.now()
    with claiming():
        claimed = claim({m.pk for m in messages}, now)
        rows = []
        for message in messages:
            if message.pk in claimed:
                message.attempts = claimed[message.pk]
                rows.append(message)
            else:
                result.busy.append(message.message_id)
        result.extend(publish_rows(rows, user=user, publisher=publisher))
    return result


def publish_ids(
    ids: Iterable[int],
    *,
    user: Any = None,
    chunk_size: int | None = None,
    statuses: Sequence[str] | None = None,
) -> PublishResult:
    """:func:`publish_messages` for primary keys, in the order given, ``chunk_size``
    (RELAY_BATCH_SIZE) rows at a time over one connection. With ``statuses`` only rows
    still in one of them are loaded (the others are left out of the result); without,
    a row that is not publishable is reported ``busy``. Never raises a broker error."""
    ids = list(ids)
    size = chunk_size or conf.get("RELAY_BATCH_SIZE")
    result = PublishResult()
    publisher = broker.process_publisher()  # connects on first use; a failure is per row
    for start in range(0, len(ids), size):
        rows = _load(ids[start : start + size], statuses)
        result.extend(publish_messages(rows, user=user, publisher=publisher))
    return result


def _load(pks: Sequence[int], statuses: Sequence[str] | None) -> list[Message]:
    """The rows of ``pks`` (with their queues) in the order of ``pks``."""
    rows = Message.objects.filter(pk__in=pks).select_related("queue")
    if statuses is not None:
        rows = rows.filter(status__in=statuses)
    by_pk = {row.pk: row for row in rows}
    wanted = dict.fromkeys(pks)
    if statuses is None and len(by_pk) < len(wanted):
        logger.info("%d message(s) to publish no longer exist", len(wanted) - len(by_pk))
    return [by_pk[pk] for pk in wanted if pk in by_pk]
