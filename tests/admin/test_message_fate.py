"""A message's whole fate in the console, from its receipts: the list's status column and
filter, the page's title and "What became of it" with links to its receipts, its
dead-letter entry and its failure group, and the Replay button; one query for a list
page whatever its length."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import messages
from django.test import Client
from django.utils import timezone
from django.utils.http import urlencode

from messaging.admin.message_fate import fate_of, with_fate
from messaging.models import Message, Queue, Receipt
from tests.support.admin import pending, published, shown_messages, staff, url

pytestmark = pytest.mark.django_db

START = timezone.now() - timedelta(minutes=10)


def deliveries(message: Message, *outcomes: str, queue: str | None = None) -> list[Receipt]:
    """One receipt per outcome, a second apart, attempts counting up after failures."""
    name = queue or (message.queue.name if message.queue_id else "some.queue")
    receipts, attempt = [], 1
    base = START + timedelta(seconds=Receipt.objects.count() * 10)
    for index, outcome in enumerate(outcomes):
        when = base + timedelta(seconds=index)
        receipts.append(
            Receipt.objects.create(
                message_id=message.message_id,
                queue_name=name,
                outcome=outcome,
                attempt=attempt,
                redelivered=attempt > 1,
                error="" if outcome == "acked" else "KeyError: 'sku'",
                received_at=when,
                finished_at=when,
            )
        )
        attempt = attempt + 1 if outcome == "requeued" else 1
    return receipts


def dead_lettered(queue: Queue, attempts: int = 5) -> Message:
    message = published(queue, b"poison")
    deliveries(message, *(["requeued"] * (attempts - 1)), "dead_lettered")
    return message


def fate(message: Message) -> Any:
    return fate_of(with_fate(Message.objects.filter(pk=message.pk)).get())


def listed(client: Client, **query: str) -> dict[int, str]:
    page = client.get(url("message_changelist"), query)
    assert page.status_code == 200
    cl = page.context["cl"]
    return {m.pk: str(cl.model_admin.status_badge(m)) for m in cl.result_list}


# --------------------------------------------------------------------------- derivation


def test_dead_lettered_after_five_attempts_in_list_title_and_page(admin_client: Client) -> None:
    queue = Queue.objects.create(name="fate.orders")
    message = dead_lettered(queue)

    shown = fate(message)
    assert (shown.key, shown.label) == ("dead_lettered", "dead-lettered after 5 attempts")
    assert (shown.retries, shown.dead_letter_queue, shown.replayed) == (4, "fate.orders.dlq", False)

    row = listed(admin_client)[message.pk]
    assert "dead-lettered after 5 attempts" in row and "messaging-badge-dead_lettered" in row
    assert "messaging-badge-published" not in row

    page = admin_client.get(url("message_change", message.pk)).content.decode()
    title = f"{message.message_id} → fate.orders (dead-lettered after 5 attempts)"
    assert f"<title>{title} |" in page
    assert f"<h2>{title}</h2>" in page
    assert "(published)" not in page
    assert "In fate.orders.dlq now" in page


def test_acked_and_retried_then_acked(admin_client: Client) -> None:
    queue = Queue.objects.create(name="fate.acked")
    first_time = published(queue)
    deliveries(first_time, "acked")
    third_time = published(queue)
    deliveries(third_time, "requeued", "requeued", "acked")
    waiting = published(queue)
    unsent = pending(queue)

    assert fate(first_time).label == "consumed (acked)"
    assert fate(third_time).label == "consumed (acked) after 2 retries"
    assert (fate(third_time).key, fate(third_time).retries) == ("acked", 2)
    assert fate(waiting).label == "published, not consumed yet"
    assert fate(unsent).key == "pending"

    rows = listed(admin_client)
    assert "consumed (acked) after 2 retries" in rows[third_time.pk]
    assert "messaging-badge-acked" in rows[first_time.pk]
    assert "not consumed yet" in rows[waiting.pk]
    page = admin_client.get(url("message_change", third_time.pk)).content.decode()
    assert "(consumed (acked) after 2 retries)</h2>" in page


def test_retrying_rejected_duplicate_and_replayed() -> None:
    queue = Queue.objects.create(name="fate.mixed")
    retrying = published(queue)
    deliveries(retrying, "requeued", "requeued")
    rejected = published(queue)
    deliveries(rejected, "rejected")
    duplicate = published(queue)
    deliveries(duplicate, "acked", "duplicate")
    replayed = published(queue)
    deliveries(replayed, "requeued", "dead_lettered", "acked")

    assert (fate(retrying).key, fate(retrying).label) == (
        "retrying",
        "retrying (2 failed attempts so far)",
    )
    assert (fate(rejected).key, fate(rejected).label) == ("rejected", "rejected on attempt 1")
    assert fate(rejected).dead_letter_queue == "fate.mixed.dlq"
    assert fate(duplicate).key == "duplicate"
    assert fate(replayed).replayed and fate(replayed).key == "acked"
    assert fate(replayed).label == "replayed, then consumed (acked) after 1 retry"


def test_a_dead_letter_in_one_queue_outweighs_a_later_ack_in_another() -> None:
    """Fan-out: an exchange's message consumed by two queues; one dead-lettered it."""
    message = pending(None, "fan", exchange="events", routing_key="order.created")
    deliveries(message, "dead_lettered", queue="fan.billing")
    deliveries(message, "acked", queue="fan.mail")  # later

    shown = fate(message)
    assert (shown.key, shown.queue) == ("dead_lettered", "fan.billing")


