"""Recording and publishing messages: the transactional outbox.

Every message is a ``Message`` row first and a broker message second:

- :func:`publish` writes the row (in the caller's transaction, if any) and publishes it
  after the commit, or leaves it to the relay (``PUBLISH_MODE = "relay"``);
- :func:`publish_messages` publishes existing rows (the admin, the Celery task);
- :func:`send_copies` records and publishes many copies of one message (``send --count``);
- :mod:`messaging.relay` publishes the ``pending`` rows that are due.

All of them publish with many confirms in flight (:class:`broker.PipelinedPublisher`) and
store the broker's answer on each row: confirmed → ``published``; unroutable, missing
exchange or a queue that differs from its row → ``failed`` with the reason; broker down,
nacked, no confirm within ``CONFIRM_TIMEOUT`` → stays ``pending`` with ``last_error`` and
``next_attempt_at`` (exponential backoff) for the relay. The AMQP ``message_id`` is the
row's, so a message sent twice (a confirm lost) is recognised by the consumer's receipts.

Who may publish a row (so that two publishers never send it at the same time):

- the process that created it (``publish()``, ``send``) owns it for :func:`claim_lease`
  seconds: the row is created with ``next_attempt_at`` that far ahead, so the relay, which
  takes only due rows, leaves it alone; if that process dies, the relay sends it after;
- everything else claims rows under a row lock held while publishing:
  ``select_for_update(skip_locked=True)`` (PostgreSQL, MySQL, Oracle), or on SQLite, which
  has no row locks, the database write lock taken at the start of the claiming transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import broker, conf, schemas, signals
from .db import operations
from .exceptions import (
    BrokerError,
    BrokerUnavailable,
    ConfirmTimeout,
    InvalidMessage,
    InvalidQueueName,
    MessageRefused,
    PublishInterrupted,
    PublishNacked,
)
from .models import Message, Queue
from .validators import (
    first_message,
    message_problem,
    validate_message_fields,
    validate_queue_name,
)

logger = logging.getLogger(__name__)

#: ``json=`` not given (``None`` is a JSON value: ``null``).
NO_JSON: Any = object()

#: Outcomes that leave the row ``pending`` for a retry (the broker could not take it now);
#: every other broker error is about the message itself and marks it ``failed``.
TRANSIENT_ERRORS: tuple[type[BrokerError], ...] = (
    BrokerUnavailable,
    PublishNacked,
    ConfirmTimeout,
    PublishInterrupted,
)

#: Statuses :func:`publish_messages` sends; ``published`` rows are never sent again.
PUBLISHABLE = (Message.Status.PENDING, Message.Status.HELD, Message.Status.FAILED)


@dataclass
class PublishResult:
    """What happened to a batch of messages (message_ids).

    ``published``: confirmed by the broker. ``failed``: not published, with the reason —
    the row is ``failed``, or still ``pending`` when the id is also in ``retrying`` (the
    broker was down, nacked or did not confirm in time: the relay tries again later).
    ``busy``: not touched because another publisher (the relay, or the process that
    created the row) holds it, or it is already published.
    """

    published: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    retrying: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    first_error: BrokerError | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.busy

    def extend(self, other: PublishResult) -> None:
        self.published.extend(other.published)
        self.failed.update(other.failed)
        self.retrying.extend(other.retrying)
        self.busy.extend(other.busy)
        self.first_error = self.first_error or other.first_error


# --------------------------------------------------------------------------- building rows


def get_queue(name: str, *, create: bool = True) -> Queue:
    """The ``Queue`` row for ``name``; creates a durable classic one when missing."""
    try:
        validate_queue_name(name)
    except ValidationError as exc:
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "…"
        raise InvalidQueueName(f"invalid queue name {shown}: {exc.messages[0]}") from None
    if create:
        return Queue.objects.get_or_create(name=name)[0]
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


def build_message(
    queue: Queue | str | None = None,
    body: bytes | str = b"",
    *,
    exchange: str = "",
    routing_key: str = "",
    content_type: str = "",
    headers: Mapping[str, Any] | None = None,
    persistent: bool = True,
    json: Any = NO_JSON,
) -> Message:
    """An unsaved ``pending`` Message (validated destination, properties and — when the
    queue has a schema — body). ``json=obj`` encodes ``obj`` as the body."""
    if json is not NO_JSON:
        body, content_type = _json_body(json, body, content_type)
    body = _as_bytes(body)
    if queue is None and not exchange:
        raise ValueError("publish needs a queue or an exchange")
    if routing_key and not exchange:
        raise ValueError("routing_key needs an exchange (the default exchange routes by queue)")
    if queue is not None and exchange:
        raise ValueError("give a queue or an exchange, not both")
    try:
        validate_message_fields(
            exchange=exchange, routing_key=routing_key, content_type=content_type, headers=headers
        )
    except ValidationError as exc:
        raise InvalidMessage(first_message(exc)) from None
    if isinstance(queue, str):
        queue = get_queue(queue)
    if queue is not None and queue.schema is not None:
        problem = schemas.body_problem(queue.schema, body)
        if problem is not None:
            raise InvalidMessage(f"body does not match the schema of queue {queue.name}: {problem}")
    return Message(
        queue=queue,
        exchange=exchange,
        routing_key=routing_key,
        body=body,
        content_type=content_type,
        headers=dict(headers or {}),
        persistent=persistent,
    )


def claim_lease() -> timedelta:
    """How long the creator of a row has it to itself before the relay may send it: the
    longest a publish can take (connect to every URL, a blocked connection, the confirm
    timeout) plus a margin."""
    seconds = (
        (conf.get("CONNECTION_TIMEOUT") or 10) * 2 * len(conf.broker_urls())
        + (conf.get("BLOCKED_CONNECTION_TIMEOUT") or 60)
        + 2 * conf.get("CONFIRM_TIMEOUT")
        + 30
    )
    return timedelta(seconds=seconds)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the ``attempts``-th failed try: PUBLISH_RETRY_DELAY doubling each time,
    capped at PUBLISH_RETRY_MAX_DELAY."""
    first = float(conf.get("PUBLISH_RETRY_DELAY"))
    cap = float(conf.get("PUBLISH_RETRY_MAX_DELAY"))
    return timedelta(seconds=min(cap, first * 2 ** min(max(attempts - 1, 0), 40)))


