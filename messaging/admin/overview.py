"""What the admin shows about queues: live broker state and the overview page's numbers.

The page stays fast with a million receipts in the last hour: each table's window is read
once, as one range of an index led by its time column (``Receipt`` ``(received_at,
queue_name, outcome)``, ``Message`` ``(published_at, queue)``), and grouped by the
database — on PostgreSQL one ``GROUP BY`` per table, elsewhere range counts per minute
(see :func:`window_counts`). Latency percentiles are computed by the database over a
bounded sample (``percentile_cont`` on PostgreSQL, ``ORDER BY … OFFSET`` elsewhere). The
broker is asked over one connection per page, with a passive declare per queue, and its
management API (unacked counts, if ``MANAGEMENT_URL`` is set) with at most one request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections, router
from django.utils import timezone

from .. import broker
from ..amqp.validators import DERIVED_QUEUE_SUFFIXES
from ..db import operations
from ..exceptions import BrokerError
from ..models import Message, Queue, Receipt, dead_letter_queue_name

#: Minutes the overview covers.
WINDOW_MINUTES = 60

#: Latency percentiles are computed over at most this many of the latest ``acked``
#: receipts of each queue in the window (a bounded query, whatever the table size).
LATENCY_SAMPLE = 5_000

#: Receipt outcomes that count as failures in the failure rate.
FAILED_OUTCOMES = (
    Receipt.Outcome.REQUEUED,
    Receipt.Outcome.REJECTED,
    Receipt.Outcome.DEAD_LETTERED,
)


# --------------------------------------------------------------------------- broker state


#: The state of a queue whose name the broker must not be sent (see
#: :func:`~messaging.amqp.validators.validate_queue_name`).
INVALID_NAME = "invalid name"


@dataclass
class BrokerSnapshot:
    """(ready, consumers) per queue name, ``None`` for a queue the broker does not have;
    ``invalid`` names (with the reason) were not sent to the broker; ``error`` is why the
    broker could not be asked at all (names then missing from ``states``), or else the
    first per-name failure (that name alone is missing, e.g. no answer in time).
    ``drift``: queues that differ from their row, when the snapshot compared them."""

    states: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    error: BrokerError | None = None
    #: Queues that exist on the broker with other arguments than their row (drift),
    #: with the broker's refusal; only when asked (``compare``).
    drift: dict[str, BrokerError] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)

    def state(self, name: str) -> tuple[int, int] | None | str:
        """``(ready, consumers)``, ``None`` (not on the broker), ``"invalid name"`` or
        ``"unreachable"``."""
        if name in self.states:
            return self.states[name]
        if name in self.invalid:
            return INVALID_NAME
        return "unreachable"


def broker_snapshot(
    names: Iterable[str],
    urls: Iterable[str] | None = None,
    compare: Iterable[broker.QueueSpec] | None = None,
) -> BrokerSnapshot:
    """Inspect every queue in ``names`` over one connection, all at once (a passive
    declare each, :func:`broker.inspect_queues`), within CONNECTION_TIMEOUT (plus about
    a second). A name the validators refuse is not sent. Never raises a broker error: it
    is in ``error``."""
    names = list(dict.fromkeys(names))
    snapshot = BrokerSnapshot()
    asked = []
    for name in names:
        problem = _name_problem(name)
        if problem is None:
            asked.append(name)
        else:
            snapshot.invalid[name] = problem
    if not asked:
        return snapshot
    try:
        if compare is None:
            answers = broker.inspect_queues(asked, urls)
        else:
            specs = [spec for spec in compare if spec.name in asked]
            answers, snapshot.drift = broker.inspect_and_compare(asked, specs, urls)
    except BrokerError as exc:
        snapshot.error = exc
        return snapshot
    for name, answer in zip(asked, answers, strict=True):
        if isinstance(answer, BrokerError):
            snapshot.error = snapshot.error or answer
        else:
            snapshot.states[name] = answer
    return snapshot


def _name_problem(name: str) -> str | None:
    """A queue row's name, or one the app derives from a valid one (``<name>.dlq``)."""
    problem = broker.queue_name_problem(name)
    if problem is not None:
        for suffix in DERIVED_QUEUE_SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and broker.queue_name_problem(base) is None:
                return None
    return problem


# --------------------------------------------------------------------------- time


def epoch_minute(moment: datetime) -> int:
    return math.floor(moment.timestamp() / 60)


