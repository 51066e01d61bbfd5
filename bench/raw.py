"""Raw pika baselines, and the broker chores of the benchmark (fill, depth, delete).

No Django here: this is what a plain pika script does. The driver runs each baseline as
``python -m bench.raw '<json spec>'`` in its own process (like ``runconsumer``) and reads
one JSON line from stdout: ``{"messages": n, "seconds": s}``. Times are taken inside the
loop: consumers from the first delivery to the last ack (after the last commit for the
database loops), publishers from the first publish to the broker's answer to a
synchronous request sent after the last one (so every message has been routed).

The same-work floors of the app's rows write with :mod:`bench.raw_db`: b-DB (of p1-DB,
:func:`consume_db`), c-DB (of pPREFETCH-DB, :func:`consume_db_batch`) and s-DB (of
send-DB, :mod:`bench.raw_send`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pika
import pika.exceptions

from bench.raw_db import Receipts
from bench.raw_send import send_floor

PERSISTENT = pika.DeliveryMode.Persistent.value


def body_of(size: int) -> bytes:
    """A printable body of ``size`` bytes (it also travels on a command line)."""
    pattern = b"messaging-bench-0123456789-abcdefghijklmnopqrstuvwxyz-"
    return (pattern * (size // len(pattern) + 1))[:size]


def properties() -> pika.BasicProperties:
    """What every bench message carries: persistent, with a message_id (as ``send``)."""
    return pika.BasicProperties(delivery_mode=PERSISTENT, message_id=str(uuid.uuid4()))


@contextmanager
def connection(url: str) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield conn
    finally:
        try:
            if conn.is_open:
                conn.close()
        except Exception:  # noqa: BLE001 - closing must not mask the real error
            pass


def server_version(url: str) -> str:
    with connection(url) as conn:
        version = conn._impl.server_properties.get("version", "?")
    return version.decode() if isinstance(version, bytes) else str(version)


def declare(url: str, queue: str) -> None:
    with connection(url) as conn:
        conn.channel().queue_declare(queue=queue, durable=True)


def depth(url: str, queue: str) -> int | None:
    """Ready messages in ``queue``; None when it does not exist."""
    with connection(url) as conn:
        return depth_on(conn, queue)


def depth_on(conn: pika.BlockingConnection, queue: str) -> int | None:
    try:
        channel = conn.channel()
        result = channel.queue_declare(queue=queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    count = result.method.message_count
    channel.close()
    return count


def delete_queues(url: str, names: Iterable[str]) -> None:
    with connection(url) as conn:
        for name in names:
            with suppress(pika.exceptions.ChannelClosedByBroker):
                conn.channel().queue_delete(queue=name)


def fill(url: str, queue: str, count: int, body: bytes, timeout: float = 300) -> None:
    """Declare ``queue`` durable and put ``count`` persistent messages in it, fast (no
    confirms); returns once the broker reports them all ready."""
    with connection(url) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True)
        for _ in range(count):
            channel.basic_publish("", queue, body, properties())
        deadline = time.monotonic() + timeout
        while True:
            ready = channel.queue_declare(queue=queue, passive=True).method.message_count
            if ready >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"fill: only {ready} of {count} messages reached {queue}")
            conn.sleep(0.05)


# --------------------------------------------------------------------------- publishing


def publish_no_confirm(url: str, queue: str, count: int, body: bytes) -> dict[str, Any]:
    with connection(url) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True)
        start = time.perf_counter()
        for _ in range(count):
            channel.basic_publish("", queue, body, properties())
        channel.queue_declare(queue=queue, passive=True)  # a round trip after the last one
        seconds = time.perf_counter() - start
    return {"messages": count, "seconds": seconds}


def publish_confirm_each(url: str, queue: str, count: int, body: bytes) -> dict[str, Any]:
    with connection(url) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True)
        channel.confirm_delivery()
        start = time.perf_counter()
        for _ in range(count):
            channel.basic_publish("", queue, body, properties(), mandatory=True)
        seconds = time.perf_counter() - start
    return {"messages": count, "seconds": seconds}


# --------------------------------------------------------------------------- consuming


def consume_multi_ack(
    url: str, queue: str, count: int, prefetch: int, ack_every: int
) -> dict[str, Any]:
    """Baseline (a): prefetch N, ``basic_ack(multiple=True)`` every ``ack_every``, no DB."""
    state = {"n": 0, "start": 0.0}

    def on_message(channel: Any, method: Any, props: Any, body: bytes) -> None:
        if state["n"] == 0:
            state["start"] = time.perf_counter()
        state["n"] += 1
        if state["n"] % ack_every == 0 or state["n"] == count:
            channel.basic_ack(delivery_tag=method.delivery_tag, multiple=True)
        if state["n"] == count:
            channel.stop_consuming()

    with connection(url) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=prefetch)
        channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=False)
        channel.start_consuming()
        seconds = time.perf_counter() - state["start"]
    return {"messages": state["n"], "seconds": seconds}


def delivery_values(db: Receipts, method: Any, props: Any) -> dict[str, Any]:
    """What a receipt row takes from one delivery, as ``runconsumer`` takes it (its
    ``received_at`` now, when the delivery is in hand)."""
    return {
        "message_id": props.message_id or "",
        "delivery_tag": method.delivery_tag,
        "redelivered": bool(method.redelivered),
        "consumer_tag": method.consumer_tag,
        "exchange": method.exchange,
        "routing_key": method.routing_key,
        "received_at": db.now(),
    }


def consume_db(url: str, queue: str, count: int, database: dict[str, Any]) -> dict[str, Any]:
    """Floor b-DB (of p1-DB): prefetch 1; per message one INSERT, commit, then ack."""
    db = Receipts(database)
    state = {"n": 0, "start": 0.0}

    def on_message(channel: Any, method: Any, props: Any, body: bytes) -> None:
        if state["n"] == 0:
            state["start"] = time.perf_counter()
        values = delivery_values(db, method, props)
        values["finished_at"] = db.now()
        db.insert(values)
        channel.basic_ack(delivery_tag=method.delivery_tag)
        state["n"] += 1
        if state["n"] == count:
            channel.stop_consuming()

    try:
        with connection(url) as conn:
            channel = conn.channel()
            channel.basic_qos(prefetch_count=1)
            channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=False)
            channel.start_consuming()
            seconds = time.perf_counter() - state["start"]
    finally:
        db.close()
    return {"messages": state["n"], "seconds": seconds}


class BatchConsumer:
    """Floor c-DB (of pPREFETCH-DB): prefetch N; every ``batch`` deliveries (and the
    last, smaller one) their receipt rows in one ``COPY`` / ``executemany`` + commit,
    then one ``basic_ack(multiple=True)``. Each batch's rows share one ``finished_at``,
    taken before the write, as ``runconsumer``'s do."""

    def __init__(self, db: Receipts, count: int, batch: int) -> None:
        self.db, self.count, self.batch = db, count, batch
        self.pending: list[dict[str, Any]] = []
        self.n = 0
        self.start = 0.0

    def on_message(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        if self.n == 0:
            self.start = time.perf_counter()
        self.pending.append(delivery_values(self.db, method, props))
        self.n += 1
        if len(self.pending) == self.batch or self.n == self.count:
            self.flush(channel, method.delivery_tag)
        if self.n == self.count:
            channel.stop_consuming()

    def flush(self, channel: Any, last_tag: int) -> None:
        finished = self.db.now()
        rows = []
        for values in self.pending:
            values["finished_at"] = finished
            rows.append(self.db.row(values))
        self.db.insert_batch(rows)
        channel.basic_ack(delivery_tag=last_tag, multiple=True)
        self.pending.clear()


def consume_db_batch(
    url: str, queue: str, count: int, prefetch: int, batch: int, database: dict[str, Any]
) -> dict[str, Any]:
    """Run :class:`BatchConsumer`; timed from the first delivery to the last ack (sent
    after the last commit)."""
    db = Receipts(database)
    consumer = BatchConsumer(db, count, batch)
    try:
        with connection(url) as conn:
            channel = conn.channel()
            channel.basic_qos(prefetch_count=prefetch)
            channel.basic_consume(queue, consumer.on_message, auto_ack=False)
            channel.start_consuming()
            seconds = time.perf_counter() - consumer.start
    finally:
        db.close()
    return {"messages": consumer.n, "seconds": seconds}


# --------------------------------------------------------------------------- entry point


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    url, queue, count = spec["url"], spec["queue"], int(spec["count"])
    mode = spec["mode"]
    if mode == "publish_no_confirm":
        result = publish_no_confirm(url, queue, count, body_of(spec["size"]))
    elif mode == "publish_confirm_each":
        result = publish_confirm_each(url, queue, count, body_of(spec["size"]))
    elif mode == "consume_multi_ack":
        result = consume_multi_ack(url, queue, count, spec["prefetch"], spec["ack_every"])
    elif mode == "consume_db":
        result = consume_db(url, queue, count, spec["database"])
    elif mode == "send_floor":
        result = send_floor(url, queue, count, body_of(spec["size"]), spec["send"])
    elif mode == "consume_db_batch":
        args = spec["prefetch"], spec["batch"], spec["database"]
        result = consume_db_batch(url, queue, count, *args)
    else:
        raise SystemExit(f"bench.raw: unknown mode {mode!r}")
    result["pid"] = os.getpid()
    result["host"] = socket.gethostname()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
