"""Every list of the console fits a 1400×900 window with the admin's sidebar open: no
horizontal scrolling, the result table's right edge inside the window — with realistic
data (a queue with a long name, messages with long ids and bodies, receipts with long
errors, consumers, exchanges, dead letters). A screenshot of each page goes to the
browser tests' artifacts (``<ARTIFACTS>/width-<page>-1400.png``, the 1400×900 window)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page

from messaging import broker
from messaging.models import Binding, Consumer, Exchange, Message, Queue, Receipt
from tests.browser.conftest import ARTIFACTS
from tests.support.admin import declared, put

WIDTH, HEIGHT = 1400, 900
LONG_ERROR = (
    "RuntimeError: the payment provider answered 503 Service Unavailable for order "
    "7f3c9a0e-5d1b-4c8e-9f2a-0b6e1d4c3a2f after 3 retries with backoff; upstream said " + "x" * 400
)
LONG_BODY = '{"order": "' + "0123456789abcdef" * 40 + '", "lines": [' + "1, " * 200 + "2]}"


def long_id(index: int) -> str:
    return f"order-created/{'a' * 120}/{index:04d}-{'f' * 60}"


@pytest.fixture
def realistic(queue_name: str, request: pytest.FixtureRequest) -> dict[str, Queue]:
    """Queues (one with a 200-character name), messages in every status with long ids
    and bodies, receipts with long errors, consumers, an exchange with bindings, and
    dead letters on the broker."""
    long_name = request.node.make_queue_name("." + "very-long-segment" * 10)
    short = declared(queue_name, messages_in=14, dead_lettering=True)
    long = declared(long_name, messages_in=3)
    put(f"{queue_name}.dlq", 2)
    now = timezone.now()
    for index, status in enumerate(Message.Status.values * 3):
        Message.objects.create(
            message_id=long_id(index),
            queue=long if index % 2 else short,
            body=LONG_BODY.encode(),
            content_type="application/json",
            status=status,
            last_error=LONG_ERROR if status == Message.Status.FAILED else "",
        )
    outcomes = Receipt.Outcome.values
    for index in range(24):
        Receipt.objects.create(
            message_id=long_id(index),
            queue_name=long.name if index % 2 else short.name,
            consumer_name=f"worker-{'x' * 80}@{socket.gethostname()}",
            consumer_host="host-" + "h" * 60,
            consumer_pid=4242,
            consumer_tag="ctag1." + "c" * 60,
            attempt=index % 5 + 1,
            outcome=outcomes[index % len(outcomes)],
            error=LONG_ERROR if index % 3 else "",
            traceback="Traceback (most recent call last):\n" + LONG_ERROR,
            received_at=now - timedelta(seconds=index * 30),
            finished_at=now - timedelta(seconds=index * 30 - 1),
            routing_key=long.name if index % 2 else short.name,
        )
    for index in range(3):
        Consumer.objects.create(
            name=f"runconsumer-{'n' * 60}-{index}",
            host="worker-host-" + "w" * 50,
            pid=1000 + index,
            queues=[short.name, long.name],
            started_at=now - timedelta(hours=3),
            last_heartbeat=now - timedelta(seconds=index * 40),
            processed=123456789,
            failed=4321,
            last_error=LONG_ERROR if index else "",
        )
    exchange = Exchange.objects.create(name=f"{queue_name}.events", exchange_type="topic")
    for row in (short, long):
        Binding.objects.create(source=exchange, queue=row, routing_key=f"{row.name}.#")
    yield {"short": short, "long": long, "exchange": exchange}
    try:
        with broker.connection() as conn:
            conn.channel().exchange_delete(exchange.name)
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own result
        pass


def pages(rows: dict[str, Queue]) -> dict[str, str]:
    short = rows["short"]
    return {
        "receipts": reverse("admin:messaging_receipt_changelist"),
        "messages": reverse("admin:messaging_message_changelist"),
        "queues": reverse("admin:messaging_queue_changelist"),
        "consumers": reverse("admin:messaging_consumer_changelist"),
        "exchanges": reverse("admin:messaging_exchange_changelist"),
        "bindings": reverse("admin:messaging_binding_changelist"),
        "failures": reverse("admin:messaging_failures"),
        "dead-letters": reverse("admin:messaging_queue_dead_letters", args=[short.pk]),
        "overview": reverse("admin:messaging_overview"),
        "queue": reverse("admin:messaging_queue_change", args=[rows["long"].pk]),
        "failed-message": reverse(
            "admin:messaging_message_change",
            args=[Message.objects.filter(status=Message.Status.FAILED).first().pk],
        ),
        "index": reverse("admin:app_list", args=["messaging"]),
    }


def overflow(page: Page) -> dict[str, float]:
    return page.evaluate(
        """() => {
            const table = document.querySelector(
                '#result_list, #overview-queues, #failure-groups, #dead-letters, '
                + '#content-main table'
            );
            return {
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                tableRight: table ? table.getBoundingClientRect().right : 0,
                widest: [...document.querySelectorAll('#content *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                    .slice(-3)
                    .map(e => e.tagName + '#' + e.id + '.' + e.className),
                sidebar: !!document.querySelector('#nav-sidebar')
                    && getComputedStyle(document.querySelector('#nav-sidebar')).display !== 'none',
            };
        }"""
    )


PAGES = [
    "receipts",
    "messages",
    "queues",
    "consumers",
    "exchanges",
    "bindings",
    "failures",
    "dead-letters",
    "overview",
    "queue",
    "failed-message",
    "index",
]


@pytest.mark.parametrize("name", PAGES)
def test_every_list_fits_1400_px(page: Page, realistic: dict[str, Queue], name: str) -> None:
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = pages(realistic)[name]
    response = page.goto(path)
    assert response is not None and response.ok, (name, path)
    page.wait_for_load_state("load")
    measured = overflow(page)
    page.screenshot(path=str(ARTIFACTS / f"width-{name}-{WIDTH}.png"))
    # The app index has no sidebar (Django's app_index.html drops it).
    assert measured["sidebar"] or name == "index", f"{name}: the sidebar should be open"
    assert measured["scrollWidth"] <= measured["innerWidth"], measured
    assert measured["tableRight"] <= measured["innerWidth"], measured


def test_the_stylesheet_is_served_on_the_lists(page: Page, realistic: dict[str, Queue]) -> None:
    for path in (
        reverse("admin:messaging_receipt_changelist"),
        reverse("admin:messaging_message_changelist"),
    ):
        page.goto(path)
        hrefs = page.eval_on_selector_all(
            "link[rel=stylesheet]", "links => links.map(l => l.getAttribute('href'))"
        )
        assert any(h.endswith("messaging/admin.css") for h in hrefs), hrefs
    response = page.goto(
        os.path.join(str(page.url).split("/admin/")[0], "static/messaging/admin.css")
    )
    assert response is not None and response.ok