# --------------------------------------------------------------------------- overview


@dataclass
class QueueStats:
    """One queue's row on the overview page. Series are per minute, oldest first."""

    name: str
    queue_id: int | None = None
    broker_state: tuple[int, int] | None | str = "unreachable"
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
    management: broker.management.ManagementCounts | None = None

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
    db = router.db_for_read(Receipt)
    connection = connections[db]

    rows = dict(Queue.objects.using(db).order_by("name").values_list("name", "pk"))
    counts = window_counts(connection, since, minutes)
    stats = [
        QueueStats(
            name=name,
            queue_id=rows.get(name),
            published=counts.published.get(rows.get(name), [0] * minutes),
            received=counts.received.get(name, [0] * minutes),
            failed=counts.failed.get(name, [0] * minutes),
        )
        for name in sorted(set(rows) | set(counts.received))
    ]

    for queue_stats, (count, median, p95) in zip(
        stats, latencies([s.name for s in stats], since, using=db), strict=True
    ):
        queue_stats.latency_count = count
        queue_stats.latency_median = median
        queue_stats.latency_p95 = p95

    overview = Overview(since=since, until=now, minutes=minutes, queues=stats)
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
    overview.management = management = broker.management.queue_counts()
    for queue_stats in stats:
        queue_stats.broker_state = snapshot.state(queue_stats.name)
        dlq = snapshot.state(dead_letter_queue_name(queue_stats.name))
        queue_stats.dead_letters = dlq[0] if isinstance(dlq, tuple) else None
        queue_stats.unacked = management.unacked(queue_stats.name)
        if queue_stats.unacked is None:
            queue_stats.unacked_missing = management.why_missing(queue_stats.name)


# --------------------------------------------------------------------------- counting

#: The indexes the counts read (see ``Receipt.Meta`` / ``Message.Meta``): the window is
#: one range of their leading time column, and the other columns the counts need are in
#: the index too (index-only once the rows are all-visible on PostgreSQL; covering on
#: SQLite). ``messaging_rcpt_queue_idx`` serves the per-queue counts on SQLite and the
#: latency sample.
RECEIPT_TIME_INDEX = "messaging_rcpt_time_idx"
MESSAGE_TIME_INDEX = "messaging_msg_published_idx"


@dataclass
class WindowCounts:
    """Per-minute series (oldest first) of the window: receipts and failed receipts by
    queue name (only names with receipts in the window), published messages by queue id."""

    received: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, list[int]] = field(default_factory=dict)
    published: dict[int, list[int]] = field(default_factory=dict)


def window_counts(connection: Any, since: datetime, minutes: int) -> WindowCounts:
    """Count the window's receipts (by queue, minute and outcome) and published messages
    (by queue and minute).

    PostgreSQL: one ``GROUP BY`` over one range scan per table — every row of the window
    is read once, whatever the number of queues and minutes (rows not vacuumed yet cost a
    heap visit each, so reading them once is what matters). Elsewhere (SQLite): receipts
    are range counts per queue and minute on ``(queue_name, received_at)``, failures and
    published messages one range per minute of the time indexes grouped by queue — all
    on covering indexes, which SQLite does much faster than grouping a million rows
    through one temporary b-tree.
    """
    edges = [since + timedelta(minutes=i) for i in range(minutes + 1)]
    if operations(connection).groups_window_in_one_scan:
        return _counts_postgresql(connection, edges)
    return _counts_by_minute(connection, edges)


