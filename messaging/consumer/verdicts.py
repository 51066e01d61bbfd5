"""A delivery and the verdict to tell the broker about it once its receipt is committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .handlers import Delivery
from .retry_policy import Verdict


@dataclass(frozen=True, slots=True)
class Settlement:
    delivery: Delivery
    verdict: Verdict
    #: The ``x-messaging-death`` entry of a copy moved to the dead-letter queue.
    death: dict[str, Any] | None = None
    #: Replies (and a pika callback's own publishes) to send before the ack
    #: (:class:`messaging.rpc.replies.Outbound`).
    replies: tuple[Any, ...] = ()
    #: ``Verdict.DELAY``: the ``x-messaging-retry`` entry of the delayed copy, the delay
    #: queue it goes to, and whether that queue is a quorum queue.
    retry: dict[str, Any] | None = None
    delay_queue: str | None = None
    quorum: bool = False

    @property
    def kind(self) -> str:
        """The verdict's name: ``ack``, ``requeue``, ``nack``, ``dead`` or ``delay``."""
        return self.verdict.value
