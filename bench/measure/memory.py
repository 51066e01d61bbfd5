"""Row mem-DB: ``runconsumer``'s RSS after ``--mem-first`` and after ``--mem-n`` messages."""

from __future__ import annotations

import time

from bench import raw
from bench.measure import runconsumer
from bench.measure.base import Context
from bench.process import MB, BenchError, Finished, command_env, finished, log, rss_of, started
from bench.provision import Databases
from bench.report import Check, Row


def memory(ctx: Context, row: Row, kind: str) -> None:
    """Consume ``--mem-n`` messages at high prefetch; the check is the RSS growth."""
    from messaging.models import Receipt

    a = ctx.args
    queue = ctx.queues.new(f"memory.{kind}")
    Databases.flush(kind, Receipt)
    log(f"memory: filling {a.mem_n:,} messages")
    try:
        raw.fill(ctx.url, queue, a.mem_n, ctx.body, timeout=600)
        first, last, peak, done = sample_rss(ctx, queue, kind)
        left = raw.depth(ctx.url, queue)
    finally:
        ctx.queues.drop(queue)
    if done.returncode != 0:
        raise BenchError(done.failure())
    seconds = runconsumer.receipt_span(kind, queue, a.mem_n, left)
    if not first or not last:
        raise BenchError("no RSS sample (the consumer finished too fast to sample)")
    growth = (last - first) / MB
    row.samples.append(seconds)
    row.value = f"{row.rate:,.0f}" if row.rate else "–"
    row.note = (
        f"RSS {first / MB:.1f} MB after {a.mem_first:,}, {last / MB:.1f} MB after "
        f"{a.mem_n:,}; peak {peak / MB:.1f} MB"
    )
    row.checks.append(Check(f"RSS growth {growth:+.1f} MB", "< 10 MB", growth < 10))
    log(f"{row.key}: {row.note}, growth {growth:+.1f} MB")


def sample_rss(ctx: Context, queue: str, kind: str) -> tuple[int, int, int, Finished]:
    """Run runconsumer on the filled ``queue`` and read its VmRSS: once at least
    ``mem_first`` messages are surely consumed (mem_n - ready - prefetch, from the
    broker), and last while it idles after the queue is drained."""
    a = ctx.args
    first = last = peak = 0
    start = time.perf_counter()
    cmd = runconsumer.command(ctx, queue, a.prefetch, a.batch_size)
    with (
        started(cmd, command_env(kind)) as (proc, out, err),
        raw.connection(ctx.url) as conn,
    ):
        deadline = time.monotonic() + 120 + a.mem_n / 20
        while proc.poll() is None and time.monotonic() < deadline:
            rss, hwm = rss_of(proc.pid)
            ready = raw.depth_on(conn, queue) or 0
            consumed = a.mem_n - ready - a.prefetch
            if rss:
                if not first and consumed >= a.mem_first:
                    first = rss
                    log(f"memory: RSS {rss / MB:.1f} MB at >= {consumed:,} consumed")
                if not ready:
                    last, peak = rss, max(peak, hwm)
            conn.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
            err.write("\nmemory run timed out")
        proc.wait()
        done = finished(proc, out, err, start)
    return first, last, peak, done
