"""Signals the app sends (always with ``send_robust``: a failing receiver is logged and
never breaks publishing or consuming).

``message_published(sender=Message, message=Message)``
    after the broker confirmed a message.
``message_failed(sender=Message, message=Message, error=str)``
    when a message is marked ``failed`` (e.g. unroutable).
``receipt_recorded(sender=Receipt, receipt=Receipt, delivery=Delivery)``
    after a receipt was committed (before its ack is sent).
"""

from __future__ import annotations

from django.dispatch import Signal

message_published = Signal()
message_failed = Signal()
receipt_recorded = Signal()
