"""The raw pika consumers: (a) high prefetch, multiple acks, no database; and the
same-work floors of ``runconsumer``, which write the receipt rows it writes into the same
receipts table: (b) prefetch 1, one INSERT + commit + ack per message
(:func:`bench.raw.consume_db`, the floor of p1-DB); (c) high prefetch, per batch one
COPY / executemany + commit + multiple-ack (:func:`bench.raw.consume_db_batch`, the
floor of pPREFETCH-DB)."""

from __future__ import annotations

import json
import re
from typing import Any

from bench import raw
from bench.measure.base import Context
from bench.process import BenchError, run_raw
from bench.provision import Databases
from bench.report import Row

#: Receipt fields the raw loops (b, c) fill per message, from the delivery and the clock.
PER_MESSAGE = {
    "message": "message_id",
    "delivery_tag": "delivery_tag",
    "redelivered": "redelivered",
    "consumer_tag": "consumer_tag",
    "exchange": "exchange",
    "routing_key": "routing_key",
    "received_at": "received_at",
    "finished_at": "finished_at",
}
#: Fields the raw process fills once, as ``runconsumer`` does (name ``host:pid``).
PER_PROCESS = {"consumer_name": "name", "consumer_host": "host", "consumer_pid": "pid"}


def multi_ack(ctx: Context, row: Row) -> None:
    """(a): prefetch N, ``basic_ack(multiple=True)`` every ``--ack-every``, no DB."""
    a = ctx.args
    queue = ctx.queues.new("consume.raw-a")
    try:
        raw.fill(ctx.url, queue, a.n, ctx.body)
        spec = {
            "mode": "consume_multi_ack",
            "queue": queue,
            "count": a.n,
            "prefetch": a.prefetch,
            "ack_every": a.ack_every,
        }
        result = run_raw(spec, timeout=60 + a.n / 100)
        left = raw.depth(ctx.url, queue)
    finally:
        ctx.queues.drop(queue)
    if left:
        raise BenchError(f"{left} messages left in the queue")
    ctx.sample(row, result["seconds"])


def insert_commit_ack(ctx: Context, row: Row, kind: str) -> None:
    """(b): prefetch 1; per message one receipt INSERT into the emptied receipts table,
    commit, then ack. Checked: one row per message, the queue empty."""
    _with_receipts(ctx, row, kind, "raw-b", ctx.args.n_p1, {"mode": "consume_db"})


def copy_commit_ack(ctx: Context, row: Row, kind: str) -> None:
    """(c): prefetch ``--prefetch``; per ``--batch-size`` deliveries their receipt rows
    into the emptied receipts table by COPY (PostgreSQL) / executemany (SQLite), commit,
    then one multiple-ack. Checked: one row per message, the queue empty."""
    a = ctx.args
    spec = {"mode": "consume_db_batch", "prefetch": a.prefetch, "batch": a.batch_size}
    _with_receipts(ctx, row, kind, "raw-c", a.n, spec)


def _with_receipts(
    ctx: Context, row: Row, kind: str, what: str, count: int, spec: dict[str, Any]
) -> None:
    """One raw database loop on a new queue of ``count`` messages, the receipts table
    emptied first; the sample is the loop's own time."""
    from messaging.models import Receipt

    queue = ctx.queues.new(f"consume.{what}.{kind}")
    Databases.flush(kind, Receipt)
    try:
        raw.fill(ctx.url, queue, count, ctx.body)
        spec = {**spec, "queue": queue, "count": count, "database": receipt_insert(kind, queue)}
        result = run_raw(spec, timeout=120 + count / 20)
        left = raw.depth(ctx.url, queue)
    finally:
        ctx.queues.drop(queue)
    rows = Receipt.objects.using(kind).filter(queue_name=queue, outcome="acked").count()
    if left or rows != count:
        raise BenchError(f"{rows} rows written, {left} messages left in the queue")
    ctx.sample(row, result["seconds"])


def receipt_insert(using: str, queue: str) -> dict[str, Any]:
    """The raw loops' rows of the receipts table of the database alias ``using``: one
    ``acked`` Receipt row with every column, valued as ``runconsumer`` values them
    (``error`` and ``traceback`` empty, attempt 1, consumer ``host:pid``; exchange and
    routing key from the delivery), and on PostgreSQL the columns' types for a binary
    COPY. The spec of :class:`bench.raw_db.Receipts`."""
    from django.db import connections

    from messaging.models import Receipt

    conn = connections[using]
    constant = {"queue_name": queue, "outcome": "acked", "attempt": 1, "error": "", "traceback": ""}
    names, columns = [], []
    fields = [f for f in Receipt._meta.concrete_fields if not f.primary_key]
    for f in fields:
        names.append(conn.ops.quote_name(f.column))
        if f.name in PER_MESSAGE:
            columns.append({"var": PER_MESSAGE[f.name]})
        elif f.name in PER_PROCESS:
            columns.append({"process": PER_PROCESS[f.name]})
        else:
            value = constant[f.name] if f.name in constant else f.get_default()
            try:
                json.dumps(value)
            except TypeError:
                value = str(value)
            columns.append({"const": value})
    sqlite = conn.vendor == "sqlite"
    # PostgreSQL: the columns' types for a binary COPY (varchar(255) → varchar), as the
    # app's receipt COPY sends its rows.
    types = [] if sqlite else [re.sub(r"\(.*?\)", "", f.db_type(conn)).strip() for f in fields]
    return {
        "kind": "sqlite" if sqlite else "postgres",
        "table": conn.ops.quote_name(Receipt._meta.db_table),
        "names": names,
        "columns": columns,
        "types": types,
        **where(conn.settings_dict),
    }


def where(db: dict[str, Any]) -> dict[str, str]:
    """How sqlite3 / psycopg reach the database of a Django settings dict."""
    if db["ENGINE"].endswith("sqlite3"):
        return {"path": str(db["NAME"])}
    from psycopg.conninfo import make_conninfo

    params = {"dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD")}
    params.update(host=db.get("HOST"), port=db.get("PORT"))
    # libpq's own options (sslmode=...); not Django's (isolation_level, pool, ...).
    params.update({k: v for k, v in db.get("OPTIONS", {}).items() if k not in _DJANGO_OPTIONS})
    return {"dsn": make_conninfo(**{k: str(v) for k, v in params.items() if v})}


_DJANGO_OPTIONS = {
    "isolation_level", "server_side_binding", "pool", "assume_role", "prepare_threshold",
    "cursor_factory", "context",
}  # fmt: skip
