"""Carrying out the failure policy for one delivery: the receipt that says what
happened, the log line, and the verdict for the broker (requeue or dead-letter)."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Mapping
from datetime import timedelta

from django.utils import timezone

from ..amqp.retry_delays import delay_queue_name, retry_entry
from ..observability import log_fields
from .handlers import Delivery
from .recorder import ReceiptRecorder
from .retry_policy import (
    ERROR_MAX_CHARS,
    AnonymousFailures,
    Outcome,
    QueuePolicy,
    RetryPolicy,
    Verdict,
    death_record,
    requested_delay,
)
from .stats import ConsumerStats
from .verdicts import Settlement

logger = logging.getLogger("messaging.consumer")


class Failures:
    """What a failed, rejected or duplicate delivery leads to."""

    def __init__(
        self,
        recorder: ReceiptRecorder,
        policies: Mapping[str, QueuePolicy],
        retry: RetryPolicy,
        stats: ConsumerStats,
        stop: threading.Event,
    ) -> None:
        self.recorder = recorder
        self.policies = policies
        self.retry = retry
        self.stats = stats
        self.anonymous = AnonymousFailures()
        #: Queues whose delay queue the broker refused (e.g. declared with other
        #: arguments): this consumer requeues their failures at once (shared with the
        #: Settler, which fills it).
        self.delays_refused: set[str] = set()
        self._stop = stop

    def policy(self, queue: str) -> QueuePolicy:
        return self.policies.get(queue, QueuePolicy())

    def duplicate(self, delivery: Delivery) -> Settlement:
        """A copy of a message already acked here: record it, ack it, skip the handler."""
        self.recorder.record(delivery, Outcome.DUPLICATE, attempt=1)
        self.stats.add(duplicates=1)
        return Settlement(delivery, Verdict.ACK)

    def attempted(self, delivery: Delivery, attempt: int, due: object) -> Settlement | None:
        """A copy of an attempt already handled and delayed (see
        :func:`messaging.amqp.retry_delays.already_attempted`): recorded as a duplicate,
        handler skipped. A redelivered original may have died before its delayed copy was
        confirmed, so it is delayed again (a second copy is then the duplicate); a fresh
        copy is acked.
        None: handle it as the next attempt (its delay can no longer be published)."""
        note = f"attempt {attempt} already handled; next attempt due at {due}"
        delay = self.retry.delay_after(attempt)
        name = delay_queue_name(delivery.queue, delay) if delay > 0 else None
        if delivery.redelivered and (name is None or delivery.queue in self.delays_refused):
            return None
        self.stats.add(duplicates=1)
        if not delivery.redelivered or name is None:
            self.recorder.record(delivery, Outcome.DUPLICATE, attempt=attempt, error=note)
            return Settlement(delivery, Verdict.ACK)
        self.recorder.record(
            delivery, Outcome.DUPLICATE, attempt=attempt, error=f"{note} (delayed again)"
        )
        retry = retry_entry(delivery.queue, attempt, "redelivered", self.recorder.name, delay)
        return Settlement(
            delivery,
            Verdict.DELAY,
            retry=retry,
            delay_queue=name,
            quorum=self.policy(delivery.queue).quorum,
        )

    def handler_failed(self, delivery: Delivery, attempt: int, exc: Exception) -> Settlement:
        logger.warning(
            "handler for %s failed on message %s (attempt %d): %s: %s",
            delivery.queue,
            delivery.message_id or "(no id)",
            attempt,
            type(exc).__name__,
            exc,
            extra=log_fields(delivery, consumer=self.recorder.name, attempt=attempt),
        )
        return self.failed(
            delivery,
            attempt,
            f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc, limit=8)),
            delay=requested_delay(exc),
        )

    def failed(
        self, delivery: Delivery, attempt: int, error: str, tb: str, delay: float | None = None
    ) -> Settlement:
        """A failed attempt: requeue it (after ``delay`` seconds when given, else the
        policy's), or dead-letter it when it was the last one."""
        self.stats.add(failed=1)
        error = error[:ERROR_MAX_CHARS]
        policy = self.policy(delivery.queue)
        decision = self.retry.decide(attempt, policy, delay)
        if decision.verdict is Verdict.DELAY:
            delayed = self._delay(delivery, policy, attempt, error, tb, decision.delay)
            if delayed is not None:
                return delayed
        self.recorder.record(delivery, decision.outcome, error=error, tb=tb, attempt=attempt)
        if decision.outcome == Outcome.DEAD_LETTERED:
            self.stats.add(dead_lettered=1)
            logger.error(
                "message %s on %s failed %d time(s); dead-lettered",
                delivery.message_id or "(no id)",
                delivery.queue,
                attempt,
                extra=log_fields(
                    delivery,
                    consumer=self.recorder.name,
                    outcome=Outcome.DEAD_LETTERED,
                    attempt=attempt,
                ),
            )
            return self._dead_letter(delivery, policy, "max_attempts", attempt, error)
        if not delivery.message_id:
            self.anonymous.add(delivery.queue, delivery.body)
        return Settlement(delivery, Verdict.REQUEUE)

    def _delay(
        self,
        delivery: Delivery,
        policy: QueuePolicy,
        attempt: int,
        error: str,
        tb: str,
        delay: float,
    ) -> Settlement | None:
        """A failed attempt the broker holds for ``delay`` seconds in a delay queue: the
        receipt says when the next attempt is due. None: requeue at once instead (a name
        too long for AMQP, or a delay queue the broker refused)."""
        name = delay_queue_name(delivery.queue, delay)
        if name is None or delivery.queue in self.delays_refused:
            return None
        due = timezone.now() + timedelta(seconds=delay)
        self.recorder.record(
            delivery, Outcome.REQUEUED, error=error, tb=tb, attempt=attempt, next_attempt_at=due
        )
        retry = retry_entry(delivery.queue, attempt, error, self.recorder.name, delay)
        return Settlement(
            delivery, Verdict.DELAY, retry=retry, delay_queue=name, quorum=policy.quorum
        )

    def rejected(self, delivery: Delivery, attempt: int, reason: str) -> Settlement:
        """``Reject`` (or a body its queue's schema refuses): straight to the DLQ."""
        self.stats.add(failed=1, rejected=1)
        self.recorder.record(
            delivery, Outcome.REJECTED, error=reason[:ERROR_MAX_CHARS], attempt=attempt
        )
        return self._dead_letter(delivery, self.policy(delivery.queue), "rejected", attempt, reason)

    def _dead_letter(
        self, delivery: Delivery, policy: QueuePolicy, reason: str, attempt: int, error: str
    ) -> Settlement:
        verdict = policy.dead_letter_verdict
        if verdict is not Verdict.DEAD_LETTER:
            return Settlement(delivery, verdict)  # the queue's dead-letter exchange takes it
        death = death_record(delivery.queue, reason, attempt, error, self.recorder.name)
        return Settlement(delivery, verdict, death)
