"""Capturing what would be published, instead of publishing it.

While :func:`capture` is active, the process's publisher — the one ``publish()``,
``send_copies()`` (``manage.py send``), the relay, the admin and the Celery tasks all send
on (:func:`messaging.broker.process_publisher`) — is built by
:func:`messaging.broker.set_publisher_factory` from :class:`CapturingPublisher`: same
interface, no connection. Everything above it runs unchanged: rows are claimed, published
only after their transaction commits, and marked ``published`` as a confirming broker
would leave them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import broker
from ..broker import Outgoing
from ..broker.publisher import DEFAULT_WINDOW
from ..exceptions import BrokerError
from .captured import CapturedMessages
from .captured_message import CapturedMessage

__all__ = ["CapturedMessage", "CapturingPublisher", "capture", "is_capturing"]

#: Held while captures start or stop and while a publisher hands messages to them.
_lock = threading.RLock()
#: Active captures, outermost first; every one of them records every message.
_active: list[CapturedMessages] = []
_real_factory: broker.PublisherFactory | None = None


class CapturingPublisher(broker.PublisherBase):
    """Stands in for :class:`messaging.broker.PipelinedPublisher` during :func:`capture`
    (the publisher factory of :func:`messaging.broker.process_publisher`):
    every destination exists, every message is confirmed, nothing leaves the process."""

    def __init__(
        self,
        urls: Iterable[str] | None = None,
        *,
        connection_name: str | None = None,
        window: int = DEFAULT_WINDOW,
        confirm_timeout: float | None = None,
    ) -> None:
        self.window = max(1, window)
        self._confirm_timeout = confirm_timeout
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def declare(self, queue: Any) -> int:
        return 0

    def ensure_declared(self, queue: Any) -> None:
        self.open()

    def check_exchange(self, exchange: str) -> None:
        self.open()

    def publish_many(self, items: Iterable[Outgoing]) -> list[BrokerError | None]:
        items = list(items)
        self.open()
        with _lock:
            for captured in _active:
                captured.add(items)
        return [None for _ in items]


@contextmanager
def capture() -> Iterator[CapturedMessages]:
    """Capture, instead of publishing, every message sent while the block runs (from
    any thread); yields the :class:`~messaging.testing.CapturedMessages`."""
    captured = CapturedMessages()
    _start(captured)
    try:
        yield captured
    finally:
        _stop(captured)


def _start(captured: CapturedMessages) -> None:
    global _real_factory
    with _lock:
        if not _active:
            _real_factory = broker.set_publisher_factory(CapturingPublisher)
        _active.append(captured)


def _stop(captured: CapturedMessages) -> None:
    global _real_factory
    with _lock:
        _active.remove(captured)
        if not _active and _real_factory is not None:
            broker.set_publisher_factory(_real_factory)
            _real_factory = None


def is_capturing() -> bool:
    with _lock:
        return bool(_active)
