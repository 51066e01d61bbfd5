"""The registry thread: keeps this process's ``Consumer`` row (admin → Consumers) up
to date every ``CONSUMER_HEARTBEAT_INTERVAL`` seconds, and marks it stopped at exit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from .. import conf
from ..models import Consumer as ConsumerRecord
from .stats import ConsumerStats

logger = logging.getLogger("messaging.consumer")


class Registry:
    """One consumer's row in the registry, written from its own thread."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        pid: int,
        queues: Sequence[str],
        prefetch: int,
        stats: ConsumerStats,
        stopping: Callable[[], bool],
        threads: int = 1,
    ) -> None:
        self.name, self.host, self.pid = name, host, pid
        self.threads = threads
        self.queues = list(queues)
        self.prefetch = prefetch
        self.stats = stats
        self._stopping = stopping
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.row_id: int | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="messaging-registry", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        """Write the row now, every interval, and once at exit."""
        interval = float(conf.get("CONSUMER_HEARTBEAT_INTERVAL"))
        row_id: int | None = None
        try:
            while True:
                try:
                    row_id = self.row_id = self.write(row_id)
                except DatabaseError as exc:
                    logger.warning("could not update the consumer registry: %s", exc)
                    close_old_connections()
                if self._stop.is_set() or self._wait(interval):
                    break
        finally:
            self.row_id = row_id
            connection.close()

    def _wait(self, interval: float) -> bool:
        """Wait for the next heartbeat; True when stopped (a wake-up writes at once)."""
        self._wake.wait(interval)
        self._wake.clear()
        return self._stop.is_set()

    def write(self, row_id: int | None, *, final: dict[str, Any] | None = None) -> int:
        now = timezone.now()
        state = ConsumerRecord.State.STOPPING if self._stopping() else ConsumerRecord.State.RUNNING
        fields = {
            "last_heartbeat": now,
            "processed": self.stats.handled,
            "failed": self.stats.failed,
            "in_flight": max(0, self.stats.in_flight),
            "state": state,
            **(final or {}),
        }
        if row_id is not None and ConsumerRecord.objects.filter(pk=row_id).update(**fields):
            return row_id
        row = ConsumerRecord.objects.create(
            name=self.name,
            host=self.host,
            pid=self.pid,
            queues=self.queues,
            prefetch=self.prefetch,
            threads=self.threads,
            started_at=now,
            **fields,
        )
        return row.pk

    def stopping_now(self) -> None:
        """Write the row now (its state ``stopping``), not at the next heartbeat."""
        self._wake.set()

    def mark_stopped(self, reason: str, timeout: float = 2.0) -> None:
        """Mark the row stopped from a thread of its own (a signal handler may have
        interrupted a transaction on the calling thread), waiting at most ``timeout``
        seconds: best effort on the way out of a process that exits at once."""

        def write() -> None:
            try:
                self.write(self.row_id, final=self._final(reason))
            except DatabaseError as exc:
                logger.warning("could not mark the consumer stopped in the registry: %s", exc)
            finally:
                connection.close()

        writer = threading.Thread(target=write, name="messaging-registry-final", daemon=True)
        writer.start()
        writer.join(timeout)

    def _final(self, last_error: str) -> dict[str, Any]:
        return {
            "state": ConsumerRecord.State.STOPPED,
            "stopped_at": timezone.now(),
            "in_flight": 0,
            "last_error": last_error[:2000],
        }

    def stop(self, error: BaseException | None) -> None:
        """Stop the thread and mark the row stopped (with the error that ended the run)."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        final = self._final(f"{type(error).__name__}: {error}" if error else "")
        try:
            self.write(self.row_id, final=final)
        except DatabaseError as exc:
            logger.warning("could not mark the consumer stopped in the registry: %s", exc)
