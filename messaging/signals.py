"""Signals the app sends. All are sent with ``send_robust``: a receiver that raises is
logged (logger ``messaging.signals``) and never breaks publishing or consuming.

``message_published(sender=Message, message=Message)``
    after the row saying ``published`` is committed (the broker confirmed the message).
    Sent by ``publish()``, ``send``, the admin, the Celery tasks and the relay.
``message_failed(sender=Message, message=Message, error=BrokerError, will_retry=bool)``
    after a publish attempt that did not get the message onto the broker is committed.
    ``str(error)`` is the row's ``last_error``. ``will_retry`` is true when the row stays
    ``pending`` for the relay (broker down, nack, confirm timeout) and false when the row
    is ``failed`` for good (unroutable, missing exchange, queue differing from its row).
``receipt_recorded(sender=Receipt, receipt=Receipt, delivery=Delivery)``
    after a consumer's receipt is committed (before its ack is sent); ``delivery`` is the
    :class:`messaging.consumer.handlers.Delivery` it records.

Receivers run in the process that did the work (a web request, ``runconsumer``, the relay,
a Celery worker), synchronously: keep them quick, hand slow work to a task.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

message_published = Signal()
message_failed = Signal()
receipt_recorded = Signal()


def send_robust(signal: Signal, sender: Any = None, **kwargs: Any) -> None:
    """Send ``signal`` to every receiver; log each receiver's exception instead of raising.
    ``sender`` defaults to the Message model (the publishing signals)."""
    if sender is None:
        from .models import Message

        sender = Message
    if not signal.has_listeners(sender):
        return
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "signal receiver %r failed: %s",
                receiver,
                result,
                exc_info=(type(result), result, result.__traceback__),
            )
