"""The engine: ``Consumer`` wires the parts together and runs the calling thread's loop
(take a batch from the inbox, dispatch it, hand the verdicts to the I/O thread)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import conf, observability
from ..amqp.queue_types import QUORUM, derived_queue_type
from ..broker import QueueSpec
from ..models import dead_letter_queue_name
from .budget import HandlerBudget, budget_for
from .database import DatabaseDown, DatabaseGuard
from .dispatch import Dispatcher
from .failures import Failures
from .handlers import Delivery, Handler
from .inbox import Inbox, default_batch_size
from .io import ConsumerIO
from .recorder import ReceiptRecorder
from .registry import Registry
from .retry_policy import QueuePolicy, RetryPolicy, Verdict
from .stats import ConsumerStats
from .threaded import threaded_loop
from .verdicts import Settlement
from .workers import WorkerPool

#: How often the loop looks up from an empty inbox (stop, idle timeout).
POLL_INTERVAL = 0.2


class Consumer:
    """Consume ``queues`` with manual acks, writing a receipt for each delivery.

    ``queues`` are ``Queue`` rows, :class:`~messaging.broker.QueueSpec` or names;
    ``handlers`` maps queue name to a handler taking one :class:`Delivery`; ``retry``
    is the retry policy (default: from the settings, :meth:`RetryPolicy.from_settings`).
    Call :meth:`run` (blocks until stopped, ``max_messages`` or ``idle_timeout``);
    :meth:`stop` may be called from a signal handler or another thread.
    :meth:`handle_one` runs one delivery without a broker (``messaging.testing`` does).
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
        batch_size: int | None = None,
        reconnect: bool = True,
        urls: Iterable[str] | None = None,
        on_event: Callable[[str], None] | None = None,
        policies: Mapping[str, QueuePolicy] | None = None,
        register: bool = False,
        consume_arguments: Mapping[str, Any] | None = None,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        threads: int = 1,
    ) -> None:
        queues = list(queues)
        self.threads = threads
        self.connect_timeout = connect_timeout
        self.specs = [QueueSpec.of(q) for q in queues]
        self.prefetch, self.batch_size = _sizes(self.specs, handlers, prefetch, batch_size, threads)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.name = name or f"{self.host}:{self.pid}"
        self.max_messages = max_messages
        self.idle_timeout = idle_timeout
        self.on_event = on_event or (lambda text: None)
        self.stats = ConsumerStats()
        self.policies = {s.name: policy_for(s, q) for s, q in zip(self.specs, queues, strict=True)}
        self.policies.update(policies or {})
        self._stop = threading.Event()
        self.inbox = Inbox(float(conf.get("BATCH_FLUSH_INTERVAL")), self._stop)
        self.database = DatabaseGuard(self._stop, self.on_event)
        failures = Failures(
            ReceiptRecorder(self.name, self.host, self.pid),
            self.policies,
            retry if retry is not None else RetryPolicy.from_settings(),
            self.stats,
            self._stop,
        )
        budget = _budget(self.policies, self.stats)
        self.dispatcher = Dispatcher(handlers, failures, self.database, self.stats, budget)
        self.handlers = self.dispatcher.handlers
        self.consume_arguments = consume_arguments
        self.io = self._io(urls, reconnect, failures.delays_refused)
        self.pool = WorkerPool(threads, self._handle, self.stats) if threads > 1 else None
        self.registry = self._registry() if register else None

    def _io(
        self, urls: Iterable[str] | None, reconnect: bool, delays_refused: set[str]
    ) -> ConsumerIO:
        return ConsumerIO(
            self.specs,
            prefetch=self.prefetch,
            inbox=self.inbox,
            stats=self.stats,
            policies=self.policies,
            stop=self._stop,
            name=self.name,
            urls=urls,
            reconnect=reconnect,
            on_event=self.on_event,
            describe=self.describe,
            consume_arguments=self.consume_arguments,
            on_named=self._named,
            delays_refused=delays_refused,
            connect_timeout=self.connect_timeout,
            threads=self.threads,
        )

    def _named(self, spec_name: str, name: str) -> None:
        """A server-named queue (``runconsumer --bind``) got ``name``: its deliveries
        (``delivery.queue == name``) go to the spec's handler and policy. Called on the
        I/O thread before it consumes from ``name``."""
        self.handlers[name] = self.handlers[spec_name]
        self.policies[name] = self.policies[spec_name]

    def _registry(self) -> Registry:
        return Registry(
            name=self.name,
            host=self.host,
            pid=self.pid,
            # A --bind queue's name is the broker's: show what it is bound to instead.
            queues=[s.name or " ".join(f"{e}:{k}" for e, k in s.bindings) for s in self.specs],
            prefetch=self.prefetch,
            stats=self.stats,
            stopping=self._stop.is_set,
            threads=self.threads,
        )

    def describe(self) -> str:
        threads = f", {self.threads} threads" if self.threads > 1 else ""
        return f"(prefetch {self.prefetch}, batch {self.batch_size}{threads}, manual ack)"

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Stop consuming (basic.cancel), start nothing new, finish and ack the
        deliveries in hand, give the unstarted ones back to the broker, and return from
        :meth:`run`. Safe from a signal handler or another thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.inbox.wake()
        # Not on this thread: a signal handler may have interrupted this very thread
        # inside pika (a lock it holds) or inside a transaction.
        threading.Thread(target=self._announce_stop, name="messaging-stop", daemon=True).start()

    def _announce_stop(self) -> None:
        """basic.cancel on the I/O thread, and the registry row written ``stopping``."""
        self.io.cancel()
        if self.registry is not None:
            self.registry.stopping_now()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_until_consuming(self, timeout: float) -> bool:
        return self.io.wait_ready(timeout)

    def handle_one(self, delivery: Delivery) -> Settlement:
        """Handle one delivery as :meth:`run` does one at a time — duplicate check,
        attempt count, schema, handler and receipt in one transaction, failure policy —
        and return its verdict for the broker, which is not told: nothing is settled
        and no connection is made. Raises :class:`DatabaseDown` when the database (not
        the handler) failed."""
        return self.dispatcher.one(delivery)

    def run(self) -> ConsumerStats:
        """Consume until stopped; raises :class:`BrokerError` on a fatal broker error."""
        self.io.start()
        if self.pool is not None:
            self.pool.start()
        if self.registry is not None:
            self.registry.start()
        error: BaseException | None = None
        try:
            if self.pool is None:
                self._loop()
            else:
                threaded_loop(self, self.pool)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._give_back_unstarted()
            if self.pool is not None:
                self.pool.stop()
                self._give_back_unstarted()
            self.io.shutdown()
            if self.registry is not None:
                self.registry.stop(error)
        return self.stats

    @property
    def in_flight(self) -> int:
        """Deliveries whose handlers are running now."""
        return self.stats.in_flight

    def _give_back_unstarted(self) -> None:
        """Requeue the deliveries the broker sent that no handler started (a second
        consumer takes them while the ones in hand finish)."""
        unstarted = self.inbox.take_unstarted(self.io.current_generation())
        if unstarted:
            self.on_event(f"giving {len(unstarted)} unstarted deliveries back to the broker")
            self.io.settle([Settlement(d, Verdict.REQUEUE) for d in unstarted])

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        last_activity = time.monotonic()
        while not self._stop.is_set():
            observability.beat("loop")
            if self.max_messages is not None and self.stats.handled >= self.max_messages:
                break
            wait = POLL_INTERVAL
            if self.idle_timeout is not None:
                remaining = self.idle_timeout - (time.monotonic() - last_activity)
                if remaining <= 0:
                    self.on_event(f"idle for {self.idle_timeout:g}s, stopping")
                    break
                wait = min(wait, remaining)
            first = self.io.next_delivery(wait)
            if first is None:
                continue
            batch, fatal = self.inbox.collect(first, self._batch_limit())
            observability.batch(batch)
            self.io.busy(time.monotonic())
            self.stats.add(in_flight=len(batch))
            observability.in_flight(self.stats.in_flight)
            try:
                self._handle(batch)
            finally:
                self.stats.add(in_flight=-len(batch))
                observability.in_flight(self.stats.in_flight)
                self.io.busy(None)
            if fatal is not None:
                raise fatal
            last_activity = time.monotonic()

    def _batch_limit(self) -> int:
        if self.max_messages is None:
            return self.batch_size
        return min(self.batch_size, self.max_messages - self.stats.handled)

    def _handle(self, batch: list[Delivery]) -> None:
        """Dispatch a batch and hand its verdicts over; requeue it if the database is down."""
        try:
            settlements = self.dispatcher.dispatch(batch)
        except DatabaseDown as down:
            requeued = [Settlement(d, Verdict.REQUEUE) for d in down.pending]
            self.stats.add(failed=len(down.pending))
            self.io.settle([*down.settled, *requeued])
            self.database.outage(len(down.pending), down.pending[0].queue, down.error)
            return
        self.io.settle(settlements)


