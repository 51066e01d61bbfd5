"""Dead-letter queues: where ``runconsumer`` puts messages it gave up on, and replay.

A queue ``q`` the app manages has a durable dead-letter queue ``q.dlq`` bound to the
``messaging.dlx`` exchange with routing key ``q``. ``runconsumer`` moves a message there
after ``MAX_ATTEMPTS`` failed attempts, or when its handler raises ``Reject``; the copy
keeps its message_id and headers and gains an entry in the ``x-messaging-death`` header.
:func:`replay` moves messages back.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from . import broker
from .exceptions import InvalidQueueName
from .models import dead_letter_queue_name
from .validators import first_message, validate_queue_name


@dataclass(frozen=True)
class ReplayResult:
    queue: str
    dead_letter_queue: str
    moved: int
    remaining: int


def replay(queue: str, limit: int | None = None) -> ReplayResult:
    """Move up to ``limit`` (all when None) messages from ``<queue>.dlq`` back to ``queue``.

    Keeps message_id, headers and the death history. Raises :class:`~messaging.BrokerError`
    (one line) when the broker is unreachable or ``queue`` does not exist.
    """
    if limit is not None and limit < 1:
        raise ValueError("limit must be >= 1")
    try:
        validate_queue_name(queue)
    except ValidationError as exc:
        raise InvalidQueueName(f"invalid queue name {queue!r:.60}: {first_message(exc)}") from None
    dlq = dead_letter_queue_name(queue)
    moved = broker.move_messages(dlq, queue, limit=limit)
    return ReplayResult(
        queue=queue, dead_letter_queue=dlq, moved=moved.moved, remaining=moved.remaining
    )
