"""The consumer engine behind ``runconsumer`` (and the tests and benchmarks).

Two threads:

* the **I/O thread** owns the pika connection and channel: it connects (trying each
  broker URL), declares the queues, sets QoS, consumes, keeps heartbeats flowing
  (``process_data_events``) however long a handler runs, sends acks/nacks handed to it
  through ``add_callback_threadsafe``, and reconnects with backoff when the
  connection is lost;
* the **calling thread** takes deliveries from a local buffer (at most ``prefetch``
  long), runs the handler inside ``transaction.atomic()`` together with its receipt,
  commits, and only then asks the I/O thread to ack.

A delivery tag is only acked on the channel it came from; deliveries of a channel
that died are dropped here and redelivered by the broker, where the receipts table
recognises the ones already handled (``duplicate``) so their handler does not run twice.
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pika
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from . import broker, conf
from .broker import QueueSpec
from .exceptions import BrokerError, BrokerUnavailable, Reject
from .handlers import Delivery, Handler
from .models import Receipt

logger = logging.getLogger(__name__)

Outcome = Receipt.Outcome

#: How long a redelivered message whose handler failed again waits before it is
#: requeued, so a message that always fails does not spin the consumer.
REDELIVERY_PAUSE = 1.0
#: Longest wait for the database to come back between attempts.
DB_BACKOFF_MAX = 10.0


@dataclass
class ConsumerStats:
    handled: int = 0
    acked: int = 0
    duplicates: int = 0
    failed: int = 0
    reconnects: int = 0


class _Duplicate(Exception):
    pass


class Consumer:
    """Consume ``queues`` with manual acks, writing a receipt for each delivery.

    ``queues`` are ``Queue`` rows, :class:`~messaging.broker.QueueSpec` or names;
    ``handlers`` maps queue name to a handler taking one :class:`Delivery`.
    Call :meth:`run` (blocks until stopped, ``max_messages`` or ``idle_timeout``);
    :meth:`stop` may be called from a signal handler or another thread.
    """

    def __init__(
        self,
        queues: Iterable[Any],
        handlers: Mapping[str, Handler],
        *,
        prefetch: int = 1,
        name: str = "",
        max_messages: int | None = None,
        idle_timeout: float | None = None,
        batch_size: int = 1,
        reconnect: bool = True,
        urls: Iterable[str] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.specs = [QueueSpec.of(q) for q in queues]
        if not self.specs:
            raise ValueError("Consumer needs at least one queue")
        missing = [s.name for s in self.specs if s.name not in handlers]
        if missing:
            raise ValueError(f"no handler for queue(s): {', '.join(missing)}")
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        self.handlers = dict(handlers)
        self.prefetch = prefetch
        self.batch_size = max(1, batch_size)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = name or f"{self.host}:{self.pid}"
        self.max_messages = max_messages
        self.idle_timeout = idle_timeout
        self.reconnect = reconnect
        self.urls = list(urls) if urls is not None else None
        self.on_event = on_event or (lambda text: None)
        self.stats = ConsumerStats()

        self._stop = threading.Event()
        self._io_close = threading.Event()
        self._ready = threading.Event()
        self._inbox: queue_module.Queue[Delivery | BaseException] = queue_module.Queue()
        self._io_thread: threading.Thread | None = None
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._generation = 0
        self._last_db_check = 0.0
        self._db_failures = 0

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Finish the delivery in hand, ack it, and return from :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> ConsumerStats:
        """Consume until stopped; raises :class:`BrokerError` on a fatal broker error."""
        self._io_thread = threading.Thread(target=self._io_main, name="messaging-io", daemon=True)
        self._io_thread.start()
        try:
            self._loop()
        finally:
            self._shutdown_io()
        return self.stats

    def _loop(self) -> None:
        last_activity = time.monotonic()
        while not self._stop.is_set():
            if self.max_messages is not None and self.stats.handled >= self.max_messages:
                break
            wait = 0.2
            if self.idle_timeout is not None:
                remaining = self.idle_timeout - (time.monotonic() - last_activity)
                if remaining <= 0:
                    self.on_event(f"idle for {self.idle_timeout:g}s, stopping")
                    break
                wait = min(wait, remaining)
            try:
                item = self._inbox.get(timeout=wait)
            except queue_module.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            if item.generation != self._generation:
                continue  # its channel is gone: the broker redelivers it
            self._process(item)
            last_activity = time.monotonic()

    # ------------------------------------------------------------------ one delivery

    def _process(self, delivery: Delivery) -> None:
        self.stats.handled += 1
        handler = self.handlers[delivery.queue]
        self._maybe_refresh_db()
        try:
            if delivery.redelivered and delivery.message_id and self._already_acked(delivery):
                self._record(delivery, Outcome.DUPLICATE)
                self._settle(delivery, ack=True)
                self.stats.duplicates += 1
                return
            stage = "handler"
            try:
                with transaction.atomic():
                    handler(delivery)
                    stage = "receipt"
                    try:
                        self._record(delivery, Outcome.ACKED)
                    except IntegrityError as exc:
                        raise _Duplicate from exc
                    stage = "commit"
            except _Duplicate:
                self._record(delivery, Outcome.DUPLICATE)
                self._settle(delivery, ack=True)
                self.stats.duplicates += 1
                return
            except Reject as decision:
                outcome = Outcome.REQUEUED if decision.requeue else Outcome.REJECTED
                self._record(delivery, outcome, error=decision.reason)
                self._settle(delivery, ack=False, requeue=decision.requeue)
                self.stats.failed += 1
                return
            except Exception as exc:
                if stage != "handler" and isinstance(exc, DatabaseError):
                    raise
                self._handler_failed(delivery, exc)
                return
        except DatabaseError as exc:
            self._database_failed(delivery, exc)
            return
        self.stats.acked += 1
        self._settle(delivery, ack=True)

    def _handler_failed(self, delivery: Delivery, exc: Exception) -> None:
        self.stats.failed += 1
        logger.warning(
            "handler for %s failed on message %s: %s: %s",
            delivery.queue,
            delivery.message_id or "(no id)",
            type(exc).__name__,
            exc,
        )
        self._record(
            delivery,
            Outcome.REQUEUED,
            error=f"{type(exc).__name__}: {exc}",
            tb="".join(traceback.format_exception(exc, limit=8)),
        )
        if delivery.redelivered:
            self._stop.wait(REDELIVERY_PAUSE)
        self._settle(delivery, ack=False, requeue=True)

    def _database_failed(self, delivery: Delivery, exc: DatabaseError) -> None:
        """The database, not the handler, failed: requeue, back off, keep running."""
        self.stats.failed += 1
        logger.error(
            "database error while handling %s (message %s); requeued: %s",
            delivery.queue,
            delivery.message_id or "(no id)",
            exc,
        )
        self.on_event(f"database error, message requeued: {exc}".splitlines()[0])
        self._settle(delivery, ack=False, requeue=True)
        self._last_db_check = 0.0
        close_old_connections()
        self._db_failures += 1
        self._stop.wait(min(DB_BACKOFF_MAX, 0.5 * 2 ** min(self._db_failures, 5)))

    def _maybe_refresh_db(self) -> None:
        # Drop a connection the server closed (or that CONN_MAX_AGE retired) before
        # using it; not inside an outer atomic block (tests), and at most once a second.
        now = time.monotonic()
        if now - self._last_db_check >= 1.0 and not connection.in_atomic_block:
            close_old_connections()
            self._last_db_check = now

    def _already_acked(self, delivery: Delivery) -> bool:
        return (
            Receipt.objects.acked()
            .filter(queue_name=delivery.queue, message_id=delivery.message_id)
            .exists()
        )

    def _record(
        self, delivery: Delivery, outcome: str, *, error: str = "", tb: str = ""
    ) -> Receipt:
        receipt = Receipt.objects.create(
            message_id=delivery.message_id,
            queue_name=delivery.queue,
            consumer_name=self.name,
            consumer_host=self.host,
            consumer_pid=self.pid,
            consumer_tag=delivery.consumer_tag,
            delivery_tag=delivery.delivery_tag,
            redelivered=delivery.redelivered,
            outcome=outcome,
            error=error,
            traceback=tb,
            received_at=delivery.received_at or timezone.now(),
            finished_at=timezone.now(),
        )
        if outcome != Outcome.DUPLICATE:
            self._db_failures = 0
        return receipt

    # ------------------------------------------------------------------ acks

    def _settle(self, delivery: Delivery, *, ack: bool, requeue: bool = True) -> None:
        """Hand an ack/nack to the I/O thread (thread-safe)."""
        conn = self._conn
        if conn is None:
            return
        try:
            conn.add_callback_threadsafe(
                partial(
                    self._settle_in_io, delivery.generation, delivery.delivery_tag, ack, requeue
                )
            )
        except Exception:  # noqa: BLE001 - connection already gone: the broker requeues
            logger.info("connection gone before delivery %s was settled", delivery.delivery_tag)

    def _settle_in_io(self, generation: int, tag: int, ack: bool, requeue: bool) -> None:
        channel = self._channel
        if generation != self._generation or channel is None or not channel.is_open:
            logger.info("not settling delivery %s from a closed channel; redelivered", tag)
            return
        if ack:
            channel.basic_ack(delivery_tag=tag)
        else:
            channel.basic_nack(delivery_tag=tag, requeue=requeue)

    # ------------------------------------------------------------------ I/O thread

    def _io_main(self) -> None:
        delay = float(conf.get("RECONNECT_DELAY"))
        max_delay = float(conf.get("RECONNECT_MAX_DELAY"))
        attempt = 0
        while not self._io_close.is_set() and not self._stop.is_set():
            generation = self._generation
            try:
                self._serve_connection()
                return
            except BrokerUnavailable as exc:
                if not self.reconnect or not self._ready.is_set():
                    # Never connected: a wrong URL or a broker that is down is reported
                    # at once; once consuming, connection loss means reconnect.
                    self._inbox.put(exc)
                    return
                attempt = 1 if self._generation != generation else attempt + 1
                self.stats.reconnects += 1
                pause = min(max_delay, delay * 2 ** min(attempt - 1, 10))
                pause = random.uniform(pause / 2, pause)
                logger.warning("broker connection lost (%s); retrying in %.1fs", exc, pause)
                self.on_event(f"broker unavailable: {exc}; retrying in {pause:.1f}s")
                if self._stop.wait(pause):
                    return
            except BrokerError as exc:
                self._inbox.put(exc)  # our mistake (mismatch, access): stop, don't loop
                return
            except Exception as exc:  # noqa: BLE001
                logger.exception("consumer I/O thread crashed")
                self._inbox.put(BrokerError(f"consumer I/O failed: {type(exc).__name__}: {exc}"))
                return

    def _serve_connection(self) -> None:
        conn = broker.connect(self.urls, connection_name=f"runconsumer {self.name}")
        try:
            try:
                channel = conn.channel()
                for spec in self.specs:
                    broker.declare_queue(channel, spec)
                channel.basic_qos(prefetch_count=self.prefetch)
                self._generation += 1
                self._conn, self._channel = conn, channel
                for spec in self.specs:
                    channel.basic_consume(
                        queue=spec.name,
                        on_message_callback=partial(self._on_message, self._generation, spec.name),
                        auto_ack=False,
                    )
                cancelled: list[str] = []
                channel.add_on_cancel_callback(lambda frame: cancelled.append("cancelled"))
                self._ready.set()
                self.on_event(
                    f"consuming {', '.join(s.name for s in self.specs)} "
                    f"(prefetch {self.prefetch}, manual ack)"
                )
                while not self._io_close.is_set():
                    conn.process_data_events(time_limit=0.25)
                    if cancelled:
                        # The broker cancelled us (queue deleted, node down): start over,
                        # which re-declares the queues the app owns.
                        raise BrokerUnavailable("the broker cancelled the consumer")
                conn.process_data_events(time_limit=0)
            except BrokerError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated to ours
                raise broker.translate(exc) from exc
        finally:
            self._channel = None
            broker.close_quietly(conn)

    def _on_message(
        self,
        generation: int,
        queue_name: str,
        channel: Any,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self._inbox.put(
            Delivery(
                queue=queue_name,
                body=body,
                properties=properties,
                delivery_tag=method.delivery_tag,
                redelivered=bool(method.redelivered),
                exchange=method.exchange,
                routing_key=method.routing_key,
                consumer_tag=method.consumer_tag,
                method=method,
                received_at=timezone.now(),
                generation=generation,
            )
        )

    def wait_until_consuming(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _shutdown_io(self) -> None:
        # Acks already handed to the I/O thread run before this callback (FIFO), so
        # they reach the broker before the connection closes.
        conn = self._conn
        if conn is not None:
            try:
                conn.add_callback_threadsafe(self._io_close.set)
            except Exception:  # noqa: BLE001
                self._io_close.set()
        else:
            self._io_close.set()
        self._stop.set()
        if self._io_thread is not None:
            self._io_thread.join(timeout=10)
            if self._io_thread.is_alive():
                self._io_close.set()
                self._io_thread.join(timeout=5)