# --------------------------------------------------------------------------- publish()


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
) -> Message:
    """Record a message and publish it (persistent, confirmed, ``mandatory``).

    ``json=obj`` sends ``obj`` encoded with Django's JSON encoder as the body, with
    ``content_type="application/json"``. When the queue's row has a ``schema``, a body
    that does not match it raises :class:`~messaging.exceptions.InvalidMessage` naming the
    failing path, and nothing is saved.

    Inside ``transaction.atomic()`` the row is written in that transaction and published
    after it commits (nothing reaches the broker if it rolls back). Outside a transaction
    it is published at once. Either way, if the broker is down, nacks or does not confirm
    in time, the row stays ``pending`` with ``last_error`` and the relay sends it later:
    no exception. Outside a transaction a message the broker refuses for good
    (unroutable, missing exchange, queue differing from its row) raises that
    :class:`~messaging.exceptions.BrokerError` (the row is ``failed`` with the reason);
    after a commit it is logged and ``message_failed`` is sent instead.

    With ``MESSAGING["PUBLISH_MODE"] = "relay"`` only the row is written; the relay
    (``manage.py relay`` or the ``messaging.tasks.relay_outbox`` Celery task) sends it.
    """
    message = build_message(
        queue,
        body,
        exchange=exchange,
        routing_key=routing_key,
        content_type=content_type,
        headers=headers,
        persistent=persistent,
        json=json,
    )
    if conf.get("PUBLISH_MODE") == "relay":
        message.save()
        return message
    message.next_attempt_at = timezone.now() + claim_lease()
    message.save()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(partial(_publish_after_commit, message, user), robust=True)
        return message
    result = _publish_owned([message], user=user)
    if message.message_id in result.retrying:
        logger.warning(
            "message %s left pending for the relay: %s",
            message.message_id,
            result.failed[message.message_id],
        )
    elif message.message_id in result.failed:
        raise result.first_error or BrokerError(result.failed[message.message_id])
    return message