def _table(connection: Any, model: type[Any]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(connection: Any, model: type[Any], name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _when(connection: Any, moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def _series(table: dict[Any, list[int]], key: Any, minutes: int) -> list[int]:
    if key not in table:
        table[key] = [0] * minutes
    return table[key]


def _counts_postgresql(connection: Any, edges: list[datetime]) -> WindowCounts:
    since, until, minutes = edges[0], edges[-1], len(edges) - 1
    counts = WindowCounts()
    failed = {str(outcome) for outcome in FAILED_OUTCOMES}
    receipt = _table(connection, Receipt)
    received_at = _column(connection, Receipt, "received_at")
    message = _table(connection, Message)
    published_at = _column(connection, Message, "published_at")
    queue_id = _column(connection, Message, "queue")
    # date_bin(): the minute as a timestamp, without per-row numeric arithmetic.
    receipts_sql = f"""
        SELECT {_column(connection, Receipt, "queue_name")},
               date_bin(interval '1 minute', {received_at}, %s) AS minute,
               {_column(connection, Receipt, "outcome")}, COUNT(*)
        FROM {receipt} WHERE {received_at} >= %s AND {received_at} < %s
        GROUP BY 1, 2, 3
    """
    published_sql = f"""
        SELECT {queue_id}, date_bin(interval '1 minute', {published_at}, %s) AS minute,
               COUNT(*)
        FROM {message}
        WHERE {published_at} >= %s AND {published_at} < %s AND {queue_id} IS NOT NULL
        GROUP BY 1, 2
    """
    with connection.cursor() as cursor:
        cursor.execute(receipts_sql, [since, since, until])
        for name, minute, outcome, count in cursor.fetchall():
            index = round((minute - since).total_seconds()) // 60
            _series(counts.received, name, minutes)[index] += count
            if outcome in failed:
                _series(counts.failed, name, minutes)[index] += count
        cursor.execute(published_sql, [since, since, until])
        for key, minute, count in cursor.fetchall():
            index = round((minute - since).total_seconds()) // 60
            _series(counts.published, key, minutes)[index] += count
    return counts


def _counts_by_minute(connection: Any, edges: list[datetime]) -> WindowCounts:
    minutes = len(edges) - 1
    counts = WindowCounts()
    for name in receipt_queue_names(connection):
        received = minute_counts(connection, name, edges)
        if any(received):
            counts.received[name] = received
    outcome = _column(connection, Receipt, "outcome")
    failed = ", ".join(["%s"] * len(FAILED_OUTCOMES))
    for minute, name, count in _grouped_by_minute(
        connection,
        Receipt,
        "received_at",
        _column(connection, Receipt, "queue_name"),
        f" AND {outcome} IN ({failed})",
        [str(o) for o in FAILED_OUTCOMES],
        edges,
        RECEIPT_TIME_INDEX,
    ):
        _series(counts.failed, name, minutes)[minute] += count
    queue_id = _column(connection, Message, "queue")
    for minute, key, count in _grouped_by_minute(
        connection,
        Message,
        "published_at",
        queue_id,
        f" AND {queue_id} IS NOT NULL",
        [],
        edges,
        MESSAGE_TIME_INDEX,
    ):
        _series(counts.published, key, minutes)[minute] += count
    return counts


def minute_counts(connection: Any, queue_name: str, edges: list[datetime]) -> list[int]:
    """Receipts of ``queue_name`` in each [edges[i], edges[i+1]) interval: one statement
    of scalar sub-selects, each a range count on ``(queue_name, received_at)``."""
    table = _table(connection, Receipt)
    key_column = _column(connection, Receipt, "queue_name")
    time_column = _column(connection, Receipt, "received_at")
    sub = (
        f"(SELECT COUNT(*) FROM {table} WHERE {key_column} = %s "
        f"AND {time_column} >= %s AND {time_column} < %s)"
    )
    params: list[Any] = []
    for low, high in zip(edges, edges[1:], strict=False):
        params += [queue_name, _when(connection, low), _when(connection, high)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join([sub] * (len(edges) - 1)), params)
        return [int(n) for n in cursor.fetchone()]


def _grouped_by_minute(
    connection: Any,
    model: type[Any],
    time_field: str,
    key_sql: str,
    where_sql: str,
    where_params: list[Any],
    edges: list[datetime],
    index: str,
) -> list[tuple[int, Any, int]]:
    """(minute index, key, count) of the rows in the window: one ``UNION ALL`` of a
    range on ``time_field`` per minute, each grouped by ``key_sql`` (small groups, no
    per-row date arithmetic). ``index`` names the index to read where the database takes
    hints (SQLite's ``INDEXED BY``)."""
    table = operations(connection).read_through_index(connection, _table(connection, model), index)
    column = _column(connection, model, time_field)
    parts, params = [], []
    for minute, (low, high) in enumerate(zip(edges, edges[1:], strict=False)):
        parts.append(
            f"SELECT {minute}, {key_sql}, COUNT(*) FROM {table} "
            f"WHERE {column} >= %s AND {column} < %s{where_sql} GROUP BY {key_sql}"
        )
        params += [_when(connection, low), _when(connection, high), *where_params]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(int(minute), key, int(count)) for minute, key, count in cursor.fetchall()]


def receipt_queue_names(connection: Any) -> list[str]:
    """Every distinct ``Receipt.queue_name``, by a loose index scan (one index seek per
    name, whatever the number of receipts)."""
    table = _table(connection, Receipt)
    column = _column(connection, Receipt, "queue_name")
    sql = f"""
        WITH RECURSIVE names(name) AS (
            SELECT MIN({column}) FROM {table}
            UNION ALL
            SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > names.name)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [name for (name,) in cursor.fetchall()]


# --------------------------------------------------------------------------- latency


def latencies(
    names: list[str], since: datetime, sample: int | None = None, *, using: str | None = None
) -> list[tuple[int, float | None, float | None]]:
    """``(count, median, p95)`` seconds from publish (broker confirm) to receipt, per queue
    in ``names``, over the latest ``sample`` (:data:`LATENCY_SAMPLE`) acked receipts since
    ``since`` whose message is one of ours. A receipt that beat its batch's confirm counts
    as 0 s. Percentiles interpolate like PostgreSQL's ``percentile_cont``."""
    if not names:
        return []
    sample = sample or LATENCY_SAMPLE
    connection = connections[using or router.db_for_read(Receipt)]
    if operations(connection).has_percentile_cont:
        return _latencies_postgresql(connection, names, since, sample)
    return [_latency_generic(connection, name, since, sample) for name in names]


def _tables(connection: Any) -> dict[str, str]:
    return {"receipt": _table(connection, Receipt), "message": _table(connection, Message)}


def _latencies_postgresql(
    connection: Any, names: list[str], since: datetime, sample: int
) -> list[tuple[int, float | None, float | None]]:
    sql = """
        SELECT q.name, count(s.latency),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s.latency),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s.latency)
        FROM unnest(%s::text[]) AS q(name)
        LEFT JOIN LATERAL (
            SELECT GREATEST(EXTRACT(EPOCH FROM (r.received_at - m.published_at)), 0)
                   AS latency
            FROM {receipt} r JOIN {message} m ON m.message_id = r.message_id
            WHERE r.queue_name = q.name AND r.received_at >= %s AND r.outcome = %s
              AND m.published_at IS NOT NULL
            ORDER BY r.received_at DESC
            LIMIT %s
        ) s ON true
        GROUP BY q.name
    """.format(**_tables(connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, [names, since, Receipt.Outcome.ACKED.value, sample])
        found = {
            name: (count, _float(median), _float(p95))
            for name, count, median, p95 in cursor.fetchall()
        }
    return [found.get(name, (0, None, None)) for name in names]


#: Percentiles the overview shows.
PERCENTILES = (0.5, 0.95)


def _latency_generic(
    connection: Any, name: str, since: datetime, sample: int
) -> tuple[int, float | None, float | None]:
    """One statement: the sample ranked by latency (window functions), keeping only the
    rows on either side of each percentile's position, then interpolated."""
    latency = operations(connection).seconds_between("m.published_at", "r.received_at")
    positions = " OR ".join(
        f"(rn - 1 = CAST({p} * (cnt - 1) AS INTEGER) OR rn - 2 = CAST({p} * (cnt - 1) AS INTEGER))"
        for p in PERCENTILES
    )
    sql = """
        SELECT latency, rn, cnt FROM (
            SELECT latency,
                   ROW_NUMBER() OVER (ORDER BY latency) AS rn,
                   COUNT(*) OVER () AS cnt
            FROM (
                SELECT {latency} AS latency
                FROM {receipt} r JOIN {message} m ON m.message_id = r.message_id
                WHERE r.queue_name = %s AND r.received_at >= %s AND r.outcome = %s
                  AND m.published_at IS NOT NULL
                ORDER BY r.received_at DESC
                LIMIT %s
            ) sampled
        ) ranked
        WHERE {positions}
        ORDER BY rn
    """.format(latency=latency, positions=positions, **_tables(connection))
    params = [name, _when(connection, since), Receipt.Outcome.ACKED.value, sample]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ranked = cursor.fetchall()
    if not ranked:
        return 0, None, None
    count = int(ranked[0][2])
    by_rank = {int(rn): float(value) for value, rn, _cnt in ranked}

    def percentile(p: float) -> float:
        position = p * (count - 1)
        lower = math.floor(position)
        low = by_rank[lower + 1]
        high = by_rank.get(lower + 2, low)
        return low + (high - low) * (position - lower)

    median, p95 = (percentile(p) for p in PERCENTILES)
    return count, median, p95


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
