"""Who drives the consumer's connection once it is consuming (see :mod:`.io`):

* :class:`ThreadedDrive` (prefetch > 1) — the I/O thread reads deliveries while the
  calling thread commits; verdicts reach it through a queue and a
  ``add_callback_threadsafe`` wake-up;
* :class:`InlineDrive` (prefetch 1) — the calling thread reads the next delivery and
  acks it itself, behind a lock, like a hand-written pika loop; the I/O thread only
  services the connection (heartbeats) when nobody has for :data:`KEEP_AFTER` seconds.
"""

from __future__ import annotations

import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .acks import Settler
from .handlers import Delivery
from .inbox import Inbox
from .verdicts import Settlement

logger = logging.getLogger("messaging.consumer")

#: Longest the I/O thread blocks in one read (cancels and stop are seen in time).
IO_SLICE = 0.25
#: Prefetch 1: the I/O thread services the connection after this long without a read.
KEEP_AFTER = 0.25
#: Prefetch 1: how often the I/O thread looks.
KEEP_SLICE = 0.1

_CLOSE = object()


class ThreadedDrive:
    """prefetch > 1: the I/O thread drives; verdicts are handed to it."""

    def __init__(self, inbox: Inbox, settler: Settler, close: threading.Event) -> None:
        self.inbox, self.settler, self._close = inbox, settler, close
        self.lock = threading.Lock()  # only held while a connection is set up or closed
        self._conn: Any = None
        self._verdicts: queue_module.SimpleQueue[Any] = queue_module.SimpleQueue()

    def attach(self, conn: Any) -> None:
        self._conn = conn

    def detach(self) -> None:
        """The connection is going (the I/O thread keeps the last one for the wake-ups)."""

    def wake(self) -> None:
        """A fatal error is in the inbox (the calling thread is waiting on it already)."""

    def next_delivery(self, wait: float, generation: Callable[[], int]) -> Delivery | None:
        return self.inbox.first(wait, generation)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        conn = self._conn
        if conn is None:
            return
        self._verdicts.put(settlements)
        try:
            conn.add_callback_threadsafe(self._carry_out)
        except Exception:  # noqa: BLE001 - connection already gone: the broker requeues
            logger.info("connection gone before %d deliveries were settled", len(settlements))

    def call_on_io(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the I/O thread, after the verdicts handed over before it."""
        conn = self._conn
        if conn is None:
            return
        self._verdicts.put(call)
        try:
            conn.add_callback_threadsafe(self._carry_out)
        except Exception:  # noqa: BLE001 - connection already gone
            logger.info("connection gone before a call on the I/O thread")

    def close(self) -> None:
        """After every verdict handed over (FIFO), stop the I/O thread's loop."""
        conn = self._conn
        if conn is None:
            self._close.set()
            return
        self._verdicts.put(_CLOSE)
        try:
            conn.add_callback_threadsafe(self._carry_out)
        except Exception:  # noqa: BLE001
            self._close.set()

    def turn(self, conn: Any) -> None:
        """One turn of the I/O thread: read deliveries, run the verdict callbacks."""
        conn.process_data_events(time_limit=IO_SLICE)

    def _carry_out(self) -> None:
        while True:
            try:
                item = self._verdicts.get_nowait()
            except queue_module.Empty:
                return
            if item is _CLOSE:
                self._close.set()
            elif callable(item):
                item()
            else:
                self.settler.settle(item)


class InlineDrive:
    """prefetch 1: the calling thread drives; the I/O thread keeps the connection alive."""

    def __init__(self, inbox: Inbox, settler: Settler, close: threading.Event) -> None:
        self.inbox, self.settler, self._close = inbox, settler, close
        #: Whoever uses the connection holds this.
        self.lock = threading.Lock()
        self._driven: Any = None
        #: Set when there is a connection to drive, or a fatal error in the inbox.
        self._look = threading.Event()
        self._serviced = 0.0
        #: When the calling thread, blocked reading, wants to be woken (None: not reading).
        self._wake_at: float | None = None
        #: The error the calling thread ran into (the I/O thread reconnects).
        self._failure: BaseException | None = None

    def attach(self, conn: Any) -> None:
        """(lock held) The calling thread may drive ``conn`` from now on."""
        self._driven, self._failure = conn, None
        self._serviced = time.monotonic()
        self._look.set()

    def detach(self) -> None:
        """(lock held) Nobody drives the connection any more."""
        self._driven = None
        self._look.clear()

    def wake(self) -> None:
        """A fatal error is in the inbox: the calling thread should look now."""
        self._look.set()

    def next_delivery(self, wait: float, generation: Callable[[], int]) -> Delivery | None:
        # One the I/O thread read while servicing the connection, or a fatal error.
        ready = self.inbox.first(0.0, generation)
        if ready is not None:
            return ready
        deadline = time.monotonic() + wait
        if self._driven is None:  # (re)connecting: wait for the connection or an error
            self._look.wait(wait)
        if self._driven is not None:
            with self.lock:
                conn = self._driven
                if conn is not None:
                    # Block until a delivery (or the I/O thread's wake-up at the
                    # deadline): no ioloop timer per read.
                    self._wake_at = deadline
                    self._guarded(conn.process_data_events, time_limit=None)
                    self._wake_at = None
        return self.inbox.first(0.0, generation)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        with self.lock:
            if self._driven is not None:
                self._guarded(self.settler.settle, settlements)

    def call_on_io(self, call: Callable[[], None]) -> None:
        """Nothing: at prefetch 1 the calling thread drives the connection and may be
        the one asking (from a signal handler, inside a read); one delivery at a time
        is all the broker sends, and it gets back what was not started at close."""

    def close(self) -> None:
        self._close.set()  # every verdict was carried out already, on this thread

    def turn(self, conn: Any) -> None:
        """One turn of the I/O thread: service the connection if the calling thread
        has not lately (a long handler), take over an error it ran into, wait."""
        self._raise_failure()
        now = time.monotonic()
        wake_at = self._wake_at
        if wake_at is not None and now >= wake_at:
            conn.add_callback_threadsafe(_wake_up)  # the calling thread's read returns
        if now - self._serviced >= KEEP_AFTER and self.lock.acquire(False):
            try:  # (not taken: the calling thread is using the connection right now)
                if self._failure is None:
                    conn.process_data_events(time_limit=0)
                    self._serviced = time.monotonic()
            finally:
                self.lock.release()
        self._raise_failure()
        self._close.wait(KEEP_SLICE)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _guarded(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``call`` on the driven connection (lock held); a failure is handed to
        the I/O thread, which reconnects, and the connection is not driven again."""
        try:
            call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the I/O thread translates it
            self._failure = self._failure or exc
            self._driven = None
            self._look.clear()
        self._serviced = time.monotonic()


def _wake_up() -> None:
    """Run on the calling thread: its blocked read returns (see InlineDrive.turn)."""
