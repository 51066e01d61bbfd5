"""The failure triage page: failed receipts grouped by queue and error kind, with counts
for the last hour / day, first and last seen, distinct messages, an example traceback,
and a link to each group's receipts (``messaging.admin.failure_groups.build_triage``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from messaging.admin.failure_groups import build_triage
from messaging.models import Receipt
from tests.support.admin import staff, url

pytestmark = pytest.mark.django_db

TB = (
    "Traceback (most recent call last):\n"
    '  File "h.py", line 3, in handle\n'
    '    x["k"]\n'
    "KeyError: 'k'\n"
)


def receipt(queue: str, error: str, outcome: str = "requeued", ago=timedelta(), mid="m1", tb=""):
    now = timezone.now() - ago
    return Receipt(
        message_id=mid,
        queue_name=queue,
        outcome=outcome,
        error=error,
        traceback=tb,
        received_at=now,
        finished_at=now,
    )


@pytest.fixture
def failures() -> None:
    Receipt.objects.bulk_create(
        [
            receipt("orders", "KeyError: 'k'", mid="a", tb=TB),
            receipt("orders", "KeyError: 'k'", mid="a", ago=timedelta(minutes=30)),
            receipt("orders", "KeyError: 'k'", "dead_lettered", mid="b", ago=timedelta(hours=5)),
            receipt("orders", "KeyError: 'k'", mid="c", ago=timedelta(days=3)),
            receipt("orders", "ValueError: bad\nsecond line", "rejected", mid="d"),
            receipt("mails", "KeyError: 'k'", mid="e", ago=timedelta(hours=2)),
            receipt("orders", "", "acked", mid="z"),  # not a failure
            receipt("orders", "KeyError: 'k'", mid="old", ago=timedelta(days=30)),  # too old
        ]
    )


def test_groups_by_queue_and_first_line_with_counts(failures) -> None:
    triage = build_triage()
    groups = {(g.queue, g.kind): g for g in triage.groups}
    assert set(groups) == {
        ("orders", "KeyError: 'k'"),
        ("orders", "ValueError: bad"),
        ("mails", "KeyError: 'k'"),
    }
    key = groups[("orders", "KeyError: 'k'")]
    assert (key.last_hour, key.last_day, key.total, key.messages) == (2, 3, 4, 3)
    assert key.last_seen - key.first_seen > timedelta(days=2, hours=23)
    assert key.example is not None and key.example.traceback == TB
    assert key.exception == "KeyError"
    assert groups[("orders", "ValueError: bad")].last_hour == 1
    assert [g.queue for g in triage.groups][-1] == "mails"  # least recently seen last


def test_page_links_each_group_to_its_receipts(admin_client: Client, failures) -> None:
    page = admin_client.get(url("failures"))
    content = page.content.decode()
    assert page.status_code == 200
    assert content.count('class="failure-group"') == 3
    assert "    x[&quot;k&quot;]" in content  # the traceback keeps its indentation
    link = page.context["rows"][0][1]
    receipts = admin_client.get(link)
    assert receipts.status_code == 200  # a disallowed lookup would redirect to ?e=1
    shown = list(receipts.context["cl"].result_list)
    group = page.context["rows"][0][0]
    assert len(shown) == group.total
    assert {r.queue_name for r in shown} == {group.queue}
    overview = admin_client.get(url("overview")).content.decode()
    assert url("failures") in overview


def test_page_needs_view_permission_on_receipts(client: Client) -> None:
    client.force_login(staff("view_queue"))
    assert client.get(url("failures")).status_code == 403
    client.force_login(staff("view_receipt"))
    assert client.get(url("failures")).status_code == 200
