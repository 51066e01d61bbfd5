"""What a worker writes about an attempt besides the task's own transaction.

- The "started" stamp (status RUNNING, ``started_at``, ``last_attempted_at``, the
  attempt's worker). On a database with row locks (PostgreSQL, MySQL) one thread writes
  it on a connection of its own :data:`RUNNING_AFTER` seconds after the attempt began,
  if the task is still running then, so ``get_result()`` and the admin see a task that
  runs RUNNING; a task that returned or raised sooner gets no stamp (its outcome, written
  with its receipt, carries ``started_at`` and its worker). The handler never waits for
  it (one not yet written when the process is SIGKILLed is lost; the next attempt
  writes its own). SQLite locks the whole database, and a second connection writing
  while the task's transaction reads would make one of them fail: there no stamp is
  written, so a task goes from READY to SUCCESSFUL or FAILED without a visible RUNNING
  (``started_at`` is still kept).
- A failed attempt's error (class path and traceback), which the task's rolled-back
  transaction cannot keep: written on the worker's own connection right after the
  consumer saved that attempt's receipt (``post_save`` of ``Receipt``), READY again or
  FAILED after the last attempt.

Each write starts with an UPDATE of the row, so that it holds the row (PostgreSQL) or
the database's write lock (SQLite) before it reads what it changes."""

from __future__ import annotations

import atexit
import logging
import queue as queue_module
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_save

from ..models import Receipt, TaskRecord
from .results import new_record
from .wire import TaskMessage

logger = logging.getLogger("messaging.task_backend")

Status = TaskRecord.Status
OPEN = (Status.READY, Status.RUNNING)
#: Seconds after its start a task still running is stamped RUNNING.
RUNNING_AFTER = 0.1


@dataclass(frozen=True)
class Stamp:
    """One attempt's change: started, or failed (``error``; ``final``: no attempt
    follows). ``create``: write a row when the task has none (another producer's)."""

    result_id: str
    message: TaskMessage
    attempt: int
    worker: str
    at: datetime
    error: dict[str, Any] | None = None
    final: bool = False
    create: bool = True

    def quick(self) -> bool:
        """A first attempt's started stamp as one UPDATE; False when the row is not the
        READY or RUNNING row of an untried task (then :meth:`apply`)."""
        if self.error is not None or self.attempt != 1:
            return False
        rows = TaskRecord.objects.filter(result_id=self.result_id)
        if rows.filter(status__in=OPEN, errors=[]).update(
            status=Status.RUNNING,
            started_at=Coalesce("started_at", Value(self.at)),
            last_attempted_at=self.at,
            worker_ids=[self.worker],
        ):
            return True
        # Finished already: its first attempt's success wrote the worker and start.
        return rows.filter(status=Status.SUCCESSFUL).exists()

    def apply(self, then: Callable[[TaskRecord], None] | None = None) -> None:
        """Read the row (held first), change it, ``then(row)`` if given, save it."""
        with transaction.atomic():
            if not TaskRecord.objects.filter(result_id=self.result_id).update(
                result_id=F("result_id")
            ):
                if not self.create:
                    return
                new_record(self.result_id, self.message).save(force_insert=True)
            row = TaskRecord.objects.get(result_id=self.result_id)
            self.change(row)
            if then is not None:
                then(row)
            row.save()

    def change(self, row: TaskRecord) -> None:
        workers = list(row.worker_ids or [])
        workers += [""] * (self.attempt - len(workers))
        workers[self.attempt - 1] = self.worker
        row.worker_ids = workers
        row.started_at = row.started_at or self.at
        if row.last_attempted_at is None or row.last_attempted_at < self.at:
            row.last_attempted_at = self.at
        if self.error is None:
            failed_already = any(e.get("attempt", 0) >= self.attempt for e in row.errors or [])
            if row.status in OPEN and not failed_already:
                row.status = Status.RUNNING
            return
        errors = [e for e in row.errors or [] if e.get("attempt") != self.attempt]
        row.errors = sorted([*errors, self.error], key=lambda e: e.get("attempt", 0))
        if row.status in OPEN:
            row.status = Status.FAILED if self.final else Status.READY
            if self.final:
                row.finished_at = self.at