def policy_for(spec: QueueSpec, queue: Any) -> QueuePolicy:
    """The failure policy of a ``Queue`` row, or of a bare name or spec (the app keeps
    ``<name>.dlq`` for those, so nothing is ever dropped)."""
    if hasattr(queue, "dead_letter_queue") and hasattr(queue, "max_attempts"):  # a row
        return QueuePolicy(
            max_attempts=queue.max_attempts,
            dead_letter_queue=queue.dead_letter_queue,
            broker_dead_letters=bool(queue.dead_letter_exchange),
            schema=getattr(queue, "schema", None),
            stream=getattr(queue, "queue_type", "") == "stream",
            quorum=derived_queue_type(spec) == QUORUM,
            handler_time_budget=getattr(queue, "handler_time_budget", None),
        )
    return QueuePolicy(
        dead_letter_queue=spec.dead_letter_queue or dead_letter_queue_name(spec.name),
        quorum=derived_queue_type(spec) == QUORUM,
    )


def _budget(policies: Mapping[str, QueuePolicy], stats: ConsumerStats) -> HandlerBudget:
    """Each queue's handler time budget: its row's, else ``HANDLER_TIME_BUDGET``."""
    default = conf.get("HANDLER_TIME_BUDGET")
    budgets = {n: budget_for(p.handler_time_budget, default) for n, p in policies.items()}
    return HandlerBudget(budgets, stats)


def _sizes(
    specs: list[QueueSpec],
    handlers: Mapping[str, Handler],
    prefetch: int,
    batch: int | None,
    threads: int,
) -> tuple[int, int]:
    """Check the arguments; the prefetch and the batch size (at most the prefetch).
    With threads the batch size is 1 unless given: a batch shares its slowest handler's
    wait, which would hold its other deliveries' acks (head-of-line blocking)."""
    if threads < 1:
        raise ValueError("threads must be >= 1")
    if threads > 1 and batch is None:
        batch = 1
    if not specs:
        raise ValueError("Consumer needs at least one queue")
    missing = [s.name for s in specs if s.name not in handlers]
    if missing:
        raise ValueError(f"no handler for queue(s): {', '.join(missing)}")
    if prefetch < 1:
        raise ValueError("prefetch must be >= 1")
    batch_size = default_batch_size(prefetch) if batch is None else batch
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    return prefetch, min(batch_size, prefetch)
