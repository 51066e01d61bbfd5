"""An operator in a real browser answers "what is failing and why" and replays exactly
the message they choose: the failure group on the triage page (from the overview), the
dead-letter browser, replay one, a real ``runconsumer`` consumes it. Screenshots of the
main pages at 1400 and 1920 px go to the browser tests' artifacts (see conftest)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from messaging import publish
from messaging.models import Queue, Receipt
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for


def test_operator_sees_a_failure_group_and_replays_one_dead_letter(
    page: Page, spawn, queue_name: str, screenshot
) -> None:
    Queue.objects.create(name=queue_name, max_attempts=1)
    chosen, other = (
        publish(queue_name, f"order {i}".encode(), headers={"poison": True}) for i in range(2)
    )
    consumer = spawn(
        "runconsumer",
        queue_name,
        "--handler",
        "tests.support.handlers.record_unless_poison",
        "--max-messages",
        "2",
        "--idle-timeout",
        "60",
    )
    assert consumer.wait(timeout=90) == 0, consumer.stderr.read().decode()
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 2)

    # The overview links to the failures; the group says what, where, how often.
    page.goto("/admin/messaging/queue/overview/")
    expect(
        page.locator(f"tr.overview-queue[data-queue='{queue_name}'] td.dead-letters")
    ).to_have_text("2")
    # The top chart prints the minute's receipts on its bar.
    expect(page.locator("#overview-total-chart text.messaging-bar-value").first).to_be_visible()
    screenshot("overview")
    page.get_by_role("link", name="Failures: what is failing and why").click()
    group = page.locator(f"tr.failure-group[data-queue='{queue_name}']")
    expect(group.locator(".kind a")).to_have_text("RuntimeError: poison message")
    expect(group.locator("td.last-hour")).to_have_text("2")
    expect(group.locator("td.distinct")).to_have_text("2")
    expect(group.locator("td.dead-lettered")).to_have_text("2")
    expect(group.locator("td.recovered")).to_have_text("0")
    screenshot("failures")
    group.locator(".kind a").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    # The sidebar shows the filters the link applied.
    selected = page.locator("#changelist-filter li.selected")
    expect(selected.filter(has_text=queue_name)).to_have_count(1)
    expect(selected.filter(has_text="RuntimeError: poison message")).to_have_count(1)
    expect(selected.filter(has_text="failed (")).to_have_count(1)
    screenshot("receipts")

    # The dead-letter browser, from the queue list's dead-letter count.
    page.goto("/admin/messaging/queue/")
    screenshot("queues")
    page.locator("#result_list tbody tr", has_text=queue_name).locator(
        "a.dead-letters-link"
    ).click()
    expect(page.locator("#peek-note")).to_contain_text("marks them redelivered")
    rows = page.locator("#dead-letters tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td.reason")).to_have_text("max_attempts")
    expect(rows.first.locator("td.error")).to_contain_text("RuntimeError: poison message")
    screenshot("dead-letters")
    page.check(f"input[name=message_id][value='{chosen.message_id}']")
    page.click("button[value=replay_selected]")
    expect(page.locator("ul.messagelist")).to_contain_text("1 message replayed.")
    expect(page.locator("#dead-letters tbody tr")).to_have_count(1)
    expect(page.locator("#dead-letters")).to_contain_text(other.message_id)
    assert queue_depth(queue_name) == 1

    # A fixed consumer takes the replayed one; the other stays in the DLQ.
    fixed = spawn("runconsumer", queue_name, "--max-messages", "1", "--idle-timeout", "60")
    assert fixed.wait(timeout=90) == 0, fixed.stderr.read().decode()
    acked = Receipt.objects.get(message_id=chosen.message_id, outcome="acked")
    page.goto(f"/admin/messaging/message/{chosen.pk}/change/")
    expect(page.locator(".inline-group")).to_contain_text("acked")
    screenshot("message")
    page.goto("/admin/messaging/message/")
    screenshot("messages")
    assert acked.attempt == 1
    assert queue_depth(f"{queue_name}.dlq") == 1


#: How many lines each text node of an element's content takes (a <wbr> splits a queue
#: name into text nodes: one line each means no break inside a part).
LINES_PER_TEXT_NODE = """element => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const lines = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        lines.push(new Set([...range.getClientRects()].map(r => Math.round(r.top))).size);
    }
    return lines;
}"""


def test_bounces_are_one_group_filtered_and_linked_both_ways(page: Page, screenshot) -> None:
    queue = "notifications.transactional-email.smtp-relay.eu-west"
    now = timezone.now()
    addresses = ["ann@example.com", "bob@example.org", "cy@mail.example.net", "d@x.io", "e@y.dev"]
    Receipt.objects.bulk_create(
        [
            Receipt(
                message_id=f"mail-{n}",
                queue_name=queue,
                outcome="dead_lettered" if n < 3 else "requeued",
                error=f"SMTPRecipientsRefused: {{'{a}': (550, b'5.1.1 User unknown')}}",
                received_at=now - timedelta(minutes=n),
                finished_at=now - timedelta(minutes=n),
            )
            for n, a in enumerate(addresses)
        ]
        + [
            Receipt(
                message_id="mail-4",
                queue_name=queue,
                outcome="acked",
                received_at=now,
                finished_at=now,
            )
        ]
    )
    page.set_viewport_size({"width": 1000, "height": 800})
    page.goto("/admin/messaging/receipt/failures/")
    group = page.locator(f"tr.failure-group[data-queue='{queue}']")
    expect(group).to_have_count(1)
    expect(group.locator(".kind a")).to_have_text(
        "SMTPRecipientsRefused: {'<email>': (<num>, b'<num> User unknown')}"
    )
    expect(group.locator(".variant-count")).to_have_text("5 variants")
    expect(group.locator("td.dead-lettered")).to_have_text("3")
    expect(group.locator("td.recovered")).to_have_text("1")
    expect(group.locator("td.retrying")).to_have_text("1")
    # The queue name wraps between its parts, never inside one.
    assert set(group.locator("td.queue").evaluate(LINES_PER_TEXT_NODE)) == {1}
    screenshot("failures-bounces")

    # Filters: the outcome narrows the group to its dead-lettered receipts.
    page.select_option("#id_outcome", "dead_lettered")
    page.click("#failure-filters input[type=submit]")
    expect(group.locator("td.total")).to_have_text("3")
    page.select_option("#id_window", "1h")
    page.select_option("#id_queue", "")
    page.click("#failure-filters input[type=submit]")
    expect(group.locator("td.total")).to_have_text("3")

    # The group's link leads to its receipts; the sidebar shows what it filtered by.
    group.locator(".kind a").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    selected = page.locator("#changelist-filter li.selected")
    expect(selected.filter(has_text=queue)).to_have_count(1)
    expect(selected.filter(has_text="<email>")).to_have_count(1)
    screenshot("receipts-of-a-cause")

    # The receipt search finds error text.
    page.goto("/admin/messaging/receipt/?q=bob%40example")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
