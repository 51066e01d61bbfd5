"""The Django admin as the operators' console.

- Queues with their live broker state (one connection per page), declare / purge /
  replay-dead-letters actions and a "publish a message" link per queue
  (:mod:`.queue_admin`, its columns :mod:`.queue_columns`, its page
  :mod:`.queue_change_page`, :mod:`.queue_actions`, the dead-letter browser
  :mod:`.dead_letter_browser`);
- messages: compose (held without the publish permission; "Save and publish" with it),
  publish, retry failed, republish, receipts inline, big bodies as a bounded preview
  plus a download (:mod:`.message_admin`, :mod:`.message_compose`, :mod:`.message_actions`,
  the fate on the page :mod:`.message_fate_column`, :mod:`.message_bodies`,
  :mod:`.body_preview`);
- admin log entries for every action that touches the broker (:mod:`.audit`);
- receipts (read-only log) and consumers (the ``runconsumer`` registry, read-only)
  (:mod:`.receipt_admin`, :mod:`.consumer_admin`);
- the overview page, ``admin:messaging_overview`` (its numbers :mod:`.overview`, its
  view :mod:`.views`, its charts :mod:`.charts`; its SQL is in :mod:`messaging.db`);
- the failure triage page, ``admin:messaging_failures`` (:mod:`.failure_groups`,
  :mod:`.failures_page`);
- exchanges and bindings with their live state, and the topology page,
  ``admin:messaging_topology`` (:mod:`.exchange_admin`, :mod:`.topology_page`);
- task results of the Django tasks backend, with "run again"
  (:mod:`.task_results_admin`).

What several admins share: the queues' live state (:mod:`.broker_state`), the live
changelist and its "Publish a message" link (:mod:`.live_changelist`), what the user is
told (:mod:`.feedback`) and how values are shown (:mod:`.display`).

Action logic lives in plain functions that work without a request; they are
re-exported here.

Every page of these admins links the app's stylesheet, ``messaging/admin.css``
(:data:`STYLESHEET`): the width rule (every list fits a 1400 px window), buttons, dark
mode. The ModelAdmins get it as ``Media`` here, so their own modules need nothing; so do the message
list's stalled-outbox banner and the compose form's note on what "Save" does
(:mod:`messaging.templatetags.messaging_console`). The site's /admin/ index shows that
banner too (:data:`SITE_INDEX_TEMPLATE`, unless the site has its own index template).
"""

from __future__ import annotations

from django.contrib import admin as _admin

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
from .task_results_admin import TaskRecordAdmin

#: The console's stylesheet (a static file of the app).
STYLESHEET = "messaging/admin.css"


def _add_stylesheet(admin_class: type) -> None:
    """Add :data:`STYLESHEET` to the admin's ``Media`` (keeping a ``Media`` of its own)."""
    own = admin_class.__dict__.get("Media")
    attrs = {k: v for k, v in vars(own).items() if not k.startswith("__")} if own else {}
    css = dict(attrs.get("css") or {})
    if STYLESHEET not in css.get("all", ()):
        css["all"] = (*css.get("all", ()), STYLESHEET)
    attrs["css"] = css
    admin_class.Media = type("Media", (), attrs)  # type: ignore[attr-defined]


#: The message list with the stalled-outbox banner, and the compose form with what "Save"
#: does, over the messages page's own templates (unless the MessageAdmin names its own).
MESSAGE_LIST_TEMPLATE = "admin/messaging/message_list.html"
COMPOSE_TEMPLATE = "admin/messaging/compose_form.html"
if MessageAdmin.change_list_template is None:
    MessageAdmin.change_list_template = MESSAGE_LIST_TEMPLATE
if MessageAdmin.add_form_template is None:
    MessageAdmin.add_form_template = COMPOSE_TEMPLATE
#: The site-wide /admin/ index with the stalled-outbox banner (the app's own template
#: cannot override ``admin/index.html``: django.contrib.admin comes first in
#: INSTALLED_APPS), unless the site names its own index template.
SITE_INDEX_TEMPLATE = "admin/messaging/site_index.html"
if _admin.site.index_template is None:
    _admin.site.index_template = SITE_INDEX_TEMPLATE

for _admin_class in (
    BindingAdmin,
    ConsumerAdmin,
    ExchangeAdmin,
    MessageAdmin,
    QueueAdmin,
    ReceiptAdmin,
    TaskRecordAdmin,
):
    _add_stylesheet(_admin_class)

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
    "STYLESHEET",
    "TaskRecordAdmin",
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
