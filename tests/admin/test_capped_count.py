"""A filtered message list counts at most ``MessageAdmin.list_count_cap`` rows
(messaging.admin.capped_count): "N+ messages", the first pages reachable, the whole table
still counted exactly; the date hierarchy's first and last dates read from the ends when
many rows match."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Max, Min
from django.test import Client
from django.utils import timezone

from messaging.admin.capped_count import CappedPaginator
from messaging.admin.date_periods import ProbedDates
from messaging.admin.message_admin import MessageAdmin
from messaging.models import Message, Queue, Receipt
from tests.support.admin import published, url

pytestmark = pytest.mark.django_db


def acked_messages(count: int) -> list[Message]:
    queue = Queue.objects.create(name="capped.count")
    messages = [published(queue) for _ in range(count)]
    now = timezone.now()
    Receipt.objects.bulk_create(
        Receipt(
            message_id=m.message_id,
            queue_name=queue.name,
            outcome="acked",
            received_at=now - timedelta(seconds=n),
            finished_at=now - timedelta(seconds=n),
        )
        for n, m in enumerate(messages)
    )
    return messages


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MessageAdmin, "list_count_cap", 4)
    monkeypatch.setattr(MessageAdmin, "list_per_page", 2)


def test_the_paginator_counts_up_to_its_cap() -> None:
    acked_messages(5)
    rows = Message.objects.order_by("pk")
    capped = CappedPaginator(rows, 2, cap=4)
    assert (capped.count, capped.capped, capped.num_pages, capped.at_least) == (4, True, 2, "4+")
    assert len(capped.page(2).object_list) == 2
    exact = CappedPaginator(rows, 2, cap=5)
    assert (exact.count, exact.capped) == (5, False)


@pytest.mark.usefixtures("small_cap")
def test_a_filtered_list_says_there_are_more(admin_client: Client) -> None:
    acked_messages(7)
    page = admin_client.get(url("message_changelist"), {"fate": "acked"})
    assert page.status_code == 200
    cl = page.context["cl"]
    assert cl.paginator.capped and cl.result_count == 4 and len(cl.result_list) == 2
    content = page.content.decode()
    assert "4+ messages" in content and "Select all 4+ messages" in content
    assert page.context["selection_note_all"] == "All 4+ selected"
    second = admin_client.get(url("message_changelist"), {"fate": "acked", "p": 2})
    assert second.status_code == 200 and len(second.context["cl"].result_list) == 2
    shown = {m.pk for m in cl.result_list} | {m.pk for m in second.context["cl"].result_list}
    assert len(shown) == 4
    # Fewer rows than the cap: the exact count.
    few = admin_client.get(url("message_changelist"), {"fate": "none"})
    assert not few.context["cl"].paginator.capped
    assert "0 messages" in few.content.decode()


@pytest.mark.usefixtures("small_cap")
def test_the_whole_table_is_counted_exactly(admin_client: Client) -> None:
    acked_messages(7)
    page = admin_client.get(url("message_changelist"))
    cl = page.context["cl"]
    assert cl.result_count == 7 and not getattr(cl.paginator, "capped", False)
    assert "7 messages" in page.content.decode()


def test_first_and_last_dates_from_the_ends_match_the_aggregate() -> None:
    acked_messages(6)
    rows = Message.objects.filter(status="published")
    bounds = {"first": Min("created_at"), "last": Max("created_at")}
    assert ProbedDates(rows, many=True).aggregate(**bounds) == rows.aggregate(**bounds)
    none = Message.objects.none()
    assert ProbedDates(none, many=True).aggregate(**bounds) == {"first": None, "last": None}
