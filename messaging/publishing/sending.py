"""Publishing rows already held (created or claimed by this process): refuse the ones
that cannot be sent, check each destination once, publish with pipelined confirms over
one connection, store every outcome, send the signals after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from django.utils import timezone

from .. import broker, observability
from ..amqp.properties import pika_kwargs
from ..amqp.validators import message_problem
from ..exceptions import BrokerError, BrokerUnavailable, MessageRefused
from ..models import Message
from . import outcome_signals
from .outbox import (
    PublishResult,
    apply_outcomes,
    as_transient,
    is_transient,
    recheck_unroutable,
    store_outcomes,
    user_id_of,
)


def publish_rows(rows: list[Message], *, user: Any = None, publisher: Any = None) -> PublishResult:
    """Publish Message objects in order and store every outcome: on ``publisher`` (a
    :class:`broker.PublisherBase`), else on the process's publisher
    (:func:`broker.process_publisher`), held for the sending only (the UPDATE runs
    after, while other threads publish)."""
    if not rows:
        return PublishResult()
    outcomes = send_rows(rows, publisher=publisher)
    return record_outcomes(rows, outcomes, [user_id_of(user)] * len(rows))


def send_rows(rows: Sequence[Message], *, publisher: Any = None) -> list[BrokerError | None]:
    """The broker's answer to each row (``None``: confirmed), nothing stored yet."""
    pub = publisher if isinstance(publisher, broker.PublisherBase) else broker.process_publisher()
    hold = pub.session() if isinstance(pub, broker.ProcessPublisher) else nullcontext()
    try:
        with hold, observability.sending(rows):
            return _send(pub, rows)
    except BrokerUnavailable as exc:  # the process's publisher stayed busy: try later
        return [exc] * len(rows)


def record_outcomes(
    rows: Sequence[Message],
    outcomes: Sequence[BrokerError | None],
    user_ids: Sequence[int | None],
) -> PublishResult:
    """Store the outcomes of ``rows`` (``published_by`` one id per row) with a few
    UPDATEs, set them on the objects, count them, and send the signals after the commit."""
    result = PublishResult()
    now = timezone.now()
    for user_id in dict.fromkeys(user_ids):
        run = [i for i, u in enumerate(user_ids) if u == user_id]
        store_outcomes(
            [(rows[i].message_id, rows[i].attempts) for i in run],
            [outcomes[i] for i in run],
            user_id=user_id,
            now=now,
            result=result,
        )
        apply_outcomes([rows[i] for i in run], [outcomes[i] for i in run], user_id=user_id, now=now)
    observability.published(rows, outcomes)
    if outcome_signals.wanted():
        outcome_signals.send_after_commit(list(zip(rows, outcomes, strict=True)))
    return result


def _send(pub: Any, rows: Sequence[Message]) -> list[BrokerError | None]:
    """The outcome of each row: refused as it is, destination refused, or the broker's
    answer to publishing it."""
    outcomes = _refuse_invalid(rows)
    if any(outcome is None for outcome in outcomes):
        sendable = _check_destinations(pub, rows, outcomes)
        if sendable:
            try:
                answers = pub.publish_many(_outgoing(rows[i]) for i in sendable)
            except BrokerError as exc:  # the connection died before anything was sent
                answers = [as_transient(exc)] * len(sendable)
            queues = [_queue_of(rows[i]) for i in sendable]
            answers = recheck_unroutable(pub, queues, answers)
            for index, answer in zip(sendable, answers, strict=True):
                outcomes[index] = answer
    return outcomes


def _refuse_invalid(rows: Sequence[Message]) -> list[BrokerError | None]:
    """Per row: :class:`MessageRefused` with the reason when :func:`message_problem` says
    it cannot be sent as it is (saved before the rules, or changed behind the ORM's back),
    else ``None``. Such a row is failed for good and never reaches the broker."""
    outcomes: list[BrokerError | None] = []
    for row in rows:
        problem = message_problem(row)
        outcomes.append(None if problem is None else MessageRefused(problem))
    return outcomes


def _check_destinations(
    pub: Any, rows: Sequence[Message], outcomes: list[BrokerError | None]
) -> list[int]:
    """Connect, then declare each row's queue / check each exchange once (rows already
    refused are skipped). A refusal fails the rows concerned; a declaration the broker
    does not answer in time leaves them pending (only them); a broker that cannot be
    reached leaves every row still to check pending. Returns the indexes to publish."""
    refused: dict[tuple[str, str], BrokerError] = {}
    checked: set[tuple[str, str]] = {("", "")}
    sendable = []
    down: BrokerError | None = None
    try:
        pub.open()
    except BrokerError as exc:  # could not connect: every row waits for a retry
        down = as_transient(exc)
    for index, row in enumerate(rows):
        if outcomes[index] is not None:
            continue
        if down is not None:
            outcomes[index] = down
            continue
        if row.exchange:
            key = ("exchange", row.exchange)
        elif row.queue is not None:
            key = ("queue", row.queue.name)
        else:
            key = ("", "")
        if key not in checked:
            checked.add(key)
            try:
                if key[0] == "exchange":
                    pub.check_exchange(row.exchange)
                else:
                    pub.ensure_declared(row.queue)
            except BrokerError as exc:
                refused[key] = exc
                if is_transient(exc) and not pub.is_open:
                    down = outcomes[index] = as_transient(exc)
                    continue
        if key in refused:
            outcomes[index] = refused[key]
        else:
            sendable.append(index)
    return sendable


def _queue_of(message: Message) -> str:
    """The queue a row is sent straight to (``""`` for one sent to an exchange)."""
    return "" if message.exchange or message.queue is None else message.queue.name


def _outgoing(message: Message) -> broker.Outgoing:
    exchange, routing_key = message.destination
    return broker.Outgoing(
        exchange=exchange,
        routing_key=routing_key,
        body=message.body_bytes,
        message_id=message.message_id,
        content_type=message.content_type,
        headers=observability.outgoing_headers(message),
        persistent=message.persistent,
        timestamp=amqp_timestamp(message),
        extra=pika_kwargs(message) or None,
    )


def amqp_timestamp(message: Message) -> int:
    """The AMQP ``timestamp`` of a row: when it was created, in whole seconds."""
    created = message.created_at or timezone.now()
    return int(created.timestamp())
