"""Publishing: raw pika (P0 without confirms, P1 a confirm each), ``send --count``
(send-DB) and its same-work floor (s-DB, :mod:`bench.raw_send`)."""

from __future__ import annotations

from typing import Any

from bench import raw
from bench.measure.base import Context
from bench.measure.raw_consume import where
from bench.process import BenchError, command_env, manage, run, run_raw
from bench.provision import Databases
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
    """send-DB: ``manage.py send QUEUE BODY --count N`` into the emptied messages table,
    timed from its rows (earliest ``created_at`` to latest ``published_at``)."""
    from messaging.models import Message

    count = ctx.args.publish_n
    queue = ctx.queues.new(f"publish.send.{kind}")
    Databases.flush(kind, Message)
    try:
        done = run(
            manage("send", queue, ctx.body.decode(), "--count", str(count), "-v", "0"),
            command_env(kind),
            timeout=120 + count / 50,
        )
        if done.returncode != 0:
            raise BenchError(done.failure())
        stats = check_published(ctx, kind, queue, count)
    finally:
        ctx.queues.drop(queue)
    row.note = f"process wall {done.wall:.1f}s"
    ctx.sample(row, (stats["last"] - stats["first"]).total_seconds())


def send_floor(ctx: Context, row: Row, kind: str) -> None:
    """s-DB: :mod:`bench.raw_send` does ``send --count``'s INSERTs, pipelined confirms
    and UPDATEs into the emptied messages table; timed inside its loop from the first
    ``created_at`` stamp to the last ``published_at`` stamp."""
    from messaging.models import Message

    count = ctx.args.publish_n
    queue = ctx.queues.new(f"publish.send-floor.{kind}")
    Databases.flush(kind, Message)
    try:
        spec = {
            "mode": "send_floor",
            "queue": queue,
            "count": count,
            "size": ctx.args.size,
            "send": send_spec(kind, queue, ctx.body),
        }
        result = run_raw(spec, timeout=120 + count / 50)
        check_published(ctx, kind, queue, count)
    finally:
        ctx.queues.drop(queue)
    row.note = f"last UPDATE committed at {result['committed']:.2f}s"
    ctx.sample(row, result["seconds"])


def check_published(ctx: Context, kind: str, queue: str, count: int) -> dict[str, Any]:
    """Every row of ``queue`` published and ``count`` messages on the broker, else
    :class:`BenchError`; the rows' count, earliest ``created_at``, latest ``published_at``."""
    from django.db.models import Count, Max, Min, Q

    from messaging.models import Message

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
    if stats["published"] != count or stats["n"] != count or ready != count:
        raise BenchError(
            f"{stats['published']} rows published of {stats['n']}, {ready} on the broker, "
            f"{count} expected"
        )
    return stats


def send_spec(using: str, queue: str, body: bytes) -> dict[str, Any]:
    """What :func:`bench.raw_send.send_floor` needs: ``send``'s sizes (chunk, confirms
    and chunks in flight, ids per UPDATE, confirm timeout) and :func:`message_spec`."""
    from messaging import conf
    from messaging.broker.publisher import DEFAULT_WINDOW
    from messaging.publishing.copies import COPIES_CHUNK, IN_FLIGHT
    from messaging.publishing.outbox import UPDATE_CHUNK

    return {
        "chunk": COPIES_CHUNK,
        "in_flight": IN_FLIGHT,
        "window": DEFAULT_WINDOW,
        "update_chunk": UPDATE_CHUNK,
        "confirm_timeout": float(conf.get("CONFIRM_TIMEOUT")),
        "database": message_spec(using, queue, body),
    }


def message_spec(using: str, queue: str, body: bytes) -> dict[str, Any]:
    """The ``Message`` rows ``send QUEUE BODY --count`` writes, as
    :class:`bench.raw_send.Messages` takes them: every column of the model, valued as
    ``send`` values them (its ``Queue`` row, made here; ``body``; ``pending``; the
    creator's lease), and the columns its UPDATE to ``published`` sets."""
    from django.db import connections
    from django.utils import timezone

    from messaging.models import Message, Queue
    from messaging.publishing.outbox import claim_lease, outcome_fields

    conn = connections[using]
    quote = conn.ops.quote_name
    row = Queue.objects.using(using).create(name=queue)
    template = Message(queue=row, body=body, headers={}, persistent=True)
    names, columns = [], []
    for f in Message._meta.concrete_fields:
        if f.primary_key:
            continue
        names.append(quote(f.column))
        if f.attname == "message_id":
            columns.append({"id": True})
        elif f.attname == "created_at":
            columns.append({"created": True})
        elif f.attname == "next_attempt_at":
            columns.append({"lease": claim_lease().total_seconds()})
        else:
            columns.append(_encoded(f.get_db_prep_save(getattr(template, f.attname), conn)))
    now = timezone.now()
    published = {}
    for name, value in outcome_fields(None, attempts=1, now=now, user_id=None).items():
        f = Message._meta.get_field(name)
        encoded = {"now": True} if value is now else _encoded(f.get_db_prep_save(value, conn))
        published[quote(f.column)] = encoded
    return {
        "kind": "sqlite" if conn.vendor == "sqlite" else "postgres",
        "table": quote(Message._meta.db_table),
        "names": names,
        "columns": columns,
        "published": published,
        "attempts": quote(Message._meta.get_field("attempts").column),
        "message_id": quote(Message._meta.get_field("message_id").column),
        **where(conn.settings_dict),
    }


def _encoded(value: Any) -> dict[str, Any]:
    """A prepared column value as JSON for the raw process."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    if type(value).__name__ == "Binary":  # psycopg's wrapper of bytes
        return {"bytes": bytes(value.obj).hex()}
    if type(value).__name__ == "Jsonb":
        return {"json": value.obj}
    return {"const": value}
