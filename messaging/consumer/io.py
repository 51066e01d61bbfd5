"""The I/O thread: it alone touches the pika connection. It connects (trying each
broker URL), declares the queues, sets QoS, consumes, keeps heartbeats flowing however
long a handler runs, carries out the verdicts the calling thread hands it (acks, nacks,
dead-letter moves), and reconnects with backoff when the connection is lost.

Verdicts arrive through a queue. At prefetch > 1 the calling thread wakes the I/O
thread for them with ``add_callback_threadsafe`` (pika's pipe); at prefetch 1 nothing
else can arrive while a delivery is out, so the I/O thread waits on that queue itself
(servicing heartbeats between short waits) and acks the moment the receipt commits —
no pipe wake-up, no extra trip through pika's event loop."""

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
from ..models import dead_letter_queue_name
from .batches import Inbox
from .policy import QueuePolicy, Verdict
from .settlement import Settlement
from .stats import ConsumerStats

logger = logging.getLogger("messaging.consumer")

#: Warn when a handler has held a delivery for this share of the broker's consumer_timeout.
CONSUMER_TIMEOUT_WARN_AT = 0.8
#: Longest the I/O thread blocks in one go (heartbeats, cancels and stop are seen in time).
IO_SLICE = 0.25
#: At prefetch 1: longest wait for a verdict before servicing the connection again.
LOCKSTEP_SLICE = 0.1

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
        self.policies = policies
        self.name = name
        self.urls = list(urls) if urls is not None else None
        self.reconnect = reconnect
        self.on_event = on_event
        self._describe = describe
        self._stop = stop
        self._close = threading.Event()
        self._ready = threading.Event()
        self._verdicts: queue_module.SimpleQueue[Any] = queue_module.SimpleQueue()
        self._lockstep = prefetch == 1
        self._outstanding = 0
        self._thread: threading.Thread | None = None
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._dead_letterer: Any = None
        self.generation = 0
        #: When the calling thread took its current delivery (None: idle).
        self.busy_since: float | None = None
        self._timeout_warned = False
        self._consumer_timeout = float(conf.get("BROKER_CONSUMER_TIMEOUT"))

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
        self.busy_since = since
        if since is None:
            self._timeout_warned = False

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Hand verdicts to the I/O thread (thread-safe); carried out in order."""
        settlements = [s for s in settlements if s.verdict is not Verdict.SKIP]
        conn = self._conn
        if conn is None or not settlements:
            return
        self._verdicts.put(settlements)
        if self._lockstep:
            return  # the I/O thread is waiting for it
        try:
            conn.add_callback_threadsafe(self._carry_out)
        except Exception:  # noqa: BLE001 - connection already gone: the broker requeues
            logger.info("connection gone before %d deliveries were settled", len(settlements))

    def shutdown(self) -> None:
        """Carry out the verdicts already handed over, close the connection, join."""
        conn = self._conn
        self._verdicts.put(_CLOSE)  # after every verdict handed over: FIFO
        if conn is None:
            self._close.set()
        else:
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

    # ------------------------------------------------------------------ the thread

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
                    self._pump(conn)
                    if cancelled:
                        # The broker cancelled us (queue deleted, node down): start over,
                        # which re-declares the queues the app owns.
                        raise BrokerUnavailable("the broker cancelled the consumer")
                    self._watch_consumer_timeout()
                conn.process_data_events(time_limit=0)
            except BrokerError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated to ours
                raise broker.translate(exc) from exc
        finally:
            self._channel = None
            self._dead_letterer = None
            broker.close_quietly(conn)

    def _open(self, conn: pika.BlockingConnection) -> list[str]:
        """Declare, set QoS and start consuming on a new channel; returns the list the
        broker's cancel notifications are appended to."""
        channel = conn.channel()
        for spec in self.specs:
            broker.declare_queue(channel, spec)
        channel.basic_qos(prefetch_count=self.prefetch)
        self.generation += 1
        self._outstanding = 0
        self._conn, self._channel = conn, channel
        self._dead_letterer = None
        for spec in self.specs:
            channel.basic_consume(
                queue=spec.name,
                on_message_callback=partial(self._on_message, self.generation, spec.name),
                auto_ack=False,
            )
        cancelled: list[str] = []
        channel.add_on_cancel_callback(lambda frame: cancelled.append("cancelled"))
        self._ready.set()
        self.on_event(f"consuming {', '.join(s.name for s in self.specs)} {self._describe()}")
        return cancelled

    def _pump(self, conn: pika.BlockingConnection) -> None:
        """One turn of the loop: read from the broker, or (prefetch 1, a delivery out)
        wait for its verdict and carry it out at once."""
        if not (self._lockstep and self._outstanding):
            conn.process_data_events(time_limit=IO_SLICE)
            return
        try:
            item = self._verdicts.get(timeout=LOCKSTEP_SLICE)
        except queue_module.Empty:
            conn.process_data_events(time_limit=0)  # heartbeats, cancels, close
            return
        self._carry_out(item)

    def _on_message(
        self,
        generation: int,
        queue_name: str,
        channel: Any,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self._outstanding += 1
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

    # ------------------------------------------------------------------ verdicts

    def _carry_out(self, first: Any = None) -> None:
        """Carry out every verdict handed over so far (``first`` already taken)."""
        items = [] if first is None else [first]
        while True:
            try:
                items.append(self._verdicts.get_nowait())
            except queue_module.Empty:
                break
        for item in items:
            if item is _CLOSE:
                self._close.set()
            else:
                self._settle(item)

    def _settle(self, settlements: list[Settlement]) -> None:
        channel = self._channel
        generation = settlements[0].delivery.generation
        if generation != self.generation or channel is None or not channel.is_open:
            logger.info("not settling %d deliveries from a closed channel", len(settlements))
            return
        self._outstanding = max(0, self._outstanding - len(settlements))
        last_ack, acks = 0, 0
        for settlement in settlements:
            tag = settlement.delivery.delivery_tag
            if settlement.verdict is Verdict.ACK:
                last_ack, acks = max(last_ack, tag), acks + 1
            elif settlement.verdict is Verdict.DEAD_LETTER:
                self._move_to_dead_letter_queue(channel, settlement)
            elif settlement.verdict is Verdict.REQUEUE:
                channel.basic_nack(delivery_tag=tag, requeue=True)
            else:  # NACK: the queue's own dead-letter exchange (or policy) takes it
                channel.basic_nack(delivery_tag=tag, requeue=False)
        if acks:
            # A batch is consecutive deliveries of one channel, settled in tag order, so
            # everything up to last_ack still unsettled is this batch's committed work.
            channel.basic_ack(delivery_tag=last_ack, multiple=acks > 1)

    def _move_to_dead_letter_queue(self, channel: Any, settlement: Settlement) -> None:
        delivery = settlement.delivery
        policy = self.policies.get(delivery.queue, QueuePolicy())
        dlq = policy.dead_letter_queue or dead_letter_queue_name(delivery.queue)
        try:
            if self._dead_letterer is None:
                self._dead_letterer = broker.DeadLetterer(self._conn)
            self._dead_letterer.publish(
                delivery.queue,
                dlq,
                delivery.body,
                broker.copy_properties(delivery.properties, extra_death=settlement.death),
            )
        except BrokerError as exc:
            # Not in the DLQ, so keep it on its queue: requeued, never dropped.
            logger.error("could not move message to %s (%s); requeued", dlq, exc)
            channel.basic_nack(delivery_tag=delivery.delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag=delivery.delivery_tag)

    def _watch_consumer_timeout(self) -> None:
        since = self.busy_since
        if since is None or self._timeout_warned or self._consumer_timeout <= 0:
            return
        elapsed = time.monotonic() - since
        if elapsed >= CONSUMER_TIMEOUT_WARN_AT * self._consumer_timeout:
            self._timeout_warned = True
            logger.warning(
                "a handler has held its delivery for %.0fs, close to the broker's "
                "consumer_timeout (%.0fs, MESSAGING['BROKER_CONSUMER_TIMEOUT']): the broker "
                "will close the channel and redeliver the message when it expires",
                elapsed,
                self._consumer_timeout,
            )
