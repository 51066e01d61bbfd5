"""The broker side of a consumer. The **I/O thread** connects (trying each broker
URL), declares the queues, sets QoS, starts consuming and reconnects with backoff when
the connection is lost. Who then drives the connection depends on the prefetch:

* **prefetch > 1** — the I/O thread reads deliveries into the inbox while the calling
  thread commits the previous batch; verdicts come back through a queue and a
  ``add_callback_threadsafe`` wake-up, and the I/O thread carries them out;
* **prefetch 1** — nothing can overlap (one delivery is out at a time), so the calling
  thread drives the connection itself, as a hand-written pika loop would: it reads the
  next delivery and acks it after the commit, with no thread hand-off per message. The
  connection is behind a lock; the I/O thread only takes it to service heartbeats when
  nobody has for :data:`KEEP_AFTER` seconds (a long handler, a database backoff).

Either way, heartbeats flow however long a handler runs, and a delivery is only acked
on the channel it came from."""

from __future__ import annotations

import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import pika
from django.utils import timezone

from .. import broker, conf
from ..backoff import backoff
from ..broker import QueueSpec
from ..exceptions import BrokerError, BrokerUnavailable, ConsumerTimedOut
from ..handlers import Delivery
from .batches import Inbox
from .policy import QueuePolicy, Verdict
from .settle import Settler
from .settlement import Settlement
from .stats import ConsumerStats
from .watch import TimeoutWatch

logger = logging.getLogger("messaging.consumer")

#: Longest the I/O thread blocks in one read (cancels and stop are seen in time).
IO_SLICE = 0.25
#: Prefetch 1: the I/O thread services the connection after this long without a read.
KEEP_AFTER = 0.25
#: Prefetch 1: how often the I/O thread looks.
KEEP_SLICE = 0.1

_CLOSE = object()


