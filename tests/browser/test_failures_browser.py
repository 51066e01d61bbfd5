"""An operator in a real browser answers "what is failing and why" and replays exactly
the message they choose: the failure group on the triage page (from the overview), the
dead-letter browser, replay one, a real ``runconsumer`` consumes it. Screenshots of the
main pages at 1400 and 1920 px go to the browser tests' artifacts (see conftest)."""

from __future__ import annotations

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
    screenshot("failures")
    group.locator(".kind a").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
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
