"""Row admin-DB: GETs of the admin overview page (:mod:`bench.overview`, in a process of
its own) over ``--overview-rows`` messages and receipts of the last hour; triage-DB, the
failure triage page, and on PostgreSQL the page-NAME-postgres rows: every other admin
page of the app on the same data (:func:`page_urls`), each against the 0.5 s target."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.measure.base import Context
from bench.process import KINDS, BenchError, command_env, log, run
from bench.provision import overview_data
from bench.report import Row

OVERVIEW_QUEUES = 5


def overview_available() -> bool:
    """Whether this tree has the page (the URL ``admin:messaging_overview``)."""
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("admin:messaging_overview")
    except NoReverseMatch:
        return False
    return True


def overview(ctx: Context, row: Row, kind: str, triage: Row | None = None) -> None:
    """Fill the data, then time the page: on PostgreSQL once before VACUUM (rows not
    all-visible yet: index-only scans read the heap) and, for the sample, after it.
    ``triage``: the failure triage page's row, timed on the same data (after VACUUM)."""
    a = ctx.args
    pg = kind == "postgres"
    start = time.perf_counter()
    names = [ctx.queues.new(f"overview.{i}") for i in range(OVERVIEW_QUEUES)]
    overview_data.fill(kind, ctx.url, names, a.overview_rows, ctx.body)
    log(f"{row.key}: {a.overview_rows:,} messages + receipts in {time.perf_counter() - start:.0f}s")
    fresh = None
    if pg:
        # The state of the newest hour of a busy table (autovacuum comes after 20% new
        # rows). One cold and one warm GET: it can be slow.
        fresh = time_overview(ctx, row, kind, "not vacuumed", repeat=1)
        overview_data.vacuum(kind)
    result = time_overview(ctx, row, kind, "after VACUUM ANALYZE" if pg else "")
    if result is None:
        row.value = "not available"
        return
    row.samples.append(result["median"])
    row.value = "—"
    row.note = (
        f"median of {a.overview_repeat} warm GETs{' after VACUUM' if pg else ''}; "
        f"cold {result['cold']:.2f}s, {result['queries']} queries"
    )
    if fresh:
        row.note += f"; before VACUUM {fresh['median']:.2f}s warm, {fresh['cold']:.2f}s cold"
    if triage is not None:
        _triage(ctx, triage, kind)
        if pg:
            _pages(ctx, kind)


def _triage(ctx: Context, row: Row, kind: str) -> None:
    """The failure triage page on the overview's data (its failed receipts included)."""
    result = time_overview(ctx, row, kind, "triage", page="admin:messaging_failures")
    if result is None:
        row.value = "not available"
        return
    row.samples.append(result["median"])
    row.value = "—"
    row.note = (
        f"median of {ctx.args.overview_repeat} warm GETs; cold {result['cold']:.2f}s, "
        f"{result['queries']} queries"
    )


def time_overview(
    ctx: Context,
    row: Row,
    kind: str,
    label: str,
    repeat: int | None = None,
    page: str = "admin:messaging_overview",
) -> dict[str, Any] | None:
    """One ``python -m bench.overview`` run: its JSON line, None without the page."""
    repeat = repeat or ctx.args.overview_repeat
    done = run(
        [sys.executable, "-m", "bench.overview", str(repeat), page],
        command_env(kind),
        timeout=600,
    )
    if done.returncode != 0:
        raise BenchError(done.failure())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["available"]:
        return None
    log(
        f"{row.key}: {label + ': ' if label else ''}median {result['median']:.3f}s, "
        f"cold {result['cold']:.3f}s, best {result['best']:.3f}s, "
        f"{result['queries']} queries; slowest:"
    )
    for query in result.get("slowest", []):
        log(f"{row.key}:   {query['seconds']:.3f}s  {' '.join(query['sql'].split())}")
    return result


#: The page rows: name → label.
PAGES = {
    "failures-24h": "failures page, last 24 hours",
    "failure-group": "a failure group's receipts (the group link of the biggest group, 7 days)",
    "receipts": "receipt list",
    "receipt-search": "receipt search by error text (`warehouse`)",
    "messages": "message list",
    "messages-dead": "message list filtered by consumer outcome: dead-lettered",
    "messages-acked": "message list filtered by consumer outcome: acked",
    "message": "a message's page (a dead-lettered one)",
    "queues": "queue list (live broker state)",
    "consumers": "consumer list",
    "dead-letters": "dead-letter browser of a queue",
    "topology": "topology page",
}


def page_urls(kind: str) -> dict[str, str]:
    """The path (with its query string) of each :data:`PAGES` page on the bench data."""
    from django.urls import reverse
    from django.utils.http import urlencode

    from messaging.admin import failures_page as links
    from messaging.admin.failure_groups import build_triage
    from messaging.models import Message, Queue, Receipt

    triage = build_triage(using=kind)
    group = max(triage.groups, key=lambda g: g.total)
    group_query = {
        links.QUEUE_PARAM: group.queue,
        links.OUTCOME_PARAM: links.FAILED,
        links.CAUSE_PARAM: group.cause,
        links.SINCE_PARAM: triage.since.isoformat(),
    }
    dead = Receipt.objects.using(kind).filter(outcome="dead_lettered").exclude(message_id="")
    message = Message.objects.using(kind).filter(message_id__in=dead.values("message_id")[:1])
    queue = Queue.objects.using(kind).order_by("name").first()

    def admin(name: str, *args: object) -> str:
        return reverse(f"admin:messaging_{name}", args=args)

    return {
        "failures-24h": admin("failures") + "?window=24h",
        "failure-group": admin("receipt_changelist") + "?" + urlencode(group_query),
        "receipts": admin("receipt_changelist"),
        "receipt-search": admin("receipt_changelist") + "?q=warehouse",
        "messages": admin("message_changelist"),
        "messages-dead": admin("message_changelist") + "?fate=dead_lettered",
        "messages-acked": admin("message_changelist") + "?fate=acked",
        "message": admin("message_change", message.get().pk),
        "queues": admin("queue_changelist"),
        "consumers": admin("consumer_changelist"),
        "dead-letters": admin("queue_dead_letters", queue.pk),
        "topology": admin("topology"),
    }


def _pages(ctx: Context, kind: str) -> None:
    """One row per :data:`PAGES` page: the median of ``--overview-repeat`` warm GETs."""
    a = ctx.args
    urls = page_urls(kind)
    for name, label in PAGES.items():
        row = ctx.results.row(
            f"page-{name}-{kind}",
            f"admin: {label}, {a.overview_rows:,} receipts, {KINDS[kind]}",
            messages=a.overview_rows,
            rate_unit=False,
        )
        ctx.measure(row, lambda row=row, url=urls[name]: _page(ctx, row, kind, url))


def _page(ctx: Context, row: Row, kind: str, url: str) -> None:
    result = time_overview(ctx, row, kind, url, page=url)
    if result is None:
        row.value = "not available"
        return
    row.samples.append(result["median"])
    row.value = "—"
    row.note = (
        f"median of {ctx.args.overview_repeat} warm GETs; cold {result['cold']:.2f}s, "
        f"{result['queries']} queries"
    )
