"""Running handlers: each delivery's handler and its receipt in one ``atomic()``; a
batch in one transaction with one bulk insert, redone one by one when anything in it
fails, so one failing handler never undoes the others' work. Writes the handlers
deferred (:mod:`.deferred`) run after the last handler, before the receipts."""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction

from .. import observability
from ..amqp import schemas
from ..amqp.retry_delays import already_attempted, earlier_attempts
from ..exceptions import Reject
from ..models import Receipt
from ..rpc.replies import Reply, outcome_of, to_reply_to
from .budget import HandlerBudget
from .database import DatabaseDown, DatabaseGuard
from .deferred import deferring
from .failures import Failures
from .handlers import Delivery, Handler, awaitable_error
from .retry_policy import Outcome, Verdict, attempt_number
from .stats import ConsumerStats
from .verdicts import Settlement

#: Earlier receipts of a redelivered message read to count its attempts.
HISTORY_LIMIT = 200


class _Duplicate(Exception):
    pass


class Dispatcher:
    """Turns deliveries into committed receipts and the verdicts for the broker.

    Raises :class:`DatabaseDown` when the database (not a handler) failed; the engine
    then requeues what is pending and backs off."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        failures: Failures,
        database: DatabaseGuard,
        stats: ConsumerStats,
        budget: HandlerBudget | None = None,
    ) -> None:
        self.handlers = observability.instrument_handlers(handlers, failures.recorder.name)
        self.budget = budget if budget is not None and budget.active else None
        self.failures = failures
        self.recorder = failures.recorder
        self.database = database
        self.stats = stats
        #: Queues whose bodies are checked against a JSON Schema before the handler runs.
        self.schemas = {n: p.schema for n, p in failures.policies.items() if p.schema is not None}

    def dispatch(self, batch: Sequence[Delivery]) -> list[Settlement]:
        self.database.refresh()
        if len(batch) == 1:
            return [self.one(batch[0])]
        return self.many(batch)

    # ------------------------------------------------------------------ a batch

    def many(self, batch: Sequence[Delivery]) -> list[Settlement]:
        """All handlers and receipts in one transaction (acked with one multiple-ack).
        A failing handler, a redelivery or a duplicate redoes the batch one by one."""
        redo = any(_looked_up(d) for d in batch) or self._schema_refuses_any(batch)
        if not redo:
            try:
                with deferring() as deferred, transaction.atomic():
                    outcomes = self._run_all(batch)
                    deferred.flush()
                    receipts = self.recorder.acked(batch, replies=[o[0] for o in outcomes])
            except IntegrityError:
                redo = True  # a copy of an already acked message: sort it out one by one
            except DatabaseError as exc:
                if not self.database.answers():
                    raise DatabaseDown(exc, pending=batch) from exc
                redo = True  # the handler's own database error
            except Exception:  # noqa: BLE001 - a handler failed: redo one at a time
                redo = True
            else:
                self.stats.add(handled=len(batch), acked=len(batch))
                self.database.ok()
                self.recorder.announce(receipts, batch)
                observability.receipts(batch, Outcome.ACKED)
                return [
                    Settlement(d, Verdict.ACK, replies=o[1])
                    for d, o in zip(batch, outcomes, strict=True)
                ]
        settled: list[Settlement] = []
        for index, delivery in enumerate(batch):
            try:
                settled.append(self.one(delivery))
            except DatabaseDown as down:
                raise DatabaseDown(down.error, batch[index:], settled) from down.error
        return settled

    def _run_all(self, batch: Sequence[Delivery]) -> list[tuple[Reply | None, tuple]]:
        """Run every handler; per delivery (reply to store, replies to send)."""
        handlers = self.handlers
        outcomes = []
        for delivery in batch:
            result = self._call(handlers[delivery.queue], delivery)
            if result is not None and inspect.isawaitable(result):
                raise awaitable_error(result)
            outcomes.append(outcome_of(result, delivery.reply_to, delivery.correlation_id))
        return outcomes

    def _call(self, handler: Handler, delivery: Delivery) -> object:
        """Run the handler; checked against its time budget when there is one."""
        if self.budget is None:
            return handler(delivery)
        started = time.monotonic()
        try:
            return handler(delivery)
        finally:
            self.budget.check(delivery, time.monotonic() - started)

    # ------------------------------------------------------------------ one delivery

    def one(self, delivery: Delivery) -> Settlement:
        """Handle one delivery: duplicate check, attempt count, schema, handler."""
        try:
            history: list[str] | None = None
            # A request (reply_to) may come again as the caller's retry, not redelivered.
            if delivery.message_id and (_looked_up(delivery) or delivery.reply_to):
                rows = self._history(delivery)
                history = [row[0] for row in rows]
                if Outcome.ACKED in history:
                    return self._counted(self._duplicate(delivery))
                handled = self._attempted(delivery, rows)
                if handled is not None:
                    return self._counted(handled)
            attempt = self._attempt(delivery, history)
            problem = self._schema_problem(delivery)
            if problem is not None:
                return self._counted(self.failures.rejected(delivery, attempt, problem))
            return self._counted(self._run(delivery, attempt))
        except DatabaseError as exc:
            raise DatabaseDown(exc, pending=[delivery]) from exc

    def _run(self, delivery: Delivery, attempt: int) -> Settlement:
        handler = self.handlers[delivery.queue]
        stage = "handler"
        try:
            with deferring() as deferred, transaction.atomic():
                result = self._call(handler, delivery)
                if result is not None and inspect.isawaitable(result):
                    raise awaitable_error(result)  # it never ran: a handler failure
                deferred.flush()  # the handler's deferred writes: its own failure
                reply, replies = outcome_of(result, delivery.reply_to, delivery.correlation_id)
                stage = "receipt"
                try:
                    receipts = self.recorder.acked([delivery], attempt=attempt, replies=[reply])
                except IntegrityError as exc:
                    raise _Duplicate from exc
                stage = "commit"
        except _Duplicate:
            return self._duplicate(delivery)
        except Reject as decision:
            if decision.requeue:
                return self.failures.failed(delivery, attempt, decision.reason, "")
            return self.failures.rejected(delivery, attempt, decision.reason)
        except Exception as exc:
            if stage != "handler" and isinstance(exc, DatabaseError):
                raise
            if isinstance(exc, DatabaseError) and not self.database.answers():
                raise
            return self.failures.handler_failed(delivery, attempt, exc)
        self.stats.add(acked=1)
        self.recorder.announce(receipts, [delivery])
        observability.receipts([delivery], Outcome.ACKED)
        return Settlement(delivery, Verdict.ACK, replies=replies)

    def _duplicate(self, delivery: Delivery) -> Settlement:
        """A copy of a message already acked here; a request among them gets the reply
        stored on the acked receipt again (its handler is not run twice)."""
        settlement = self.failures.duplicate(delivery)
        if not delivery.reply_to:
            return settlement
        stored = (
            Receipt.objects.filter(
                queue_name=delivery.queue, message_id=delivery.message_id, outcome=Outcome.ACKED
            )
            .values_list("reply", "reply_content_type")
            .first()
        )
        if stored is None or stored[0] is None:
            return settlement
        reply = Reply(bytes(stored[0]), stored[1])
        outbound = to_reply_to(reply, delivery.reply_to, delivery.correlation_id)
        return replace(settlement, replies=(outbound,))

    def _counted(self, settlement: Settlement) -> Settlement:
        """A delivery got its receipt (so the database answers)."""
        self.stats.add(handled=1)
        self.database.ok()
        return settlement

    # ------------------------------------------------------------------ attempts, schemas

    def _history(self, delivery: Delivery) -> list[tuple[str, int, Any]]:
        """(outcome, attempt, next_attempt_at) of earlier receipts of this message on
        this queue, newest first."""
        return list(
            Receipt.objects.filter(queue_name=delivery.queue, message_id=delivery.message_id)
            .order_by("-id")
            .values_list("outcome", "attempt", "next_attempt_at")[:HISTORY_LIMIT]
        )

    def _attempted(self, delivery: Delivery, rows: list[tuple[str, int, Any]]) -> Settlement | None:
        """A duplicate of an attempt already handled and delayed, or None."""
        newest = next((r for r in rows if r[0] != Outcome.DUPLICATE), None)
        if not already_attempted(earlier_attempts(delivery.properties.headers), newest):
            return None
        assert newest is not None
        return self.failures.attempted(delivery, newest[1], newest[2])

    def _attempt(self, delivery: Delivery, history: list[str] | None) -> int:
        anonymous = None
        if not delivery.message_id:
            anonymous = self.failures.anonymous.get(delivery.queue, delivery.body)
        return attempt_number(delivery.properties.headers, delivery.redelivered, history, anonymous)

    def _schema_problem(self, delivery: Delivery) -> str | None:
        schema = self.schemas.get(delivery.queue) if self.schemas else None
        if schema is None:
            return None
        problem = schemas.body_problem(schema, delivery.body)
        return None if problem is None else f"body does not match the queue's schema: {problem}"

    def _schema_refuses_any(self, batch: Sequence[Delivery]) -> bool:
        """A batch with a delivery its schema refuses is redone one by one (rejecting it)."""
        if not self.schemas:
            return False
        return any(self._schema_problem(d) is not None for d in batch)


def _looked_up(delivery: Delivery) -> bool:
    """Is the message's history read first? For a redelivery, or a copy back from a
    delay queue (it may be a duplicate of an attempt already handled)."""
    return delivery.redelivered or earlier_attempts(delivery.properties.headers) > 0
