"""Recording and publishing messages: the transactional outbox.

Every message is a ``Message`` row first and a broker message second:

- :func:`publish` writes the row (in the caller's transaction, if any) and publishes it
  after the commit, or leaves it to the relay (``PUBLISH_MODE = "relay"``);
- :func:`publish_messages` publishes existing rows (the admin, the Celery task);
- :func:`send_copies` records and publishes many copies of one message (``send --count``);
- :mod:`messaging.publishing.relay` publishes the ``pending`` rows that are due.

Its modules: :mod:`.rows` (building a row), :mod:`.queues` (the per-process cache of
``Queue`` rows), :mod:`.api` (``publish``, ``apublish``, ``publish_messages``,
``publish_ids``), :mod:`.commit` (a transaction's messages sent together after its
commit), :mod:`.engine` (publishing held rows), :mod:`.copies` (``send_copies``),
:mod:`.outbox` (statuses, leases, claims, and the fields each outcome writes).

All of them publish on the process's long-lived publisher
(:func:`broker.process_publisher`) with many confirms in flight and
store the broker's answer on each row: confirmed → ``published``; unroutable, missing
exchange or a queue that differs from its row → ``failed`` with the reason; broker down,
nacked, no confirm within ``CONFIRM_TIMEOUT`` → stays ``pending`` with ``last_error`` and
``next_attempt_at`` (exponential backoff) for the relay. The AMQP ``message_id`` is the
row's, so a message sent twice (a confirm lost) is recognised by the consumer's receipts.

Who may publish a row (so that two publishers never send it at the same time):

- the process that created it (``publish()``, ``send``) owns it for :func:`claim_lease`
  seconds: the row is created with ``next_attempt_at`` that far ahead, so the relay, which
  takes only due rows, leaves it alone; if that process dies, the relay sends it after;
- everything else claims rows under a row lock held while publishing:
  ``select_for_update(skip_locked=True)`` (PostgreSQL, MySQL, Oracle), or on SQLite, which
  has no row locks, the database write lock taken at the start of the claiming transaction.
"""

from __future__ import annotations

from .api import apublish, publish, publish_ids, publish_messages
from .copies import COPIES_CHUNK, send_copies
from .outbox import (
    PUBLISHABLE,
    TRANSIENT_ERRORS,
    PublishResult,
    apply_outcomes,
    as_transient,
    chunks,
    claim,
    claim_lease,
    claiming,
    is_transient,
    lease_end,
    lock_options,
    outcome_fields,
    retry_delay,
    store_outcomes,
)
from .rows import NO_JSON, build_message, get_queue
from .sending import publish_rows

__all__ = [
    "COPIES_CHUNK",
    "NO_JSON",
    "PUBLISHABLE",
    "TRANSIENT_ERRORS",
    "PublishResult",
    "apply_outcomes",
    "apublish",
    "as_transient",
    "build_message",
    "chunks",
    "claim",
    "claim_lease",
    "claiming",
    "get_queue",
    "is_transient",
    "lease_end",
    "lock_options",
    "outcome_fields",
    "publish",
    "publish_ids",
    "publish_messages",
    "publish_rows",
    "retry_delay",
    "send_copies",
    "store_outcomes",
]
