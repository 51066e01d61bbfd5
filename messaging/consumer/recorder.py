"""Receipts: one row shape for every path (the lean batch insert, the one-by-one path,
duplicates and failures), and the ``receipt_recorded`` signal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from .. import observability, signals
from ..models import Receipt
from ..rpc.replies import Reply
from .handlers import Delivery
from .receipts import as_instances, insert_receipts

Outcome = Receipt.Outcome
Row = tuple[Any, ...]


class ReceiptRecorder:
    """Writes receipts for one consumer (``name``, ``host``, ``pid``)."""

    def __init__(self, name: str, host: str, pid: int) -> None:
        self.name, self.host, self.pid = name, host, pid
        self.signal = signals.receipt_recorded

    @property
    def listened(self) -> bool:
        """Does anyone receive ``receipt_recorded``? (Then rows are saved as models.)"""
        return self.signal.has_listeners(Receipt)

    def row(
        self,
        delivery: Delivery,
        outcome: str,
        *,
        attempt: int = 1,
        error: str = "",
        tb: str = "",
        now: datetime | None = None,
        reply: Reply | None = None,
    ) -> Row:
        """The receipt of ``delivery`` as a tuple in :data:`messaging.consumer.receipts.FIELDS`
        order — the one shape every receipt is built in."""
        finished = now or timezone.now()
        body, content_type = (reply.body, reply.content_type) if reply is not None else (None, "")
        return (
            delivery.properties.message_id or "",
            delivery.queue,
            self.name,
            self.host,
            self.pid,
            delivery.consumer_tag,
            delivery.delivery_tag,
            delivery.redelivered,
            attempt,
            str(outcome),
            error,
            tb,
            delivery.received_at or finished,
            finished,
            delivery.exchange,
            delivery.routing_key,
            delivery.stream_offset,
            body,
            content_type,
        )

    def acked(
        self,
        deliveries: Sequence[Delivery],
        attempt: int = 1,
        replies: Sequence[Reply | None] | None = None,
    ) -> list[Receipt] | None:
        """Insert ``acked`` receipts for ``deliveries`` in the current transaction (with
        the reply each one's handler returned, if any) as its last statement; the saved
        rows when someone listens for the signal, else None (plain INSERT/COPY)."""
        now = timezone.now()
        replies = replies or [None] * len(deliveries)
        rows = [
            self.row(d, Outcome.ACKED, attempt=attempt, now=now, reply=r)
            for d, r in zip(deliveries, replies, strict=True)
        ]
        if self.listened:  # receivers get saved rows (with pk)
            return Receipt.objects.bulk_create(as_instances(rows))
        insert_receipts(rows, last=True)
        return None

    def record(
        self,
        delivery: Delivery,
        outcome: str,
        *,
        attempt: int = 1,
        error: str = "",
        tb: str = "",
        announce: bool = True,
        next_attempt_at: datetime | None = None,
    ) -> Receipt:
        """Save one receipt (any outcome); send the signal for it unless the caller will
        once its transaction commits (``announce=False``). ``next_attempt_at``: when a
        delayed attempt comes back from its delay queue."""
        row = self.row(delivery, outcome, attempt=attempt, error=error, tb=tb)
        (receipt,) = as_instances([row])
        receipt.next_attempt_at = next_attempt_at
        receipt.save(force_insert=True)
        observability.receipts([delivery], outcome)
        if announce:
            self.announce([receipt], [delivery])
        return receipt

    def announce(self, receipts: Sequence[Receipt] | None, deliveries: Sequence[Delivery]) -> None:
        """``receipt_recorded`` for each saved receipt (after its commit)."""
        if not receipts or not self.listened:
            return
        for receipt, delivery in zip(receipts, deliveries, strict=True):
            signals.send_robust(self.signal, Receipt, receipt=receipt, delivery=delivery)
