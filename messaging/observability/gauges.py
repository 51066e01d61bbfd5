"""Gauges computed when Prometheus scrapes, cheaply, and kept for :data:`CACHE_SECONDS`:

- from the database (indexed queries): ``messaging_outbox_pending{queue}``,
  ``messaging_outbox_oldest_pending_seconds{queue}``, ``messaging_consumers{state}``;
- from the broker (one connection, every passive declare in flight at once):
  ``messaging_queue_messages{queue}``, ``messaging_queue_consumers{queue}`` and
  ``messaging_dead_letter_messages{queue}`` (the depth of ``<queue>.dlq``).

A part that cannot be read (database or broker down) is left out of the scrape and
``messaging_gauge_errors{source}`` says so; the scrape itself never fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..broker.queues import inspect_queues
from ..exceptions import BrokerError

logger = logging.getLogger("messaging.observability")

#: How long one computation answers scrapes (several Prometheus servers, several pods).
CACHE_SECONDS = 5.0


@dataclass
class Snapshot:
    """The gauges' values: per label value."""

    pending: dict[str, int] = field(default_factory=dict)
    oldest: dict[str, float] = field(default_factory=dict)
    consumers: dict[str, int] = field(default_factory=dict)
    queue_messages: dict[str, int] = field(default_factory=dict)
    queue_consumers: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=lambda: {"database": 0, "broker": 0})


def outbox_backlog(now: Any = None) -> tuple[dict[str, int], dict[str, float]]:
    """Pending messages and the age of the oldest (seconds) per destination: one
    grouped query over the (status, created_at) index."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from ..models import Message

    now = now or timezone.now()
    rows = (
        Message.objects.pending()
        .order_by()
        .values("queue__name", "exchange")
        .annotate(n=Count("id"), oldest=Min("created_at"))
    )
    pending: dict[str, int] = {}
    oldest: dict[str, float] = {}
    for row in rows:
        label = row["queue__name"] or row["exchange"]
        pending[label] = pending.get(label, 0) + row["n"]
        age = max(0.0, (now - row["oldest"]).total_seconds())
        oldest[label] = max(oldest.get(label, 0.0), age)
    return pending, oldest


def consumer_states(now: Any = None) -> dict[str, int]:
    """Registry rows by state as the admin shows it: ``running``, ``lost``, ``stopped``
    (``stopping`` counts as running while its heartbeats are fresh)."""
    from ..models import Consumer

    stopped = Consumer.objects.filter(state=Consumer.State.STOPPED).count()
    lost = Consumer.objects.lost(now).count()
    live = Consumer.objects.live(now).count()
    return {"running": live, "lost": lost, "stopped": stopped}


def broker_depths(queues: Iterable[Any]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """(messages, consumers) of each queue and the depth of each app-managed ``.dlq``,
    asked over one connection; a queue missing on the broker is left out."""
    rows = list(queues)
    names = [q.name for q in rows]
    dlqs = [(q.name, q.dead_letter_queue) for q in rows if q.dead_letter_queue]
    states = inspect_queues([*names, *(d for _, d in dlqs)])
    messages: dict[str, int] = {}
    consumers: dict[str, int] = {}
    for name, state in zip(names, states[: len(names)], strict=True):
        if isinstance(state, tuple):
            messages[name], consumers[name] = state
    dead: dict[str, int] = {}
    for (name, _dlq), state in zip(dlqs, states[len(names) :], strict=True):
        if isinstance(state, tuple):
            dead[name] = state[0]
    return messages, consumers, dead


def take_snapshot() -> Snapshot:
    """Compute every gauge now (the database part, then the broker part)."""
    from ..models import Queue

    snap = Snapshot()
    queues: list[Any] = []
    try:
        snap.pending, snap.oldest = outbox_backlog()
        snap.consumers = consumer_states()
        queues = list(Queue.objects.order_by("name"))
    except Exception as exc:  # noqa: BLE001 - a scrape must not fail (DatabaseError, ...)
        logger.warning("metrics: could not read the database: %s", exc)
        snap.errors["database"] = 1
    if queues:
        try:
            snap.queue_messages, snap.queue_consumers, snap.dead_letters = broker_depths(queues)
        except BrokerError as exc:
            logger.warning("metrics: could not ask the broker: %s", exc)
            snap.errors["broker"] = 1
    return snap


def families(snap: Snapshot) -> Iterator[Any]:
    """The snapshot as prometheus_client metric families."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, label: str, values: dict[str, Any]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=[label])
        for key, value in sorted(values.items()):
            family.add_metric([key], value)
        return family

    yield gauge("messaging_outbox_pending", "Pending Message rows.", "queue", snap.pending)
    yield gauge(
        "messaging_outbox_oldest_pending_seconds",
        "Age of the oldest pending Message row.",
        "queue",
        snap.oldest,
    )
    yield gauge(
        "messaging_queue_messages", "Ready messages on the broker.", "queue", snap.queue_messages
    )
    yield gauge(
        "messaging_queue_consumers", "Consumers on the broker.", "queue", snap.queue_consumers
    )
    yield gauge(
        "messaging_dead_letter_messages",
        "Messages in the queue's <queue>.dlq.",
        "queue",
        snap.dead_letters,
    )
    yield gauge("messaging_consumers", "Registry rows by state.", "state", snap.consumers)
    yield gauge(
        "messaging_gauge_errors",
        "1 when the last computation could not read that source.",
        "source",
        snap.errors,
    )


class GaugeCollector:
    """A prometheus_client collector answering from a snapshot at most
    :data:`CACHE_SECONDS` old (one computation at a time)."""

    _shared: GaugeCollector | None = None

    def __init__(self, cache_seconds: float = CACHE_SECONDS, close_connection: bool = False):
        self.cache_seconds = cache_seconds
        #: Close this thread's database connection after computing (scrape threads).
        self.close_connection = close_connection
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._taken = 0.0

    @classmethod
    def shared(cls) -> GaugeCollector:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._taken >= self.cache_seconds:
                try:
                    self._snapshot = take_snapshot()
                finally:
                    if self.close_connection:
                        from django.db import connection

                        connection.close()
                self._taken = time.monotonic()
            return self._snapshot

    def collect(self) -> Iterator[Any]:
        yield from families(self.snapshot())

    def describe(self) -> list[Any]:
        return []

    def clear(self) -> None:
        """Forget the cached snapshot (tests)."""
        with self._lock:
            self._snapshot = None
