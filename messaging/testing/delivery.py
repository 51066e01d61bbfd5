"""Delivering captured messages in-process through the consumer's per-delivery path
(:meth:`messaging.consumer.Consumer.handle_one`): the handler and its receipt in one
transaction, duplicates recognised by the receipts, ``Reject``, attempts counted and
dead-lettering after MAX_ATTEMPTS — against the database, without a broker. What the
real consumer would then tell the broker (ack, requeue, move to ``<queue>.dlq``, nack to
the queue's dead-letter exchange) is carried out here: a requeue is delivered again at
once, ``redelivered`` as the broker would; a dead letter is collected."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pika
from django.utils import timezone

from .. import conf
from ..consumer import (
    Consumer,
    DatabaseDown,
    Delivery,
    Handler,
    RetryPolicy,
    as_handler,
    load_handler,
)
from ..models import Queue, Receipt
from .captured_message import CapturedMessage
from .task_capture import task_handler

#: ``consumer_name`` (and consumer tag) of the receipts :func:`deliver_messages` writes.
CONSUMER_NAME = "messaging.testing"
#: Deliveries of one message in one go before giving up (a requeue loop that never ends).
MAX_DELIVERIES = 1000

_tags = itertools.count(1)


@dataclass
class DeadLetter:
    """A message the consumer dead-lettered: moved to ``dead_letter_queue``, or (when
    that is ``None``) nacked to the queue's own ``dead_letter_exchange``."""

    message: CapturedMessage
    queue: str
    dead_letter_queue: str | None
    dead_letter_exchange: str
    #: ``dead_lettered`` (failed MAX_ATTEMPTS times) or ``rejected`` (``Reject``).
    outcome: str
    attempts: int
    error: str
    receipt: Receipt | None


@dataclass
class DeliveryResult:
    """What one :meth:`~messaging.testing.CapturedMessages.deliver` did."""

    #: Every receipt written, in order (one per delivery, retries included).
    receipts: list[Receipt] = field(default_factory=list)
    #: Messages acked (handled, or recognised as a duplicate).
    acked: list[CapturedMessage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def outcomes(self) -> list[str]:
        return [receipt.outcome for receipt in self.receipts]

    def extend(self, other: DeliveryResult) -> None:
        self.receipts.extend(other.receipts)
        self.acked.extend(other.acked)
        self.dead_letters.extend(other.dead_letters)


def deliver_messages(
    messages: Sequence[CapturedMessage],
    *,
    handlers: Mapping[str, Any] | None = None,
    queue: str | None = None,
    redelivered: bool = False,
) -> DeliveryResult:
    """Deliver ``messages`` in order (to ``queue``, or each to its own queue)."""
    result = DeliveryResult()
    if not messages:
        return result
    targets = [(message, queue or _queue_of(message)) for message in messages]
    consumer = _consumer({name for _message, name in targets}, handlers)
    last = Receipt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for message, name in targets:
        kind = _deliver_one(consumer, message, name, redelivered)
        if kind == "ack":
            result.acked.append(message)
        elif kind in ("dead", "nack"):
            result.dead_letters.append(_dead_letter(consumer, message, name, kind))
    result.receipts = list(
        Receipt.objects.filter(pk__gt=last, consumer_name=CONSUMER_NAME).order_by("pk")
    )
    return result


def _queue_of(message: CapturedMessage) -> str:
    if message.queue is None:
        raise ValueError(
            f"message {message.message_id} was published to {message.destination}: which "
            "queue it reaches is up to the broker's bindings; deliver it with "
            "deliver(message, queue='<queue>')"
        )
    return message.queue


def _handler(name: str, given: Mapping[str, Any] | None) -> Handler:
    handler = (given or {}).get(name) or conf.get("CONSUMERS").get(name) or task_handler(name)
    if handler is None:
        raise LookupError(
            f"no handler for queue {name!r}: set MESSAGING['CONSUMERS'][{name!r}] or pass "
            f"deliver(handlers={{{name!r}: ...}})"
        )
    return load_handler(handler) if isinstance(handler, str) else as_handler(handler)


def _consumer(names: set[str], given: Mapping[str, Any] | None) -> Consumer:
    rows = {row.name: row for row in Queue.objects.filter(name__in=names)}
    ordered = sorted(names)
    return Consumer(
        [rows.get(name, name) for name in ordered],
        {name: _handler(name, given) for name in ordered},
        name=CONSUMER_NAME,
        # A test does not wait between attempts.
        retry=replace(RetryPolicy.from_settings(), retry_delay=0),
    )


def _deliver_one(consumer: Consumer, message: CapturedMessage, queue: str, again: bool) -> str:
    """Deliver until the consumer acks or dead-letters it; returns the last action."""
    for _attempt in range(MAX_DELIVERIES):
        try:
            action = consumer.handle_one(_delivery(message, queue, again))
        except DatabaseDown as down:
            raise down.error from None
        if action.kind != "requeue":
            return action.kind
        again = True  # the broker redelivers a requeued message flagged redelivered
    raise RuntimeError(f"message {message.message_id} was requeued {MAX_DELIVERIES} times")


def _delivery(message: CapturedMessage, queue: str, redelivered: bool) -> Delivery:
    tag = next(_tags)
    method = pika.spec.Basic.Deliver(
        consumer_tag=CONSUMER_NAME,
        delivery_tag=tag,
        redelivered=redelivered,
        exchange=message.exchange,
        routing_key=message.routing_key,
    )
    return Delivery(
        queue=queue,
        body=message.body,
        properties=message.properties,
        delivery_tag=tag,
        redelivered=redelivered,
        exchange=message.exchange,
        routing_key=message.routing_key,
        consumer_tag=CONSUMER_NAME,
        method=method,
        received_at=timezone.now(),
    )


def _dead_letter(consumer: Consumer, message: CapturedMessage, queue: str, kind: str):
    receipt = (
        Receipt.objects.filter(queue_name=queue, message_id=message.message_id)
        .order_by("-pk")
        .first()
    )
    row = Queue.objects.filter(name=queue).first()
    policy = consumer.policies[queue]
    return DeadLetter(
        message=message,
        queue=queue,
        dead_letter_queue=policy.dead_letter_queue if kind == "dead" else None,
        dead_letter_exchange=row.dead_letter_exchange if row is not None else "",
        outcome=receipt.outcome if receipt is not None else "",
        attempts=receipt.attempt if receipt is not None else 0,
        error=receipt.error if receipt is not None else "",
        receipt=receipt,
    )
