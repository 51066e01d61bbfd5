"""Dead letters: publishing a copy to ``<queue>.dlq`` from a consumer's connection, and
moving messages from one queue to another (the admin's requeue of dead letters)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..exceptions import NotFound
from .connecting import connection, open_channel
from .copy_publisher import CopyPublisher
from .errors import translating
from .pika_properties import copy_properties
from .queue_ops import declare_dead_letter_queue, inspect_queue


class DeadLetterer(CopyPublisher):
    """Publishes dead letters from a consumer's connection, on its own confirm-mode
    channel, declaring ``messaging.dlx`` + ``<queue>.dlq`` + binding once per queue
    (and again on a reopened channel).

    ``sources`` maps a queue name to its row or :class:`QueueSpec`, whose type a DLQ
    declared here follows (:func:`~messaging.amqp.queue_types.derived_queue_type`).
    Used only from the thread that owns the connection (the consumer's I/O thread).
    """

    def __init__(self, conn: BlockingConnection, sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(conn)
        self._sources = dict(sources or {})

    def publish(self, queue: str, dlq: str, body: bytes, props: pika.BasicProperties) -> None:
        """Put a copy in ``dlq`` (confirmed) or raise a :class:`BrokerError`."""
        from ..models import DEAD_LETTER_EXCHANGE

        self.send_copy(
            queue=dlq,
            declare=lambda channel: declare_dead_letter_queue(
                channel, queue, dlq, source=self._sources.get(queue)
            ),
            declared_as=queue,
            exchange=DEAD_LETTER_EXCHANGE,
            routing_key=queue,
            body=body,
            props=props,
        )


@dataclass
class MoveResult:
    moved: int = 0
    remaining: int = 0
    #: Of the message_ids asked for (``message_ids=``), those not found in ``source``.
    not_found: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Peeked:
    """A message seen in a queue without taking it (it goes back, flagged redelivered)."""

    properties: pika.BasicProperties
    body: bytes
    redelivered: bool


def move_messages(
    source: str,
    destination: str,
    *,
    limit: int | None = None,
    urls: Iterable[str] | None = None,
    message_ids: Collection[str] | None = None,
) -> MoveResult:
    """Move up to ``limit`` messages from queue ``source`` to queue ``destination`` (via
    the default exchange), keeping body and properties; each is acked on ``source`` only
    after the broker confirmed the copy, so a crash can duplicate but never lose one.
    With ``message_ids``, only the messages with those ids move: the others are looked
    at and put back (flagged redelivered)."""
    result = MoveResult()
    with connection(urls) as conn, translating(queue=source):
        get_channel = open_channel(conn)
        put_channel = open_channel(conn, confirm=True)
        if inspect_queue(conn.channel(), destination) is None:
            raise NotFound(f"queue {destination!r} does not exist on the broker")
        if inspect_queue(conn.channel(), source) is None:
            result.not_found = sorted(message_ids or ())
            return result
        if message_ids is not None:
            put = partial(_publish_copy, put_channel, destination)
            found = _take_matching(get_channel, source, set(message_ids), put)
            result.moved, result.not_found = len(found), sorted(set(message_ids) - found)
        else:
            while limit is None or result.moved < limit:
                if not _move_one(get_channel, put_channel, source, destination):
                    break
                result.moved += 1
        get_channel.close()  # what was looked at and not taken goes back
        state = inspect_queue(conn.channel(), source)
        result.remaining = state[0] if state else 0
    return result


def discard_messages(
    queue: str, message_ids: Collection[str], urls: Iterable[str] | None = None
) -> MoveResult:
    """Remove the messages with ``message_ids`` from ``queue`` (acked, gone for good);
    the others are looked at and put back. ``moved`` counts the removed ones."""
    result = MoveResult()
    with connection(urls) as conn, translating(queue=queue):
        get_channel = open_channel(conn)
        if inspect_queue(conn.channel(), queue) is None:
            result.not_found = sorted(message_ids)
            return result
        found = _take_matching(get_channel, queue, set(message_ids), lambda props, body: None)
        result.moved, result.not_found = len(found), sorted(set(message_ids) - found)
        get_channel.close()
        state = inspect_queue(conn.channel(), queue)
        result.remaining = state[0] if state else 0
    return result


def peek_messages(queue: str, limit: int, urls: Iterable[str] | None = None) -> list[Peeked]:
    """Up to ``limit`` messages from the head of ``queue``, all put back (the broker
    flags them redelivered; on a quorum queue each look counts as a delivery). A queue
    that does not exist has none."""
    seen: list[Peeked] = []
    with connection(urls) as conn, translating(queue=queue):
        if inspect_queue(conn.channel(), queue) is None:
            return seen
        channel = open_channel(conn)
        while len(seen) < limit:
            method, props, body = channel.basic_get(queue=queue, auto_ack=False)
            if method is None:
                break
            seen.append(Peeked(props, body, bool(method.redelivered)))
        channel.close()  # every unacked message goes back to the queue
    return seen


def _take_matching(
    channel: BlockingChannel,
    queue: str,
    wanted: set[str],
    take: Callable[[pika.BasicProperties, bytes], None],
) -> set[str]:
    """Look at every message of ``queue`` once (held unacked, so none is seen twice) until
    all ``wanted`` ids were found; ``take`` each wanted one and ack it (``take`` raising
    leaves it unacked). The caller closes the channel, which puts the rest back."""
    found: set[str] = set()
    while found != wanted:
        method, props, body = channel.basic_get(queue=queue, auto_ack=False)
        if method is None:
            break
        if props.message_id in wanted and props.message_id not in found:
            take(props, body)
            channel.basic_ack(delivery_tag=method.delivery_tag)
            found.add(props.message_id)
    return found


def _publish_copy(
    channel: BlockingChannel, destination: str, props: pika.BasicProperties, body: bytes
) -> None:
    channel.basic_publish(
        exchange="",
        routing_key=destination,
        body=body,
        properties=copy_properties(props),
        mandatory=True,
    )


def _move_one(
    get_channel: BlockingChannel, put_channel: BlockingChannel, source: str, destination: str
) -> bool:
    """Move the next message (``False``: ``source`` is empty); nacked back on failure."""
    method, props, body = get_channel.basic_get(queue=source, auto_ack=False)
    if method is None:
        return False
    try:
        _publish_copy(put_channel, destination, props, body)
    except Exception:
        get_channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
        raise
    get_channel.basic_ack(delivery_tag=method.delivery_tag)
    return True
