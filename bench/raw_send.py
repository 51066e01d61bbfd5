"""Floor s-DB (of send-DB): the database and broker work of ``manage.py send QUEUE BODY
--count N``, by hand with plain psycopg / sqlite3 and pika (no Django, no messaging).

What ``send`` does, and so what this does, in chunks of ``chunk`` (5,000) copies:

1. INSERT the chunk's ``Message`` rows in one statement (PostgreSQL: ``INSERT … SELECT …
   FROM unnest(ids)``; SQLite: one ``executemany``) and commit; every row ``pending``,
   ``created_at`` now (one stamp per chunk), ``next_attempt_at`` now + the creator's lease;
2. publish the chunk on one confirm-mode channel with up to ``window`` (1,000) confirms
   in flight, each message persistent and ``mandatory`` with its row's ``message_id`` and
   ``created_at`` as AMQP timestamp — in a worker thread, while the main thread inserts
   the next chunk (at most ``in_flight`` (2) chunks inserted and not yet stored);
3. once the broker has confirmed the chunk, UPDATE its rows to ``published`` (one stamp
   of ``published_at`` per chunk), ``update_chunk`` (2,000) ids per statement, each
   committed on its own.

pika's BlockingConnection waits for each confirm, so :class:`ConfirmWindow` uses a
``SelectConnection`` whose I/O loop runs in the publishing thread while a chunk is out,
as the app's publisher does. Timed inside the loop from the first chunk's ``created_at``
stamp to the last chunk's ``published_at`` stamp — the instants ``send``'s rows record,
so the span is measured as send-DB's (``committed``: to the last UPDATE's commit).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
from pika.adapters.select_connection import IOLoop

from bench.raw_db import connect

PERSISTENT = pika.DeliveryMode.Persistent.value


class Messages:
    """The ``Message`` table: a chunk's INSERT, its UPDATE to published (``update_chunk``
    ids per statement).

    ``spec["columns"]``: per column ``{"const": v}``, ``{"bytes": hex}``, ``{"json": v}``,
    ``{"id": true}`` (the message_id), ``{"created": true}`` (now) or ``{"lease": s}``
    (now + s seconds); ``spec["published"]``: per column the UPDATE sets
    ``{"const": v}`` or ``{"now": true}``, besides ``attempts = attempts + 1``.
    """

    def __init__(self, spec: dict[str, Any], update_chunk: int) -> None:
        self.kind = spec["kind"]
        self.pg = self.kind == "postgres"
        self.table, self.names = spec["table"], spec["names"]
        self.columns = [self._value(c) for c in spec["columns"]]
        self.id_position = next(i for i, c in enumerate(spec["columns"]) if "id" in c)
        self.set_names = list(spec["published"])
        self.set_values = [self._value(c) for c in spec["published"].values()]
        self.attempts, self.message_id = spec["attempts"], spec["message_id"]
        self.update_chunk = update_chunk
        if self.pg:
            import psycopg

            # Client-side binding, as Django's psycopg backend runs its statements.
            self.conn = psycopg.connect(spec["dsn"], cursor_factory=psycopg.ClientCursor)
            self.conn.autocommit = True  # as Django: a transaction only where asked
        else:
            self.conn = connect(spec)

    def _value(self, column: dict[str, Any]) -> Any:
        if "bytes" in column:
            return bytes.fromhex(column["bytes"])
        if "json" in column:
            if not self.pg:
                return json.dumps(column["json"])
            from psycopg.types.json import Jsonb

            return Jsonb(column["json"])
        return column  # per chunk: id, created, lease, now; or a plain constant

    def _stamp(self, now: datetime) -> Any:
        return now if self.pg else str(now.replace(tzinfo=None))

    def _resolve(self, value: Any, now: datetime) -> Any:
        if not isinstance(value, dict):
            return value
        if "const" in value:
            return value["const"]
        if "lease" in value:
            return self._stamp(now + timedelta(seconds=value["lease"]))
        if "id" in value:
            return None  # one per row
        return self._stamp(now)  # created / now

    def insert(self, n: int) -> tuple[list[str], datetime, float]:
        """INSERT ``n`` new rows, committed: their ids, ``created_at`` and its perf time."""
        now, clock = datetime.now(UTC), time.perf_counter()
        ids = [str(uuid.uuid4()) for _ in range(n)]
        values = [self._resolve(v, now) for v in self.columns]
        position = self.id_position
        names = ", ".join(self.names)
        if self.pg:
            selected = ["%s"] * len(values)
            selected[position] = "m"
            params = [v for i, v in enumerate(values) if i != position]
            with self.conn.transaction():
                self.conn.execute(
                    f"INSERT INTO {self.table} ({names}) SELECT {', '.join(selected)} "
                    "FROM unnest(%s::varchar[]) AS m",
                    [*params, ids],
                )
        else:
            rows = []
            for message_id in ids:
                row = list(values)
                row[position] = message_id
                rows.append(row)
            marks = ", ".join(["?"] * len(values))
            self.conn.execute("BEGIN")
            self.conn.executemany(f"INSERT INTO {self.table} ({names}) VALUES ({marks})", rows)
            self.conn.execute("COMMIT")
        return ids, now, clock

    def published(self, ids: Sequence[str]) -> float:
        """UPDATE the rows of ``ids`` to published; the perf time of ``published_at``."""
        now, clock = datetime.now(UTC), time.perf_counter()
        values = [self._resolve(v, now) for v in self.set_values]
        mark = "%s" if self.pg else "?"
        sets = ", ".join(
            [f"{self.attempts} = {self.attempts} + 1"] + [f"{n} = {mark}" for n in self.set_names]
        )
        for start in range(0, len(ids), self.update_chunk):
            chunk = list(ids[start : start + self.update_chunk])
            where = f"{self.message_id} IN ({', '.join([mark] * len(chunk))})"
            self.conn.execute(f"UPDATE {self.table} SET {sets} WHERE {where}", [*values, *chunk])
        return clock

    def close(self) -> None:
        self.conn.close()


class ConfirmWindow:
    """One confirm-mode channel on a ``SelectConnection``; :meth:`publish` sends a chunk
    with up to ``window`` unconfirmed messages and returns once all are confirmed."""

    def __init__(self, url: str, window: int, timeout: float) -> None:
        self.url, self.window, self.timeout = url, window, timeout
        self.loop: Any = None
        self.conn: Any = None
        self.channel: Any = None
        self.error: str | None = None
        self.tag = 0  # the channel's last delivery tag
        self.unconfirmed: set[int] = set()
        self.oldest = 1  # no tag below it is unconfirmed
        self.last_confirm = 0.0
        self._ready = False
        self._timer: Any = None
        self._chunk: tuple[str, bytes, list[str], Any] | None = None
        self._sent = 0

    # ----------------------------------------------------------------- setting up

    def open(self, queue: str) -> None:
        """Connect, open the channel in confirm mode, declare ``queue`` durable."""
        self.loop = IOLoop()
        self.conn = pika.SelectConnection(
            pika.URLParameters(self.url),
            on_open_callback=self._done,
            on_open_error_callback=self._failed,
            on_close_callback=self._failed,
            custom_ioloop=self.loop,
        )
        self._wait()
        self.conn.channel(on_open_callback=self._channel_open)
        self._wait()
        self.channel.add_on_close_callback(self._failed)
        self.channel.add_on_return_callback(self.on_return)
        self.channel.confirm_delivery(ack_nack_callback=self.on_confirm, callback=self._done)
        self._wait()
        self.channel.queue_declare(queue, durable=True, callback=self._done)
        self._wait()

    def _wait(self) -> None:
        self._ready = False
        while not self._ready and self.error is None:
            self.loop.start()
        if self.error is not None:
            raise RuntimeError(self.error)

    def _done(self, *_args: Any) -> None:
        self._ready = True
        self.loop.stop()

    def _channel_open(self, channel: Any) -> None:
        self.channel = channel
        self._done()

    def _failed(self, _closed: Any, reason: Any) -> None:
        """The connection or the channel closed (or the connection never opened)."""
        self.error = self.error or f"closed: {reason!r}"
        self.loop.stop()

    # ----------------------------------------------------------------- a chunk

    def publish(self, routing_key: str, body: bytes, ids: list[str], timestamp: int) -> None:
        """Publish one message per id; raise if any is nacked, returned or unconfirmed
        for ``timeout`` seconds."""
        props = pika.BasicProperties(delivery_mode=PERSISTENT, timestamp=timestamp)
        self._chunk, self._sent = (routing_key, body, ids, props), 0
        self.last_confirm = time.monotonic()
        self._timer = self.loop.call_later(self.timeout, self.on_timer)
        try:
            self._pump()
            while (self._sent < len(ids) or self.unconfirmed) and self.error is None:
                self.loop.start()
        finally:
            self.loop.remove_timeout(self._timer)
            self._chunk = None
        if self.error is not None:
            raise RuntimeError(self.error)

    def _pump(self) -> None:
        """Publish until ``window`` messages are unconfirmed or the chunk is all out."""
        routing_key, body, ids, props = self._chunk  # type: ignore[misc]
        while self._sent < len(ids) and len(self.unconfirmed) < self.window:
            props.message_id = ids[self._sent]
            self.channel.basic_publish("", routing_key, body, props, mandatory=True)
            self.tag += 1
            self.unconfirmed.add(self.tag)
            self._sent += 1

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self.error = f"nacked: delivery tag {method.delivery_tag}"
        if method.multiple:
            for tag in range(self.oldest, method.delivery_tag + 1):
                self.unconfirmed.discard(tag)
            self.oldest = max(self.oldest, method.delivery_tag + 1)
        else:
            self.unconfirmed.discard(method.delivery_tag)
        self.last_confirm = time.monotonic()
        if self._chunk is not None and self._sent < len(self._chunk[2]):
            self._pump()
        elif not self.unconfirmed:
            self.loop.stop()

    def on_return(self, _channel: Any, method: Any, props: Any, _body: bytes) -> None:
        self.error = f"returned (unroutable): {props.message_id} {method.reply_text}"

    def on_timer(self) -> None:
        idle = time.monotonic() - self.last_confirm
        if idle >= self.timeout:
            self.error = f"no publisher confirm within {self.timeout:g} s"
            self.loop.stop()
        else:
            self._timer = self.loop.call_later(self.timeout - idle, self.on_timer)

    def close(self) -> None:
        if self.conn is not None and self.conn.is_open:
            self.conn.close()
            deadline = time.monotonic() + 2
            while not self.conn.is_closed and time.monotonic() < deadline:
                self.loop.call_later(0.1, self.loop.stop)
                self.loop.start()
        if self.loop is not None:
            self.loop.close()


def send_floor(url: str, queue: str, count: int, body: bytes, spec: dict[str, Any]) -> dict:
    """The floor: ``count`` copies in chunks, INSERT / publish / UPDATE overlapped as
    ``send`` overlaps them. ``seconds``: first ``created_at`` to last ``published_at``."""
    db = Messages(spec["database"], spec["update_chunk"])
    pub = ConfirmWindow(url, spec["window"], spec["confirm_timeout"])
    inflight: deque[tuple[list[str], Future[None]]] = deque()
    inserted, first, last = 0, 0.0, 0.0
    try:
        pub.open(queue)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-send") as pool:
            while inflight or inserted < count:
                if inserted < count and len(inflight) < spec["in_flight"]:
                    ids, created, clock = db.insert(min(spec["chunk"], count - inserted))
                    first = first or clock
                    stamp = int(created.timestamp())
                    inflight.append((ids, pool.submit(pub.publish, queue, body, ids, stamp)))
                    inserted += len(ids)
                    continue
                ids, done = inflight.popleft()
                done.result()
                last = db.published(ids)
        committed = time.perf_counter()
    finally:
        pub.close()
        db.close()
    return {"messages": inserted, "seconds": last - first, "committed": committed - first}
