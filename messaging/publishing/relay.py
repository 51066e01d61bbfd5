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

A running ``manage.py relay`` says so in the ``Consumer`` registry: a row named
``relay@<host>`` with no queues (:class:`Heartbeat`), written at start, every
CONSUMER_HEARTBEAT_INTERVAL seconds and at exit. :func:`outbox_backlog` reads it: pending
rows older than RELAY_WARNING_AFTER while no relay wrote within that time are a stalled
outbox, which the admin and the system check ``messaging.W002`` warn about.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from .. import broker, conf, observability
from ..amqp.backoff import backoff
from ..broker.errors import temporary_error_classes
from ..exceptions import BrokerError
from ..models import Consumer, Message
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


# --------------------------------------------------------------------------- heartbeat

#: Name prefix of the relays' rows in the ``Consumer`` registry (``relay@<host>``).
RELAY_PREFIX = "relay@"


class Heartbeat:
    """A relay's row in the ``Consumer`` registry: ``relay@<host>``, no queues; its
    ``processed`` / ``failed`` count the messages it published / failed for good. A
    database error is logged, never raised: the relay goes on publishing."""

    def __init__(self) -> None:
        self.row: Consumer | None = None
        self._last = 0.0

    def beat(self, result: RelayResult | None = None, *, force: bool = False) -> None:
        """Write the row now if CONSUMER_HEARTBEAT_INTERVAL passed (or ``force``)."""
        published = result.published if result else 0
        failed = result.failed if result else 0
        due_at = self._last + conf.get("CONSUMER_HEARTBEAT_INTERVAL")
        if not (force or published or failed or time.monotonic() >= due_at):
            return
        now = timezone.now()
        try:
            if self.row is None:
                host = socket.gethostname()
                self.row = Consumer.objects.create(
                    name=f"{RELAY_PREFIX}{host}",
                    host=host,
                    pid=os.getpid(),
                    queues=[],
                    started_at=now,
                    last_heartbeat=now,
                )
            self.row.last_heartbeat = now
            self.row.processed += published
            self.row.failed += failed
            self.row.save(update_fields=["last_heartbeat", "processed", "failed"])
        except DatabaseError as exc:
            logger.warning("relay: heartbeat not written: %s", exc, extra={"role": "relay"})
            return
        self._last = time.monotonic()

    def stop(self) -> None:
        """Mark the row stopped (the relay exits)."""
        if self.row is None:
            return
        now = timezone.now()
        try:
            Consumer.objects.filter(pk=self.row.pk).update(
                state=Consumer.State.STOPPED, stopped_at=now, last_heartbeat=now
            )
        except DatabaseError as exc:
            logger.warning("relay: heartbeat not written: %s", exc, extra={"role": "relay"})


def last_relay_heartbeat(using: str | None = None) -> datetime | None:
    """When a relay last wrote its row (any host), or None: no relay ever ran here."""
    rows = Consumer.objects.filter(name__startswith=RELAY_PREFIX)
    if using is not None:
        rows = rows.using(using)
    return rows.order_by("-last_heartbeat").values_list("last_heartbeat", flat=True).first()


@dataclass
class Backlog:
    """The outbox's pending rows: how many, the oldest's creation time, when a relay last
    ran, and whether that is a stall (pending rows older than RELAY_WARNING_AFTER and no
    relay within that time)."""

    count: int
    oldest: datetime | None
    last_relay: datetime | None
    now: datetime
    threshold: float

    @property
    def age(self) -> float | None:
        """Seconds the oldest pending row has waited (None: nothing pending)."""
        return None if self.oldest is None else max((self.now - self.oldest).total_seconds(), 0)

    @property
    def relay_recent(self) -> bool:
        cutoff = self.now - timedelta(seconds=self.threshold)
        return self.last_relay is not None and self.last_relay >= cutoff

    @property
    def stalled(self) -> bool:
        age = self.age
        return age is not None and age > self.threshold and not self.relay_recent


def outbox_backlog(now: datetime | None = None, using: str | None = None) -> Backlog:
    """The ``pending`` rows (held ones wait for a user, not for a relay) and the relays'
    last heartbeat: three small queries."""
    now = now or timezone.now()
    pending = Message.objects.filter(status=Message.Status.PENDING)
    if using is not None:
        pending = pending.using(using)
    count = pending.count()
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    last_relay = last_relay_heartbeat(using)
    return Backlog(count, oldest, last_relay, now, float(conf.get("RELAY_WARNING_AFTER")))


# --------------------------------------------------------------------------- the loop


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
    heartbeat = Heartbeat()
    heartbeat.beat(force=True)
    try:
        while not stop.is_set():
            close_old_connections()
            result = relay_once(publisher=pub, batch_size=batch_size, stop=stop)
            total.add(result)
            heartbeat.beat(result)
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
        heartbeat.stop()
        broker.close_process_publisher()  # the command ends: close it now, not at exit
    close_old_connections()
    return total
