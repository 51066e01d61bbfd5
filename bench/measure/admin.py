"""Row admin-DB: GETs of the admin overview page (:mod:`bench.overview`, in a process of
its own) over ``--overview-rows`` messages and receipts of the last hour."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.measure.base import Context
from bench.process import BenchError, command_env, log, run
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
