"""A consumer's own liveness (``runconsumer --health-file``): when its calling thread and
its I/O thread last showed they were alive (:data:`LIVENESS`, fed by the hooks
:func:`messaging.observability.beat` / :func:`~messaging.observability.busy`), and the
file a probe watches (:class:`HealthFile`). Needs neither the database nor the broker."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from .. import conf


class Liveness:
    """When the consumer's calling thread and I/O thread last showed they were alive,
    and whether the calling thread has a batch in hand (a handler may run long)."""

    def __init__(self) -> None:
        self.beats: dict[str, float] = {}
        self.busy_since: float | None = None

    def beat(self, part: str) -> None:
        self.beats[part] = time.monotonic()

    def busy(self, since: float | None) -> None:
        self.busy_since = since

    def stale(self, limits: dict[str, float], now: float | None = None) -> list[str]:
        """Parts that have not beaten within their limit (or never). ``limits`` has
        ``loop`` (idle calling thread), ``busy`` (a batch in hand) and ``io``."""
        now = time.monotonic() if now is None else now
        stale = []
        busy_since = self.busy_since
        if busy_since is not None:
            if now - busy_since > limits["busy"]:
                stale.append("loop")
        elif now - self.beats.get("loop", -1e18) > limits["loop"]:
            stale.append("loop")
        if now - self.beats.get("io", -1e18) > limits["io"]:
            stale.append("io")
        return stale


#: The process's liveness (one consumer per runconsumer process).
LIVENESS = Liveness()


def liveness_limits() -> dict[str, float]:
    """How long each part may stay silent before it counts as stuck: the idle calling
    thread (it looks up every 0.2 s) 30 s; one with a batch in hand the broker's
    consumer timeout (a handler may run that long); the I/O thread (it turns every
    0.25 s) a minute beyond the longest reconnect pause."""
    busy = float(conf.get("BROKER_CONSUMER_TIMEOUT") or 0) or 3600.0
    io = 60.0 + float(conf.get("RECONNECT_MAX_DELAY"))
    return {"loop": 30.0, "busy": busy, "io": io}


class HealthFile:
    """Touches ``path`` every ``interval`` seconds while no part is stale."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 2.0,
        liveness: Liveness = LIVENESS,
        limits: dict[str, float] | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.liveness = liveness
        self.limits = limits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.withdrawn = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="messaging-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def withdraw(self) -> None:
        """The consumer is stopping: remove the file and touch it no more (a probe sees
        it not ready). Safe from a signal handler."""
        self._stop.set()
        with self._lock:
            self.withdrawn = True
            with contextlib.suppress(OSError):
                self.path.unlink()

    def touch_if_alive(self) -> bool:
        if self.liveness.stale(self.limits or liveness_limits()):
            return False
        with self._lock:
            if self.withdrawn:
                return False
            self.path.touch()
        return True

    def _main(self) -> None:
        while True:
            with contextlib.suppress(OSError):  # a directory gone: the probe fails
                self.touch_if_alive()
            if self._stop.wait(self.interval):
                return
