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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pika

from .. import broker
from ..broker import Outgoing

if TYPE_CHECKING:
    from ..models import Message
    from .captured import CapturedMessages

_lock = threading.RLock()
#: Active captures, outermost first; every one of them records every message.
_active: list[CapturedMessages] = []
_real_factory: broker.PublisherFactory | None = None


@dataclass(frozen=True)
class CapturedMessage:
    """One message as it would have reached the broker."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    content_type: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    persistent: bool = True
    #: Position in the capture (0, 1, …).
    index: int = 0
    timestamp: int | None = None
    #: correlation_id, reply_to, priority, expiration (ms string), type, app_id — as set.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def queue(self) -> str | None:
        """The queue it goes to: the routing key on the default exchange; ``None`` for a
        message published to an exchange (its bindings are the broker's business)."""
        return None if self.exchange else self.routing_key

    @property
    def destination(self) -> str:
        if self.exchange:
            return f"exchange {self.exchange!r} key {self.routing_key!r}"
        return f"queue {self.routing_key!r}"

    @property
    def properties(self) -> pika.BasicProperties:
        """The AMQP properties it would have been published with (a new object each time)."""
        props = broker.properties(
            content_type=self.content_type,
            headers=self.headers,
            persistent=self.persistent,
            timestamp=self.timestamp,
            extra=self.extra,
        )
        props.message_id = self.message_id or None
        return props

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` with one line when it is not)."""
        from ..amqp.schemas import decode_json

        return decode_json(self.body)

    @property
    def message(self) -> Message | None:
        """Its ``Message`` row as the database has it now (``None`` if deleted)."""
        from ..models import Message

        return Message.objects.select_related("queue").filter(message_id=self.message_id).first()

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def describe(self, width: int = 60) -> str:
        body = repr(self.body)
        if len(body) > width:
            body = body[: width - 1] + "…"
        extra = f" headers {self.headers!r}" if self.headers else ""
        kind = f" {self.content_type}" if self.content_type else ""
        return f"{self.destination}{kind} body {body}{extra}"


class CapturingPublisher(broker.PublisherBase):
    """Stands in for :class:`messaging.broker.PipelinedPublisher` during :func:`capture`
    (the publisher factory of :func:`messaging.broker.process_publisher`):
    every destination exists, every message is confirmed, nothing leaves the process."""

    def __init__(
        self,
        urls: Iterable[str] | None = None,
        *,
        connection_name: str | None = None,
        window: int = broker.DEFAULT_WINDOW,
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

    def publish_many(self, items: Iterable[Outgoing]) -> list[None]:
        items = list(items)
        self.open()
        with _lock:
            for captured in _active:
                for item in items:
                    captured._add(item)
        return [None] * len(items)


@contextmanager
def capture() -> Iterator[CapturedMessages]:
    """Capture, instead of publishing, every message sent while the block runs (from
    any thread); yields the :class:`~messaging.testing.CapturedMessages`."""
    from .captured import CapturedMessages

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
