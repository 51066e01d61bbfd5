"""The failure triage page: failed receipts grouped by queue and error kind, with counts
for the last hour / day, first and last seen, distinct messages, an example traceback,
and a link to each group's receipts (``messaging.admin.failure_groups.build_triage``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin import site
from django.db import connection
from django.test import Client
from django.utils import timezone

from messaging.admin.failure_groups import build_triage
from messaging.admin.receipt_admin import ReceiptAdmin
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


def test_groups_by_queue_and_cause_with_counts(failures) -> None:
    triage = build_triage()
    groups = {(g.queue, g.cause): g for g in triage.groups}
    assert set(groups) == {
        ("orders", "KeyError: '<value>'"),
        ("orders", "ValueError: bad"),
        ("mails", "KeyError: '<value>'"),
    }
    key = groups[("orders", "KeyError: '<value>'")]
    assert (key.last_hour, key.last_day, key.total, key.messages) == (2, 3, 4, 3)
    assert key.last_seen - key.first_seen > timedelta(days=2, hours=23)
    assert key.example is not None and key.example.traceback == TB
    assert key.exception == "KeyError"
    assert [(v.line, v.total) for v in key.variants] == [("KeyError: 'k'", 4)]
    assert groups[("orders", "ValueError: bad")].last_hour == 1
    assert [g.queue for g in triage.groups][-1] == "mails"  # least recently seen last


def test_page_links_each_group_to_its_receipts(admin_client: Client, failures) -> None:
    page = admin_client.get(url("failures"))
    content = page.content.decode()
    assert page.status_code == 200
    assert content.count('class="failure-group"') == 3
    assert "    x[&quot;k&quot;]" in content  # the traceback keeps its indentation
    row = page.context["rows"][0]
    receipts = admin_client.get(row.link)
    assert receipts.status_code == 200  # a disallowed lookup would redirect to ?e=1
    shown = list(receipts.context["cl"].result_list)
    assert len(shown) == row.group.total
    assert {r.queue_name for r in shown} == {row.group.queue}
    overview = admin_client.get(url("overview")).content.decode()
    assert url("failures") in overview


def test_page_needs_view_permission_on_receipts(client: Client) -> None:
    client.force_login(staff("view_queue"))
    assert client.get(url("failures")).status_code == 403
    client.force_login(staff("view_receipt"))
    assert client.get(url("failures")).status_code == 200


# ------------------------------------------------------------------ causes and fates

BOUNCED = ["ann@example.com", "bob@example.org", "c.d@mail.example.net", "eve@x.io", "f@y.dev"]
HOOKS = [
    "https://a.example.com/hook",
    "https://b.example.com/hook?token=abc123",
    "http://10.0.0.7:8080/callback/17",
    "https://hooks.example.org/services/T0/B0/XXXX",
    "https://c.example.com/",
]


def bounce(address: str) -> str:
    return (
        f"smtplib.SMTPRecipientsRefused: {{'{address}': (550, b'5.1.1 <{address}>: "
        "Recipient address rejected: User unknown')}\nTraceback follows"
    )


def failed_then(mid: str, error: str, queue: str, *outcomes: str) -> list[Receipt]:
    """Receipts of one message, oldest first: each outcome a minute after the last."""
    start = timezone.now() - timedelta(minutes=len(outcomes) + 1)
    rows = []
    for n, outcome in enumerate(outcomes):
        at = start + timedelta(minutes=n)
        rows.append(
            Receipt(
                message_id=mid,
                queue_name=queue,
                outcome=outcome,
                error="" if outcome == "acked" else error,
                received_at=at,
                finished_at=at,
                attempt=n + 1,
            )
        )
    return rows


@pytest.fixture
def storm() -> None:
    """Five bounced addresses (three dead-lettered, one rejected, one still retrying) and
    five dead webhooks (two recovered: acked later, one of them replayed from the DLQ)."""
    rows: list[Receipt] = []
    fates = [
        ("requeued", "dead_lettered"),
        ("requeued", "dead_lettered"),
        ("dead_lettered",),
        ("rejected",),
        ("requeued", "requeued"),
    ]
    for n, (address, outcomes) in enumerate(zip(BOUNCED, fates, strict=True)):
        rows += failed_then(f"mail-{n}", bounce(address), "mail.send", *outcomes)
    hook_fates = [
        ("requeued", "acked"),
        ("dead_lettered", "acked"),  # replayed from the dead-letter queue, then acked
        ("dead_lettered",),
        ("dead_lettered",),
        ("dead_lettered",),
    ]
    for n, (hook, outcomes) in enumerate(zip(HOOKS, hook_fates, strict=True)):
        error = f"WebhookError: POST {hook} failed: 503 Service Unavailable"
        rows += failed_then(f"hook-{n}", error, "webhooks.deliver", *outcomes)
    Receipt.objects.bulk_create(rows)


def test_five_bounced_addresses_are_one_group_with_five_variants(storm) -> None:
    (group,) = build_triage(queue="mail.send").groups
    assert group.cause == (
        "smtplib.SMTPRecipientsRefused: {'<email>': (<num>, b'<num> <<email>>: "
        "Recipient address rejected: User unknown')}"
    )
    assert group.exception == "smtplib.SMTPRecipientsRefused"
    assert group.variant_count == 5
    assert {v.line for v in group.variants} == {bounce(a).split("\n")[0] for a in BOUNCED}
    assert (group.total, group.messages) == (8, 5)
    fates = (group.recovered, group.dead_lettered, group.rejected, group.retrying)
    assert fates == (0, 3, 1, 1)


def test_five_dead_webhooks_are_one_group_and_recovered_ones_are_told_apart(storm) -> None:
    (group,) = build_triage(queue="webhooks.deliver").groups
    assert group.cause == "WebhookError: POST <url> failed: <num> Service Unavailable"
    assert (group.variant_count, group.total, group.messages) == (5, 5, 5)
    fates = (group.recovered, group.dead_lettered, group.rejected, group.retrying)
    assert fates == (2, 3, 0, 0)


def test_page_filters_by_queue_outcome_and_window(admin_client: Client, storm, failures) -> None:
    def causes(**query: str) -> set[tuple[str, str]]:
        page = admin_client.get(url("failures"), query)
        assert page.status_code == 200
        return {(r.group.queue, r.group.cause) for r in page.context["rows"]}

    everything = causes()
    assert len(everything) == 5
    assert {queue for queue, _cause in causes(queue="mail.send")} == {"mail.send"}
    assert causes(outcome="rejected") == {
        ("orders", "ValueError: bad"),
        ("mail.send", next(c for q, c in everything if q == "mail.send")),
    }
    # The KeyError three days ago is outside the last 24 hours; the rest are inside.
    day = admin_client.get(url("failures"), {"window": "24h", "queue": "orders"})
    (key,) = [r.group for r in day.context["rows"] if r.group.exception == "KeyError"]
    assert key.total == 3
    hour = causes(window="1h")
    assert ("mails", "KeyError: '<value>'") not in hour and ("orders", "ValueError: bad") in hour
    # An unknown outcome or window is ignored, not an error.
    assert causes(outcome="acked", window="forever") == everything
    selected = admin_client.get(url("failures"), {"queue": "mail.send"}).content.decode()
    assert '<option value="mail.send" selected>' in selected


def sidebar(response) -> dict[str, str]:
    """The receipt list's filters that are set: title → the choice shown selected."""
    shown = {}
    for spec in response.context["cl"].filter_specs:
        for choice in spec.choices(response.context["cl"]):
            if choice["selected"] and choice["query_string"] != "?":
                shown[str(spec.title)] = str(choice["display"])
    return shown


