"""Recording and publishing messages: the transactional outbox.

Every message is a ``Message`` row first and a broker message second:

- :func:`publish` writes the row (in the caller's transaction, if any) and publishes it
  after the commit — handed to this process's publisher thread, see :mod:`.handoff` —
  or leaves it to the relay (``PUBLISH_MODE = "relay"``); :func:`flush` waits until
  the publisher thread has sent what it was handed;
- :func:`publish_messages` publishes existing rows (the admin, the Celery task);
- :func:`send_copies` records and publishes many copies of one message (``send --count``);
- :mod:`messaging.publishing.relay` publishes the ``pending`` rows that are due.

Exported here: :func:`publish`, :func:`apublish`, :func:`flush`, :func:`publish_messages`,
:func:`publish_ids`, :func:`send_copies`; :func:`build_message` (an unsaved row, checked;
``json=NO_JSON`` means no JSON body) and :func:`get_queue` (a ``Queue`` row by name);
:class:`PublishResult` (what a publishing call did) and :data:`PUBLISHABLE` (the statuses
a row may be published from). Import anything else from its module.

Its modules: :mod:`.rows` (building a row), :mod:`.queue_cache` (the per-process cache of
``Queue`` rows), :mod:`.api` (``publish``, ``apublish``, ``publish_messages``,
``publish_ids``), :mod:`.commit` (a transaction's messages sent together after its
commit), :mod:`.handoff` (the publisher thread they are handed to), :mod:`.sending`
(publishing held rows), :mod:`.copies` (``send_copies``), :mod:`.outbox` (statuses,
leases, claims, and the fields each outcome writes), :mod:`.statements` (a new row's
INSERT and the outcome UPDATE, built without the ORM's query building),
:mod:`.outcome_signals`
(``message_published`` / ``message_failed``), :mod:`.relay` and :mod:`.retention`
(``purgemessages``).

All of them publish on the process's long-lived publisher
(:func:`broker.process_publisher`) with many confirms in flight and
store the broker's answer on each row: confirmed → ``published``; unroutable, missing
exchange or a queue that differs from its row → ``failed`` with the reason; broker down,
nacked, no confirm within ``CONFIRM_TIMEOUT`` → stays ``pending`` with ``last_error`` and
``next_attempt_at`` (exponential backoff) for the relay. The AMQP ``message_id`` is the
row's, so a message sent twice (a confirm lost) is recognised by the consumer's receipts.

Who may publish a row (so that two publishers never send it at the same time):

- the process that created it (``publish()``, ``send``) owns it for
  :func:`.outbox.claim_lease` seconds: the row is created with ``next_attempt_at`` that
  far ahead, so the relay, which takes only due rows, leaves it alone; if that process
  dies, the relay sends it after;
- everything else claims rows under a row lock held while publishing:
  ``select_for_update(skip_locked=True)`` (PostgreSQL, MySQL, Oracle), or on SQLite, which
  has no row locks, the database write lock taken at the start of the claiming transaction.
"""

from __future__ import annotations

from ..moved import moved_names
from .api import apublish, publish, publish_ids, publish_messages
from .copies import send_copies
from .handoff import flush
from .outbox import PUBLISHABLE, PublishResult
from .rows import NO_JSON, build_message, get_queue

__all__ = [
    "NO_JSON",
    "PUBLISHABLE",
    "PublishResult",
    "apublish",
    "build_message",
    "flush",
    "get_queue",
    "publish",
    "publish_ids",
    "publish_messages",
    "send_copies",
]

#: Names this package exported before 0.2, each importable from its module now.
_MOVED = {
    "COPIES_CHUNK": "copies",
    "TRANSIENT_ERRORS": "outbox",
    "apply_outcomes": "outbox",
    "as_transient": "outbox",
    "chunks": "outbox",
    "claim": "outbox",
    "claim_lease": "outbox",
    "claiming": "outbox",
    "is_transient": "outbox",
    "lease_end": "outbox",
    "lock_options": "outbox",
    "outcome_fields": "outbox",
    "retry_delay": "outbox",
    "store_outcomes": "outbox",
    "publish_rows": "sending",
}


__getattr__ = moved_names(__name__, {name: f".{home}" for name, home in _MOVED.items()})
