"""``runconsumer --threads N``: N worker threads that each run a batch of deliveries
(handlers, receipts, commit) and hand its verdicts to the I/O thread.

The calling thread reads deliveries and takes a free worker before it takes a delivery
from the inbox, so a delivery is either running on a worker or still unstarted in the
inbox (where a stopping consumer gives it back to the broker). Each worker uses its own
database connection, kept across batches as the one-thread consumer keeps its own:
``close_old_connections()`` (which drops a connection that broke, or that CONN_MAX_AGE
retired) before a batch at most once a second, after a batch that failed, and the
connection closed when the worker ends. (Closing it after every message, as a request
with ``CONN_MAX_AGE = 0`` would, costs a new PostgreSQL connection per message.)"""

from __future__ import annotations

import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable, Sequence

from django.db import close_old_connections, connections

from .. import observability
from .handlers import Delivery
from .stats import ConsumerStats

logger = logging.getLogger("messaging.consumer")

_DONE = object()
#: Seconds between a worker's checks of its database connection.
CHECK_INTERVAL = 1.0


class WorkerPool:
    """``threads`` workers running ``handle(batch)``; see the module docstring."""

    def __init__(
        self, threads: int, handle: Callable[[list[Delivery]], None], stats: ConsumerStats
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.threads = threads
        self._handle = handle
        self.stats = stats
        self._slots = threading.Semaphore(threads)
        self._work: queue_module.SimpleQueue[object] = queue_module.SimpleQueue()
        self._lock = threading.Lock()
        #: Worker name -> when its current batch started (monotonic).
        self._running: dict[str, float] = {}
        self._workers: list[threading.Thread] = []
        #: The first error a worker could not handle (the engine raises it).
        self.crashed: BaseException | None = None

    def start(self) -> None:
        for number in range(1, self.threads + 1):
            worker = threading.Thread(
                target=self._main, name=f"messaging-worker-{number}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def take_slot(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a free worker; True: one is reserved for
        the next :meth:`submit` (or give it back with :meth:`give_back`)."""
        return self._slots.acquire(timeout=timeout)

    def give_back(self) -> None:
        self._slots.release()

    def submit(self, batch: Sequence[Delivery]) -> None:
        """Run ``batch`` on the worker reserved by :meth:`take_slot`."""
        self.stats.add(in_flight=len(batch))
        self._work.put(list(batch))

    def oldest_start(self) -> float | None:
        """When the longest-running batch started (None: all workers idle)."""
        with self._lock:
            return min(self._running.values(), default=None)

    def running(self) -> int:
        """Batches running right now."""
        with self._lock:
            return len(self._running)

    def stop(self, timeout: float | None = None) -> int:
        """Let running batches finish (within ``timeout`` seconds, None: however long),
        end the workers; returns how many batches were still running."""
        for _ in self._workers:
            self._work.put(_DONE)
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            worker.join(left)
        return sum(worker.is_alive() for worker in self._workers)

    def _main(self) -> None:
        name = threading.current_thread().name
        checked = 0.0
        try:
            while True:
                item = self._work.get()
                if item is _DONE:
                    return
                now = time.monotonic()
                if now - checked >= CHECK_INTERVAL:
                    close_old_connections()
                    checked = now
                batch: list[Delivery] = item  # type: ignore[assignment]
                if not self._run(name, batch):
                    close_old_connections()
        finally:
            connections.close_all()

    def _run(self, name: str, batch: list[Delivery]) -> bool:
        """Run one batch; False when it raised (the engine handles handler and
        database failures itself: this is a bug, kept for the calling thread)."""
        with self._lock:
            self._running[name] = time.monotonic()
        try:
            self._handle(batch)
            return True
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            logger.exception("consumer worker %s failed", name)
            self.crashed = self.crashed or exc
            return False
        finally:
            with self._lock:
                del self._running[name]
            self.stats.add(in_flight=-len(batch))
            observability.in_flight(self.stats.in_flight)
            self._slots.release()
