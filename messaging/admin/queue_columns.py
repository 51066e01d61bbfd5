"""The queue list's live columns (ready, unacked, consumers, dead letters, drift, the
"Publish a message" link) and the change page's "on the broker now" line, as
:class:`QueueColumns`, a mixin of :class:`~messaging.admin.queue_admin.QueueAdmin`.

The list's values come from what ``attach_states`` put on each row (GET only); the
page's line asks the broker for its one queue.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..broker import management_api as management
from ..models import Queue
from .broker_state import INVALID_NAME, UNREACHABLE, broker_snapshot
from .mixin_types import QueueAdminMixin

#: Attribute value of a row the broker was not asked about (not a GET).
NOT_ASKED = "not asked"


def _count_or_state(state: Any, index: int) -> Any:
    if state == NOT_ASKED:
        return "-"
    if isinstance(state, tuple):
        return state[index]
    if state == UNREACHABLE:
        return format_html('<span class="messaging-unreachable">{}</span>', _("unreachable"))
    if state == INVALID_NAME:
        return format_html('<span class="messaging-unreachable">{}</span>', _("invalid name"))
    return format_html('<span class="messaging-missing">{}</span>', _("not on broker"))


class QueueColumns(QueueAdminMixin):
    """The columns of the queue admin that show the broker's state (a mixin before the
    ``ModelAdmin``: it uses ``opts``, ``admin_site``, ``compose_link``)."""

    @admin.display(description=gettext_lazy("as on broker"))
    def matches_broker(self, obj: Queue) -> Any:
        """Drift: the broker has this queue with other arguments than the row."""
        state = getattr(obj, "broker_state", NOT_ASKED)
        drift = getattr(obj, "drift", None)
        if drift is not None:
            return format_html(
                '<span class="messaging-unreachable messaging-drift" title="{}">{}</span>',
                drift,
                _("differs: %(error)s") % {"error": drift},
            )
        if isinstance(state, tuple):
            return format_html('<span class="messaging-matches">{}</span>', _("matches"))
        return "-"

    @admin.display(description=gettext_lazy("ready"))
    def ready(self, obj: Queue) -> Any:
        return _count_or_state(getattr(obj, "broker_state", NOT_ASKED), 0)

    @admin.display(description=gettext_lazy("unacked"))
    def unacked(self, obj: Queue) -> Any:
        """Delivered and not acked yet, from the management API (``MANAGEMENT_URL``)."""
        if not hasattr(obj, "unacked_count"):
            return "-"  # not asked (not a GET)
        if obj.unacked_count is None:
            return format_html(
                '<span class="messaging-missing" title="{}">—</span>',
                getattr(obj, "unacked_missing", ""),
            )
        return obj.unacked_count

    @admin.display(description=gettext_lazy("consumers"))
    def consumers(self, obj: Queue) -> Any:
        """The consumer count; flagged when ready messages wait and nothing consumes."""
        state = getattr(obj, "broker_state", NOT_ASKED)
        if isinstance(state, tuple) and state[0] and not state[1]:
            return format_html(
                '<span class="messaging-flag messaging-unconsumed" title="{}">0 ⚠</span>',
                _("Ready messages and no consumer: nothing is taking them"),
            )
        return _count_or_state(state, 1)

    @admin.display(description=gettext_lazy("dead letters"))
    def dead_letters(self, obj: Queue) -> Any:
        if not obj.dead_letter_queue:
            return self.get_empty_value_display()
        count = _count_or_state(getattr(obj, "dlq_state", NOT_ASKED), 0)
        url = reverse(
            f"admin:{self.opts.app_label}_queue_dead_letters",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )
        return format_html('<a href="{}" class="dead-letters-link">{}</a>', url, count)

    @admin.display(description="")
    def publish_link(self, obj: Queue) -> Any:
        return self.compose_link(obj, "queue", obj.pk)

    @admin.display(description=gettext_lazy("on the broker now"))
    def on_broker(self, obj: Queue) -> str:
        names = [obj.name] + ([obj.dead_letter_queue] if obj.dead_letter_queue else [])
        snapshot = broker_snapshot(names)
        state = snapshot.state(obj.name)
        if state == UNREACHABLE:
            return _("unreachable: %(error)s") % {"error": snapshot.error}
        if state == INVALID_NAME:
            return _("invalid name, not sent to the broker: %(error)s") % {
                "error": snapshot.invalid[obj.name]
            }
        if state is None:
            return _("not declared on the broker")
        assert isinstance(state, tuple)
        text = ngettext("%(ready)d ready message", "%(ready)d ready messages", state[0]) % {
            "ready": state[0]
        }
        text += ", " + ngettext("%(count)d consumer", "%(count)d consumers", state[1]) % {
            "count": state[1]
        }
        unacked = management.queue_counts().unacked(obj.name)
        if unacked is not None:
            text += ", " + _("%(count)d unacked") % {"count": unacked}
        if obj.dead_letter_queue:
            dlq = snapshot.state(obj.dead_letter_queue)
            if isinstance(dlq, tuple):
                text += "; " + _("%(count)d in %(dlq)s") % {
                    "count": dlq[0],
                    "dlq": obj.dead_letter_queue,
                }
        return text