class Running:
    """A started stamp due at ``due`` (monotonic), unless the attempt ended before."""

    __slots__ = ("due", "ended", "stamp")

    def __init__(self, stamp: Stamp, due: float) -> None:
        self.stamp, self.due, self.ended = stamp, due, False

    def end(self) -> None:
        """The attempt returned or raised: its stamp is not written any more."""
        self.ended = True


class StampWriter:
    """The thread that writes the started stamps of the attempts still running
    :data:`RUNNING_AFTER` seconds after their start, in the order they started."""

    def __init__(self, delay: float = RUNNING_AFTER) -> None:
        self.delay = delay
        self._queue: queue_module.SimpleQueue[Running | None] = queue_module.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, stamp: Stamp) -> Running:
        """Write ``stamp`` once due, unless the returned handle is ended first."""
        running = Running(stamp, time.monotonic() + self.delay)
        if self._thread is None:
            self._start()
        self._queue.put(running)
        return running

    def flush(self, timeout: float = 10.0) -> None:
        """Write what is due, then stop the thread (at exit)."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._main, name="messaging-task-stamps", daemon=True
                )
                self._thread.start()

    def _main(self) -> None:
        """Sleep until the oldest stamp is due (not woken by each new one), take what
        came meanwhile, write the due stamps of attempts still running. Asked to stop,
        it writes what is due and drops the rest."""
        try:
            waiting: deque[Running] = deque()
            while True:
                if not waiting:
                    first = self._queue.get()
                    if first is None:
                        return
                    waiting.append(first)
                time.sleep(max(0.0, waiting[0].due - time.monotonic()))
                going_on = self._take(waiting)
                self._write_due(waiting)
                if not going_on:
                    return
        finally:
            connection.close()

    def _take(self, waiting: deque[Running]) -> bool:
        """Move what is queued to ``waiting``; False once asked to stop."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue_module.Empty:
                return True
            if item is None:
                return False
            waiting.append(item)

    def _write_due(self, waiting: deque[Running]) -> None:
        """Each stamp in a transaction of its own: never two rows locked at once, so
        the worker's batch (which locks its tasks' rows) and this thread never deadlock."""
        now = time.monotonic()
        while waiting and waiting[0].due <= now:
            item = waiting.popleft()
            if not item.ended:
                self._write(item.stamp)

    def _write(self, stamp: Stamp) -> None:
        for _try in range(3):
            try:
                if not stamp.quick():
                    stamp.apply()
                return
            except IntegrityError:
                continue  # the worker created the row meanwhile: update it
            except DatabaseError as exc:
                logger.warning("task %s: could not write its stamp: %s", stamp.result_id, exc)
                close_old_connections()
        logger.error("task %s: stamp of attempt %d not written", stamp.result_id, stamp.attempt)


#: The process's writer (one thread for every task queue this worker consumes).
writer = StampWriter()
atexit.register(writer.flush)


class FailureStamps:
    """Failed attempts' stamps, each written once its receipt is saved."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], Stamp] = {}
        self._lock = threading.Lock()
        post_save.connect(
            self.receipt_saved, sender=Receipt, dispatch_uid="messaging-task-failures"
        )

    def put(self, queue: str, stamp: Stamp) -> None:
        with self._lock:
            self._pending[(queue, stamp.result_id)] = stamp

    def receipt_saved(
        self, sender: Any, instance: Receipt, created: bool = False, **_kw: Any
    ) -> None:
        if not created or not self._pending:
            return
        with self._lock:
            stamp = self._pending.pop((instance.queue_name, instance.message_id or ""), None)
        if stamp is None or instance.outcome in (Receipt.Outcome.ACKED, Receipt.Outcome.DUPLICATE):
            return
        try:
            stamp.apply()
        except DatabaseError as exc:
            logger.error(
                "task %s: error of attempt %d not written: %s", stamp.result_id, stamp.attempt, exc
            )


failures = FailureStamps()