def _publish_after_commit(message: Message, user: Any) -> None:
    # Renew the creator's lease: if the relay got to the row first (a long transaction
    # outlived the lease), this matches nothing and the relay's outcome stands.
    renewed = Message.objects.filter(
        pk=message.pk, status=Message.Status.PENDING, attempts=message.attempts
    ).update(next_attempt_at=timezone.now() + claim_lease())
    if not renewed:
        return
    result = _publish_owned([message], user=user)
    if message.message_id in result.failed:
        log = logger.warning if message.message_id in result.retrying else logger.error
        log("message %s not published: %s", message.message_id, result.failed[message.message_id])


# --------------------------------------------------------------------------- existing rows


def publish_messages(
    messages: Sequence[Message],
    *,
    user: Any = None,
    publisher: Any = None,
) -> PublishResult:
    """Publish saved Message rows (``pending`` or ``failed``) and store each outcome.

    The rows are claimed first (see the module docstring): a row another publisher holds,
    or one already ``published``, is left alone and listed in ``busy``. Never raises a
    broker error: it is in the result and on the rows. ``publisher`` may be a
    :class:`broker.PipelinedPublisher` to share one connection over several calls (any
    other value is ignored).
    """
    result = PublishResult()
    if not messages:
        return result
    by_pk = {m.pk: m for m in messages}
    now = timezone.now()
    with claiming():
        claimed = dict(
            Message.objects.filter(pk__in=list(by_pk), status__in=PUBLISHABLE)
            .exclude(_owned_by_creator(now))
            .select_for_update(**lock_options())
            .values_list("pk", "attempts")
        )
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
    ids: Iterable[int], *, user: Any = None, chunk_size: int | None = None
) -> PublishResult:
    """:func:`publish_messages` for primary keys, in chunks of RELAY_BATCH_SIZE rows over
    one connection (what the Celery task runs for the admin)."""
    ids = list(ids)
    size = chunk_size or conf.get("RELAY_BATCH_SIZE")
    result = PublishResult()
    publisher = broker.PipelinedPublisher()  # connects on first use; a failure is per row
    try:
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            rows = list(Message.objects.filter(pk__in=chunk).select_related("queue").order_by("pk"))
            missing = set(chunk) - {row.pk for row in rows}
            if missing:
                logger.info("%d message(s) to publish no longer exist", len(missing))
            result.extend(publish_messages(rows, user=user, publisher=publisher))
    finally:
        publisher.close()
    return result


def _owned_by_creator(now: datetime) -> Q:
    """Rows their creator is publishing right now (never tried, within the lease)."""
    return Q(status=Message.Status.PENDING, attempts=0, next_attempt_at__gt=now)


def lock_options() -> dict[str, Any]:
    features = connection.features
    if features.has_select_for_update_skip_locked:
        options: dict[str, Any] = {"skip_locked": True}
        if features.has_select_for_update_of:
            options["of"] = ("self",)
        return options
    return {}


@contextmanager
def claiming() -> Iterator[None]:
    """``transaction.atomic()`` in which claimed rows stay claimed until it ends.

    With row locks (PostgreSQL…) ``select_for_update(skip_locked=True)`` inside it does the
    work. SQLite has none, so the transaction starts with a write that matches nothing,
    which takes the database's write lock at once: a second claimer waits for this one to
    commit and then sees the outcome."""
    with transaction.atomic():
        operations(connection).begin_claim(
            connection, connection.ops.quote_name(Message._meta.db_table)
        )
        yield


# --------------------------------------------------------------------------- the engine


def _publish_owned(messages: Sequence[Message], *, user: Any = None) -> PublishResult:
    """Publish rows this process created and still owns (no claim needed)."""
    return publish_rows(list(messages), user=user)


