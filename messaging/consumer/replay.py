"""Dead-letter queues: where ``runconsumer`` puts messages it gave up on, and replay.

A queue ``q`` the app manages has a durable dead-letter queue ``q.dlq`` bound to the
``messaging.dlx`` exchange with routing key ``q``. ``runconsumer`` moves a message there
after ``MAX_ATTEMPTS`` failed attempts, or when its handler raises ``Reject``; the copy
keeps its message_id and headers and gains an entry in the ``x-messaging-death`` header.
:func:`replay` moves messages back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from .. import broker
from ..amqp.validators import first_message, validate_queue_name
from ..exceptions import InvalidQueueName
from ..models import dead_letter_queue_name


@dataclass(frozen=True)
class ReplayResult:
    queue: str
    dead_letter_queue: str
    moved: int
    remaining: int
    #: Of the ``message_ids`` asked for, those not in the DLQ.
    not_found: list[str] = field(default_factory=list)


def replay(
    queue: str, limit: int | None = None, message_ids: Collection[str] | None = None
) -> ReplayResult:
    """Move up to ``limit`` (all when None) messages from ``<queue>.dlq`` back to ``queue``;
    with ``message_ids``, only the messages with those ids (the others stay in the DLQ,
    flagged redelivered since they were looked at).

    Keeps message_id, headers and the death history. Raises :class:`~messaging.BrokerError`
    (one line) when the broker is unreachable or ``queue`` does not exist.
    """
    if limit is not None and limit < 1:
        raise ValueError("limit must be >= 1")
    if message_ids is not None and limit is not None:
        raise ValueError("give a limit or message_ids, not both")
    try:
        validate_queue_name(queue)
    except ValidationError as exc:
        raise InvalidQueueName(f"invalid queue name {queue!r:.60}: {first_message(exc)}") from None
    dlq = dead_letter_queue_name(queue)
    moved = broker.move_messages(dlq, queue, limit=limit, message_ids=message_ids)
    return ReplayResult(
        queue=queue,
        dead_letter_queue=dlq,
        moved=moved.moved,
        remaining=moved.remaining,
        not_found=moved.not_found,
    )
