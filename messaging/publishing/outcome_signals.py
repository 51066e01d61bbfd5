"""The ``message_published`` / ``message_failed`` signals of publishing outcomes, sent
once the outcomes are committed (for :mod:`.sending` and :mod:`.copies`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from django.db import transaction

from .. import signals
from ..exceptions import BrokerError
from ..models import Message
from .outbox import is_transient

#: A row and its outcome: ``None`` (published) or why not.
Outcome = tuple[Message, BrokerError | None]


def wanted() -> bool:
    """Does anyone listen? (If not, the rows need not even be loaded.)"""
    published, failed = signals.message_published, signals.message_failed
    return published.has_listeners(Message) or failed.has_listeners(Message)


def send_after_commit(pairs: Sequence[Outcome]) -> None:
    """Send the signal of each (row, outcome) once the open transaction commits (at
    once outside one); a failing receiver is logged, never raised."""
    transaction.on_commit(partial(send_now, pairs), robust=True)


def send_now(pairs: Sequence[Outcome]) -> None:
    for message, outcome in pairs:
        if outcome is None:
            signals.send_robust(signals.message_published, Message, message=message)
        else:
            signals.send_robust(
                signals.message_failed,
                Message,
                message=message,
                error=outcome,
                will_retry=is_transient(outcome),
            )