class ConsumerIO:
    """Owns the broker connection of one consumer; see the module docstring."""

    def __init__(
        self,
        specs: Sequence[QueueSpec],
        *,
        prefetch: int,
        inbox: Inbox,
        stats: ConsumerStats,
        policies: Mapping[str, QueuePolicy],
        stop: threading.Event,
        name: str,
        urls: Iterable[str] | None = None,
        reconnect: bool = True,
        on_event: Callable[[str], None] = lambda text: None,
        describe: Callable[[], str] = lambda: "",
    ) -> None:
        self.specs = list(specs)
        self.prefetch = prefetch
        self.inbox = inbox
        self.stats = stats
        self.name = name
        self.urls = list(urls) if urls is not None else None
        self.reconnect = reconnect
        self.on_event = on_event
        self._describe = describe
        self._stop = stop
        self._close = threading.Event()
        self._ready = threading.Event()
        self._settler = Settler(policies)
        self._watch = TimeoutWatch(float(conf.get("BROKER_CONSUMER_TIMEOUT")))
        self._thread: threading.Thread | None = None
        self.generation = 0
        #: prefetch > 1: verdicts for the I/O thread, woken by add_callback_threadsafe.
        self._verdicts: queue_module.SimpleQueue[Any] = queue_module.SimpleQueue()
        self._conn: pika.BlockingConnection | None = None
        #: prefetch 1: the connection the calling thread drives (None: not consuming),
        #: the lock whoever uses it holds, when it was last serviced, and the error the
        #: calling thread ran into (the I/O thread reconnects).
        self.inline = prefetch == 1
        self._baton = threading.Lock()
        self._driven: pika.BlockingConnection | None = None
        self._serviced = 0.0
        self._failure: BaseException | None = None

    # ------------------------------------------------------------------ calling thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="messaging-io", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def current_generation(self) -> int:
        """Which connection is current (deliveries of older ones are never acked)."""
        return self.generation

    def busy(self, since: float | None) -> None:
        """The calling thread took a batch (``since``) or finished it (None)."""
        self._watch.busy(since)

    def next_delivery(self, wait: float) -> Delivery | None:
        """The next delivery of the current connection within ``wait`` seconds, or None;
        a fatal error of the I/O thread is raised here."""
        if self.inline and self._driven is not None:
            with self._baton:
                conn = self._driven
                if conn is not None:
                    self._guarded(conn.process_data_events, time_limit=wait)
            wait = 0.0
        return self.inbox.first(wait, self.current_generation)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Carry verdicts out (prefetch 1: now, on this thread; else: hand them to the
        I/O thread, which carries them out in order)."""
        settlements = [s for s in settlements if s.verdict is not Verdict.SKIP]
        if not settlements:
            return
        if self.inline:
            with self._baton:
                if self._driven is not None:
                    self._guarded(self._settler.settle, settlements)
            return
        conn = self._conn
        if conn is None:
            return
        self._verdicts.put(settlements)
        try:
            conn.add_callback_threadsafe(self._carry_out)
        except Exception:  # noqa: BLE001 - connection already gone: the broker requeues
            logger.info("connection gone before %d deliveries were settled", len(settlements))

    def shutdown(self) -> None:
        """Carry out the verdicts already handed over, close the connection, join."""
        conn = self._conn
        if self.inline or conn is None:
            self._close.set()
        else:
            self._verdicts.put(_CLOSE)  # after every verdict handed over: FIFO
            try:
                conn.add_callback_threadsafe(self._carry_out)
            except Exception:  # noqa: BLE001
                self._close.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._close.set()
                self._thread.join(timeout=5)

    def _guarded(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``call`` on the driven connection (baton held); a failure is handed to
        the I/O thread, which reconnects, and the connection is not driven again."""
        try:
            call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the I/O thread translates it
            self._failure = self._failure or exc
            self._driven = None
        self._serviced = time.monotonic()

    # ------------------------------------------------------------------ the I/O thread

    def _main(self) -> None:
        delay = float(conf.get("RECONNECT_DELAY"))
        max_delay = float(conf.get("RECONNECT_MAX_DELAY"))
        attempt = 0
        while not self._close.is_set() and not self._stop.is_set():
            generation = self.generation
            try:
                self._serve()
                return
            except BrokerUnavailable as exc:
                if not self.reconnect or not self._ready.is_set():
                    # Never connected: a wrong URL or a broker that is down is reported
                    # at once; once consuming, connection loss means reconnect.
                    self.inbox.put(exc)
                    return
                if isinstance(exc, ConsumerTimedOut):
                    logger.error(
                        "%s; a handler ran longer than the broker allows "
                        "(raise consumer_timeout or make the handler faster)",
                        exc,
                    )
                attempt = 1 if self.generation != generation else attempt + 1
                self.stats.reconnects += 1
                pause = backoff(min(attempt, 11), first=delay, cap=max_delay, jitter=True)
                logger.warning("broker connection lost (%s); retrying in %.1fs", exc, pause)
                self.on_event(f"broker unavailable: {exc}; retrying in {pause:.1f}s")
                if self._stop.wait(pause):
                    return
            except BrokerError as exc:
                self.inbox.put(exc)  # our mistake (mismatch, access): stop, don't loop
                return
            except Exception as exc:  # noqa: BLE001
                logger.exception("consumer I/O thread crashed")
                self.inbox.put(BrokerError(f"consumer I/O failed: {type(exc).__name__}: {exc}"))
                return

    def _serve(self) -> None:
        conn = broker.connect(self.urls, connection_name=f"runconsumer {self.name}")
        try:
            try:
                cancelled = self._open(conn)
                while not self._close.is_set():
                    if self.inline:
                        self._keep(conn)
                    else:
                        self._read(conn)
                    if cancelled:
                        # The broker cancelled us (queue deleted, node down): start over,
                        # which re-declares the queues the app owns.
                        raise BrokerUnavailable("the broker cancelled the consumer")
                    self._watch.check()
                with self._baton:
                    conn.process_data_events(time_limit=0)
            except BrokerError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated to ours
                raise broker.translate(exc) from exc
        finally:
            with self._baton:
                self._driven = None
                self._settler.detach()
                broker.close_quietly(conn)

    def _open(self, conn: pika.BlockingConnection) -> list[str]:
        """Declare, set QoS and start consuming on a new channel; returns the list the
        broker's cancel notifications are appended to."""
        channel = conn.channel()
        for spec in self.specs:
            broker.declare_queue(channel, spec)
        channel.basic_qos(prefetch_count=self.prefetch)
        cancelled: list[str] = []
        with self._baton:
            self.generation += 1
            self._conn, self._failure = conn, None
            self._settler.attach(conn, channel, self.generation)
            for spec in self.specs:
                channel.basic_consume(
                    queue=spec.name,
                    on_message_callback=partial(self._on_message, self.generation, spec.name),
                    auto_ack=False,
                )
            channel.add_on_cancel_callback(lambda frame: cancelled.append("cancelled"))
            self._serviced = time.monotonic()
            self._driven = conn if self.inline else None
        self._ready.set()
        self.on_event(f"consuming {', '.join(s.name for s in self.specs)} {self._describe()}")
        return cancelled

    def _read(self, conn: pika.BlockingConnection) -> None:
        """prefetch > 1: read deliveries (and run the verdict callbacks) for a while."""
        conn.process_data_events(time_limit=IO_SLICE)

    def _keep(self, conn: pika.BlockingConnection) -> None:
        """prefetch 1: service the connection if the calling thread has not lately (a
        long handler: heartbeats), and take over an error it ran into."""
        if self._failure is not None:
            raise self._failure
        if time.monotonic() - self._serviced >= KEEP_AFTER and self._baton.acquire(False):
            try:  # (not taken: the calling thread is using the connection right now)
                if self._failure is None:
                    conn.process_data_events(time_limit=0)
                    self._serviced = time.monotonic()
            finally:
                self._baton.release()
        if self._failure is not None:
            raise self._failure
        self._close.wait(KEEP_SLICE)

    def _on_message(
        self,
        generation: int,
        queue_name: str,
        channel: Any,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self.inbox.put(
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

    def _carry_out(self) -> None:
        """prefetch > 1 (on the I/O thread): every verdict handed over so far, in order."""
        while True:
            try:
                item = self._verdicts.get_nowait()
            except queue_module.Empty:
                return
            if item is _CLOSE:
                self._close.set()
            else:
                self._settler.settle(item)
