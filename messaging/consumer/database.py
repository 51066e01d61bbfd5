"""The consumer's view of its database: is it there, and what to do when it is not
(requeue, back off, keep running)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, close_old_connections, connection

from ..amqp.backoff import backoff
from ..db import operations
from .handlers import Delivery
from .verdicts import Settlement

logger = logging.getLogger("messaging.consumer")

#: Longest wait for the database to come back between attempts.
DB_BACKOFF_MAX = 10.0
#: First wait after the database failed (doubling while it keeps failing).
DB_BACKOFF_FIRST = 0.5


class DatabaseDown(Exception):
    """The database, not the handler, failed. ``settled``: the batch's deliveries that
    got their outcome before it did; ``pending``: the ones to requeue."""

    def __init__(
        self,
        error: DatabaseError,
        pending: Sequence[Delivery] = (),
        settled: Sequence[Settlement] = (),
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.pending = list(pending)
        self.settled = list(settled)


class DatabaseGuard:
    """Checks the connection before use, tells a handler's own database error from a
    database that is down, and backs off while it is down."""

    def __init__(self, stop: threading.Event, on_event: Callable[[str], None]) -> None:
        self._stop = stop
        self._on_event = on_event
        self.failures = 0
        self._last_check = 0.0

    def refresh(self) -> None:
        """Drop a connection the server closed (or that CONN_MAX_AGE retired) before
        using it; not inside an outer atomic block (tests), and at most once a second."""
        now = time.monotonic()
        if now - self._last_check >= 1.0 and not connection.in_atomic_block:
            close_old_connections()
            self._last_check = now

    def answers(self) -> bool:
        """Can we write receipts right now? A handler's own database error counts as a
        handler failure only if so; otherwise the database is down or locked."""
        try:
            with connection.cursor() as cursor:
                operations(connection).probe_writes(cursor, connection.in_atomic_block)
            return True
        except DatabaseError:
            return False

    def ok(self) -> None:
        """A receipt was written: the database is back (or never left)."""
        self.failures = 0

    def outage(self, count: int, queue: str, exc: DatabaseError) -> None:
        """``count`` deliveries were requeued because the database failed: say so,
        drop the broken connection and wait (doubling, up to :data:`DB_BACKOFF_MAX`)."""
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        logger.error(
            "database error while handling %d message(s) from %s; requeued: %s",
            count,
            queue,
            first_line,
        )
        self._on_event(f"database error, message(s) requeued: {first_line}")
        self._last_check = 0.0
        try:
            close_old_connections()
        except DatabaseError:  # pragma: no cover - closing a broken connection
            logger.debug("closing the broken database connection failed", exc_info=True)
        self.failures += 1
        self._stop.wait(backoff(self.failures + 1, first=DB_BACKOFF_FIRST, cap=DB_BACKOFF_MAX))
