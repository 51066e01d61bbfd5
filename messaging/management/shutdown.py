"""How a long-running command (``runconsumer``, ``relay``) stops on SIGTERM/SIGINT, in a
way a Kubernetes rollout (SIGTERM, then SIGKILL after the grace period) can trust:

* the first signal asks the command to stop (``stop()``): it finishes what it has in
  hand and exits 0;
* a second signal within :data:`SAME_REQUEST` seconds of the first is the same request
  (GNU ``timeout`` delivers SIGTERM to the child and again to its group);
* a later second signal exits at once, after ``on_exit_now()`` (bounded, best effort:
  ``runconsumer`` marks its registry row stopped);
* past the deadline (``--shutdown-timeout``) the command exits 1 with one line naming
  what was still running, after ``on_exit_now()``; the broker gets back every delivery
  that was not acked.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: A second signal this soon after the first is the same request.
SAME_REQUEST = 1.0
#: Exit status when the shutdown deadline passed with work still running.
EXIT_DEADLINE = 1


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class GracefulStop:
    """The stop signals and the shutdown deadline of one command run; see the module
    docstring. ``running()`` says what is still in hand (for the deadline's line)."""

    def __init__(
        self,
        stop: Callable[[], None],
        *,
        what: str,
        timeout: float,
        running: Callable[[], str] = lambda: "",
        on_exit_now: Callable[[str], None] = lambda reason: None,
        command: str = "",
    ) -> None:
        self._stop, self.what, self.timeout = stop, what, timeout
        self._running, self._on_exit_now = running, on_exit_now
        self.command = command or os.path.basename(sys.argv[0])
        self.requested_at: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def install(self) -> Callable[[], None]:
        """Handle SIGTERM and SIGINT until the returned function is called (which also
        ends the deadline's watch). Outside the main thread it only arms nothing."""
        if threading.current_thread() is not threading.main_thread():
            return self.disarm
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}

        def restore() -> None:
            self.disarm()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def disarm(self) -> None:
        """End the deadline's watch without restoring any handler (what the function
        :meth:`install` returns does both)."""
        self._done.set()

    def request(self) -> None:
        """Stop now (the first signal does this): ``stop()`` and start the deadline."""
        with self._lock:
            if self.requested_at is not None:
                return
            self.requested_at = time.monotonic()
        threading.Thread(target=self._watch, name="messaging-shutdown", daemon=True).start()
        self._stop()

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = self.requested_at
        if first is None:
            _say(
                f" [*] Stopping: finishing the {self.what} in hand (at most "
                f"{self.timeout:g}s; signal again to exit now)"
            )
            self.request()
            return
        if time.monotonic() - first < SAME_REQUEST:
            return  # the same request, delivered twice (timeout, a process group)
        _say(" [!] Second signal: exiting now")
        self._exit_now(f"stopped by a second signal ({signal.Signals(signum).name})", 128 + signum)

    def _watch(self) -> None:
        if self._done.wait(self.timeout):
            return
        still = self._running()
        line = (
            f"{self.command}: shutdown deadline of {self.timeout:g}s passed"
            + (f" with {still} still running" if still else "")
            + "; exiting (the broker redelivers what was not acked)"
        )
        _say(line)
        self._exit_now(line, EXIT_DEADLINE)

    def _exit_now(self, reason: str, status: int) -> None:
        try:
            self._on_exit_now(reason)
        finally:
            os._exit(status)


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
