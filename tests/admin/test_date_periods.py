"""The receipt and message lists' date hierarchy (``messaging.admin.date_periods``):
the periods it offers are Django's, found by one probe per candidate period instead of
a DISTINCT over every row."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.admin.date_periods import ProbedDates, next_start, period_starts, span
from messaging.models import Receipt
from tests.support.admin import pending, url


@pytest.mark.unit
def test_periods_between_two_days() -> None:
    first, last = date(2025, 11, 30), date(2026, 2, 2)
    assert list(period_starts(first, last, "year")) == [date(2025, 1, 1), date(2026, 1, 1)]
    assert list(period_starts(first, last, "month")) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert len(list(period_starts(first, last, "day"))) == span(first, last, "day") == 65
    assert (span(first, last, "year"), span(first, last, "month")) == (2, 4)
    assert next_start(date(2025, 12, 1), "month") == date(2026, 1, 1)
    assert next_start(date(2025, 2, 28), "day") == date(2025, 3, 1)


def receipts_at(*moments: datetime) -> None:
    Receipt.objects.bulk_create(
        Receipt(message_id=f"m{n}", queue_name="q", outcome="acked", received_at=at, finished_at=at)
        for n, at in enumerate(moments)
    )


@pytest.mark.django_db
def test_the_probed_periods_are_djangos() -> None:
    now = timezone.localtime()
    receipts_at(now, now - timedelta(days=3), now - timedelta(days=40), now - timedelta(days=400))
    queryset = Receipt.objects.all()
    for kind in ("year", "month", "day"):
        expected = list(queryset.datetimes("received_at", kind))
        if len(expected) > 1 and kind == "day":
            continue  # 400 days: more than MAX_PROBES, Django's own query answers
        assert list(ProbedDates(queryset).datetimes("received_at", kind)) == expected, kind
    recent = queryset.filter(received_at__gte=now - timedelta(days=10))
    assert list(ProbedDates(recent).datetimes("received_at", "day")) == list(
        recent.datetimes("received_at", "day")
    )
    assert list(ProbedDates(Receipt.objects.none()).datetimes("received_at", "day")) == []


@pytest.mark.django_db
def test_the_lists_date_hierarchy_links_each_period(admin_client: Client, queue_name: str) -> None:
    now = timezone.localtime()
    earlier = now - timedelta(days=40)
    receipts_at(now, earlier)
    with CaptureQueriesContext(connection) as queries:
        content = admin_client.get(url("receipt_changelist")).content.decode()
    scans = [q["sql"] for q in queries if "DISTINCT" in q["sql"] and "received_at" in q["sql"]]
    assert not scans  # probes, no DISTINCT over every receipt
    bounds = [q["sql"] for q in queries if "MIN(" in q["sql"] and "received_at" in q["sql"]]
    assert len(bounds) == 1  # the first and last dates read once
    assert f"received_at__month={now.month}" in content
    assert f"received_at__month={earlier.month}" in content
    year = admin_client.get(url("receipt_changelist"), {"received_at__year": now.year})
    assert year.status_code == 200 and f"received_at__month={now.month}" in year.content.decode()
    message = pending(queue_name)
    messages = admin_client.get(url("message_changelist")).content.decode()
    assert f"created_at__month={timezone.localtime(message.created_at).month}" in messages
