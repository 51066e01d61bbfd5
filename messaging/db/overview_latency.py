"""The overview page's latency: seconds from publish (broker confirm) to receipt, median
and 95th percentile per queue, over a bounded sample of the latest ``acked`` receipts
whose message is one of ours (:func:`latencies`).

The database computes the percentiles. How depends on the vendor
(``operations(connection).has_percentile_cont``): on PostgreSQL ``percentile_cont`` in
one statement for every queue; elsewhere one statement per queue that ranks the sample
with window functions and keeps the rows next to each percentile's position, which
Python interpolates the same way. The seconds between two timestamps are the vendor's
``seconds_between``; a receipt that beat its batch's confirm counts as 0 s.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from ..models import Message, Receipt
from . import operations
from .raw_sql import table, when

#: The percentiles computed: the median and the 95th.
PERCENTILES = (0.5, 0.95)

#: ``(count, median, p95)`` seconds of one queue's sample (``None`` without receipts).
Latency = tuple[int, float | None, float | None]


def latencies(connection: Any, names: list[str], since: datetime, sample: int) -> list[Latency]:
    """``(count, median, p95)`` per queue in ``names``, over its latest ``sample`` acked
    receipts since ``since``. Percentiles interpolate like PostgreSQL's
    ``percentile_cont``."""
    if not names:
        return []
    if operations(connection).has_percentile_cont:
        return latencies_in_one_statement(connection, names, since, sample)
    return [latency_by_ranks(connection, name, since, sample) for name in names]


def _sample_sql(connection: Any, queue_sql: str) -> str:
    """The sample of one queue (``queue_sql``: its name, SQL): the latency of its latest
    acked receipts since ``%s`` (parameters: since, the acked outcome, the sample size)."""
    latency = operations(connection).seconds_between("m.published_at", "r.received_at")
    return f"""
        SELECT {latency} AS latency
        FROM {table(connection, Receipt)} r
        JOIN {table(connection, Message)} m ON m.message_id = r.message_id
        WHERE r.queue_name = {queue_sql} AND r.received_at >= %s AND r.outcome = %s
          AND m.published_at IS NOT NULL
        ORDER BY r.received_at DESC
        LIMIT %s
    """


def latencies_in_one_statement(
    connection: Any, names: list[str], since: datetime, sample: int
) -> list[Latency]:
    """Every queue's sample, joined laterally to the list of names, and its percentiles
    by ``percentile_cont``."""
    sql = f"""
        SELECT q.name, count(s.latency),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s.latency),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s.latency)
        FROM unnest(%s::text[]) AS q(name)
        LEFT JOIN LATERAL ({_sample_sql(connection, "q.name")}) s ON true
        GROUP BY q.name
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [names, since, Receipt.Outcome.ACKED.value, sample])
        found = {
            name: (count, _float(median), _float(p95))
            for name, count, median, p95 in cursor.fetchall()
        }
    return [found.get(name, (0, None, None)) for name in names]


def latency_by_ranks(connection: Any, name: str, since: datetime, sample: int) -> Latency:
    """One statement: the sample ranked by latency (window functions), keeping only the
    rows on either side of each percentile's position, then interpolated."""
    positions = " OR ".join(
        f"(rn - 1 = CAST({p} * (cnt - 1) AS INTEGER) OR rn - 2 = CAST({p} * (cnt - 1) AS INTEGER))"
        for p in PERCENTILES
    )
    sql = f"""
        SELECT latency, rn, cnt FROM (
            SELECT latency,
                   ROW_NUMBER() OVER (ORDER BY latency) AS rn,
                   COUNT(*) OVER () AS cnt
            FROM ({_sample_sql(connection, "%s")}) sampled
        ) ranked
        WHERE {positions}
        ORDER BY rn
    """
    params = [name, when(connection, since), Receipt.Outcome.ACKED.value, sample]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ranked = cursor.fetchall()
    if not ranked:
        return 0, None, None
    count = int(ranked[0][2])
    by_rank = {int(rn): float(value) for value, rn, _cnt in ranked}
    median, p95 = (_interpolated(by_rank, count, p) for p in PERCENTILES)
    return count, median, p95


def _interpolated(by_rank: dict[int, float], count: int, p: float) -> float:
    """Percentile ``p`` of ``count`` sorted values, from the values at ranks (1-based)
    next to its position, as ``percentile_cont`` interpolates."""
    position = p * (count - 1)
    lower = math.floor(position)
    low = by_rank[lower + 1]
    high = by_rank.get(lower + 2, low)
    return low + (high - low) * (position - lower)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
