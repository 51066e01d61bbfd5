"""The phases of ``--only``: which rows each one measures, with their labels, in the
table's order. Each row's measurement is one function of this package."""

from __future__ import annotations

from bench.measure import admin, calls, memory, publish, raw_consume, retry, runconsumer
from bench.measure.base import Context
from bench.process import KINDS, log


def run_publish(ctx: Context) -> None:
    """P0, P1, then per database s-DB and send-DB back to back."""
    a, r = ctx.args, ctx.results
    row = r.row("P0", "publish: raw pika, persistent, no confirms", messages=a.publish_n)
    ctx.measure(row, lambda: publish.raw_publish(ctx, row, "publish_no_confirm", a.publish_n))
    p1 = r.row("P1", "publish: raw pika, confirm each message", messages=a.confirm_n)
    ctx.measure(p1, lambda: publish.raw_publish(ctx, p1, "publish_confirm_each", a.confirm_n))
    for kind in a.dbs:
        driver = "sqlite3" if kind == "sqlite" else "psycopg"
        floor = r.row(
            f"s-{kind}",
            f"publish (floor of send-{kind}): raw pika + {driver}, send's INSERT per chunk, "
            f"pipelined confirms, UPDATE to published, {KINDS[kind]}",
            messages=a.publish_n,
        )
        ctx.measure(floor, lambda row=floor, kind=kind: publish.send_floor(ctx, row, kind))
        row = r.row(f"send-{kind}", f"publish: `send --count`, {KINDS[kind]}", messages=a.publish_n)
        ctx.measure(row, lambda row=row, kind=kind: publish.send_count(ctx, row, kind))


#: publish() rows of the calls phase: key part, label part, spec.
CALL_CASES = [
    ("out", "outside a transaction", {"per_txn": 0}),
    ("atomic1", "1 per `atomic()`", {"per_txn": 1}),
    ("atomic10", "10 per `atomic()`", {"per_txn": 10}),
]


def run_calls(ctx: Context) -> None:
    """calls-P1 (raw pika, one connection, a confirm each), then per database the floor
    (floor-DB) and publish() per call (call-CASE-DB, call-CASE-8t-DB), then Celery."""
    a, r = ctx.args, ctx.results
    p1 = r.row("calls-P1", "publish: raw pika, one connection, confirm each", messages=a.calls_n)
    ctx.measure(p1, lambda: publish.raw_publish(ctx, p1, "publish_confirm_each", a.calls_n))
    for kind in a.dbs:
        label = "publish: ORM INSERT + confirmed publish on a kept channel + UPDATE"
        floor = r.row(f"floor-{kind}", f"{label}, {KINDS[kind]}", messages=a.calls_n)
        ctx.measure(floor, lambda row=floor, kind=kind: calls.calls(ctx, row, kind, mode="floor"))
        for threads in (1, 8):
            for key, text, spec in CALL_CASES:
                suffix = "" if threads == 1 else f"-{threads}t"
                who = "" if threads == 1 else f", {threads} threads"
                row = r.row(
                    f"call-{key}{suffix}-{kind}",
                    f"publish: `publish()` {text}{who}, {KINDS[kind]}",
                    messages=a.calls_n,
                )
                ctx.measure(
                    row,
                    lambda row=row, kind=kind, spec=spec, threads=threads: calls.calls(
                        ctx, row, kind, mode="publish", threads=threads, **spec
                    ),
                )
        latency = r.row(
            f"call-latency-{kind}",
            f"publish: `publish()` 1 per `atomic()`, steady 200/s from 8 threads, {KINDS[kind]} "
            "(commit → confirm in the note)",
            messages=a.calls_n,
        )
        ctx.measure(
            latency,
            lambda row=latency, kind=kind: calls.calls(
                ctx, row, kind, mode="latency", threads=8, rate=200
            ),
        )
    celery = r.row("celery", "publish: Celery `send_task`, confirm_publish", messages=a.calls_n)
    ctx.measure(celery, lambda: calls.calls(ctx, celery, None, mode="celery"))


def run_consume(ctx: Context, high: bool, p1: bool) -> None:
    """``high``: a, then per database c-DB and pPREFETCH-DB back to back; ``p1``: b-DB
    then p1-DB, back to back."""
    a, r = ctx.args, ctx.results
    if high:
        label = f"consume: raw pika, prefetch {a.prefetch}, multiple-ack every {a.ack_every}"
        row = r.row("a", f"{label}, no DB", messages=a.n)
        ctx.measure(row, lambda: raw_consume.multi_ack(ctx, row))
    for kind in a.dbs:
        if p1:
            _prefetch_one(ctx, kind)
        if high:
            _prefetch_high(ctx, kind)