def test_group_links_filter_the_receipts_and_the_sidebar_shows_it(
    admin_client: Client, storm
) -> None:
    page = admin_client.get(url("failures"), {"queue": "mail.send"})
    (row,) = page.context["rows"]
    receipts = admin_client.get(row.link)
    assert receipts.status_code == 200
    shown = list(receipts.context["cl"].result_list)
    assert len(shown) == row.group.total == 8
    assert {r.message_id for r in shown} == {f"mail-{n}" for n in range(5)}
    filters = sidebar(receipts)
    assert filters["queue"] == "mail.send"
    assert filters["cause"] == row.group.cause
    assert filters["outcome"].startswith("failed")
    assert "received since" in filters
    assert "mail.send" in receipts.content.decode()
    # Each fate's count links to the group's receipts whose message met it.
    dead = admin_client.get(row.fate_links["dead_lettered"])
    assert {r.message_id for r in dead.context["cl"].result_list} == {"mail-0", "mail-1", "mail-2"}
    assert len(dead.context["cl"].result_list) == 5  # mail-0 and mail-1 were requeued first
    assert sidebar(dead)["what became of the message"] == "dead-lettered"
    retrying = admin_client.get(row.fate_links["retrying"])
    assert {r.message_id for r in retrying.context["cl"].result_list} == {"mail-4"}