# --------------------------------------------------------------------------- filter


def test_filter_by_consumer_outcome(admin_client: Client) -> None:
    queue = Queue.objects.create(name="fate.filter")
    acked = published(queue)
    deliveries(acked, "acked")
    retried = published(queue)
    deliveries(retried, "requeued", "acked")
    dead = dead_lettered(queue, attempts=3)
    rejected = published(queue)
    deliveries(rejected, "rejected")
    replayed = published(queue)
    deliveries(replayed, "dead_lettered", "acked")
    untouched = published(queue)
    unsent = pending(queue)

    def by(value: str) -> set[int]:
        return set(listed(admin_client, fate=value))

    assert by("acked") == {acked.pk, retried.pk, replayed.pk}
    assert by("retried") == {retried.pk, dead.pk}
    assert by("dead_lettered") == {dead.pk}
    assert by("rejected") == {rejected.pk}
    assert by("replayed") == {replayed.pk}
    assert by("none") == {untouched.pk, unsent.pk}
    page = admin_client.get(url("message_changelist")).content.decode()
    assert "consumer outcome" in page and "?fate=dead_lettered" in page


# --------------------------------------------------------------------------- links


def test_page_links_to_receipts_dead_letters_and_failure_group(admin_client: Client) -> None:
    queue = Queue.objects.create(name="fate.links")
    message = dead_lettered(queue)

    page = admin_client.get(url("message_change", message.pk)).content.decode()

    receipts = url("receipt_changelist") + "?" + urlencode({"message__exact": message.message_id})
    dead_letters = (
        url("queue_dead_letters", queue.pk) + "?" + urlencode({"message_id": message.message_id})
    )
    failures = (
        url("failures") + "?" + urlencode({"queue": "fate.links", "outcome": "dead_lettered"})
    )
    for link in (receipts, dead_letters, failures):
        assert f'href="{link.replace("&", "&amp;")}"' in page, link
    # the receipts link shows this message's receipts, and only them
    other = published(queue)
    deliveries(other, "acked")
    listing = admin_client.get(receipts)
    assert {r.message_id for r in listing.context["cl"].result_list} == {message.message_id}
    assert len(listing.context["cl"].result_list) == 5


def test_acked_message_links_to_receipts_only(admin_client: Client) -> None:
    message = published(Queue.objects.create(name="fate.fine"))
    deliveries(message, "acked")

    page = admin_client.get(url("message_change", message.pk)).content.decode()

    assert "fate-receipts" in page
    assert "fate-dead-letters" not in page and "fate-failures" not in page
    assert "Replay from the DLQ" not in page


