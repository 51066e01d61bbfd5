"""Carrying out the failure policy for one delivery: the receipt that says what
happened, the log line, and the verdict for the broker (requeue or dead-letter)."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Mapping

from ..handlers import Delivery
from ..observability import log_fields
from .policy import (
    ERROR_MAX_CHARS,
    AnonymousFailures,
    Outcome,
    QueuePolicy,
    RetryPolicy,
    Verdict,
    death_record,
)
from .recorder import ReceiptRecorder
from .settlement import Settlement
from .stats import ConsumerStats

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
        self._stop = stop

    def policy(self, queue: str) -> QueuePolicy:
        return self.policies.get(queue, QueuePolicy())

    def duplicate(self, delivery: Delivery) -> Settlement:
        """A copy of a message already acked here: record it, ack it, skip the handler."""
        self.recorder.record(delivery, Outcome.DUPLICATE, attempt=1)
        self.stats.duplicates += 1
        return Settlement(delivery, Verdict.ACK)

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
        )

    def failed(self, delivery: Delivery, attempt: int, error: str, tb: str) -> Settlement:
        """A failed attempt: requeue it, or dead-letter it when it was the last one."""
        self.stats.failed += 1
        error = error[:ERROR_MAX_CHARS]
        policy = self.policy(delivery.queue)
        decision = self.retry.decide(attempt, policy)
        self.recorder.record(delivery, decision.outcome, error=error, tb=tb, attempt=attempt)
        if decision.outcome == Outcome.DEAD_LETTERED:
            self.stats.dead_lettered += 1
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
        if decision.pause > 0:
            self._stop.wait(decision.pause)
        return Settlement(delivery, Verdict.REQUEUE)

    def rejected(self, delivery: Delivery, attempt: int, reason: str) -> Settlement:
        """``Reject`` (or a body its queue's schema refuses): straight to the DLQ."""
        self.stats.failed += 1
        self.stats.rejected += 1
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
