"""One captured message: what would have reached the broker (see
:func:`messaging.testing.capture`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pika

from ..amqp.schemas import decode_json
from ..broker import Outgoing
from ..broker.pika_properties import properties as pika_properties
from ..models import Message


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
        props = pika_properties(
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
        return decode_json(self.body)

    @property
    def message(self) -> Message | None:
        """Its ``Message`` row as the database has it now (``None`` if deleted)."""
        return Message.objects.select_related("queue").filter(message_id=self.message_id).first()

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    @classmethod
    def of(cls, item: Outgoing, index: int) -> CapturedMessage:
        """What the publisher was handed, as the ``index``-th captured message."""
        return cls(
            exchange=item.exchange,
            routing_key=item.routing_key,
            body=bytes(item.body),
            message_id=item.message_id or "",
            content_type=item.content_type or "",
            headers=dict(item.headers or {}),
            persistent=item.persistent,
            index=index,
            timestamp=item.timestamp,
            extra=dict(item.extra or {}),
        )

    def describe(self, width: int = 60) -> str:
        body = repr(self.body)
        if len(body) > width:
            body = body[: width - 1] + "…"
        extra = f" headers {self.headers!r}" if self.headers else ""
        kind = f" {self.content_type}" if self.content_type else ""
        return f"{self.destination}{kind} body {body}{extra}"
