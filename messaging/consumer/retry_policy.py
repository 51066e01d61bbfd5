"""The failure policy, as plain code: which attempt this is, and what a failure leads
to (requeue at once, a wait in a delay queue on the broker, or the dead-letter queue).
No threads, no broker, no SQL: the dispatcher asks, then carries the answer out."""

from __future__ import annotations

import enum
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import conf
from ..amqp.retry_delays import delay_for, earlier_attempts
from ..models import Receipt

Outcome = Receipt.Outcome

#: Outcomes that count as a failed attempt, and the ones after which counting restarts.
FAILED_ATTEMPT = (Outcome.REQUEUED,)
RESTARTS_COUNT = (Outcome.DEAD_LETTERED, Outcome.REJECTED)
#: Errors of the handler's message that a receipt keeps (the traceback is separate).
ERROR_MAX_CHARS = 2000
#: How much of the error the dead-letter header carries.
DEATH_ERROR_CHARS = 500
#: Messages without a message_id whose failures one process remembers (by body hash).
ANONYMOUS_MEMORY = 10_000
#: A handler's exception that has this attribute (seconds, >= 0) asks for that wait
#: before the next attempt instead of ``RETRY_DELAY``'s (0: at once); the attempts
#: still count against ``MAX_ATTEMPTS`` (the task backend's per-task ``retry_delay``).
RETRY_DELAY_ATTRIBUTE = "messaging_retry_delay"


class Verdict(enum.Enum):
    """What to tell the broker about a delivery once its receipt is committed."""

    ACK = "ack"
    REQUEUE = "requeue"
    #: ``basic_nack(requeue=False)``: the queue's own dead-letter exchange takes it.
    NACK = "nack"
    #: Publish a copy to the app's dead-letter queue, then ack the original.
    DEAD_LETTER = "dead"
    #: Publish a copy to the queue's delay queue (the broker holds the wait and puts
    #: it back), then ack the original.
    DELAY = "delay"


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
    #: A stream (RabbitMQ 3.9+): it takes no nack (the broker closes the connection), so
    #: a failure cannot be requeued — it goes to the dead-letter queue at once.
    stream: bool = False
    #: Its delay queues are quorum (queue_types.derived_queue_type: a quorum queue, or
    #: DEAD_LETTER_QUEUE_TYPE = "quorum").
    quorum: bool = False
    #: Seconds a handler may run before a warning (``Queue.handler_time_budget``).
    handler_time_budget: float | None = None

    @property
    def dead_letter_verdict(self) -> Verdict:
        """How a message given up on leaves: our DLQ copy, or the queue's own DLX. A
        stream without our DLQ acks it (it stays in the stream, at its offset)."""
        if self.stream:
            return Verdict.DEAD_LETTER if self.dead_letter_queue else Verdict.ACK
        if self.broker_dead_letters or not self.dead_letter_queue:
            return Verdict.NACK
        return Verdict.DEAD_LETTER


@dataclass(frozen=True)
class RetryPolicy:
    """The settings side of the policy: attempts before giving up, and the wait the
    broker holds a failed message for before its next attempt (``RETRY_DELAY``
    doubling, capped; 0: requeued at once)."""

    max_attempts: int = 5
    retry_delay: float = 0.0
    retry_max_delay: float = 0.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        """``MAX_ATTEMPTS``, ``RETRY_DELAY`` and ``RETRY_MAX_DELAY`` of ``MESSAGING``."""
        return cls(
            max_attempts=int(conf.get("MAX_ATTEMPTS")),
            retry_delay=float(conf.get("RETRY_DELAY")),
            retry_max_delay=float(conf.get("RETRY_MAX_DELAY")),
        )

    def attempts_for(self, queue: QueuePolicy) -> int:
        return queue.max_attempts or self.max_attempts

    def decide(
        self, attempt: int, queue: QueuePolicy, delay: float | None = None
    ) -> FailureDecision:
        """The outcome of failed attempt number ``attempt`` (1-based); on a stream,
        which cannot requeue, the first failure is the last. ``delay``: the wait the
        handler asked for (:func:`requested_delay`), else the policy's."""
        if queue.stream or attempt >= self.attempts_for(queue):
            return FailureDecision(Outcome.DEAD_LETTERED, queue.dead_letter_verdict)
        if delay is None:
            delay = self.delay_after(attempt)
        if delay <= 0:
            return FailureDecision(Outcome.REQUEUED, Verdict.REQUEUE)
        return FailureDecision(Outcome.REQUEUED, Verdict.DELAY, delay)

    def delay_after(self, attempt: int) -> float:
        """Seconds between failed attempt ``attempt`` and the next one (0: none)."""
        return delay_for(attempt, self.retry_delay, self.retry_max_delay)


def requested_delay(exc: BaseException) -> float | None:
    """The wait before the next attempt that a handler's exception asks for
    (:data:`RETRY_DELAY_ATTRIBUTE`), or None (a missing or unusable value)."""
    value = getattr(exc, RETRY_DELAY_ATTRIBUTE, None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < math.inf else None


@dataclass(frozen=True)
class FailureDecision:
    outcome: str
    verdict: Verdict
    #: Seconds the broker holds the message before the next attempt (0: at once).
    delay: float = 0.0


def attempt_number(
    headers: Mapping[str, Any] | None,
    redelivered: bool,
    history: Iterable[str] | None,
    anonymous_failures: int | None = None,
) -> int:
    """1 for a first try. A copy back from a delay queue starts from the failed attempts
    it carries (``x-messaging-attempts``). Quorum queues add their deliveries
    (``x-delivery-count``); classic queues count the failed attempts in ``history``
    (outcomes of earlier receipts, newest first) since the message was last
    dead-lettered or replayed. A message without a message_id passes
    ``anonymous_failures``, the failures this process has seen."""
    earlier = earlier_attempts(headers)
    if headers and "x-delivery-count" in headers:
        try:
            return earlier + int(headers["x-delivery-count"]) + 1
        except (TypeError, ValueError):
            pass
    if not redelivered:
        return earlier + 1
    if anonymous_failures is not None:
        return max(earlier, anonymous_failures) + 1
    failures = 0
    for outcome in history or ():
        if outcome in RESTARTS_COUNT:
            break
        if outcome in FAILED_ATTEMPT:
            failures += 1
    return max(earlier, failures) + 1


def death_record(
    queue: str, reason: str, attempts: int, error: str, consumer: str
) -> dict[str, Any]:
    """The entry a dead-lettered copy gains in its ``x-messaging-death`` header."""
    return {
        "queue": queue,
        "reason": reason,
        "attempts": attempts,
        "error": error[:DEATH_ERROR_CHARS],
        "consumer": consumer,
        "time": int(time.time()),
    }


class AnonymousFailures:
    """Failures of messages without a message_id, keyed by queue and body hash, the
    newest :data:`ANONYMOUS_MEMORY` kept (a restart forgets them)."""

    def __init__(self, limit: int = ANONYMOUS_MEMORY) -> None:
        self.limit = limit
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    @staticmethod
    def key(queue: str, body: bytes) -> tuple[str, str]:
        return queue, hashlib.sha1(body, usedforsecurity=False).hexdigest()

    def get(self, queue: str, body: bytes) -> int:
        return self._counts.get(self.key(queue, body), 0)

    def add(self, queue: str, body: bytes) -> None:
        key = self.key(queue, body)
        self._counts[key] = self._counts.pop(key, 0) + 1
        while len(self._counts) > self.limit:
            self._counts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._counts)
