"""The inbox between the I/O thread and the calling thread, and batch collection."""

from __future__ import annotations

import queue as queue_module
import threading
import time
from collections.abc import Callable

from .handlers import Delivery

#: Most batched receipts per transaction when the batch size is derived from prefetch.
MAX_DEFAULT_BATCH = 500

Item = Delivery | BaseException

#: Put by :meth:`Inbox.wake`: no delivery, it only ends a wait.
_WAKE = object()


def default_batch_size(prefetch: int) -> int:
    """Receipts per commit for a prefetch: a third of it (so the broker keeps sending
    while a batch commits), 1 at prefetch 1..3 (per-message commit and ack)."""
    return max(1, min(MAX_DEFAULT_BATCH, prefetch // 3))


class Inbox:
    """Deliveries (and fatal errors) the I/O thread hands over, in arrival order.

    :meth:`next_batch` returns the next delivery of the current connection plus whatever
    of the same connection arrives within ``flush_interval``, up to a limit. A delivery
    of a *newer* connection ends a batch and is carried into the next one; deliveries of
    an older connection are dropped (the broker redelivers them)."""

    def __init__(self, flush_interval: float, stop: threading.Event | None = None) -> None:
        self.flush_interval = flush_interval
        self._stop = stop or threading.Event()
        self._queue: queue_module.SimpleQueue[Item] = queue_module.SimpleQueue()
        #: A delivery taken from the queue that belongs to the next batch.
        self.carried: Delivery | None = None

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def wake(self) -> None:
        """End the calling thread's wait now (the consumer is stopping).

        Needed, not just quicker: CPython's ``SimpleQueue.get(timeout=…)``, interrupted
        by a signal whose handler runs past the remaining timeout, recomputes a negative
        timeout and then waits forever — until something is put. A SIGTERM arriving near
        the end of an idle poll left ``runconsumer`` hanging that way."""
        self._queue.put(_WAKE)  # type: ignore[arg-type]

    def get_nowait(self) -> Item:
        item = self._queue.get_nowait()
        while item is _WAKE:
            item = self._queue.get_nowait()
        return item

    def first(self, wait: float, generation: Callable[[], int]) -> Delivery | None:
        """The next delivery within ``wait`` seconds if it belongs to the current
        connection (``generation()``, asked once it is here), else None. A fatal error
        handed over by the I/O thread is raised here."""
        try:
            item = self.carried or self._queue.get(timeout=wait)
        except queue_module.Empty:
            return None
        self.carried = None
        if item is _WAKE:
            return None
        if isinstance(item, BaseException):
            raise item
        if item.generation != generation():
            return None  # its channel is gone: the broker redelivers it
        return item

    def waiting(self) -> int:
        """About how many items wait in the inbox (deliveries, wake-ups, errors)."""
        return self._queue.qsize() + (self.carried is not None)

    def collect(
        self, first: Delivery, limit: int, *, linger: bool = True
    ) -> tuple[list[Delivery], BaseException | None]:
        """``first`` plus whatever arrives within the flush interval, up to ``limit``
        (``linger=False``: only what is already here); a fatal error that arrives
        meanwhile ends the batch and is returned with it."""
        batch = [first]
        if limit <= 1:
            return batch, None
        deadline = time.monotonic() + (self.flush_interval if linger else 0.0)
        while len(batch) < limit and not self._stop.is_set():
            item = self._next_before(deadline)
            if item is None or item is _WAKE:
                break
            if isinstance(item, BaseException):
                return batch, item
            if item.generation > first.generation:
                # The connection was replaced while this batch filled: the batch is from
                # the dead channel (never acked; redelivered), this delivery is the new
                # channel's first and starts the next batch. Dropping it would leave it
                # unsettled — and a later multiple-ack would cover it unhandled.
                self.carried = item
                break
            if item.generation == first.generation:
                batch.append(item)
        return batch, None

    def take_unstarted(self, generation: int) -> list[Delivery]:
        """Empty the inbox (a stopping consumer): the deliveries of connection
        ``generation`` it held, for giving back to the broker; others are dropped (their
        channel is gone, so the broker has them back already)."""
        items: list[Item] = [self.carried] if self.carried is not None else []
        self.carried = None
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue_module.Empty:
                break
        return [i for i in items if isinstance(i, Delivery) and i.generation == generation]

    def _next_before(self, deadline: float) -> Item | None:
        try:
            return self._queue.get_nowait()
        except queue_module.Empty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return self._queue.get(timeout=remaining)
            except queue_module.Empty:
                return None
