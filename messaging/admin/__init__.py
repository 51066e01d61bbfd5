"""The Django admin as the operators' console.

- Queues with their live broker state (one connection per page), declare / purge /
  replay-dead-letters actions and a "publish a message" link per queue
  (:mod:`.queue_admin`, :mod:`.queue_actions`, the dead-letter browser
  :mod:`.dead_letter_browser`);
- messages: compose (held without the publish permission; "Save and publish" with it),
  publish, retry failed, republish, receipts inline, big bodies as a bounded preview
  plus a download (:mod:`.message_admin`, :mod:`.message_bodies`, :mod:`.body_preview`);
- admin log entries for every action that touches the broker (:mod:`.audit`);
- receipts (read-only log) and consumers (the ``runconsumer`` registry, read-only)
  (:mod:`.receipt_admin`, :mod:`.consumer_admin`);
- the overview page, ``admin:messaging_overview`` (its numbers :mod:`.overview`, its
  view :mod:`.views`, its charts :mod:`.charts`; its SQL is in :mod:`messaging.db`);
- the failure triage page, ``admin:messaging_failures`` (:mod:`.failure_groups`,
  :mod:`.failures_page`);
- exchanges and bindings with their live state, and the topology page,
  ``admin:messaging_topology`` (:mod:`.exchange_admin`, :mod:`.topology_page`).

What several admins share: the queues' live state (:mod:`.broker_state`), the live
changelist and its "Publish a message" link (:mod:`.live_changelist`), what the user is
told (:mod:`.feedback`) and how values are shown (:mod:`.display`).

Action logic lives in plain functions that work without a request; they are
re-exported here.
"""

from __future__ import annotations

from .body_preview import body_as_text, body_preview
from .consumer_admin import ConsumerAdmin, filter_status
from .exchange_admin import BindingAdmin, ExchangeAdmin
from .message_admin import (
    PUBLISHABLE,
    MessageAdmin,
    MessageForm,
    PublishSelection,
    copy_messages,
    hand_to_celery,
    publish_pks,
    publish_selected,
    republish_selected,
)
from .queue_admin import PurgeResult, QueueAdmin, ReplayOutcome, purge_selected, replay_selected
from .receipt_admin import ReceiptAdmin

__all__ = [
    "BindingAdmin",
    "ExchangeAdmin",
    "PUBLISHABLE",
    "ConsumerAdmin",
    "MessageAdmin",
    "MessageForm",
    "PublishSelection",
    "PurgeResult",
    "QueueAdmin",
    "ReceiptAdmin",
    "ReplayOutcome",
    "body_as_text",
    "body_preview",
    "copy_messages",
    "filter_status",
    "hand_to_celery",
    "publish_pks",
    "publish_selected",
    "purge_selected",
    "replay_selected",
    "republish_selected",
]
