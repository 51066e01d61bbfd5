"""The overview page: numbers from real rows, SVG charts, broker state, permissions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from messaging import broker
from messaging.admin import charts
from messaging.admin.overview import LATENCY_SAMPLE, build_overview, duration
from messaging.db.overview_counts import MESSAGE_TIME_INDEX, RECEIPT_TIME_INDEX, window_counts
from messaging.db.overview_latency import latencies
from messaging.models import Message, Queue, Receipt
from tests.support.admin import CLOSED_PORT, ESCAPED_SCRIPT, SCRIPT, staff, url

pytestmark = pytest.mark.django_db

OVERVIEW = "admin:messaging_overview"
#: A fixed "now" half-way through a minute, so bucket edges are exact.
NOW = datetime(2026, 3, 1, 12, 30, 30, tzinfo=UTC)


def sent(queue: Queue, at: datetime) -> Message:
    return Message.objects.create(
        queue=queue, body=b"x", status=Message.Status.PUBLISHED, published_at=at
    )


def receipt_for(
    message: Message | None, queue: str, at: datetime, outcome: str = "acked", **kw: Any
) -> Receipt:
    return Receipt.objects.create(
        message_id=message.message_id if message else "",
        queue_name=queue,
        outcome=outcome,
        received_at=at,
        finished_at=at,
        **kw,
    )


def seed() -> Queue:
    """Queue ``orders``: 5 messages published at 12:25:10, each received once with
    latencies 1, 2, 3, 4 and 10 s (acked), plus one requeued and one dead-lettered
    receipt at 12:29, and rows outside the window that must not count."""
    orders = Queue.objects.create(name="orders")
    published_at = NOW.replace(minute=25, second=10)
    for latency in (1, 2, 3, 4, 10):
        message = sent(orders, published_at)
        receipt_for(message, "orders", published_at + timedelta(seconds=latency))
    failing = sent(orders, NOW.replace(minute=29, second=0))
    receipt_for(failing, "orders", NOW.replace(minute=29, second=0), "requeued", attempt=1)
    receipt_for(failing, "orders", NOW.replace(minute=29, second=59), "dead_lettered")
    old = sent(orders, NOW - timedelta(hours=2))
    receipt_for(old, "orders", NOW - timedelta(hours=2))
    # Another producer's queue (no Queue row, no message_id) still shows up...
    receipt_for(None, "foreign", NOW.replace(minute=30, second=0))
    # ...but not one whose receipts are all older than the window.
    receipt_for(None, "ancient", NOW - timedelta(hours=3))
    return orders


def test_overview_numbers_come_from_the_rows() -> None:
    seed()

    overview = build_overview(now=NOW, inspect_broker=False)

    assert overview.minutes == 60
    assert overview.since == NOW.replace(minute=31, second=0) - timedelta(hours=1)
    by_name = {s.name: s for s in overview.queues}
    assert list(by_name) == ["foreign", "orders"]
    orders = by_name["orders"]
    minute = {start.minute: i for i, start in enumerate(overview.minute_starts)}
    assert orders.published[minute[25]] == 5
    assert orders.published[minute[29]] == 1
    assert orders.published_total == 6  # the message from two hours ago is outside
    assert orders.received[minute[25]] == 5
    assert orders.received[minute[29]] == 2
    assert orders.received_total == 7
    assert orders.failed[minute[29]] == 2
    assert orders.failed_total == 2
    assert orders.failure_rate == pytest.approx(2 / 7)
    assert orders.latency_count == 5
    assert orders.latency_median == pytest.approx(3.0, abs=1e-3)
    # percentile_cont: position 0.95 * 4 = 3.8 → 4 + 0.8 * (10 - 4)
    assert orders.latency_p95 == pytest.approx(8.8, abs=1e-3)
    foreign = by_name["foreign"]
    assert foreign.queue_id is None
    assert foreign.received[minute[30]] == 1
    assert foreign.latency_count == 0
    assert foreign.latency_median is None
    assert overview.total("received")[minute[29]] == 2


def test_window_edges_are_exact_and_exchange_messages_are_not_counted() -> None:
    queue = Queue.objects.create(name="edges")
    since = NOW.replace(minute=31, second=0) - timedelta(hours=1)  # first bucket start
    end = since + timedelta(minutes=60)  # end of the current (last) minute
    tick = timedelta(microseconds=1)
    for at in (since - tick, since, end - tick, end):
        receipt_for(sent(queue, at), "edges", at)
    Message.objects.create(
        exchange="amq.topic",
        routing_key="edges",
        body=b"x",
        status=Message.Status.PUBLISHED,
        published_at=since,
    )

    counts = window_counts(connection, since, 60)

    assert counts.received["edges"][0] == 1
    assert counts.received["edges"][59] == 1
    assert sum(counts.received["edges"]) == 2
    assert counts.published[queue.pk][0] == 1
    assert counts.published[queue.pk][59] == 1
    assert sum(counts.published[queue.pk]) == 2
    assert list(counts.published) == [queue.pk]  # the exchange message has no queue
    assert "edges" not in counts.failed


def test_failures_are_counted_per_minute_and_queue() -> None:
    since = NOW.replace(minute=31, second=0) - timedelta(hours=1)
    for outcome in ("acked", "duplicate", "requeued", "rejected", "dead_lettered"):
        receipt_for(None, "a", since + timedelta(minutes=3, seconds=1), outcome)
    receipt_for(None, "b", since + timedelta(minutes=7), "rejected")

    counts = window_counts(connection, since, 60)

    assert counts.received["a"][3] == 5
    assert counts.failed["a"][3] == 3
    assert sum(counts.failed["a"]) == 3
    assert counts.failed["b"][7] == 1
    assert sum(counts.received["b"]) == 1


def test_the_indexes_the_overview_reads_exist() -> None:
    # SQLite names them (INDEXED BY); a renamed index would break the page.
    assert RECEIPT_TIME_INDEX in {index.name for index in Receipt._meta.indexes}
    assert MESSAGE_TIME_INDEX in {index.name for index in Message._meta.indexes}
    with connection.cursor() as cursor:
        names = {
            name
            for model in (Receipt, Message)
            for name in connection.introspection.get_constraints(cursor, model._meta.db_table)
        }
    assert {RECEIPT_TIME_INDEX, MESSAGE_TIME_INDEX} <= names


def test_latency_uses_a_bounded_sample_of_the_latest_receipts() -> None:
    seed()
    since = NOW - timedelta(hours=1)

    # The 3 latest acked receipts of "orders" have latencies 3, 4 and 10 s.
    ((count, median, p95),) = latencies(connection, ["orders"], since, sample=3)

    assert count == 3
    assert median == pytest.approx(4.0, abs=1e-3)
    assert p95 == pytest.approx(9.4, abs=1e-3)  # 4 + 0.9 * (10 - 4)


def test_a_receipt_before_its_batch_confirm_counts_as_zero_latency() -> None:
    queue = Queue.objects.create(name="fast")
    message = sent(queue, NOW - timedelta(seconds=5))
    receipt_for(message, "fast", NOW - timedelta(seconds=6))

    ((count, median, p95),) = latencies(
        connection, ["fast"], NOW - timedelta(hours=1), LATENCY_SAMPLE
    )

    assert (count, median, p95) == (1, 0.0, 0.0)


def test_overview_page_renders_charts_and_broker_state(
    admin_client: Client, queue_name: str
) -> None:
    row = Queue.objects.create(name=queue_name)
    broker.declare_queues([row])
    with broker.connection() as conn:
        conn.channel().basic_publish("", queue_name, b"waiting")
    now = timezone.now()
    message = sent(row, now - timedelta(seconds=2))
    receipt_for(message, queue_name, now - timedelta(seconds=1))
    receipt_for(message, queue_name, now - timedelta(seconds=1), "requeued")

    page = admin_client.get(reverse(OVERVIEW))

    assert page.status_code == 200
    content = page.content.decode()
    assert content.count("<svg") >= 3  # the total chart + activity and latency per queue
    # (CSRF tokens are random letters: one may spell "cdn")
    assert "cdn" not in re.sub(r'value="[A-Za-z0-9]{32,}"', "", content).lower()
    assert '<script src="http' not in content
    (stats,) = [r["stats"] for r in page.context["rows"] if r["stats"].name == queue_name]
    assert stats.ready == 1
    assert stats.consumers == 0
    assert stats.published_total == 1
    assert stats.received_total == 2
    assert stats.failure_rate == 0.5
    assert f'data-queue="{queue_name}"' in content
    assert "50.0 %" in content
    # The top chart prints each non-empty minute's receipts on its bar (2 here, unless the
    # two receipts straddle a minute boundary).
    total_chart = content.split('id="overview-total-chart"', 1)[1].split("</div>", 1)[0]
    values = re.findall(r'<text class="messaging-bar-value"[^>]*>(\d+)</text>', total_chart)
    assert sum(int(v) for v in values) == sum(page.context["overview"].total("received"))
    assert values


def test_overview_with_broker_down_still_renders(admin_client: Client) -> None:
    Queue.objects.create(name="down.queue")

    with override_settings(MESSAGING=CLOSED_PORT):
        page = admin_client.get(reverse(OVERVIEW))

    assert page.status_code == 200
    content = page.content.decode()
    assert "The broker is unreachable" in content
    assert 'class="messaging-unreachable">unreachable<' in content


def test_overview_escapes_queue_names(admin_client: Client) -> None:
    queue = Queue.objects.create(name=SCRIPT)
    message = sent(queue, timezone.now())
    receipt_for(message, SCRIPT, timezone.now())

    with override_settings(MESSAGING=CLOSED_PORT):
        content = admin_client.get(reverse(OVERVIEW)).content.decode()

    assert SCRIPT not in content
    assert ESCAPED_SCRIPT in content


def test_overview_needs_view_permission_on_queues(client: Client) -> None:
    client.force_login(staff("view_message"))
    assert client.get(reverse(OVERVIEW)).status_code == 403

    client.force_login(staff("view_queue"))
    with override_settings(MESSAGING=CLOSED_PORT):
        assert client.get(reverse(OVERVIEW)).status_code == 200

    client.logout()
    assert client.get(reverse(OVERVIEW)).status_code == 302  # to the login page


def test_overview_is_linked_from_the_app_index_and_queue_list(
    admin_client: Client, admin_user: User
) -> None:
    link = f'href="{reverse(OVERVIEW)}"'
    assert link in admin_client.get(reverse("admin:app_list", args=["messaging"])).content.decode()
    with override_settings(MESSAGING=CLOSED_PORT):
        assert link in admin_client.get(url("queue_changelist")).content.decode()


def test_activity_chart_is_plain_svg_with_escaped_tooltips() -> None:
    svg = charts.activity_chart(
        received=[0, 4, 2], failed=[0, 1, 0], published=[1, 3, 0], labels=["a", "<b>", "c"]
    )

    assert svg.startswith("<svg")
    assert svg.count("<rect") == 3 + 2 + 1  # 3 hit areas, 2 bars, 1 failed part
    assert "&lt;b&gt;: 4 received, 1 failed, 3 published" in svg
    assert "<b>" not in svg
    assert "<polyline" in svg
    empty = charts.latency_chart(None, None, scale_max=0)
    assert "no latency data" in empty


@pytest.mark.unit
@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "–"),
        (0, "0 ms"),
        (0.1534, "153 ms"),
        (2.46, "2.5 s"),
        (3.0, "3 s"),
        (153.689, "154 s"),
        (150, "150 s"),
        (180, "3 min"),
        (270, "4.5 min"),
        (42 * 60, "42 min"),
        (3 * 3600 + 720, "3.2 h"),
        (3 * 86400, "3 d"),
    ],
)
def test_latencies_and_ages_are_rounded_as_people_read_them(
    seconds: float | None, shown: str
) -> None:
    assert duration(seconds) == shown


def test_overview_links_queues_and_dead_letters_and_flags_idle_queues(
    admin_client: Client, queue_name: str
) -> None:
    row = Queue.objects.create(name=queue_name, dead_lettering=True)
    broker.declare_queues([row])
    with broker.connection() as conn:
        channel = conn.channel()
        for _ in range(14):
            channel.basic_publish("", queue_name, b"waiting")
        channel.basic_publish("", f"{queue_name}.dlq", b"dead")
    receipt_for(None, "no.row.queue", timezone.now())

    content = admin_client.get(reverse(OVERVIEW)).content.decode()

    tr = content.split(f'data-queue="{queue_name}"', 1)[1].split("</tr>", 1)[0]
    assert f'<a href="{url("queue_change", row.pk)}" title="{queue_name}">' in tr
    assert f'<a href="{url("queue_dead_letters", row.pk)}" class="dead-letters-link' in tr
    assert ">1</a>" in tr
    assert "0 ⚠" in tr and "messaging-flag" in tr  # 14 ready, 0 consumers
    assert 'class="overview-queue overview-unconsumed"' in content
    assert 'id="overview-unconsumed"' in content and "(14)" in content
    # A queue without a row links to its receipts.
    other = content.split('data-queue="no.row.queue"', 1)[1].split("</tr>", 1)[0]
    assert f'<a href="{url("receipt_changelist")}?queue_name=no.row.queue"' in other
