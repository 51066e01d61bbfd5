"""The outbox relay: publishes the ``pending`` messages that are due.

A row is due when its ``next_attempt_at`` is empty or past. :func:`relay_once` claims due
rows in id order, a batch of ``RELAY_BATCH_SIZE`` at a time, under a row lock
(``select_for_update(skip_locked=True)``; on SQLite the database write lock) held until
the batch's outcomes are committed, so several relays (processes, Celery workers) never
publish the same row. Each batch goes out with pipelined confirms on the process's
publisher connection (:func:`messaging.broker.process_publisher`);
outcomes are stored as :mod:`messaging.publishing` describes (a failed try backs off
exponentially, per message). A row that can never be sent as it is is ``failed`` with
its reason before anything is sent, and a destination the broker does not answer for
costs its own rows at most the RPC timeout, so no row holds up the others: a pass is
bounded by about one timeout per stuck destination plus the confirm timeout per
batch. ``manage.py relay`` and the ``messaging.tasks.relay_outbox``
Celery task both run :func:`relay_once`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import close_old_connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from .. import broker, conf, observability
from ..amqp.backoff import backoff
from ..broker.errors import temporary_error_classes
from ..exceptions import BrokerError
from ..models import Message
from .outbox import PublishResult, claiming, lock_options
from .sending import publish_rows

logger = logging.getLogger("messaging.relay")

#: The longest pause between passes while the broker cannot be reached (seconds).
BROKER_DOWN_INTERVAL = 30.0


@dataclass
class RelayResult:
    """What one relay pass did (counts of messages)."""

    published: int = 0
    failed: int = 0  # marked failed for good (unroutable…)
    retrying: int = 0  # still pending, tried again later
    batches: int = 0
    #: Set when the pass could not reach the broker (nothing was claimed then).
    error: BrokerError | None = None

    def add(self, other: RelayResult) -> None:
        self.published += other.published
        self.failed += other.failed
        self.retrying += other.retrying
        self.batches += other.batches
        self.error = other.error or self.error

    def as_dict(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "failed": self.failed,
            "retrying": self.retrying,
            "batches": self.batches,
            "error": str(self.error) if self.error else None,
        }

    def __str__(self) -> str:
        return (
            f"{self.published} published, {self.failed} failed, "
            f"{self.retrying} left pending for a retry"
        )


def due(now: datetime | None = None) -> QuerySet[Message]:
    """Pending messages whose next attempt is due, and ``failed`` ones whose
    ``error_class`` was a broker outage (:func:`outage_failed`)."""
    now = now or timezone.now()
    return Message.objects.filter(Q(status=Message.Status.PENDING) | outage_failed()).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def outage_failed() -> Q:
    """Rows ``failed`` by an outage: their ``error_class`` is one the broker package
    counts temporary (failed under an older rule, or set so by migration 0011 from
    their ``last_error``). A node loss is never the message's fault: the relay sends
    them again."""
    return Q(status=Message.Status.FAILED, error_class__in=sorted(temporary_error_classes()))


def relay_once(
    *,
    batch_size: int | None = None,
    publisher: broker.PublisherBase | None = None,
    max_batches: int | None = None,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> RelayResult:
    """Publish due pending messages, batch after batch, until none is left (or
    ``max_batches`` / ``max_seconds`` / ``stop``). Never raises a broker error: a broker
    that cannot be reached is in ``result.error`` and no row is touched."""
    size = batch_size or conf.get("RELAY_BATCH_SIZE")
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    result = RelayResult()
    if not due().exists():  # the common case: do not even connect
        return result
    pub = publisher or broker.process_publisher()
    try:
        pub.open()
    except BrokerError as exc:
        result.error = exc
        return result
    while not _should_stop(result, max_batches, deadline, stop):
        part = _relay_batch(pub, size)
        if part is None:
            break
        result.batches += 1
        result.published += len(part.published)
        result.retrying += len(part.retrying)
        result.failed += len(part.failed) - len(part.retrying)
        if part.retrying and not pub.is_open:
            # The connection went away mid-batch: leave the rest for the next pass.
            result.error = part.first_error
            break
    return result


def _should_stop(
    result: RelayResult,
    max_batches: int | None,
    deadline: float | None,
    stop: threading.Event | None,
) -> bool:
    if stop is not None and stop.is_set():
        return True
    if max_batches is not None and result.batches >= max_batches:
        return True
    return deadline is not None and time.monotonic() >= deadline


def _relay_batch(pub: broker.PublisherBase, size: int) -> PublishResult | None:
    """Claim up to ``size`` due rows in id order and publish them (None: none was due)."""
    with claiming():
        rows = list(
            due().select_related("queue").select_for_update(**lock_options()).order_by("pk")[:size]
        )
        if not rows:
            return None
        return publish_rows(rows, publisher=pub)


def run(
    *,
    once: bool = False,
    interval: float | None = None,
    batch_size: int | None = None,
    stop: threading.Event | None = None,
    report: Any = None,
) -> RelayResult:
    """The relay loop of ``manage.py relay``: a pass every ``interval`` seconds
    (RELAY_INTERVAL; backing off up to 30 s while the broker cannot be reached) until
    ``stop`` is set; ``once`` makes a single pass. ``report(result)``
    is called after each pass that did something or failed to connect."""
    stop = stop or threading.Event()
    total = RelayResult()
    last_error = None
    failures = 0
    pub = broker.process_publisher()  # the process's connection, opened on first use
    try:
        while not stop.is_set():
            close_old_connections()
            result = relay_once(publisher=pub, batch_size=batch_size, stop=stop)
            total.add(result)
            error = str(result.error) if result.error else None
            if error and error != last_error:
                logger.warning("relay: broker unavailable: %s", error, extra={"role": "relay"})
                observability.reconnect("relay")
            elif last_error and not error:
                logger.info("relay: broker reachable again")
            last_error = error
            if report is not None and (result.batches or result.error):
                report(result)
            if once:
                break
            every = interval if interval is not None else conf.get("RELAY_INTERVAL")
            if result.error is not None:  # broker down: try less often, up to every 30 s
                failures += 1
                every = max(every, backoff(failures + 1, first=every, cap=BROKER_DOWN_INTERVAL))
            else:
                failures = 0
            stop.wait(every)
    finally:
        broker.close_process_publisher()  # the command ends: close it now, not at exit
    close_old_connections()
    return total
