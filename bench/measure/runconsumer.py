"""``manage.py runconsumer`` on a filled queue (rows p1-DB and pPREFETCH-DB), timed from
its own receipts."""

from __future__ import annotations

from bench import raw
from bench.measure.base import Context
from bench.process import BenchError, command_env, manage, run
from bench.provision import Databases
from bench.report import Row


def command(ctx: Context, queue: str, prefetch: int, batch: int, threads: int = 1) -> list[str]:
    """``runconsumer QUEUE`` with the discarding handler, stopping once idle."""
    return manage(
        "runconsumer",
        queue,
        "--threads",
        str(threads),
        "--prefetch",
        str(prefetch),
        "--batch-size",
        str(batch),
        "--idle-timeout",
        f"{ctx.args.idle_timeout:g}",
        "--handler",
        "messaging.consumer.handlers.discard",
        "-v",
        "0",
    )


def consume(
    ctx: Context, row: Row, kind: str, prefetch: int, batch: int, count: int, threads: int = 1
) -> None:
    """Fill a new queue with ``count`` messages, empty the receipts table, run
    ``runconsumer`` until it is idle; the sample is :func:`receipt_span`."""
    from messaging.models import Receipt

    queue = ctx.queues.new(f"consume.p{prefetch}.{kind}")
    Databases.flush(kind, Receipt)
    try:
        raw.fill(ctx.url, queue, count, ctx.body)
        done = run(
            command(ctx, queue, prefetch, batch, threads),
            command_env(kind),
            timeout=120 + count / 20,
        )
        left = raw.depth(ctx.url, queue)
    finally:
        ctx.queues.drop(queue)
    if done.returncode != 0:
        raise BenchError(done.failure())
    seconds = receipt_span(kind, queue, count, left)
    row.note = f"process wall {done.wall:.1f}s incl. idle {ctx.args.idle_timeout:g}s"
    ctx.sample(row, seconds)


def receipt_span(kind: str, queue: str, count: int, left: int | None) -> float:
    """Seconds from the first delivery (earliest ``received_at``) to the last receipt
    (latest ``finished_at``), after checking every message has its acked receipt."""
    from django.db.models import Count, Max, Min, Q

    from messaging.models import Receipt

    stats = (
        Receipt.objects.using(kind)
        .filter(queue_name=queue)
        .aggregate(
            n=Count("id"),
            acked=Count("id", filter=Q(outcome=Receipt.Outcome.ACKED)),
            first=Min("received_at"),
            last=Max("finished_at"),
        )
    )
    if stats["acked"] != count or left:
        raise BenchError(
            f"{stats['acked']} acked receipts of {count} ({stats['n']} receipts), "
            f"{left} messages left in the queue"
        )
    return (stats["last"] - stats["first"]).total_seconds()
