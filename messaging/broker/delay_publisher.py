"""Delayed retries: publishing a failed message's copy to its delay queue from a
consumer's connection (the queue's TTL and dead-lettering bring it back; see
:mod:`messaging.amqp.retry_delays` for the names and arguments)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from .connecting import open_channel
from .errors import translating
from .queue_ops import DeclarationCache


class DelayPublisher:
    """Publishes delayed copies on its own confirm-mode channel of a consumer's
    connection, declaring each delay queue once per channel (durable, with the arguments
    given). Used only from the thread that owns the connection."""

    def __init__(self, conn: BlockingConnection) -> None:
        self._conn = conn
        self._channel: BlockingChannel | None = None
        self._declared = DeclarationCache()

    def _ready_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = open_channel(self._conn, confirm=True)
        return self._channel

    def publish(
        self,
        delay_queue: str,
        arguments: Mapping[str, Any],
        body: bytes,
        props: pika.BasicProperties,
    ) -> None:
        """Put a copy in ``delay_queue`` (confirmed) or raise a :class:`BrokerError`
        (:class:`QueueMismatch` when the queue exists with other arguments)."""
        with translating(queue=delay_queue):
            channel = self._ready_channel()
            declare = partial(
                channel.queue_declare, queue=delay_queue, durable=True, arguments=dict(arguments)
            )
            self._declared.ensure(channel, delay_queue, declare)
            channel.basic_publish(
                exchange="", routing_key=delay_queue, body=body, properties=props, mandatory=True
            )
