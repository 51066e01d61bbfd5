"""Many copies of one message (``send --count``): rows inserted in bulk and committed,
published with pipelined confirms while the next chunk is inserted, outcomes stored in
bulk."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .. import broker, observability
from ..amqp.properties import pika_kwargs
from ..amqp.validators import message_problem
from ..db import operations
from ..exceptions import BrokerError, MessageRefused
from ..models import Message
from . import outcome_signals
from .outbox import (
    PublishResult,
    as_transient,
    lease_end,
    recheck_unroutable,
    store_outcomes,
    user_id_of,
)
from .sending import amqp_timestamp

#: Rows inserted and published per round by :func:`send_copies`.
COPIES_CHUNK = 5000
#: Chunks published or waiting to be stored at a time.
IN_FLIGHT = 2

_Outcomes = list[BrokerError | None]


def send_copies(
    template: Message,
    count: int,
    *,
    user: Any = None,
    publisher: broker.PublisherBase | None = None,
    chunk_size: int = COPIES_CHUNK,
    progress: Callable[[int], None] | None = None,
    stop_on_error: bool = True,
) -> PublishResult:
    """Record ``count`` copies of ``template`` (an unsaved Message: destination, body,
    headers…; each copy gets its own message_id) and publish them with pipelined confirms.

    Rows are inserted in bulk (one executemany per chunk) and committed before their
    messages are published, owned by this process for :func:`claim_lease` seconds, then
    updated in bulk with the broker's answers; inserting the next chunk overlaps with
    publishing the current one. ``progress(n)`` is called after each chunk. With
    ``stop_on_error`` the first chunk with a failure ends the run (copies not yet inserted
    are not recorded). This is what ``manage.py send --count`` runs; bench code can call it.
    """
    result = PublishResult()
    pub = publisher or broker.process_publisher()
    run = _CopiesRun(template, pub, user_id_of(user))
    _pipeline(run, count, chunk_size, result, progress, stop_on_error)
    return result


def _pipeline(
    run: _CopiesRun,
    count: int,
    chunk_size: int,
    result: PublishResult,
    progress: Callable[[int], None] | None,
    stop_on_error: bool,
) -> None:
    """Database work (INSERT the next chunk, UPDATE the last one) runs in this thread
    while a worker thread, the only one using the publisher meanwhile, publishes the
    current chunk: the two overlap instead of taking turns."""
    inserted = 0
    stop = False
    inflight: deque[tuple[list[str], Future[_Outcomes]]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="messaging-send") as pool:
        while inflight or (inserted < count and not stop):
            if inserted < count and not stop and len(inflight) < IN_FLIGHT:
                n = min(chunk_size, count - inserted)
                inflight.append(run.start(pool, n))
                inserted += n
                continue
            ids, done = inflight.popleft()
            part = run.finish(ids, done.result())
            result.extend(part)
            if progress is not None:
                progress(len(ids))
            if part.failed and stop_on_error:
                stop = True


class _CopiesRun:
    """The copies of one template: inserting a chunk, publishing it, storing its outcomes."""

    def __init__(self, template: Message, pub: broker.PublisherBase, user_id: int | None):
        self.template = template
        self.pub = pub
        self.user_id = user_id
        self.exchange, self.routing_key = template.destination
        self.body = template.body_bytes
        self.headers = template.headers or None
        self.extra = pika_kwargs(template) or None
        self.destination_error = _copies_problem(pub, template)

    def start(self, pool: ThreadPoolExecutor, n: int) -> tuple[list[str], Future[_Outcomes]]:
        """Insert ``n`` copies (committed) and hand them to the worker thread."""
        ids = _insert_copies(self.template, n)
        if self.destination_error is not None:
            done: Future[_Outcomes] = Future()
            done.set_result([self.destination_error] * n)
            return ids, done
        return ids, pool.submit(self.publish, ids)

    def publish(self, ids: list[str]) -> _Outcomes:
        template = self.template
        headers = observability.outgoing_headers(template)  # one dict for the chunk
        try:
            outcomes = self.pub.publish_many(
                broker.Outgoing(
                    self.exchange,
                    self.routing_key,
                    self.body,
                    message_id,
                    template.content_type,
                    headers,
                    template.persistent,
                    amqp_timestamp(template),
                    self.extra,
                )
                for message_id in ids
            )
        except BrokerError as exc:
            return [as_transient(exc)] * len(ids)
        queue = "" if self.exchange else self.routing_key
        return recheck_unroutable(self.pub, [queue] * len(ids), outcomes)

    def finish(self, ids: list[str], outcomes: _Outcomes) -> PublishResult:
        """Store the outcomes of a published chunk and signal them after the commit."""
        part = PublishResult()
        store_outcomes(
            [(message_id, 0) for message_id in ids],
            outcomes,
            user_id=self.user_id,
            now=timezone.now(),
            result=part,
        )
        _signal_copies(ids, outcomes)
        observability.published([self.template] * len(ids), outcomes)
        return part


def _copies_problem(pub: Any, template: Message) -> BrokerError | None:
    """Why no copy of ``template`` can be published now: :func:`message_problem` (failed
    for good), no broker (pending), or its queue / exchange refused; else ``None``."""
    problem = message_problem(template)
    if problem is not None:
        return MessageRefused(problem)
    try:
        pub.open()
    except BrokerError as exc:
        return as_transient(exc)
    try:
        if template.exchange:
            pub.check_exchange(template.exchange)
        elif template.queue_id is not None:
            pub.ensure_declared(template.queue)
    except BrokerError as exc:
        return exc
    return None


def _insert_copies(template: Message, n: int) -> list[str]:
    """INSERT ``n`` copies of ``template`` with new message_ids, committed; returns the ids.

    Field values are prepared once by the model fields themselves. PostgreSQL gets one
    ``INSERT … SELECT … FROM unnest(ids)`` (one round trip, four times faster than
    executemany there); other databases one ``executemany``."""
    now = timezone.now()
    template.created_at = now
    template.next_attempt_at = lease_end(now)
    template.status = Message.Status.PENDING
    ids = [str(uuid.uuid4()) for _ in range(n)]
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns: list[str] = []
    values: list[Any] = []
    id_position = -1
    for position, model_field in enumerate(fields):
        columns.append(connection.ops.quote_name(str(model_field.column)))
        if model_field.attname == "message_id":
            id_position = position
            values.append(None)
            continue
        value = getattr(template, model_field.attname)
        values.append(model_field.get_db_prep_save(value, connection))
    table = connection.ops.quote_name(Message._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        operations(connection).insert_copies(cursor, table, columns, values, id_position, ids)
    return ids


def _signal_copies(ids: Sequence[str], outcomes: Sequence[BrokerError | None]) -> None:
    if not outcome_signals.wanted():
        return
    by_id = {m.message_id: m for m in Message.objects.filter(message_id__in=list(ids))}
    pairs = [(by_id[i], o) for i, o in zip(ids, outcomes, strict=True) if i in by_id]
    outcome_signals.send_after_commit(pairs)
