"""The consumer engine behind ``runconsumer`` (and the tests and benchmarks).

Two threads (three with the registry):

* the **I/O thread** owns the pika connection and its channels: it connects (trying
  each broker URL), declares the queues, sets QoS, consumes, keeps heartbeats flowing
  (``process_data_events``) however long a handler runs, carries out the acks, nacks
  and dead-letter moves handed to it through ``add_callback_threadsafe``, and
  reconnects with backoff when the connection is lost;
* the **calling thread** takes deliveries from a local buffer (at most ``prefetch``
  long), runs the handlers inside ``transaction.atomic()`` together with their
  receipts, commits, and only then asks the I/O thread to ack;
* with ``register=True`` a **registry thread** keeps this process's ``Consumer`` row
  up to date every ``CONSUMER_HEARTBEAT_INTERVAL`` seconds.

With ``batch_size`` > 1 (prefetch > 1) the calling thread handles up to ``batch_size``
deliveries (or what arrived within ``BATCH_FLUSH_INTERVAL``) in one transaction with
one bulk insert of receipts, then acks them with one ``multiple=True`` ack. If a handler
raises, the transaction is rolled back and the batch is redone one message at a time,
so one failing handler never undoes the others' work.

A delivery tag is only acked on the channel it came from; deliveries of a channel that
died are dropped here and redelivered by the broker, where the receipts table
recognises the ones already handled (``duplicate``) so their handler does not run twice.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import queue as queue_module
import random
import socket
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pika
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from . import broker, conf, schemas, signals
from .broker import QueueSpec
from .exceptions import BrokerError, BrokerUnavailable, ConsumerTimedOut, Reject
from .handlers import Delivery, Handler, awaitable_error
from .models import Consumer as ConsumerRow
from .models import Receipt, dead_letter_queue_name
from .receipts import as_instances, insert_receipts

logger = logging.getLogger(__name__)

Outcome = Receipt.Outcome

#: Longest wait for the database to come back between attempts.
DB_BACKOFF_MAX = 10.0
#: Most batched receipts per transaction when the batch size is derived from prefetch.
MAX_DEFAULT_BATCH = 500
#: Warn when a handler has held a delivery for this share of the broker's consumer_timeout.
CONSUMER_TIMEOUT_WARN_AT = 0.8
#: Errors of the handler's message that a receipt keeps (the traceback is separate).
ERROR_MAX_CHARS = 2000

#: Outcomes that count as a failed attempt, and the ones after which counting restarts.
_FAILED = (Outcome.REQUEUED,)
_RESTART = (Outcome.DEAD_LETTERED, Outcome.REJECTED)


def default_batch_size(prefetch: int) -> int:
    """Receipts per commit for a prefetch: a third of it (so the broker keeps sending
    while a batch commits), 1 at prefetch 1..3 (per-message commit and ack)."""
    return max(1, min(MAX_DEFAULT_BATCH, prefetch // 3))


@dataclass
class ConsumerStats:
    handled: int = 0
    acked: int = 0
    duplicates: int = 0
    failed: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class QueuePolicy:
    """How failures on one queue end: after ``max_attempts`` (None: the setting), the
    message goes to ``dead_letter_queue`` (published by us), or is rejected so the
    broker dead-letters it (``broker_dead_letters``)."""

    max_attempts: int | None = None
    dead_letter_queue: str | None = None
    broker_dead_letters: bool = False
    #: JSON Schema every body must match (``Queue.schema``); a delivery that does not is
    #: rejected to the dead-letter queue without running the handler.
    schema: Any = None


@dataclass(frozen=True, slots=True)
class _Action:
    """What to tell the broker about one delivery once its receipt is committed."""

    delivery: Delivery
    kind: str  # "ack" | "nack" | "requeue" | "dead"
    death: dict[str, Any] | None = None


class _Duplicate(Exception):
    pass


class _DatabaseDown(Exception):
    def __init__(self, error: DatabaseError) -> None:
        super().__init__(str(error))
        self.error = error


class Consumer:
    """Consume ``queues`` with manual acks, writing a receipt for each delivery.

    ``queues`` are ``Queue`` rows, :class:`~messaging.broker.QueueSpec` or names;
    ``handlers`` maps queue name to a handler taking one :class:`Delivery`.
    Call :meth:`run` (blocks until stopped, ``max_messages`` or ``idle_timeout``);
    :meth:`stop` may be called from a signal handler or another thread.
    """

    def __init__(
        self,
        queues: Iterable[Any],
        handlers: Mapping[str, Handler],
        *,
        prefetch: int = 1,
        name: str = "",
        max_messages: int | None = None,
        idle_timeout: float | None = None,
        batch_size: int | None = None,
        reconnect: bool = True,
        urls: Iterable[str] | None = None,
        on_event: Callable[[str], None] | None = None,
        policies: Mapping[str, QueuePolicy] | None = None,
        register: bool = False,
    ) -> None:
        queues = list(queues)
        self.specs = [QueueSpec.of(q) for q in queues]
        if not self.specs:
            raise ValueError("Consumer needs at least one queue")
        missing = [s.name for s in self.specs if s.name not in handlers]
        if missing:
            raise ValueError(f"no handler for queue(s): {', '.join(missing)}")
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.batch_size = default_batch_size(prefetch) if batch_size is None else batch_size
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = min(self.batch_size, prefetch)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = name or f"{self.host}:{self.pid}"
        self.max_messages = max_messages
        self.idle_timeout = idle_timeout
        self.reconnect = reconnect
        self.urls = list(urls) if urls is not None else None
        self.on_event = on_event or (lambda text: None)
        self.register = register
        self.stats = ConsumerStats()
        self.policies = {
            s.name: self._policy_for(s, q) for s, q in zip(self.specs, queues, strict=True)
        }
        if policies:
            self.policies.update(policies)
        #: Queues whose bodies are checked against a JSON Schema before the handler runs.
        self._schemas = {n: p.schema for n, p in self.policies.items() if p.schema is not None}

        self._stop = threading.Event()
        self._io_close = threading.Event()
        self._ready = threading.Event()
        self._inbox: queue_module.Queue[Delivery | BaseException] = queue_module.Queue()
        #: A delivery taken from the inbox that belongs to the next batch.
        self._carried: Delivery | None = None
        self._io_thread: threading.Thread | None = None
        self._registry_thread: threading.Thread | None = None
        self._registry_stop = threading.Event()
        self._registry_row_id: int | None = None
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._dead_letterer: broker.DeadLetterer | None = None
        self._generation = 0
        self._last_db_check = 0.0
        self._db_failures = 0
        self._busy_since: float | None = None
        self._timeout_warned = False
        self._anonymous_failures: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._flush_interval = float(conf.get("BATCH_FLUSH_INTERVAL"))
        self._retry_delay = float(conf.get("RETRY_DELAY"))
        self._retry_max_delay = float(conf.get("RETRY_MAX_DELAY"))
        self._default_max_attempts = int(conf.get("MAX_ATTEMPTS"))
        self._consumer_timeout = float(conf.get("BROKER_CONSUMER_TIMEOUT"))
        self._receipt_signal = signals.receipt_recorded

    @staticmethod
    def _policy_for(spec: QueueSpec, queue: Any) -> QueuePolicy:
        if hasattr(queue, "dead_letter_queue") and hasattr(queue, "max_attempts"):  # a row
            return QueuePolicy(
                max_attempts=queue.max_attempts,
                dead_letter_queue=queue.dead_letter_queue,
                broker_dead_letters=bool(queue.dead_letter_exchange),
                schema=getattr(queue, "schema", None),
            )
        # A bare name or spec: the app keeps <name>.dlq so nothing is ever dropped.
        return QueuePolicy(
            dead_letter_queue=spec.dead_letter_queue or dead_letter_queue_name(spec.name)
        )

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Finish the deliveries in hand, ack them, and return from :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> ConsumerStats:
        """Consume until stopped; raises :class:`BrokerError` on a fatal broker error."""
        self._io_thread = threading.Thread(target=self._io_main, name="messaging-io", daemon=True)
        self._io_thread.start()
        if self.register:
            self._registry_thread = threading.Thread(
                target=self._registry_main, name="messaging-registry", daemon=True
            )
            self._registry_thread.start()
        error: BaseException | None = None
        try:
            self._loop()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._shutdown_io()
            self._shutdown_registry(error)
        return self.stats

    def _loop(self) -> None:
        last_activity = time.monotonic()
        while not self._stop.is_set():
            if self.max_messages is not None and self.stats.handled >= self.max_messages:
                break
            wait = 0.2
            if self.idle_timeout is not None:
                remaining = self.idle_timeout - (time.monotonic() - last_activity)
                if remaining <= 0:
                    self.on_event(f"idle for {self.idle_timeout:g}s, stopping")
                    break
                wait = min(wait, remaining)
            try:
                item = self._carried or self._inbox.get(timeout=wait)
            except queue_module.Empty:
                continue
            self._carried = None
            if isinstance(item, BaseException):
                raise item
            if item.generation != self._generation:
                continue  # its channel is gone: the broker redelivers it
            batch, fatal = self._collect(item)
            self._busy_since = time.monotonic()
            try:
                if len(batch) == 1:
                    self._settle(self._process_one(batch[0]))
                else:
                    self._process_batch(batch)
            finally:
                self._busy_since = None
                self._timeout_warned = False
            if fatal is not None:
                raise fatal
            last_activity = time.monotonic()

    def _collect(self, first: Delivery) -> tuple[list[Delivery], BaseException | None]:
        """``first`` plus whatever arrives within the flush interval, up to the batch size."""
        batch = [first]
        limit = self.batch_size
        if self.max_messages is not None:
            limit = min(limit, self.max_messages - self.stats.handled)
        if limit <= 1:
            return batch, None
        deadline = time.monotonic() + self._flush_interval
        while len(batch) < limit and not self._stop.is_set():
            try:
                item = self._inbox.get_nowait()
            except queue_module.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._inbox.get(timeout=remaining)
                except queue_module.Empty:
                    break
            if isinstance(item, BaseException):
                return batch, item
            if item.generation > first.generation:
                # The connection was replaced while this batch filled: the batch is from
                # the dead channel (never acked; redelivered), this delivery is the new
                # channel's first and starts the next batch. Dropping it would leave it
                # unsettled — and a later multiple-ack would cover it unhandled.
                self._carried = item
                break
            if item.generation == first.generation:
                batch.append(item)
        return batch, None

    # ------------------------------------------------------------------ a batch

    def _process_batch(self, batch: list[Delivery]) -> None:
        """All handlers and receipts in one transaction; one multiple-ack after commit.
        A failing handler (or a redelivery, or a duplicate) redoes it one by one."""
        self._maybe_refresh_db()
        self.stats.handled += len(batch)
        redo = any(d.redelivered for d in batch) or self._schema_refuses_any(batch)
        if not redo:
            try:
                with transaction.atomic():
                    handlers = self.handlers
                    for delivery in batch:
                        result = handlers[delivery.queue](delivery)
                        if result is not None and inspect.isawaitable(result):
                            raise awaitable_error(result)
                    rows = self._receipt_rows(batch)
                    signalled = self._receipt_signal.has_listeners(Receipt)
                    if signalled:  # receivers get saved rows (with pk)
                        receipts = Receipt.objects.bulk_create(as_instances(rows))
                    else:
                        insert_receipts(rows)
            except IntegrityError:
                redo = True  # a copy of an already acked message: sort it out one by one
            except DatabaseError as exc:
                if not self._database_answers():
                    self._database_failed(batch, exc)
                    return
                redo = True  # the handler's own database error
            except Exception:  # noqa: BLE001 - a handler failed: redo one at a time
                redo = True
            else:
                self.stats.acked += len(batch)
                self._db_failures = 0
                if signalled:
                    self._send_receipt_signals(receipts, batch)
                self._settle([_Action(d, "ack") for d in batch])
                return
        self.stats.handled -= len(batch)
        actions: list[_Action] = []
        for index, delivery in enumerate(batch):
            try:
                actions.append(self._process_one(delivery, raise_db_errors=True))
            except _DatabaseDown as down:
                self._settle(actions)
                self._database_failed(batch[index:], down.error)
                return
        self._settle(actions)

    def _database_answers(self) -> bool:
        """Can we write receipts right now? A handler's own database error counts as a
        handler failure only if so; otherwise the database is down or locked."""
        try:
            with connection.cursor() as cursor:
                if connection.vendor == "sqlite" and not connection.in_atomic_block:
                    # SELECT works under another connection's write lock: ask for it.
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.execute("ROLLBACK")
                else:
                    cursor.execute("SELECT 1")
            return True
        except DatabaseError:
            return False

    # ------------------------------------------------------------------ one delivery

    def _process_one(self, delivery: Delivery, *, raise_db_errors: bool = False) -> _Action:
        self.stats.handled += 1
        handler = self.handlers[delivery.queue]
        if not raise_db_errors:
            self._maybe_refresh_db()
        try:
            history: list[str] | None = None
            if delivery.redelivered and delivery.message_id:
                history = self._history(delivery)
                if Outcome.ACKED in history:
                    return self._duplicate(delivery)
            attempt = self._attempt(delivery, history)
            problem = self._schema_problem(delivery)
            if problem is not None:
                return self._rejected(delivery, attempt, problem)
            stage = "handler"
            try:
                with transaction.atomic():
                    result = handler(delivery)
                    if result is not None and inspect.isawaitable(result):
                        raise awaitable_error(result)  # it never ran: a handler failure
                    stage = "receipt"
                    try:
                        if self._receipt_signal.has_listeners(Receipt):
                            receipt = self._record(delivery, Outcome.ACKED, attempt=attempt)
                        else:  # the lean path: one plain INSERT
                            insert_receipts(self._receipt_rows([delivery], attempt=attempt))
                            receipt = None
                    except IntegrityError as exc:
                        raise _Duplicate from exc
                    stage = "commit"
            except _Duplicate:
                return self._duplicate(delivery)
            except Reject as decision:
                if decision.requeue:
                    return self._failed(delivery, attempt, decision.reason, "")
                return self._rejected(delivery, attempt, decision.reason)
            except Exception as exc:
                if stage != "handler" and isinstance(exc, DatabaseError):
                    raise
                if isinstance(exc, DatabaseError) and not self._database_answers():
                    raise
                return self._handler_failed(delivery, attempt, exc)
        except DatabaseError as exc:
            if raise_db_errors:
                self.stats.handled -= 1
                raise _DatabaseDown(exc) from exc
            self._database_failed([delivery], exc)
            return _Action(delivery, "skip")
        self.stats.acked += 1
        self._db_failures = 0
        if receipt is not None:
            self._send_receipt_signals([receipt], [delivery])
        return _Action(delivery, "ack")

    def _schema_problem(self, delivery: Delivery) -> str | None:
        schema = self._schemas.get(delivery.queue) if self._schemas else None
        if schema is None:
            return None
        problem = schemas.body_problem(schema, delivery.body)
        return None if problem is None else f"body does not match the queue's schema: {problem}"

    def _schema_refuses_any(self, batch: list[Delivery]) -> bool:
        """A batch with a delivery its schema refuses is redone one by one (rejecting it)."""
        if not self._schemas:
            return False
        return any(self._schema_problem(d) is not None for d in batch)

    def _duplicate(self, delivery: Delivery) -> _Action:
        receipt = self._record(delivery, Outcome.DUPLICATE, attempt=1)
        self.stats.duplicates += 1
        self._send_receipt_signals([receipt], [delivery])
        return _Action(delivery, "ack")

    def _handler_failed(self, delivery: Delivery, attempt: int, exc: Exception) -> _Action:
        logger.warning(
            "handler for %s failed on message %s (attempt %d): %s: %s",
            delivery.queue,
            delivery.message_id or "(no id)",
            attempt,
            type(exc).__name__,
            exc,
        )
        return self._failed(
            delivery,
            attempt,
            f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc, limit=8)),
        )

    def _failed(self, delivery: Delivery, attempt: int, error: str, tb: str) -> _Action:
        """A failed attempt: requeue it, or dead-letter it when it was the last one."""
        self.stats.failed += 1
        error = error[:ERROR_MAX_CHARS]
        policy = self.policies.get(delivery.queue, QueuePolicy())
        max_attempts = policy.max_attempts or self._default_max_attempts
        if attempt >= max_attempts:
            receipt = self._record(
                delivery, Outcome.DEAD_LETTERED, error=error, tb=tb, attempt=attempt
            )
            self._send_receipt_signals([receipt], [delivery])
            self.stats.dead_lettered += 1
            logger.error(
                "message %s on %s failed %d time(s); dead-lettered",
                delivery.message_id or "(no id)",
                delivery.queue,
                attempt,
            )
            return self._dead_letter(delivery, policy, "max_attempts", attempt, error)
        receipt = self._record(delivery, Outcome.REQUEUED, error=error, tb=tb, attempt=attempt)
        self._send_receipt_signals([receipt], [delivery])
        self._count_anonymous_failure(delivery)
        if self._retry_delay > 0:
            pause = min(self._retry_max_delay, self._retry_delay * 2 ** (attempt - 1))
            self._stop.wait(pause)
        return _Action(delivery, "requeue")

    def _rejected(self, delivery: Delivery, attempt: int, reason: str) -> _Action:
        self.stats.failed += 1
        self.stats.rejected += 1
        receipt = self._record(
            delivery, Outcome.REJECTED, error=reason[:ERROR_MAX_CHARS], attempt=attempt
        )
        self._send_receipt_signals([receipt], [delivery])
        policy = self.policies.get(delivery.queue, QueuePolicy())
        return self._dead_letter(delivery, policy, "rejected", attempt, reason)

    def _dead_letter(
        self, delivery: Delivery, policy: QueuePolicy, reason: str, attempt: int, error: str
    ) -> _Action:
        if policy.broker_dead_letters or not policy.dead_letter_queue:
            return _Action(delivery, "nack")  # the queue's dead-letter exchange takes it
        death = {
            "queue": delivery.queue,
            "reason": reason,
            "attempts": attempt,
            "error": error[:500],
            "consumer": self.name,
            "time": int(time.time()),
        }
        return _Action(delivery, "dead", death)

    def _database_failed(self, deliveries: list[Delivery], exc: DatabaseError) -> None:
        """The database, not the handler, failed: requeue, back off, keep running."""
        self.stats.failed += len(deliveries)
        logger.error(
            "database error while handling %d message(s) from %s; requeued: %s",
            len(deliveries),
            deliveries[0].queue,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        self.on_event(f"database error, message(s) requeued: {exc}".splitlines()[0])
        self._settle([_Action(d, "requeue") for d in deliveries])
        self._last_db_check = 0.0
        try:
            close_old_connections()
        except DatabaseError:  # pragma: no cover - closing a broken connection
            logger.debug("closing the broken database connection failed", exc_info=True)
        self._db_failures += 1
        self._stop.wait(min(DB_BACKOFF_MAX, 0.5 * 2 ** min(self._db_failures, 5)))

    def _maybe_refresh_db(self) -> None:
        # Drop a connection the server closed (or that CONN_MAX_AGE retired) before
        # using it; not inside an outer atomic block (tests), and at most once a second.
        now = time.monotonic()
        if now - self._last_db_check >= 1.0 and not connection.in_atomic_block:
            close_old_connections()
            self._last_db_check = now

    # ------------------------------------------------------------------ attempts

    def _history(self, delivery: Delivery) -> list[str]:
        """Outcomes of earlier receipts of this message on this queue, newest first."""
        return list(
            Receipt.objects.filter(queue_name=delivery.queue, message_id=delivery.message_id)
            .order_by("-id")
            .values_list("outcome", flat=True)[:200]
        )

    def _attempt(self, delivery: Delivery, history: list[str] | None) -> int:
        """1 for a first try. Quorum queues count deliveries (x-delivery-count); classic
        queues count failed attempts recorded since the message was last dead-lettered
        or replayed (messages without a message_id: counted in this process only)."""
        headers = delivery.properties.headers
        if headers and "x-delivery-count" in headers:
            try:
                return int(headers["x-delivery-count"]) + 1
            except (TypeError, ValueError):
                pass
        if not delivery.redelivered:
            return 1
        if not delivery.message_id:
            return self._anonymous_failures.get(self._anonymous_key(delivery), 0) + 1
        failures = 0
        for outcome in history or ():
            if outcome in _RESTART:
                break
            if outcome in _FAILED:
                failures += 1
        return failures + 1

    @staticmethod
    def _anonymous_key(delivery: Delivery) -> tuple[str, str]:
        return delivery.queue, hashlib.sha1(delivery.body, usedforsecurity=False).hexdigest()

    def _count_anonymous_failure(self, delivery: Delivery) -> None:
        if delivery.message_id:
            return
        key = self._anonymous_key(delivery)
        self._anonymous_failures[key] = self._anonymous_failures.pop(key, 0) + 1
        while len(self._anonymous_failures) > 10_000:
            self._anonymous_failures.popitem(last=False)

    # ------------------------------------------------------------------ receipts

    def _receipt(
        self,
        delivery: Delivery,
        outcome: str,
        *,
        error: str = "",
        tb: str = "",
        attempt: int = 1,
        now: Any = None,
    ) -> Receipt:
        finished = now or timezone.now()
        return Receipt(
            message_id=delivery.message_id,
            queue_name=delivery.queue,
            consumer_name=self.name,
            consumer_host=self.host,
            consumer_pid=self.pid,
            consumer_tag=delivery.consumer_tag,
            delivery_tag=delivery.delivery_tag,
            redelivered=delivery.redelivered,
            attempt=attempt,
            outcome=outcome,
            error=error,
            traceback=tb,
            received_at=delivery.received_at or finished,
            finished_at=finished,
        )

    def _receipt_rows(self, batch: list[Delivery], attempt: int = 1) -> list[tuple[Any, ...]]:
        """``acked`` receipts of a batch as tuples in :data:`messaging.receipts.FIELDS`
        order (the lean path: no model instances)."""
        now = timezone.now()
        name, host, pid = self.name, self.host, self.pid
        return [
            (
                d.properties.message_id or "",
                d.queue,
                name,
                host,
                pid,
                d.consumer_tag,
                d.delivery_tag,
                d.redelivered,
                attempt,
                Outcome.ACKED.value,
                "",
                "",
                d.received_at or now,
                now,
            )
            for d in batch
        ]

    def _record(
        self, delivery: Delivery, outcome: str, *, error: str = "", tb: str = "", attempt: int = 1
    ) -> Receipt:
        receipt = self._receipt(delivery, outcome, error=error, tb=tb, attempt=attempt)
        receipt.save(force_insert=True)
        if outcome != Outcome.DUPLICATE:
            self._db_failures = 0
        return receipt

    def _send_receipt_signals(self, receipts: list[Receipt], deliveries: list[Delivery]) -> None:
        if not self._receipt_signal.has_listeners(Receipt):
            return
        for receipt, delivery in zip(receipts, deliveries, strict=True):
            signals.send_robust(self._receipt_signal, Receipt, receipt=receipt, delivery=delivery)

    # ------------------------------------------------------------------ acks

    def _settle(self, actions: _Action | list[_Action]) -> None:
        """Hand acks/nacks/dead-letter moves to the I/O thread (thread-safe), in order."""
        if isinstance(actions, _Action):
            actions = [actions]
        actions = [a for a in actions if a.kind != "skip"]
        conn = self._conn
        if conn is None or not actions:
            return
        try:
            conn.add_callback_threadsafe(partial(self._settle_in_io, actions))
        except Exception:  # noqa: BLE001 - connection already gone: the broker requeues
            logger.info("connection gone before %d deliveries were settled", len(actions))

    def _settle_in_io(self, actions: list[_Action]) -> None:
        channel = self._channel
        generation = actions[0].delivery.generation
        if generation != self._generation or channel is None or not channel.is_open:
            logger.info("not settling %d deliveries from a closed channel", len(actions))
            return
        last_ack = 0
        for action in actions:
            tag = action.delivery.delivery_tag
            if action.kind == "ack":
                last_ack = max(last_ack, tag)
                continue
            if action.kind == "dead":
                self._move_to_dead_letter_queue(channel, action)
            elif action.kind == "requeue":
                channel.basic_nack(delivery_tag=tag, requeue=True)
            else:  # "nack": the queue's own dead-letter exchange (or policy) takes it
                channel.basic_nack(delivery_tag=tag, requeue=False)
        acks = sum(1 for a in actions if a.kind == "ack")
        if acks:
            # A batch is consecutive deliveries of one channel, settled in tag order, so
            # everything up to last_ack still unsettled is this batch's committed work.
            channel.basic_ack(delivery_tag=last_ack, multiple=acks > 1)

    def _move_to_dead_letter_queue(self, channel: Any, action: _Action) -> None:
        delivery = action.delivery
        policy = self.policies.get(delivery.queue, QueuePolicy())
        dlq = policy.dead_letter_queue or dead_letter_queue_name(delivery.queue)
        try:
            if self._dead_letterer is None:
                self._dead_letterer = broker.DeadLetterer(self._conn)
            self._dead_letterer.publish(
                delivery.queue,
                dlq,
                delivery.body,
                broker.copy_properties(delivery.properties, extra_death=action.death),
            )
        except BrokerError as exc:
            # Not in the DLQ, so keep it on its queue: requeued, never dropped.
            logger.error("could not move message to %s (%s); requeued", dlq, exc)
            channel.basic_nack(delivery_tag=delivery.delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag=delivery.delivery_tag)

    # ------------------------------------------------------------------ I/O thread

    def _io_main(self) -> None:
        delay = float(conf.get("RECONNECT_DELAY"))
        max_delay = float(conf.get("RECONNECT_MAX_DELAY"))
        attempt = 0
        while not self._io_close.is_set() and not self._stop.is_set():
            generation = self._generation
            try:
                self._serve_connection()
                return
            except BrokerUnavailable as exc:
                if not self.reconnect or not self._ready.is_set():
                    # Never connected: a wrong URL or a broker that is down is reported
                    # at once; once consuming, connection loss means reconnect.
                    self._inbox.put(exc)
                    return
                if isinstance(exc, ConsumerTimedOut):
                    logger.error(
                        "%s; a handler ran longer than the broker allows "
                        "(raise consumer_timeout or make the handler faster)",
                        exc,
                    )
                attempt = 1 if self._generation != generation else attempt + 1
                self.stats.reconnects += 1
                pause = min(max_delay, delay * 2 ** min(attempt - 1, 10))
                pause = random.uniform(pause / 2, pause)
                logger.warning("broker connection lost (%s); retrying in %.1fs", exc, pause)
                self.on_event(f"broker unavailable: {exc}; retrying in {pause:.1f}s")
                if self._stop.wait(pause):
                    return
            except BrokerError as exc:
                self._inbox.put(exc)  # our mistake (mismatch, access): stop, don't loop
                return
            except Exception as exc:  # noqa: BLE001
                logger.exception("consumer I/O thread crashed")
                self._inbox.put(BrokerError(f"consumer I/O failed: {type(exc).__name__}: {exc}"))
                return

    def _serve_connection(self) -> None:
        conn = broker.connect(self.urls, connection_name=f"runconsumer {self.name}")
        try:
            try:
                channel = conn.channel()
                for spec in self.specs:
                    broker.declare_queue(channel, spec)
                channel.basic_qos(prefetch_count=self.prefetch)
                self._generation += 1
                self._conn, self._channel = conn, channel
                self._dead_letterer = None
                for spec in self.specs:
                    channel.basic_consume(
                        queue=spec.name,
                        on_message_callback=partial(self._on_message, self._generation, spec.name),
                        auto_ack=False,
                    )
                cancelled: list[str] = []
                channel.add_on_cancel_callback(lambda frame: cancelled.append("cancelled"))
                self._ready.set()
                self.on_event(
                    f"consuming {', '.join(s.name for s in self.specs)} "
                    f"(prefetch {self.prefetch}, batch {self.batch_size}, manual ack)"
                )
                while not self._io_close.is_set():
                    conn.process_data_events(time_limit=0.25)
                    if cancelled:
                        # The broker cancelled us (queue deleted, node down): start over,
                        # which re-declares the queues the app owns.
                        raise BrokerUnavailable("the broker cancelled the consumer")
                    self._watch_consumer_timeout()
                conn.process_data_events(time_limit=0)
            except BrokerError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated to ours
                raise broker.translate(exc) from exc
        finally:
            self._channel = None
            self._dead_letterer = None
            broker.close_quietly(conn)

    def _watch_consumer_timeout(self) -> None:
        since = self._busy_since
        if since is None or self._timeout_warned or self._consumer_timeout <= 0:
            return
        elapsed = time.monotonic() - since
        if elapsed >= CONSUMER_TIMEOUT_WARN_AT * self._consumer_timeout:
            self._timeout_warned = True
            logger.warning(
                "a handler has held its delivery for %.0fs, close to the broker's "
                "consumer_timeout (%.0fs, MESSAGING['BROKER_CONSUMER_TIMEOUT']): the broker "
                "will close the channel and redeliver the message when it expires",
                elapsed,
                self._consumer_timeout,
            )

    def _on_message(
        self,
        generation: int,
        queue_name: str,
        channel: Any,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self._inbox.put(
            Delivery(
                queue=queue_name,
                body=body,
                properties=properties,
                delivery_tag=method.delivery_tag,
                redelivered=bool(method.redelivered),
                exchange=method.exchange,
                routing_key=method.routing_key,
                consumer_tag=method.consumer_tag,
                method=method,
                received_at=timezone.now(),
                generation=generation,
            )
        )

    def wait_until_consuming(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _shutdown_io(self) -> None:
        # Acks already handed to the I/O thread run before this callback (FIFO), so
        # they reach the broker before the connection closes.
        conn = self._conn
        if conn is not None:
            try:
                conn.add_callback_threadsafe(self._io_close.set)
            except Exception:  # noqa: BLE001
                self._io_close.set()
        else:
            self._io_close.set()
        self._stop.set()
        if self._io_thread is not None:
            self._io_thread.join(timeout=10)
            if self._io_thread.is_alive():
                self._io_close.set()
                self._io_thread.join(timeout=5)

    # ------------------------------------------------------------------ registry

    def _registry_main(self) -> None:
        """Write this process's Consumer row now, every interval, and once at exit."""
        interval = float(conf.get("CONSUMER_HEARTBEAT_INTERVAL"))
        row_id: int | None = None
        try:
            while True:
                try:
                    row_id = self._registry_write(row_id)
                except DatabaseError as exc:
                    logger.warning("could not update the consumer registry: %s", exc)
                    close_old_connections()
                if self._registry_stop.wait(interval):
                    break
        finally:
            self._registry_row_id = row_id
            connection.close()

    def _registry_write(self, row_id: int | None, *, final: dict[str, Any] | None = None) -> int:
        now = timezone.now()
        fields = {
            "last_heartbeat": now,
            "processed": self.stats.handled,
            "failed": self.stats.failed,
            "state": ConsumerRow.State.STOPPING
            if self._stop.is_set()
            else ConsumerRow.State.RUNNING,
            **(final or {}),
        }
        if row_id is not None and ConsumerRow.objects.filter(pk=row_id).update(**fields):
            return row_id
        row = ConsumerRow.objects.create(
            name=self.name,
            host=self.host,
            pid=self.pid,
            queues=[s.name for s in self.specs],
            prefetch=self.prefetch,
            started_at=now,
            **fields,
        )
        return row.pk

    def _shutdown_registry(self, error: BaseException | None) -> None:
        if self._registry_thread is None:
            return
        self._registry_stop.set()
        self._registry_thread.join(timeout=10)
        final = {
            "state": ConsumerRow.State.STOPPED,
            "stopped_at": timezone.now(),
            "last_error": f"{type(error).__name__}: {error}"[:2000] if error else "",
        }
        try:
            self._registry_write(self._registry_row_id, final=final)
        except DatabaseError as exc:
            logger.warning("could not mark the consumer stopped in the registry: %s", exc)
