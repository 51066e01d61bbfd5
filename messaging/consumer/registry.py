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
    ) -> None:
        self.name, self.host, self.pid = name, host, pid
        self.queues = list(queues)
        self.prefetch = prefetch
        self.stats = stats
        self._stopping = stopping
        self._stop = threading.Event()
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
                    row_id = self.write(row_id)
                except DatabaseError as exc:
                    logger.warning("could not update the consumer registry: %s", exc)
                    close_old_connections()
                if self._stop.wait(interval):
                    break
        finally:
            self.row_id = row_id
            connection.close()

    def write(self, row_id: int | None, *, final: dict[str, Any] | None = None) -> int:
        now = timezone.now()
        state = ConsumerRecord.State.STOPPING if self._stopping() else ConsumerRecord.State.RUNNING
        fields = {
            "last_heartbeat": now,
            "processed": self.stats.handled,
            "failed": self.stats.failed,
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
            started_at=now,
            **fields,
        )
        return row.pk

    def stop(self, error: BaseException | None) -> None:
        """Stop the thread and mark the row stopped (with the error that ended the run)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        final = {
            "state": ConsumerRecord.State.STOPPED,
            "stopped_at": timezone.now(),
            "last_error": f"{type(error).__name__}: {error}"[:2000] if error else "",
        }
        try:
            self.write(self.row_id, final=final)
        except DatabaseError as exc:
            logger.warning("could not mark the consumer stopped in the registry: %s", exc)
