"""Template tags of the console's pages (``{% load messaging_console %}``):

- ``{% messaging_relay_warning %}``: a banner when the outbox is stalled (pending
  messages older than RELAY_WARNING_AFTER and no relay within that time, see
  :func:`messaging.publishing.relay.outbox_backlog`); on the app index, the overview and
  the message list;
- ``{% messaging_index_badges %}``: the app index's badges, dead letters waiting and
  queues with ready messages but no consumer (one broker connection);
- ``{% messaging_date_hierarchy cl %}``: Django's date hierarchy, its periods probed one
  by one instead of a DISTINCT over every row (:mod:`messaging.admin.date_periods`), on
  the receipt and message lists;
- ``{% messaging_compose_note %}``: on the message form, what "Save" does for this user
  (held without the publish permission; pending for the relay otherwise, and whether a
  relay ran recently).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import conf
from ..admin.broker_state import broker_snapshot
from ..admin.date_periods import ProbedChangeList
from ..admin.overview import duration
from ..models import Queue
from ..publishing.relay import last_relay_heartbeat, outbox_backlog

register = template.Library()

#: The index badges ask the broker about at most this many queues (and their DLQs).
BADGE_QUEUES = 200


def _user(context: template.Context) -> Any:
    request = context.get("request")
    return getattr(request, "user", None)


def _can(context: template.Context, *codenames: str) -> bool:
    user = _user(context)
    return user is not None and any(user.has_perm(f"messaging.{c}") for c in codenames)


@register.simple_tag(takes_context=True)
def messaging_relay_warning(context: template.Context) -> SafeString | str:
    """The stalled-outbox banner, for users who may see messages; "" otherwise."""
    if not _can(context, "view_message", "change_message"):
        return ""
    backlog = outbox_backlog()
    if not backlog.stalled:
        return ""
    count = ngettext(
        "%(count)d pending message waits to be sent",
        "%(count)d pending messages wait to be sent",
        backlog.count,
    ) % {"count": backlog.count}
    if backlog.last_relay is None:
        relay = _("no relay has ever run")
    else:
        relay = _("no relay has run for %(age)s") % {
            "age": duration((backlog.now - backlog.last_relay).total_seconds())
        }
    text = _(
        "%(count)s, the oldest for %(age)s, and %(relay)s: nothing is sending them. Run "
        "“manage.py relay” (or publish them from the message list)."
    ) % {"count": count, "age": duration(backlog.age), "relay": relay}
    url = reverse("admin:messaging_message_changelist") + "?status__exact=pending"
    return format_html(
        '<ul class="messagelist messaging-banner"><li class="warning" id="relay-warning">'
        '{} <a href="{}">{}</a></li></ul>',
        text,
        url,
        _("Pending messages"),
    )


@register.simple_tag(takes_context=True)
def messaging_index_badges(context: template.Context) -> SafeString | str:
    """Dead letters waiting (per queue, linking to its dead-letter browser) and queues
    with ready messages and no consumer (linking to the queue), from one snapshot."""
    if not _can(context, "view_queue", "change_queue"):
        return ""
    rows = list(Queue.objects.order_by("name")[:BADGE_QUEUES])
    if not rows:
        return ""
    names = [n for row in rows for n in (row.name, row.dead_letter_queue) if n]
    snapshot = broker_snapshot(names)
    if snapshot.error is not None and not snapshot.states:
        return format_html(
            '<ul class="messaging-badges" id="messaging-badges"><li class="messaging-missing">'
            "{}</li></ul>",
            _("The broker is unreachable: dead letters and consumers unknown."),
        )
    badges: list[tuple[str, str, str, str, str]] = []
    for row in rows:
        dlq = snapshot.state(row.dead_letter_queue) if row.dead_letter_queue else None
        if isinstance(dlq, tuple) and dlq[0]:
            url = reverse("admin:messaging_queue_dead_letters", args=[row.pk])
            text = ngettext("%(count)d dead letter", "%(count)d dead letters", dlq[0]) % {
                "count": dlq[0]
            }
            badges.append(("messaging-badge-dead-letters", url, row.name, text, row.name))
    for row in rows:
        state = snapshot.state(row.name)
        if isinstance(state, tuple) and state[0] and not state[1]:
            url = reverse("admin:messaging_queue_change", args=[row.pk])
            text = ngettext(
                "%(count)d ready, no consumer", "%(count)d ready, no consumer", state[0]
            ) % {"count": state[0]}
            badges.append(
                ("messaging-badge-warn messaging-badge-unconsumed", url, row.name, text, row.name)
            )
    if not badges:
        return ""
    items = format_html_join(
        "",
        '<li><a class="{}" href="{}" title="{}">{}: <span class="messaging-ellipsis">{}'
        "</span></a></li>",
        badges,
    )
    return format_html('<ul class="messaging-badges" id="messaging-badges">{}</ul>', items)


@register.inclusion_tag("admin/date_hierarchy.html")
def messaging_date_hierarchy(changelist: Any) -> dict[str, Any] | None:
    """Django's ``{% date_hierarchy cl %}`` with the periods probed (big tables)."""
    probed: Any = ProbedChangeList(changelist)  # a ChangeList by delegation
    return date_hierarchy(probed)


@register.simple_tag(takes_context=True)
def messaging_compose_note(context: template.Context) -> SafeString | str:
    """What "Save" does with a new message, for this user."""
    if not context.get("add"):
        return ""
    if not _can(context, "publish_message"):
        text = _(
            "Save keeps the message held: nothing sends it until a user with the "
            "publish permission publishes it."
        )
        return format_html('<p class="help messaging-compose-note" id="compose-note">{}</p>', text)
    text = _(
        "Save leaves the message pending: a relay (manage.py relay) sends it. "
        "“Save and publish” sends it now."
    )
    threshold = conf.get("RELAY_WARNING_AFTER")
    last = last_relay_heartbeat()
    if last is None or last < timezone.now() - timedelta(seconds=threshold):
        text += " " + _(
            "No relay has run in the last %(age)s, so a saved message waits until one runs "
            "or someone publishes it."
        ) % {"age": duration(threshold)}
        return format_html(
            '<p class="messaging-compose-note messaging-flag" id="compose-note">{}</p>', text
        )
    return format_html('<p class="help messaging-compose-note" id="compose-note">{}</p>', text)
