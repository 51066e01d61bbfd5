"""Publishing: raw pika (P0 without confirms, P1 a confirm each) and ``send --count``."""

from __future__ import annotations

from bench import raw
from bench.measure.base import Context
from bench.process import BenchError, command_env, manage, run, run_raw
from bench.report import Row


def raw_publish(ctx: Context, row: Row, mode: str, count: int) -> None:
    """P0 / P1: :mod:`bench.raw` publishes ``count`` messages to a new queue."""
    queue = ctx.queues.new(f"publish.{mode}")
    try:
        spec = {"mode": mode, "queue": queue, "count": count, "size": ctx.args.size}
        result = run_raw(spec, timeout=60 + count / 100)
    finally:
        ctx.queues.drop(queue)
    ctx.sample(row, result["seconds"])


def send_count(ctx: Context, row: Row, kind: str) -> None:
    """send-DB: ``manage.py send QUEUE BODY --count N``, timed from its rows (earliest
    ``created_at`` to latest ``published_at``); every row published, N on the broker."""
    from django.db.models import Count, Max, Min, Q

    from messaging.models import Message

    count = ctx.args.publish_n
    queue = ctx.queues.new(f"publish.send.{kind}")
    try:
        done = run(
            manage("send", queue, ctx.body.decode(), "--count", str(count), "-v", "0"),
            command_env(kind),
            timeout=120 + count / 50,
        )
        if done.returncode != 0:
            raise BenchError(done.failure())
        stats = (
            Message.objects.using(kind)
            .filter(queue__name=queue)
            .aggregate(
                n=Count("id"),
                published=Count("id", filter=Q(status=Message.Status.PUBLISHED)),
                first=Min("created_at"),
                last=Max("published_at"),
            )
        )
        ready = raw.depth(ctx.url, queue)
    finally:
        ctx.queues.drop(queue)
    if stats["published"] != count or ready != count:
        raise BenchError(
            f"{stats['published']} rows published, {ready} on the broker, {count} expected"
        )
    row.note = f"process wall {done.wall:.1f}s"
    ctx.sample(row, (stats["last"] - stats["first"]).total_seconds())
