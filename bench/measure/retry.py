"""Retry delays on the broker (rows retry-base-DB and retry-DB): ``runconsumer --prefetch
10`` on N good messages, alone and behind one message that fails on every attempt with
``RETRY_DELAY`` > 0. The good messages' rate is timed from their receipts (first
received to last finished); the failing one's attempts must be at least the delays apart
(from its receipts) and it must end in ``<queue>.dlq``."""

from __future__ import annotations

import json
import uuid
from argparse import Namespace

import pika

from bench import raw
from bench.measure.base import Context
from bench.process import BenchError, command_env, manage, run
from bench.provision import Databases
from bench.report import Row

PREFETCH = 10


def consume(ctx: Context, row: Row, kind: str, poison: bool) -> None:
    """One run on a new queue; the sample is the good messages' receipt span."""
    from messaging.amqp.retry_delays import delay_queue_name, delay_steps
    from messaging.models import Receipt

    a = ctx.args
    queue = ctx.queues.new(f"retry.{'poison' if poison else 'base'}.{kind}")
    steps = delay_steps(a.retry_attempts, a.retry_delay, 30.0)
    Databases.flush(kind, Receipt)
    try:
        poison_id = _publish_poison(ctx.url, queue) if poison else None
        raw.fill(ctx.url, queue, a.retry_n, ctx.body)
        done = run(_command(queue, max(steps, default=0) + 3), _env(kind, a), 300 + sum(steps))
        left = raw.depth(ctx.url, queue)
        dead = raw.depth(ctx.url, f"{queue}.dlq") or 0
    finally:
        ctx.queues.drop(queue)
        delay_queues = [delay_queue_name(queue, s) for s in steps]
        raw.delete_queues(ctx.url, [n for n in delay_queues if n])
    if done.returncode != 0:
        raise BenchError(done.failure())
    seconds = _good_span(kind, queue, a.retry_n, left)
    if poison_id is not None:
        row.note = _check_poison(kind, queue, poison_id, steps, dead, a.retry_attempts)
    ctx.sample(row, seconds)


def _command(queue: str, idle: float) -> list[str]:
    return manage(
        "runconsumer",
        queue,
        "--prefetch",
        str(PREFETCH),
        "--idle-timeout",
        f"{idle:g}",
        "--handler",
        "bench.handlers.discard_unless_poison",
        "-v",
        "0",
    )


def _env(kind: str, a: Namespace) -> dict[str, str]:
    env = command_env(kind)
    env["BENCH_MESSAGING"] = json.dumps(
        {"RETRY_DELAY": a.retry_delay, "RETRY_MAX_DELAY": 30.0, "MAX_ATTEMPTS": a.retry_attempts}
    )
    return env


def _publish_poison(url: str, queue: str) -> str:
    """The failing message, first in the queue (the good ones are behind it)."""
    message_id = str(uuid.uuid4())
    props = pika.BasicProperties(delivery_mode=2, message_id=message_id, headers={"poison": 1})
    with raw.connection(url) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True)
        channel.confirm_delivery()
        channel.basic_publish("", queue, b"poison", props)
    return message_id


def _good_span(kind: str, queue: str, count: int, left: int | None) -> float:
    from django.db.models import Count, Max, Min

    from messaging.models import Receipt

    stats = (
        Receipt.objects.using(kind)
        .filter(queue_name=queue, outcome=Receipt.Outcome.ACKED)
        .aggregate(n=Count("id"), first=Min("received_at"), last=Max("finished_at"))
    )
    if stats["n"] != count or left:
        raise BenchError(f"{stats['n']} acked receipts of {count}, {left} left in the queue")
    return (stats["last"] - stats["first"]).total_seconds()


def _check_poison(
    kind: str, queue: str, message_id: str, steps: list[float], dead: int, attempts: int
) -> str:
    """Its attempts from its receipts: each gap at least its delay, then the DLQ."""
    from messaging.models import Receipt

    receipts = list(
        Receipt.objects.using(kind)
        .filter(queue_name=queue, message_id=message_id)
        .order_by("id")
        .values_list("attempt", "outcome", "received_at", "finished_at")
    )
    outcomes = [(n, outcome) for n, outcome, _, _ in receipts]
    expected = [(n, "requeued") for n in range(1, attempts)] + [(attempts, "dead_lettered")]
    if outcomes != expected or dead != 1:
        raise BenchError(f"failing message: receipts {outcomes}, {dead} in the DLQ")
    gaps = [
        (later[2] - earlier[3]).total_seconds()
        for earlier, later in zip(receipts, receipts[1:], strict=False)
    ]
    short = [(g, s) for g, s in zip(gaps, steps, strict=False) if g < s]
    if short:
        raise BenchError(f"failing message's attempts closer than the delays: {short}")
    shown = ", ".join(f"{g:.1f}s" for g in gaps)
    return f"+1 failing: {attempts} attempts, gaps {shown}, then in the DLQ"
