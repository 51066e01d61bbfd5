"""The hand-off: the rows of a committed transaction go to this process's publisher
thread, and the committing (request) thread returns at once.

- **One thread per process** (``messaging-publisher``, a daemon), started with the first
  hand-off; a forked child (gunicorn ``--preload``) starts its own, the parent's rows
  stay the parent's.
- **Pipelined across requests**: the thread takes everything queued (up to
  :data:`BATCH_MAX` rows), publishes it with pipelined confirms on the process's
  publisher, then stores the outcomes with one UPDATE per outcome; what the requests
  hand over meanwhile goes in its next batch. While rows keep coming (some were
  already waiting when a batch ended, and commits come less than
  :data:`LINGER_SECONDS` apart on average) it lets more join the next batch, for
  that long at most or until :data:`LINGER_ROWS` are queued, so that a busy process
  pays the per-batch work (a confirm round trip, an UPDATE and its commit) once per
  several rows, not once per request; a row that finds the thread idle, or a steady
  trickle of commits, is sent at once. A commit wakes the thread only when it is idle
  or its lingering batch is full.
- **Who sends a row**: its creator's lease (``next_attempt_at``) keeps the relay off
  it while it waits here. A row that waited longer than the lease's margin
  (:func:`~.outbox.send_deadline`) is released to the relay instead of sent; a process
  that dies leaves its rows ``pending`` and the relay sends them when the lease ends.
- **Bounded**: ``PUBLISH_BACKLOG_MAX`` rows and ``PUBLISH_BACKLOG_MAX_BYTES`` bytes
  (body + :data:`ROW_OVERHEAD` each), queued or being published. Rows beyond it are
  released to the relay by the committing thread (one UPDATE), never waited for.
- **Its database connection** is its own, closed after :data:`IDLE_CLOSE_SECONDS`
  without work and after a failed batch.
- **Seen**: ``messaging_publish_backlog`` (rows held here) and
  ``messaging_publish_commit_to_confirm_seconds``; :func:`flush` waits until it is empty
  (tests, before a process exits; at interpreter exit for :data:`EXIT_FLUSH_SECONDS`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connections
from django.utils import timezone

from .. import conf, observability
from ..broker.process import get_publisher_factory
from ..broker.publisher import PipelinedPublisher
from ..models import Message
from ..observability import metrics
from .outbox import PublishResult, lease_holds, release_lease, send_deadline
from .sending import record_outcomes, send_rows

logger = logging.getLogger("messaging.publishing")

#: Most rows the thread publishes in one pipelined send.
BATCH_MAX = 1000
#: Bytes a row counts for in the backlog besides its body.
ROW_OVERHEAD = 1024
#: Seconds without work after which the thread closes its database connections (as a
#: long-lived worker should: a restarted database, a test database to drop).
IDLE_CLOSE_SECONDS = 1.0
#: Longest the thread waits for more rows before a batch while rows keep coming, and
#: the rows that end the wait early (see the module's docstring).
LINGER_SECONDS = 0.003
LINGER_ROWS = 100
#: Weight of the newest hand-off in the average time between them.
GAP_WEIGHT = 0.2
#: Longest the interpreter's exit waits for the hand-off to drain (seconds).
EXIT_FLUSH_SECONDS = 5.0


@dataclass(slots=True)
class Handed:
    """A committed row waiting for the publisher thread."""

    message: Message
    user_id: int | None
    committed: float  # time.monotonic() at the commit
    size: int


def handed(message: Message, user_id: int | None, committed: float) -> Handed:
    return Handed(message, user_id, committed, len(message.body or b"") + ROW_OVERHEAD)


def in_background(alias: str) -> bool:
    """Do the rows just committed on database ``alias`` go to the publisher thread?
    With ``PUBLISH_IN_BACKGROUND`` and a broker publisher (a :class:`PipelinedPublisher`
    factory), so not under ``messaging.testing.capture()`` (a capture is complete when
    the transaction's block exits) and for on-commit hooks run
    inside a transaction still open (Django's ``captureOnCommitCallbacks`` in a
    ``TestCase``: another connection would not see the rows)."""
    factory = get_publisher_factory()
    return (
        bool(conf.get("PUBLISH_IN_BACKGROUND"))
        and isinstance(factory, type)
        and issubclass(factory, PipelinedPublisher)
        and not connections[alias].in_atomic_block
    )


class Pace:
    """How fast rows are handed over: the moving average of the seconds between two
    rows (a hand-off of several counts each), and how long that makes the thread
    linger before a batch."""

    def __init__(self) -> None:
        self.gap = 1.0
        self._last = 0.0

    def handed(self, count: int, now: float) -> None:
        """``count`` rows were handed over at ``now`` (``time.monotonic()``)."""
        gap = min(now - self._last, 1.0) / count
        self.gap += (gap - self.gap) * GAP_WEIGHT
        self._last = now

    def linger(self, queued: int) -> float:
        """Seconds to wait for more rows before sending the ``queued`` ones that came
        while the last batch was sent: :data:`LINGER_SECONDS` when rows come faster
        than one per that (fewer than :data:`LINGER_ROWS` queued), else none."""
        if queued >= LINGER_ROWS or self.gap >= LINGER_SECONDS:
            return 0.0
        return LINGER_SECONDS


class Handoff:
    """This process's queue of committed rows and the thread that publishes them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._queue: deque[Handed] = deque()
        self._rows = 0  # queued or being published
        self._bytes = 0
        self._thread: threading.Thread | None = None
        self._wake_at = 1  # queued rows that wake the thread (more while it lingers)
        self._pace = Pace()
        self._full = False  # the last offer found the bound reached (logged once)

    @property
    def depth(self) -> int:
        """Rows queued or being published."""
        return self._rows

    def offer(self, rows: Sequence[Handed]) -> list[Handed]:
        """Queue ``rows`` in order as far as the bound allows; returns the rest."""
        max_rows = conf.get("PUBLISH_BACKLOG_MAX")
        max_bytes = conf.get("PUBLISH_BACKLOG_MAX_BYTES")
        with self._cond:
            if rows:
                self._pace.handed(len(rows), time.monotonic())
            taken = 0
            for row in rows:
                if self._rows >= max_rows or self._bytes + row.size > max_bytes:
                    break
                self._queue.append(row)
                self._rows += 1
                self._bytes += row.size
                taken += 1
            if taken:
                self._start()
                if len(self._queue) >= self._wake_at:
                    self._cond.notify_all()
            full, self._full = self._full, taken < len(rows)
            depth = self._rows
        _set_gauge(depth)
        if taken < len(rows) and not full:
            logger.warning(
                "publisher backlog full (%d rows, %d bytes queued): new messages are left "
                "pending for the relay",
                depth,
                self._bytes,
            )
        return list(rows[taken:])

    def flush(self, timeout: float | None) -> bool:
        """Wait until every row handed over so far has its outcome stored (``timeout``
        seconds at most); True when the hand-off is empty."""
        with self._cond:
            if self._thread is threading.current_thread():
                return self._rows == 0  # the publisher thread itself (a signal receiver)
            return self._cond.wait_for(lambda: self._rows == 0, timeout)

    # ----------------------------------------------------------------- the thread

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="messaging-publisher", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._take()
            try:
                publish_handed(batch)
            except Exception:  # noqa: BLE001 - the rows stay pending: the relay sends them
                logger.exception(
                    "publisher thread: %d message(s) left pending for the relay", len(batch)
                )
                connections.close_all()  # this thread's: a broken one is opened again
            finally:
                self._done(batch)

    def _take(self) -> list[Handed]:
        with self._cond:
            if self._queue:
                self._linger()
            elif not self._cond.wait(IDLE_CLOSE_SECONDS):
                self._cond.release()
                try:
                    connections.close_all()  # this thread's
                finally:
                    self._cond.acquire()
            while not self._queue:
                self._cond.wait()
            count = min(len(self._queue), BATCH_MAX)
            return [self._queue.popleft() for _ in range(count)]

    def _linger(self) -> None:
        """Rows came while the last batch was sent: let more join the next batch for
        as long as :meth:`Pace.linger` says (the lock held; released while waiting)."""
        seconds = self._pace.linger(len(self._queue))
        if seconds:
            self._wake_at = LINGER_ROWS
            try:
                self._cond.wait_for(lambda: len(self._queue) >= LINGER_ROWS, seconds)
            finally:
                self._wake_at = 1

    def _done(self, batch: Sequence[Handed]) -> None:
        with self._cond:
            self._rows -= len(batch)
            self._bytes -= sum(row.size for row in batch)
            self._cond.notify_all()
            depth = self._rows
        _set_gauge(depth)


def publish_handed(batch: Sequence[Handed]) -> None:
    """On the publisher thread: send the rows whose lease still holds (release the
    others to the relay), observe commit-to-confirm, store the outcomes, log failures."""
    now = timezone.now()
    deadline = send_deadline(now)
    late = [row.message.message_id for row in batch if not lease_holds(row.message, deadline)]
    if late:
        released = release_lease(late, now)
        logger.warning("%d message(s) waited too long in the hand-off: left to the relay", released)
        gone = set(late)
        batch = [row for row in batch if row.message.message_id not in gone]
    if not batch:
        return
    rows = [row.message for row in batch]
    outcomes = send_rows(rows)
    _observe_confirms(batch, outcomes, time.monotonic())
    result = record_outcomes(rows, outcomes, [row.user_id for row in batch])
    log_failures(rows, result)


def log_failures(rows: Sequence[Message], result: PublishResult) -> None:
    """Log each row ``result`` says was not published: a warning for a row left pending,
    an error for one failed for good."""
    failed, retrying = result.failed, set(result.retrying)
    for message in rows:
        if message.message_id in failed:
            log = logger.warning if message.message_id in retrying else logger.error
            log(
                "message %s not published: %s",
                message.message_id,
                failed[message.message_id],
                extra=observability.log_fields(message=message),
            )


def _observe_confirms(batch: Sequence[Handed], outcomes: Sequence[object], at: float) -> None:
    if not metrics.available():
        return
    histogram = metrics.PUBLISH_COMMIT_TO_CONFIRM_SECONDS.child()
    for row, outcome in zip(batch, outcomes, strict=True):
        if outcome is None:
            histogram.observe(max(0.0, at - row.committed))


def _set_gauge(depth: int) -> None:
    if metrics.available():
        metrics.PUBLISH_BACKLOG.child().set(depth)


# --------------------------------------------------------------------------- the process's

_state_lock = threading.Lock()
_current: Handoff | None = None


def process_handoff() -> Handoff:
    """This process's hand-off (made on first use; a forked child gets its own)."""
    global _current
    current = _current
    if current is None or current.pid != os.getpid():
        with _state_lock:
            if _current is None or _current.pid != os.getpid():
                _current = Handoff()
            current = _current
    return current


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until every message this process handed to its publisher thread has its
    outcome stored (``published``, ``failed``, or ``pending`` for the relay), at most
    ``timeout`` seconds (``None``: no limit). True when nothing is left. Call it before a
    process exits on purpose, or in a test before looking at the rows."""
    current = _current
    if current is None or current.pid != os.getpid():
        return True
    return current.flush(timeout)


def _after_fork_in_child() -> None:
    global _state_lock, _current
    _state_lock = threading.Lock()
    _current = None


def _flush_at_exit() -> None:
    if not flush(EXIT_FLUSH_SECONDS):
        logger.warning(
            "exit: %d handed message(s) still unconfirmed: left pending for the relay",
            _current.depth if _current is not None else 0,
        )


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)
