"""Retry delays held by the broker, as plain code: how long the wait after failed attempt
``n`` is, which delay queue holds it, what that queue is declared with, what a delayed
copy carries, and whether a delivery is a copy of an attempt already handled.

A failed attempt with ``RETRY_DELAY`` > 0 is published (confirmed) to
``<queue>.delay.<milliseconds>``: a durable queue with that ``x-message-ttl`` whose
expired messages dead-letter back to ``<queue>`` through the default exchange. One
queue per delay step keeps expiry in order (a queue's TTL is the same for all its
messages, so its head always expires first). No threads, no broker, no SQL here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .backoff import backoff
from .headers import ATTEMPTS_HEADER, RETRY_HEADER
from .short_strings import MAX_NAME_BYTES, utf8_size

#: ``<queue>`` + this + milliseconds names a delay queue.
DELAY_QUEUE_INFIX = ".delay."
#: :data:`ATTEMPTS_HEADER`: failed attempts before this copy (an int); absent on a
#: message's first delivery. :data:`RETRY_HEADER`: the retry history of a delayed copy,
#: tables {queue, attempt, error, consumer, delay_ms, time}, newest last, at most
#: :data:`RETRY_HISTORY` kept.
RETRY_HISTORY = 20
#: How much of the error a retry entry carries.
RETRY_ERROR_CHARS = 200
MAX_QUEUE_NAME_BYTES = MAX_NAME_BYTES


def delay_for(attempt: int, first: float, cap: float) -> float:
    """Seconds the broker holds a message after its failed attempt ``attempt``."""
    return backoff(attempt, first=first, cap=cap)


def delay_milliseconds(delay: float) -> int:
    """The delay as the queue's ``x-message-ttl``: whole milliseconds, rounded up, so
    an attempt never comes back earlier than configured."""
    return max(1, math.ceil(round(delay * 1000, 6)))


def delay_queue_name(queue: str, delay: float) -> str | None:
    """``<queue>.delay.<milliseconds>``, or None when that exceeds AMQP's 255 bytes (the
    consumer then requeues at once, as with ``RETRY_DELAY = 0``)."""
    name = f"{queue}{DELAY_QUEUE_INFIX}{delay_milliseconds(delay)}"
    return name if utf8_size(name) <= MAX_QUEUE_NAME_BYTES else None


def delay_steps(max_attempts: int, first: float, cap: float) -> list[float]:
    """The distinct delays a queue with ``max_attempts`` uses (one delay queue each):
    attempts 1 to ``max_attempts - 1`` wait; the last one dead-letters."""
    if first <= 0:
        return []
    steps: list[float] = []
    for attempt in range(1, max_attempts):
        delay = delay_for(attempt, first, cap)
        if delay not in steps:
            steps.append(delay)
    return steps


def delay_queue_arguments(queue: str, delay: float, *, quorum: bool) -> dict[str, Any]:
    """What a delay queue is declared with: its TTL, and dead-lettering back to
    ``queue`` through the default exchange. A quorum source gets a quorum delay queue,
    dead-lettering at-least-once (which needs ``x-overflow: reject-publish``)."""
    arguments: dict[str, Any] = {
        "x-message-ttl": delay_milliseconds(delay),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
    }
    if quorum:
        arguments.update(
            {
                "x-queue-type": "quorum",
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        )
    return arguments


def earlier_attempts(headers: Mapping[str, Any] | None) -> int:
    """Failed attempts before this copy, from :data:`ATTEMPTS_HEADER` (0 if none)."""
    if not headers:
        return 0
    try:
        return max(0, int(headers.get(ATTEMPTS_HEADER) or 0))
    except (TypeError, ValueError):
        return 0


def retry_entry(
    queue: str, attempt: int, error: str, consumer: str, delay: float
) -> dict[str, Any]:
    """The entry a delayed copy gains in :data:`RETRY_HEADER`."""
    return {
        "queue": queue,
        "attempt": attempt,
        "error": error[:RETRY_ERROR_CHARS],
        "consumer": consumer,
        "delay_ms": delay_milliseconds(delay),
        "time": int(time.time()),
    }


def retry_headers(headers: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The attempt headers of the copy made after failed attempt ``entry['attempt']``."""
    history = list((headers or {}).get(RETRY_HEADER) or [])
    history.append(dict(entry))
    return {ATTEMPTS_HEADER: int(entry["attempt"]), RETRY_HEADER: history[-RETRY_HISTORY:]}


def already_attempted(earlier: int, newest: tuple[str, int, datetime | None] | None) -> bool:
    """Was this copy's attempt handled already? ``newest`` is the latest receipt of the
    message on the queue other than a duplicate: (outcome, attempt, next_attempt_at).
    True when it is a delayed failure of attempt ``earlier + 1`` or later: a copy of it
    is (or is about to be) in a delay queue, so this delivery is a duplicate — the
    original redelivered after a crash between the copy's confirm and its ack, or a
    second copy."""
    if newest is None:
        return False
    outcome, attempt, next_attempt_at = newest
    return outcome == "requeued" and next_attempt_at is not None and attempt >= earlier + 1
