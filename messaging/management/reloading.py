"""``runconsumer --reload``: restart on code changes with Django's autoreloader (as
``runserver`` does), finishing the messages in hand before each restart.

The command's process becomes a small parent that runs the real consumer as a child
(``DJANGO_AUTORELOAD_ENV=true``) again each time the child exits with status 3, and
passes SIGTERM/SIGINT on to it. In the child, the consumer runs on a thread while the
main thread watches the files Django watches (every imported module's file); when one
changes, the consumer stops as on SIGTERM (nothing new starts, the messages in hand are
finished and acked, unstarted ones go back to the broker) and the child exits 3."""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from django.utils import autoreload

logger = logging.getLogger("messaging")

#: The autoreloader's "restart me" exit status.
RESTART = 3


def in_parent() -> bool:
    """``--reload`` and this is the parent: call :func:`parent` and exit with it."""
    return os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true"


def parent() -> int:
    """Start the child again while it asks for a restart; its last exit status."""
    while True:
        env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
        child = subprocess.Popen(autoreload.get_child_arguments(), env=env, close_fds=False)
        previous = {
            sig: signal.signal(sig, functools.partial(_forward, child))
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            status = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if status != RESTART:
            return status


def _forward(child: subprocess.Popen[Any], signum: int, frame: Any) -> None:
    if child.poll() is None:
        child.send_signal(signum)


def run_in_child(run: Callable[[], Any], stop: Callable[[], None]) -> Any:
    """In the child: ``run()`` on a thread while this (main) thread watches the files;
    a change calls ``stop()``, waits for ``run()`` to return and exits :data:`RESTART`.
    Returns ``run()``'s result when it ends on its own (a signal, ``--max-messages``)."""
    reloader = autoreload.get_reloader()
    ended = threading.Event()
    result: list[Any] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            result.append(run())
        except BaseException as exc:  # noqa: BLE001 - raised again on the main thread
            failure.append(exc)
        finally:
            ended.set()
            reloader.stop()

    def on_change(sender: Any, file_path: Any, **kwargs: Any) -> bool:
        sys.stderr.write(
            f" [*] {file_path} changed: finishing the messages in hand, then restarting\n"
        )
        stop()
        ended.wait()
        sys.exit(RESTART)

    autoreload.file_changed.connect(on_change, weak=False)
    logger.info("watching for file changes with %s", type(reloader).__name__)
    autoreload.start_django(reloader, main)
    ended.wait()
    if failure:
        raise failure[0]
    return result[0]
