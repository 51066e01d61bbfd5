"""An operator in a real browser: declare a queue, see its depth, compose and publish a
persistent message, watch a real ``runconsumer`` consume it, read the receipt; purge with
a confirmation; the overview's charts."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from messaging.models import Message, Queue, Receipt
from tests.support.rabbitmq import queue_depth

BODY = "Hello from the browser <script>alert(1)</script>"


def queue_row(page: Page, name: str):  # noqa: ANN201 - a Playwright Locator
    return page.locator(
        "#result_list tbody tr", has=page.get_by_role("link", name=name, exact=True)
    )


def run_action(page: Page, row_text: str, action: str) -> None:
    row = page.locator("#result_list tbody tr", has_text=row_text)
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_declare_publish_consume_and_read_the_receipt(page: Page, spawn, queue_name: str) -> None:
    # Declare a queue: add the row, then the "Declare on broker" action.
    page.goto("/admin/messaging/queue/add/")
    page.fill("#id_name", queue_name)
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    run_action(page, queue_name, "declare_on_broker")
    expect(page.locator("ul.messagelist")).to_contain_text("1 queue declared on the broker.")
    expect(queue_row(page, queue_name).locator("td.field-ready")).to_have_text("0")
    assert queue_depth(queue_name) == 0

    # Compose from the queue's "Publish a message" link: the queue is preselected.
    queue_row(page, queue_name).get_by_role("link", name="Publish a message").click()
    queue = Queue.objects.get(name=queue_name)
    expect(page.locator("#id_queue")).to_have_value(str(queue.pk))
    expect(page.locator("#id_persistent")).to_be_checked()
    page.fill("#id_body_text", BODY)
    page.fill("#id_content_type", "text/plain")
    page.fill("#id_headers", '{"x-source": "browser"}')
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    message = Message.objects.get()
    assert message.status == Message.Status.PENDING

    # Publish it with the action; the queue list then shows its depth.
    run_action(page, message.message_id, "publish_messages")
    expect(page.locator("ul.messagelist")).to_contain_text("1 message published.")
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert message.persistent
    page.goto("/admin/messaging/queue/")
    expect(queue_row(page, queue_name).locator("td.field-ready")).to_have_text("1")

    # A real consumer takes it.
    consumer = spawn("runconsumer", queue_name, "--max-messages", "1", "--idle-timeout", "60")
    assert consumer.wait(timeout=90) == 0, consumer.stderr.read().decode()
    receipt = Receipt.objects.get(message_id=message.message_id)
    assert receipt.outcome == Receipt.Outcome.ACKED

    # The message page shows the whole life: body as text, who published, the receipt.
    page.goto(f"/admin/messaging/message/{message.pk}/change/")
    expect(page.locator("pre")).to_have_text(BODY)  # text, not markup
    assert page.locator("script:text('alert(1)')").count() == 0
    expect(page.locator(".field-published_by")).to_contain_text("operator")
    inline = page.locator(".inline-group")
    expect(inline).to_contain_text("acked")
    expect(inline).to_contain_text(receipt.consumer_name)
    expect(page.locator("input[name=_save]")).to_have_count(0)  # published: read-only

    page.goto("/admin/messaging/queue/")
    expect(queue_row(page, queue_name).locator("td.field-ready")).to_have_text("0")


def test_purge_asks_first_and_says_how_many(page: Page, queue_name: str) -> None:
    from messaging import broker

    row = Queue.objects.create(name=queue_name)
    broker.declare_queues([row])
    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for _ in range(3):
            channel.basic_publish("", queue_name, b"old")

    page.goto("/admin/messaging/queue/")
    expect(queue_row(page, queue_name).locator("td.field-ready")).to_have_text("3")
    run_action(page, queue_name, "purge_queues")
    expect(page.locator("#purge-summary")).to_contain_text("3 ready messages will be dropped")
    assert queue_depth(queue_name) == 3
    page.click("input[type=submit][value='Yes, purge']")

    expect(page.locator("ul.messagelist")).to_contain_text("3 messages dropped.")
    expect(queue_row(page, queue_name).locator("td.field-ready")).to_have_text("0")
    assert queue_depth(queue_name) == 0


def test_overview_draws_charts_from_real_data(page: Page, queue_name: str) -> None:
    from messaging import publish

    publish(queue_name, b"counted")

    page.goto("/admin/messaging/")
    page.get_by_role("link", name="Overview", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/admin/messaging/queue/overview/$"))
    row = page.locator(f"tr.overview-queue[data-queue='{queue_name}']")
    expect(row.locator("td.ready")).to_have_text("1")
    expect(row.locator("td.published")).to_have_text("1 (0.02)")
    expect(row.locator("svg.messaging-chart").first).to_be_visible()
    expect(page.locator("#overview-total-chart > svg")).to_be_visible()  # axes around the bars


def test_overview_axis_labels_are_readable_in_dark_mode(
    browser, live_server, operator, queue_name: str
) -> None:
    """The charts' axis labels follow the theme: light grey on the dark admin (the
    system's preference, or the admin's own theme switch), dark grey on the light one."""
    from tests.browser.conftest import ARTIFACTS, PASSWORD, log_in

    Queue.objects.create(name=queue_name)
    for scheme, theme, expected in (
        ("dark", None, "rgb(204, 204, 204)"),
        ("light", None, "rgb(85, 85, 85)"),
        ("light", "dark", "rgb(204, 204, 204)"),
    ):
        context = browser.new_context(base_url=str(live_server.url), color_scheme=scheme)
        try:
            page = context.new_page()
            log_in(page, operator.username, PASSWORD)
            if theme:
                page.evaluate(f"localStorage.setItem('theme', '{theme}')")
            page.goto("/admin/messaging/queue/overview/")
            label = page.locator("#overview-total-chart svg.messaging-axes > text").first
            expect(label).to_be_visible()
            fill = label.evaluate("e => getComputedStyle(e).fill")
            assert fill == expected, (scheme, theme, fill)
            if scheme == "dark":
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.set_viewport_size({"width": 1400, "height": 900})
                page.screenshot(path=str(ARTIFACTS / "overview-dark-1400.png"))
        finally:
            context.close()