def test_replay_button_needs_the_publish_permission(client: Client) -> None:
    queue = Queue.objects.create(name="fate.replay")
    message = dead_lettered(queue)
    target = url("message_change", message.pk)

    client.force_login(staff("view_message", "view_queue"))
    assert "Replay from the DLQ" not in client.get(target).content.decode()

    client.force_login(staff("view_message", "view_queue", "publish_message"))
    page = client.get(target).content.decode()
    assert "Replay from the DLQ" in page
    assert f'action="{url("queue_dead_letters", queue.pk)}"' in page
    assert f'name="message_id" value="{message.message_id}"' in page


def test_inline_redelivered_is_neutral_text(admin_client: Client) -> None:
    message = published(Queue.objects.create(name="fate.inline"))
    deliveries(message, "requeued", "acked")

    page = admin_client.get(url("message_change", message.pk)).content.decode()

    cells = re.findall(r'<td class="field-redelivered_text">(.*?)</td>', page, re.S)
    assert len(cells) == 2
    assert all("messaging-yes-no" in c and "icon-" not in c for c in cells)
    assert [">no<" in c for c in cells] == [False, True]  # newest first: the retry


# --------------------------------------------------------------------------- queries


def test_list_page_derives_every_fate_in_one_query(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    queue = Queue.objects.create(name="fate.queries")

    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url("message_changelist")).status_code == 200
        return len(captured)

    for _ in range(3):
        dead_lettered(queue, attempts=2)
    few = page_queries()
    for _ in range(30):
        deliveries(published(queue), "requeued", "acked")
    assert page_queries() == few
    # Filtered: the same, plus on PostgreSQL the transaction that turns JIT off (3).
    with django_assert_max_num_queries(few + 3):
        admin_client.get(url("message_changelist"), {"fate": "retried"})


# --------------------------------------------------------------------------- compose


@pytest.mark.django_db(transaction=True)
def test_save_and_publish_says_published_not_held(client: Client, queue_name: str) -> None:
    queue = Queue.objects.create(name=queue_name)
    client.force_login(staff("add_message", "change_message", "view_message", "publish_message"))

    response = client.post(
        url("message_add"),
        {
            "queue": queue.pk,
            "content_type": "text/plain",
            "body_text": "now",
            "headers": "{}",
            "persistent": "on",
            "_publish": "Save and publish",
        },
        follow=True,
    )

    message = Message.objects.get()
    assert message.status == Message.Status.PUBLISHED
    shown = shown_messages(response)
    ((level, text),) = shown
    assert level == messages.SUCCESS
    assert "saved and published to" in text and "(held)" not in text and "added" not in text
    assert f'href="{url("message_change", message.pk)}"' in text


def test_page_tells_a_replay_or_discard_logged_since_the_death(
    admin_client: Client, admin_user: Any
) -> None:
    from messaging.admin import audit

    queue = Queue.objects.create(name="fate.after")
    replayed = dead_lettered(queue)
    discarded = dead_lettered(queue)
    audit.log_same(admin_user, [queue], f"Replayed 1 dead letter ({replayed.message_id}).")
    audit.log_same(admin_user, [queue], f"Discarded 1 dead letter ({discarded.message_id}).")

    page = admin_client.get(url("message_change", replayed.pk)).content.decode()
    assert "(dead-lettered after 5 attempts, replayed from the DLQ, not consumed again yet)" in page
    assert "Replayed from fate.after.dlq by admin at" in page
    assert "Replay from the DLQ" not in page and "In fate.after.dlq now" not in page
    page = admin_client.get(url("message_change", discarded.pk)).content.decode()
    assert "(dead-lettered after 5 attempts, then discarded from the DLQ)" in page
    assert "gone for good" in page
    # the list goes by the receipts alone
    assert "dead-lettered" in listed(admin_client)[replayed.pk]
