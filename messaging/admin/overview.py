"""The overview page's numbers, per queue (:func:`build_overview`): depth, consumers,
unacked and dead letters now; published messages, receipts and failures per minute and
latency percentiles over the last hour.

The database side is in :mod:`messaging.db` (:mod:`~messaging.db.overview_counts`, one
range of a time index per table; :mod:`~messaging.db.overview_latency`, percentiles over
a bounded sample), and stays fast with a million receipts in the last hour. The broker is
asked over one connection per page, with a passive declare per queue
(:mod:`.broker_state`), and its management API (unacked counts, if ``MANAGEMENT_URL`` is
set) with at most one request. The outbox's backlog (pending rows, the oldest's age, the
relays' last heartbeat) comes from :func:`messaging.publishing.relay.outbox_backlog`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connections, router
from django.utils import timezone

from ..broker import management_api
from ..db.overview_counts import window_counts
from ..db.overview_latency import latencies
from ..exceptions import BrokerError
from ..models import Queue, Receipt, dead_letter_queue_name
from ..publishing.relay import Backlog, outbox_backlog
from .broker_state import UNREACHABLE, broker_snapshot

#: Minutes the overview covers.
WINDOW_MINUTES = 60

#: Latency percentiles are computed over at most this many of the latest ``acked``
#: receipts of each queue in the window (a bounded query, whatever the table size).
LATENCY_SAMPLE = 5_000


def epoch_minute(moment: datetime) -> int:
    return math.floor(moment.timestamp() / 60)


def duration(seconds: float | None) -> str:
    """A latency or an age, rounded as a person reads it: ``"250 ms"``, ``"2.5 s"``,
    ``"154 s"``, ``"2.5 min"``, ``"3.2 h"``, ``"2.1 d"``; ``"–"`` for None."""
    if seconds is None:
        return "–"
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{_short(seconds)} s"
    if seconds < 180:
        return f"{seconds:.0f} s"
    for unit, size, upto in (("min", 60, 120), ("h", 3600, 48), ("d", 86400, None)):
        value = seconds / size
        if upto is None or value < upto:
            return f"{_short(value)} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def _short(value: float) -> str:
    """One decimal below 10 (``2.5``, ``3``), none above (``42``)."""
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return text.removesuffix(".0")


@dataclass
class QueueStats:
    """One queue's row on the overview page. Series are per minute, oldest first."""

    name: str
    queue_id: int | None = None
    broker_state: tuple[int, int] | None | str = UNREACHABLE
    published: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    latency_count: int = 0
    latency_median: float | None = None
    latency_p95: float | None = None
    #: Ready messages in ``<name>.dlq`` now (None: no such queue, or not asked).
    dead_letters: int | None = None
    #: Delivered but not yet acked now, from the management API (None: unknown; why is
    #: in ``unacked_missing``).
    unacked: int | None = None
    unacked_missing: str = ""

    @property
    def ready(self) -> int | None:
        return self.broker_state[0] if isinstance(self.broker_state, tuple) else None

    @property
    def consumers(self) -> int | None:
        return self.broker_state[1] if isinstance(self.broker_state, tuple) else None

    @property
    def unconsumed(self) -> bool:
        """Ready messages and no consumer on the broker now: nothing is taking them."""
        return bool(self.ready) and self.consumers == 0

    @property
    def published_total(self) -> int:
        return sum(self.published)

    @property
    def received_total(self) -> int:
        return sum(self.received)

    @property
    def failed_total(self) -> int:
        return sum(self.failed)

    @property
    def failure_rate(self) -> float | None:
        """Failed receipts / all receipts in the window (``None`` without receipts)."""
        return self.failed_total / self.received_total if self.received_total else None


@dataclass
class Overview:
    since: datetime
    until: datetime
    minutes: int
    queues: list[QueueStats]
    broker_error: BrokerError | None = None
    #: What the management API said (None: not asked); see :mod:`messaging.broker.management_api`.
    management: management_api.ManagementCounts | None = None
    #: The outbox's pending rows and whether a relay sends them (None: not asked).
    backlog: Backlog | None = None

    @property
    def minute_starts(self) -> list[datetime]:
        return [self.since + timedelta(minutes=i) for i in range(self.minutes)]

    @property
    def unacked_error(self) -> str | None:
        """Why unacked counts are missing: the API failed, or it is not configured."""
        return None if self.management is None else self.management.error

    def total_now(self, attribute: str) -> int | None:
        """The sum of ``ready``, ``unacked`` or ``dead_letters`` over the queues shown;
        ``None`` when no queue has the figure (the broker or the API did not answer)."""
        values = [getattr(s, attribute) for s in self.queues]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    def total(self, attribute: str) -> list[int]:
        """Per-minute sum of ``published``, ``received`` or ``failed`` over all queues."""
        sums = [0] * self.minutes
        for stats in self.queues:
            for index, value in enumerate(getattr(stats, attribute)):
                sums[index] += value
        return sums


def build_overview(
    *,
    now: datetime | None = None,
    minutes: int = WINDOW_MINUTES,
    inspect_broker: bool = True,
    urls: Iterable[str] | None = None,
) -> Overview:
    """Per queue: broker depth and consumers now, and per-minute published, received and
    failed counts plus latency percentiles over the last ``minutes`` whole minutes (the
    current, partial minute is the last bucket).

    Queues are the ``Queue`` rows plus every queue name with receipts in the window; a
    queue without a row and without receipts in the window is left out.
    """
    now = now or timezone.now()
    first_minute = epoch_minute(now) - minutes + 1
    since = datetime.fromtimestamp(first_minute * 60, tz=now.tzinfo or UTC)
    connection = connections[router.db_for_read(Receipt)]

    rows = dict(Queue.objects.using(connection.alias).order_by("name").values_list("name", "pk"))
    counts = window_counts(connection, since, minutes)
    stats = [
        QueueStats(
            name=name,
            queue_id=rows.get(name),
            published=counts.published.get(rows.get(name, 0), [0] * minutes),
            received=counts.received.get(name, [0] * minutes),
            failed=counts.failed.get(name, [0] * minutes),
        )
        for name in sorted(set(rows) | set(counts.received))
    ]
    names = [s.name for s in stats]
    for queue_stats, latency in zip(
        stats, latencies(connection, names, since, LATENCY_SAMPLE), strict=True
    ):
        queue_stats.latency_count, queue_stats.latency_median, queue_stats.latency_p95 = latency

    overview = Overview(since=since, until=now, minutes=minutes, queues=stats)
    overview.backlog = outbox_backlog(now, using=connection.alias)
    if inspect_broker:
        _add_broker_state(overview, urls)
    return overview


def _add_broker_state(overview: Overview, urls: Iterable[str] | None) -> None:
    """Depth and consumers over one AMQP connection; unacked from one (cached) request
    to the management API, if ``MANAGEMENT_URL`` is set."""
    stats = overview.queues
    names = [n for s in stats for n in (s.name, dead_letter_queue_name(s.name))]
    snapshot = broker_snapshot(names, urls)
    overview.broker_error = snapshot.error
    overview.management = management = management_api.queue_counts()
    for queue_stats in stats:
        queue_stats.broker_state = snapshot.state(queue_stats.name)
        dlq = snapshot.state(dead_letter_queue_name(queue_stats.name))
        queue_stats.dead_letters = dlq[0] if isinstance(dlq, tuple) else None
        queue_stats.unacked = management.unacked(queue_stats.name)
        if queue_stats.unacked is None:
            queue_stats.unacked_missing = management.why_missing(queue_stats.name)
