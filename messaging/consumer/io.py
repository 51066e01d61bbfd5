"""The broker side of a consumer. The **I/O thread** connects (trying each broker
URL), declares the queues and their bindings, sets QoS, starts consuming and reconnects
with backoff when the connection is lost. Who then drives the connection (reads
deliveries, carries out verdicts) depends on the prefetch: see :mod:`.drive`. Either
way, heartbeats flow however long a handler runs, and a delivery is only acked on the
channel it came from."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import pika
from django.utils import timezone

from .. import broker, conf, observability
from ..amqp.backoff import backoff
from ..broker import QueueSpec
from ..broker.connecting import close_quietly, connected_node
from ..broker.exchanges import bindings_of_queues
from ..broker.subscriptions import declare_subscription
from ..exceptions import BrokerError, BrokerUnavailable, ConsumerTimedOut
from .acks import Settler
from .drive import InlineDrive, ThreadedDrive
from .handlers import Delivery
from .inbox import Inbox
from .retry_policy import QueuePolicy
from .stats import ConsumerStats
from .verdicts import Settlement
from .watch import TimeoutWatch

logger = logging.getLogger("messaging.consumer")


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
        consume_arguments: Mapping[str, Any] | None = None,
        on_named: Callable[[str, str], None] = lambda spec_name, name: None,
        delays_refused: set[str] | None = None,
        connect_timeout: float | None = None,
        threads: int = 1,
    ) -> None:
        self.specs = list(specs)
        #: The Binding rows of these queues, read once here (the calling thread) and
        #: declared on every connection after the queues.
        self.bindings = bindings_of_queues(s.name for s in self.specs)
        #: basic.consume arguments (``x-stream-offset`` for a stream).
        self.consume_arguments = dict(consume_arguments) if consume_arguments else None
        #: Told the broker's name of each server-named queue, on every (re)connect.
        self.on_named = on_named
        self.prefetch = prefetch
        self.inbox = inbox
        self.stats = stats
        self.name = name
        self.urls = list(urls) if urls is not None else None
        self.reconnect = reconnect
        #: Seconds to keep trying the first connection (and declarations); None: forever.
        self.connect_timeout = connect_timeout
        self.on_event = on_event
        self._describe = describe
        self._stop = stop
        self._close = threading.Event()
        self._ready = threading.Event()
        self._settler = Settler(
            policies,
            {spec.name: spec for spec in self.specs},
            delays_refused,
            single_acks=threads > 1,
        )
        self._watch = TimeoutWatch(float(conf.get("BROKER_CONSUMER_TIMEOUT")))
        self._thread: threading.Thread | None = None
        self.generation = 0
        #: The current channel's consumer tags (basic.cancel when stopping).
        self._consumer_tags: list[str] = []
        drive = InlineDrive if prefetch == 1 and threads == 1 else ThreadedDrive
        self.drive: InlineDrive | ThreadedDrive = drive(inbox, self._settler, self._close)

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
        return self.drive.next_delivery(wait, self.current_generation)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Carry verdicts out, in order (on this thread or the I/O thread: see drive)."""
        if settlements:
            self.drive.settle(settlements)

    def cancel(self) -> None:
        """Stop consuming now (basic.cancel, on the I/O thread): a stopping consumer
        gets no more deliveries while the ones in hand finish. At prefetch 1 and one
        thread the broker sends nothing more anyway (see ``InlineDrive.call_on_io``)."""
        self.drive.call_on_io(self._cancel_on_io)

    def _cancel_on_io(self) -> None:
        self._settler.cancel(self._consumer_tags)

    def shutdown(self) -> None:
        """Carry out the verdicts already handed over, close the connection, join."""
        self.drive.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._close.set()
                self._thread.join(timeout=5)

    # ------------------------------------------------------------------ the I/O thread

    def _main(self) -> None:
        started = time.monotonic()
        attempt = 0
        while not self._close.is_set() and not self._stop.is_set():
            generation = self.generation
            try:
                self._serve()
                return
            except BrokerUnavailable as exc:
                # The broker (a node) is down, restarting or lost: never our mistake.
                # Before the first success too (a deploy during an outage), so a
                # supervisor never sees a crash loop; --connect-timeout bounds that.
                if not self.reconnect or self._gave_up(started, exc):
                    return
                attempt = 1 if self.generation != generation else attempt + 1
                if not self._wait_to_retry(exc, attempt, started):
                    return
            except BrokerError as exc:
                self._fatal(exc)  # our mistake (mismatch, access): stop, don't loop
                return
            except Exception as exc:  # noqa: BLE001
                logger.exception("consumer I/O thread crashed")
                self._fatal(BrokerError(f"consumer I/O failed: {type(exc).__name__}: {exc}"))
                return

    def _gave_up(self, started: float, exc: BrokerUnavailable) -> bool:
        """Before the first success: past ``connect_timeout``, hand the error over."""
        if self._ready.is_set() or self.connect_timeout is None:
            return False
        waited = time.monotonic() - started
        if waited < self.connect_timeout:
            return False
        self._fatal(BrokerUnavailable(f"gave up after {waited:.1f}s (--connect-timeout): {exc}"))
        return True

    def _wait_to_retry(self, exc: BrokerUnavailable, attempt: int, started: float) -> bool:
        """Log the try, wait the backoff (False: stopped meanwhile)."""
        delay = float(conf.get("RECONNECT_DELAY"))
        max_delay = float(conf.get("RECONNECT_MAX_DELAY"))
        pause = backoff(min(attempt, 11), first=delay, cap=max_delay, jitter=True)
        if isinstance(exc, ConsumerTimedOut):
            logger.error(
                "%s; a handler ran longer than the broker allows "
                "(raise consumer_timeout or make the handler faster)",
                exc,
            )
        if self._ready.is_set():
            self.stats.add(reconnects=1)
            observability.reconnect("consumer")
            what = "broker connection lost"
        else:
            what = f"broker not ready (try {attempt})"
            if self.connect_timeout is not None:
                left = self.connect_timeout - (time.monotonic() - started)
                pause = max(0.0, min(pause, left))
        logger.warning(
            "%s (%s); retrying in %.1fs",
            what,
            exc,
            pause,
            extra={"consumer": self.name, "role": "consumer"},
        )
        self.on_event(f"{what}: {exc}; retrying in {pause:.1f}s")
        return not self._stop.wait(pause)

    def _fatal(self, exc: BaseException) -> None:
        """Hand an error the consumer cannot go on after to the calling thread."""
        self.inbox.put(exc)
        self.drive.wake()

    def _serve(self) -> None:
        conn = broker.connect(self.urls, connection_name=f"runconsumer {self.name}")
        observability.connected(conn, "consumer", self.on_event)
        try:
            with broker.translating():
                cancelled = self._open(conn)
                while not self._close.is_set():
                    self.drive.turn(conn)
                    if cancelled:
                        # The broker cancelled us (queue deleted, node down): start over,
                        # which re-declares the queues the app owns.
                        raise BrokerUnavailable("the broker cancelled the consumer")
                    self._watch.check()
                with self.drive.lock:
                    conn.process_data_events(time_limit=0)
        finally:
            with self.drive.lock:
                self.drive.detach()
                self._settler.detach()
                close_quietly(conn)

    def _open(self, conn: pika.BlockingConnection) -> list[str]:
        """Declare, set QoS and start consuming on a new channel; returns the list the
        broker's cancel notifications are appended to."""
        channel = conn.channel()
        names = [self._declare(channel, spec) for spec in self.specs]
        broker.declare_bindings(channel, self.bindings)
        channel.basic_qos(prefetch_count=self.prefetch)
        cancelled: list[str] = []
        with self.drive.lock:
            self.generation += 1
            self._settler.attach(conn, channel, self.generation)
            self._consumer_tags = []
            for name in names:
                tag = channel.basic_consume(
                    queue=name,
                    on_message_callback=partial(self._on_message, self.generation, name),
                    auto_ack=False,
                    arguments=self.consume_arguments,
                )
                self._consumer_tags.append(tag)
            if self._stop.is_set():
                # Stopped while (re)connecting: consume nothing more.
                self.drive.call_on_io(self._cancel_on_io)
            channel.add_on_cancel_callback(lambda frame: cancelled.append("cancelled"))
            self.drive.attach(conn)
        self._ready.set()
        self.on_event(
            f"consuming {', '.join(names)} {self._describe()} on broker node {connected_node(conn)}"
        )
        return cancelled

    def _declare(self, channel: Any, spec: QueueSpec) -> str:
        """Declare a queue as its spec says; returns the name to consume. A subscription
        (``spec.bindings``) is a new server-named queue on every connection: the one of
        a lost connection is gone with it."""
        if not spec.bindings:
            broker.declare_queue(channel, spec)
            return spec.name
        name = declare_subscription(channel, spec.bindings)
        self.on_named(spec.name, name)
        return name

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