def publish_rows(rows: list[Message], *, user: Any = None, publisher: Any = None) -> PublishResult:
    """Publish Message objects in order over one connection and store every outcome."""
    result = PublishResult()
    if not rows:
        return result
    own = not isinstance(publisher, broker.PipelinedPublisher)
    pub = broker.PipelinedPublisher() if own else publisher
    outcomes = _refuse_invalid(rows)
    try:
        if any(outcome is None for outcome in outcomes):
            sendable = _check_destinations(pub, rows, outcomes)
            if sendable:
                try:
                    answers = pub.publish_many(_outgoing(rows[i]) for i in sendable)
                except BrokerError as exc:  # the connection died before anything was sent
                    answers = [as_transient(exc)] * len(sendable)
                for index, answer in zip(sendable, answers, strict=True):
                    outcomes[index] = answer
    finally:
        if own:
            pub.close()
    user_id = _user_id(user)
    _store([(row.message_id, row.attempts) for row in rows], outcomes, user_id, result)
    _update_objects(rows, outcomes, user_id)
    _send_signals(rows, outcomes)
    return result


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
    pub: broker.PipelinedPublisher, rows: Sequence[Message], outcomes: list[BrokerError | None]
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
        elif row.queue_id is not None:
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


def _outgoing(message: Message) -> broker.Outgoing:
    exchange, routing_key = message.destination
    return broker.Outgoing(
        exchange=exchange,
        routing_key=routing_key,
        body=message.body_bytes,
        message_id=message.message_id,
        content_type=message.content_type,
        headers=message.headers or None,
        persistent=message.persistent,
    )


def _user_id(user: Any) -> int | None:
    if user is None or isinstance(user, int):
        return user
    return getattr(user, "pk", None)


def is_transient(error: BaseException) -> bool:
    """True when ``error`` leaves the row ``pending`` for a retry."""
    return isinstance(error, TRANSIENT_ERRORS)


def as_transient(error: BrokerError) -> BrokerError:
    """A failure to connect at all (refused, wrong password, vhost refused) is never the
    message's fault: its rows wait for a retry, with the same text."""
    return error if is_transient(error) else BrokerUnavailable(str(error))


def _store(
    rows: Sequence[tuple[str, int]],
    outcomes: Sequence[BrokerError | None],
    user_id: int | None,
    result: PublishResult,
) -> None:
    """Write the outcomes of ``rows`` ((message_id, attempts before this try)) with a few
    UPDATEs: one for the published ones, one per (error, attempts) for the others."""
    now = timezone.now()
    published: list[str] = []
    groups: dict[tuple[str, bool, int], list[str]] = {}
    for (message_id, attempts), outcome in zip(rows, outcomes, strict=True):
        if outcome is None:
            published.append(message_id)
            continue
        transient = is_transient(outcome)
        groups.setdefault((str(outcome), transient, attempts), []).append(message_id)
        result.failed[message_id] = str(outcome)
        if transient:
            result.retrying.append(message_id)
        result.first_error = result.first_error or outcome
    result.published.extend(published)
    for chunk in _chunks(published, 2000):
        Message.objects.filter(message_id__in=chunk).update(
            status=Message.Status.PUBLISHED,
            published_at=now,
            published_by_id=user_id,
            attempts=F("attempts") + 1,
            last_error="",
            next_attempt_at=None,
        )
    for (error, transient, attempts), ids in groups.items():
        if transient:
            changes: dict[str, Any] = {
                "status": Message.Status.PENDING,
                "next_attempt_at": now + retry_delay(attempts + 1),
            }
        else:
            changes = {"status": Message.Status.FAILED, "next_attempt_at": None}
        for chunk in _chunks(ids, 2000):
            Message.objects.filter(message_id__in=chunk).update(
                attempts=F("attempts") + 1, last_error=error, **changes
            )


def _update_objects(
    rows: Sequence[Message], outcomes: Sequence[BrokerError | None], user_id: int | None
) -> None:
    """Mirror what :func:`_store` wrote onto the in-memory objects."""
    now = timezone.now()
    for row, outcome in zip(rows, outcomes, strict=True):
        row.attempts += 1
        if outcome is None:
            row.status = Message.Status.PUBLISHED
            row.published_at = now
            row.published_by_id = user_id
            row.last_error = ""
            row.next_attempt_at = None
        elif is_transient(outcome):
            row.status = Message.Status.PENDING
            row.last_error = str(outcome)
            row.next_attempt_at = now + retry_delay(row.attempts)
        else:
            row.status = Message.Status.FAILED
            row.last_error = str(outcome)
            row.next_attempt_at = None


