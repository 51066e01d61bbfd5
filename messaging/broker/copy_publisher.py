"""Publishing copies of a delivery from a consumer's own connection: the dead-letter copy
(:class:`~.dead_letters.DeadLetterer`) and the delayed retry
(:class:`~.delay_publisher.DelayPublisher`) share one way of doing it — a confirm-mode
channel of their own, the target declared once per channel, a mandatory publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from .connecting import open_channel
from .errors import translating
from .queue_ops import DeclarationCache


class CopyPublisher:
    """A confirm-mode channel on ``conn`` (reopened when the broker closed it), with
    declarations cached per channel. Used only from the thread that owns the connection."""

    def __init__(self, conn: BlockingConnection) -> None:
        self._conn = conn
        self._channel: BlockingChannel | None = None
        self._declared = DeclarationCache()

    def _ready_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = open_channel(self._conn, confirm=True)
        return self._channel

    def send_copy(
        self,
        *,
        queue: str,
        declare: Callable[[BlockingChannel], Any],
        declared_as: str,
        exchange: str,
        routing_key: str,
        body: bytes,
        props: pika.BasicProperties,
    ) -> None:
        """``declare(channel)`` once per channel (keyed ``declared_as``), then publish the
        copy, confirmed, or raise a :class:`BrokerError` about ``queue``."""
        with translating(queue=queue):
            channel = self._ready_channel()
            self._declared.ensure(channel, declared_as, lambda: declare(channel))
            channel.basic_publish(
                exchange=exchange,
                routing_key=routing_key,
                body=body,
                properties=props,
                mandatory=True,
            )
