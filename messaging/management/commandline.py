"""What the long-running and the small commands share: argument types, the
"first signal stops, second exits" handling, and verbosity → log level."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    value = float(text)
    if value < 0:
        raise ValueError(text)
    return value


def configure_logging(verbosity: int) -> None:
    """``-v 0`` errors only, ``1`` warnings, ``2`` info, ``3`` debug (logger ``messaging``)."""
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.getLogger("messaging").setLevel(level)


def install_stop_signals(
    stop: Callable[[], None], stopping: Callable[[], bool], what: str
) -> Callable[[], None]:
    """SIGTERM/SIGINT call ``stop()`` (finish ``what`` in hand, then exit 0); a second
    signal exits at once. Returns a function restoring the previous handlers. Outside the
    main thread (signals cannot be set there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: Any) -> None:
        if stopping():
            sys.stderr.write(" [!] Second signal: exiting now\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        sys.stderr.write(f" [*] Stopping after the {what} in hand (signal again to exit now)\n")
        sys.stderr.flush()
        stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
