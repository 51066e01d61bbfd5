"""The keeper: a daemon thread that services an idle publisher connection every few
seconds (pika sends heartbeats and reads the broker's only while its I/O loop runs)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .. import conf

logger = logging.getLogger(__name__)

#: Longest pause between two services of an idle connection (seconds).
MAX_INTERVAL = 15.0


def keeper_interval(heartbeat: float) -> float:
    """A quarter of the heartbeat (pika sends one every half), 1 to 15 seconds."""
    if not heartbeat:
        return MAX_INTERVAL
    return min(max(heartbeat / 4, 1.0), MAX_INTERVAL)


class Keeper:
    """Calls ``publisher.keep_alive()`` every :func:`keeper_interval` seconds until
    :meth:`stop`. Started by the publisher on its first connection."""

    def __init__(self, publisher: Any) -> None:
        self._publisher = publisher
        self._stop = threading.Event()
        self.interval = keeper_interval(conf.get("HEARTBEAT"))
        self._thread = threading.Thread(
            target=self._run, name="messaging-publisher-keeper", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._publisher.keep_alive()
            except Exception:  # noqa: BLE001 - the next publish reconnects; keep ticking
                logger.debug("publisher keeper: servicing the connection failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def abandon(self) -> None:
        """In a forked child (the thread did not survive the fork): nothing to stop."""
        self._stop.set()
