"""The overview's per-minute counts: PostgreSQL's path (range counts per queue, failed
receipts from their partial index) counts what the per-minute ranges count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging.db import overview_counts
from messaging.models import Message, Queue, Receipt

pytestmark = pytest.mark.django_db


def test_postgresql_counts_are_the_per_minute_ranges() -> None:
    if not overview_counts.operations(connection).groups_window_in_one_scan:
        pytest.skip("PostgreSQL's path")
    now = timezone.now().replace(second=0, microsecond=0)
    since = now - timedelta(minutes=10)
    queues = [Queue.objects.create(name=f"counts.{i}") for i in range(2)]
    outcomes = ["acked", "requeued", "dead_lettered", "rejected", "duplicate"]
    for n in range(40):
        at = since + timedelta(seconds=17 * n - 30)  # a few before the window
        queue = queues[n % 2]
        Message.objects.create(message_id=f"c{n}", queue=queue, status="published", published_at=at)
        Receipt.objects.create(
            message_id=f"c{n}",
            queue_name=queue.name,
            outcome=outcomes[n % len(outcomes)],
            received_at=at,
            finished_at=at,
        )
    edges = [since + timedelta(minutes=i) for i in range(11)]
    fast = overview_counts.counts_by_queue_ranges(connection, edges)
    ranges = overview_counts.counts_by_minute(connection, edges)
    assert (fast.received, fast.failed, fast.published) == (
        ranges.received,
        ranges.failed,
        ranges.published,
    )
    assert sum(map(sum, fast.failed.values())) > 0
    assert sum(map(sum, fast.received.values())) == 36  # 2 before the window, 2 after