def _prefetch_one(ctx: Context, kind: str) -> None:
    """b-DB (raw INSERT + commit + ack) and p1-DB (runconsumer --prefetch 1)."""
    a, r = ctx.args, ctx.results
    driver = "sqlite3" if kind == "sqlite" else "psycopg"
    row = r.row(
        f"b-{kind}",
        f"consume (floor of p1-{kind}): raw pika, prefetch 1, {driver} INSERT + commit + ack, "
        f"{KINDS[kind]}",
        messages=a.n_p1,
    )
    ctx.measure(row, lambda: raw_consume.insert_commit_ack(ctx, row, kind))
    p1 = r.row(f"p1-{kind}", f"consume: `runconsumer` prefetch 1, {KINDS[kind]}", messages=a.n_p1)
    ctx.measure(p1, lambda: runconsumer.consume(ctx, p1, kind, 1, 1, a.n_p1))


def _prefetch_high(ctx: Context, kind: str) -> None:
    """c-DB (raw COPY / executemany + commit + multiple-ack per batch) and pPREFETCH-DB."""
    a, r = ctx.args, ctx.results
    app = f"p{a.prefetch}-{kind}"
    write = "psycopg binary COPY" if kind == "postgres" else "sqlite3 executemany"
    row = r.row(
        f"c-{kind}",
        f"consume (floor of {app}): raw pika, prefetch {a.prefetch}, per {a.batch_size} "
        f"{write} + commit + multiple-ack, {KINDS[kind]}",
        messages=a.n,
    )
    ctx.measure(row, lambda: raw_consume.copy_commit_ack(ctx, row, kind))
    high = r.row(
        app,
        f"consume: `runconsumer` prefetch {a.prefetch} batch {a.batch_size}, {KINDS[kind]}",
        messages=a.n,
    )
    ctx.measure(
        high,
        lambda: runconsumer.consume(ctx, high, kind, a.prefetch, a.batch_size, a.n),
    )


def run_memory(ctx: Context) -> None:
    """mem-DB: PostgreSQL if listed, else the first of ``--dbs``."""
    a = ctx.args
    kind = "postgres" if "postgres" in a.dbs else a.dbs[0]
    row = ctx.results.row(
        f"mem-{kind}",
        f"memory: `runconsumer` RSS, prefetch {a.prefetch} batch {a.batch_size}, {KINDS[kind]}",
        messages=a.mem_n,
    )
    ctx.measure(row, lambda: memory.memory(ctx, row, kind))


def run_overview(ctx: Context) -> None:
    """admin-DB and triage-DB (on the same data), or "not available" rows when the
    overview does not exist."""
    a = ctx.args
    available = admin.overview_available()
    for kind in a.dbs:
        row = ctx.results.row(
            f"admin-{kind}",
            f"admin: overview page, {a.overview_rows:,} receipts, {KINDS[kind]}",
            messages=a.overview_rows,
            rate_unit=False,
        )
        if not available:
            row.value = "not available"
            row.note = "no URL named admin:messaging_overview"
            log(f"{row.key}: not available (no admin:messaging_overview URL)")
            continue
        triage = ctx.results.row(
            f"triage-{kind}",
            f"admin: failure triage page, {a.overview_rows:,} receipts, {KINDS[kind]}",
            messages=a.overview_rows,
            rate_unit=False,
        )
        ctx.measure(row, lambda row=row, kind=kind, t=triage: admin.overview(ctx, row, kind, t))


def run_retry(ctx: Context) -> None:
    """retry-base-DB, then retry-DB (the same with one always-failing message first)."""
    a = ctx.args
    for kind in a.dbs:
        base = ctx.results.row(
            f"retry-base-{kind}",
            f"consume: `runconsumer` prefetch {retry.PREFETCH}, good messages only, {KINDS[kind]}",
            messages=a.retry_n,
        )
        ctx.measure(base, lambda row=base, kind=kind: retry.consume(ctx, row, kind, False))
        row = ctx.results.row(
            f"retry-{kind}",
            f"consume: the same behind 1 always failing, RETRY_DELAY={a.retry_delay:g}, "
            f"MAX_ATTEMPTS={a.retry_attempts}, {KINDS[kind]}",
            messages=a.retry_n,
        )
        ctx.measure(row, lambda row=row, kind=kind: retry.consume(ctx, row, kind, True))
