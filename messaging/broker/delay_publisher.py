"""Delayed retries: publishing a failed message's copy to its delay queue from a
consumer's connection (the queue's TTL and dead-lettering bring it back; see
:mod:`messaging.amqp.retry_delays` for the names and arguments)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pika

from .copy_publisher import CopyPublisher


class DelayPublisher(CopyPublisher):
    """Publishes delayed copies on its own confirm-mode channel of a consumer's
    connection, declaring each delay queue once per channel (durable, with the arguments
    given). Used only from the thread that owns the connection."""

    def publish(
        self,
        delay_queue: str,
        arguments: Mapping[str, Any],
        body: bytes,
        props: pika.BasicProperties,
    ) -> None:
        """Put a copy in ``delay_queue`` (confirmed) or raise a :class:`BrokerError`
        (:class:`QueueMismatch` when the queue exists with other arguments)."""
        self.send_copy(
            queue=delay_queue,
            declare=lambda channel: channel.queue_declare(
                queue=delay_queue, durable=True, arguments=dict(arguments)
            ),
            declared_as=delay_queue,
            exchange="",
            routing_key=delay_queue,
            body=body,
            props=props,
        )
