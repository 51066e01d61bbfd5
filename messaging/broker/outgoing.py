"""One message on its way to the broker: what :meth:`PipelinedPublisher.publish_many
<messaging.broker.publisher.PipelinedPublisher.publish_many>` takes, what the confirm
batch (:mod:`.batch`, :mod:`.confirms`) tracks and what :func:`.errors.refusal` explains."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outgoing:
    """One message for :meth:`PipelinedPublisher.publish_many`."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    content_type: str = ""
    headers: Mapping[str, Any] | None = None
    persistent: bool = True
    #: AMQP timestamp (seconds since the epoch) and the other properties
    #: (:func:`~messaging.amqp.properties.pika_kwargs`).
    timestamp: int | None = None
    extra: Mapping[str, Any] | None = None