def _send_signals(rows: Sequence[Message], outcomes: Sequence[BrokerError | None]) -> None:
    """``message_published`` / ``message_failed`` once the outcomes are committed."""
    wanted_published = signals.message_published.has_listeners(Message)
    wanted_failed = signals.message_failed.has_listeners(Message)
    if not (wanted_published or wanted_failed):
        return
    pairs = [(row, outcome) for row, outcome in zip(rows, outcomes, strict=True)]
    transaction.on_commit(partial(_dispatch, pairs), robust=True)


def _dispatch(pairs: Sequence[tuple[Message, BrokerError | None]]) -> None:
    for message, outcome in pairs:
        if outcome is None:
            signals.send_robust(signals.message_published, Message, message=message)
        else:
            signals.send_robust(
                signals.message_failed,
                Message,
                message=message,
                error=outcome,
                will_retry=is_transient(outcome),
            )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- many copies


#: Rows inserted and published per round by :func:`send_copies`.
COPIES_CHUNK = 5000


def send_copies(
    template: Message,
    count: int,
    *,
    user: Any = None,
    publisher: broker.PipelinedPublisher | None = None,
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
    own = publisher is None
    pub = publisher or broker.PipelinedPublisher()
    user_id = _user_id(user)
    exchange, routing_key = template.destination
    body = template.body_bytes
    headers = template.headers or None
    try:
        destination_error = _copies_problem(pub, template)

        def publish_chunk(ids: list[str]) -> list[BrokerError | None]:
            try:
                return pub.publish_many(
                    broker.Outgoing(
                        exchange,
                        routing_key,
                        body,
                        message_id,
                        template.content_type,
                        headers,
                        template.persistent,
                    )
                    for message_id in ids
                )
            except BrokerError as exc:
                return [as_transient(exc)] * len(ids)

        # Database work (INSERT the next chunk, UPDATE the last one) runs in this thread
        # while a worker thread, the only one using the publisher meanwhile, publishes the
        # current chunk: the two overlap instead of taking turns.
        inserted = 0
        stop = False
        inflight: deque[tuple[list[str], Future[list[BrokerError | None]]]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="messaging-send") as pool:
            while inflight or (inserted < count and not stop):
                if inserted < count and not stop and len(inflight) < 2:
                    n = min(chunk_size, count - inserted)
                    ids = _insert_copies(template, n)
                    inserted += n
                    if destination_error is not None:
                        done: Future[list[BrokerError | None]] = Future()
                        done.set_result([destination_error] * n)
                    else:
                        done = pool.submit(publish_chunk, ids)
                    inflight.append((ids, done))
                    continue
                ids, done = inflight.popleft()
                outcomes = done.result()
                part = PublishResult()
                _store([(message_id, 0) for message_id in ids], outcomes, user_id, part)
                result.extend(part)
                _signal_copies(ids, outcomes)
                if progress is not None:
                    progress(len(ids))
                if part.failed and stop_on_error:
                    stop = True
    finally:
        if own:
            pub.close()
    return result


def _copies_problem(pub: broker.PipelinedPublisher, template: Message) -> BrokerError | None:
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
    template.next_attempt_at = now + claim_lease()
    template.status = Message.Status.PENDING
    ids = [str(uuid.uuid4()) for _ in range(n)]
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns: list[str] = []
    values: list[Any] = []
    id_position = -1
    for position, model_field in enumerate(fields):
        columns.append(connection.ops.quote_name(model_field.column))
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
    if not (
        signals.message_published.has_listeners(Message)
        or signals.message_failed.has_listeners(Message)
    ):
        return
    by_id = {m.message_id: m for m in Message.objects.filter(message_id__in=list(ids))}
    pairs = [(by_id[i], o) for i, o in zip(ids, outcomes, strict=True) if i in by_id]
    transaction.on_commit(partial(_dispatch, pairs), robust=True)