def test_recovered_count_links_to_the_failures_of_messages_acked_later(
    admin_client: Client, storm
) -> None:
    page = admin_client.get(url("failures"), {"queue": "webhooks.deliver"})
    (row,) = page.context["rows"]
    assert row.group.recovered == 2
    recovered = admin_client.get(row.fate_links["recovered"])
    shown = recovered.context["cl"].result_list
    assert {(r.message_id, r.outcome) for r in shown} == {
        ("hook-0", "requeued"),
        ("hook-1", "dead_lettered"),
    }
    assert sidebar(recovered)["what became of the message"] == "recovered (acked later)"
    everything = admin_client.get(row.link).context["cl"].result_list
    assert len(everything) == 5


def test_an_older_link_shows_its_filters_in_the_sidebar(admin_client: Client, failures) -> None:
    old = admin_client.get(
        url("receipt_changelist"),
        {
            "queue_name": "server-named.amq.gen-1",
            "outcome__in": "requeued,dead_lettered,rejected",
            "error__startswith": "KeyError",
        },
    )
    assert old.status_code == 200
    filters = sidebar(old)
    assert filters["outcome"].startswith("failed")
    assert filters["queue"] == "server-named.amq.gen-1"  # not in the Queue table: still shown


def test_queue_names_break_only_between_their_parts(admin_client: Client) -> None:
    Receipt.objects.bulk_create([receipt("billing.invoice-created.v2", "ValueError: x")])
    content = admin_client.get(url("failures")).content.decode()
    assert "billing.<wbr>invoice-<wbr>created.<wbr>v2" in content
    assert "word-break: keep-all" in content


# ------------------------------------------------------------------ receipt search


def searched(client: Client, text: str) -> set[str]:
    page = client.get(url("receipt_changelist"), {"q": text})
    assert page.status_code == 200
    return {r.message_id for r in page.context["cl"].result_list}


def test_receipt_search_finds_error_text_and_message_id_prefixes(
    admin_client: Client, failures
) -> None:
    assert searched(admin_client, "KeyError") == {"a", "b", "c", "e", "old"}
    assert searched(admin_client, "keyerror") == {"a", "b", "c", "e", "old"}  # any case
    assert searched(admin_client, "valueerror bad") == {"d"}  # every word
    assert searched(admin_client, "second line") == {"d"}  # beyond the first line too
    assert searched(admin_client, "ol") == {"old"}  # short: message id prefix only
    assert searched(admin_client, "nothing-like-it") == set()


def test_error_search_uses_the_trigram_index_on_postgresql(admin_client: Client) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'messaging_rcpt_error_trgm'"
        )
        (definition,) = cursor.fetchone()
    assert "gin_trgm_ops" in definition and "WHERE (error <> ''::text)" in definition
    admin = ReceiptAdmin(Receipt, site)
    queryset, _ = admin.get_search_results(None, Receipt.objects.all(), "KeyError")
    with connection.cursor() as cursor:
        # An empty table: leave the planner only bitmap scans, to see which index serves
        # the search (the measurement at a million rows: see the report).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = queryset.explain()
    assert "messaging_rcpt_error_trgm" in plan, plan


def test_the_fate_filter_is_offered_beside_a_cause_only(admin_client: Client, storm) -> None:
    plain = admin_client.get(url("receipt_changelist"))
    titles = {str(spec.title) for spec in plain.context["cl"].filter_specs if spec.has_output()}
    assert "what became of the message" not in titles and "cause" not in titles
    page = admin_client.get(url("failures"), {"queue": "mail.send"})
    linked = admin_client.get(page.context["rows"][0].link)
    titles = {str(spec.title) for spec in linked.context["cl"].filter_specs if spec.has_output()}
    assert {"what became of the message", "cause", "received since"} <= titles
