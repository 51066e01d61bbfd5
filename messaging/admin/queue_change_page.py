"""The queue's change page, as :class:`QueueChangePage`, a mixin of
:class:`~messaging.admin.queue_admin.QueueAdmin`: its state on the broker at the top,
links (its dead letters, its messages and receipts, the overview) and the actions as
buttons for the users allowed to run them (``admin/messaging/queue/change_form.html``);
help texts are shown as text.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..models import Queue
from .mixin_types import QueueAdminMixin


class QueueChangePage(QueueAdminMixin):
    """The queue admin's change page (a mixin before the ``ModelAdmin``: it uses
    ``on_broker``, ``can_compose`` and the admin's permission checks)."""

    def get_fields(self, request: HttpRequest, obj: Queue | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        # The state on the broker is at the top of the change page (queue_page), not a field.
        fields.remove("on_broker")
        return fields

    def get_form(
        self, request: HttpRequest, obj: Queue | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        """The form, its help texts escaped: the admin renders help texts as HTML, and
        they name queues like ``<name>.dlq``."""
        form = super().get_form(request, obj, change=change, **kwargs)
        for field in form.base_fields.values():
            if field.help_text:
                field.help_text = conditional_escape(field.help_text)
        return form

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        if request.method in ("GET", "HEAD"):
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and self.has_view_or_change_permission(request, obj):
                extra_context["queue_page"] = self.queue_page(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def queue_page(self, request: HttpRequest, obj: Queue) -> dict[str, Any]:
        """The top of the queue's page: its state on the broker, links, and the action
        buttons this user may press (each posts the changelist's action for this row)."""
        site = self.admin_site.name
        app = self.opts.app_label
        return {
            "state": self.on_broker(obj),
            "links": self.queue_links(request, obj),
            "buttons": self.queue_buttons(request, obj),
            "action_url": reverse(f"admin:{app}_queue_changelist", current_app=site),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "compose_url": (
                reverse(f"admin:{app}_message_add", current_app=site) + f"?queue={obj.pk}"
                if self.can_compose(request)
                else ""
            ),
        }

    def queue_links(self, request: HttpRequest, obj: Queue) -> list[tuple[str, str, str]]:
        """(id, url, label) of the pages about this queue the user may see."""
        site = self.admin_site.name
        app = self.opts.app_label
        name_query = urlencode({"queue_name": obj.name})
        links = []
        if obj.dead_letter_queue:
            links.append(
                (
                    "queue-dead-letters",
                    reverse(f"admin:{app}_queue_dead_letters", args=[obj.pk], current_app=site),
                    _("Dead letters (%(dlq)s)") % {"dlq": ".dlq"},
                )
            )
        if request.user.has_perm(f"{app}.view_message") or request.user.has_perm(
            f"{app}.change_message"
        ):
            links.append(
                (
                    "queue-messages",
                    reverse(f"admin:{app}_message_changelist", current_app=site)
                    + f"?queue__id__exact={obj.pk}",
                    _("Messages"),
                )
            )
        if request.user.has_perm(f"{app}.view_receipt"):
            links.append(
                (
                    "queue-receipts",
                    reverse(f"admin:{app}_receipt_changelist", current_app=site) + f"?{name_query}",
                    _("Receipts"),
                )
            )
        links.append(
            ("queue-overview", reverse(f"admin:{app}_overview", current_app=site), _("Overview"))
        )
        return links

    def queue_buttons(self, request: HttpRequest, obj: Queue) -> list[tuple[str, str, str]]:
        """(action, label, css class) of the actions this user may run on this queue."""
        buttons = []
        if self.has_change_permission(request, obj):
            buttons.append(("declare_on_broker", _("Declare on broker"), ""))
        if self.has_purge_permission(request):
            buttons.append(("purge_queues", _("Purge on broker…"), "messaging-danger"))
        if self.has_publish_permission(request) and obj.dead_letter_queue:
            buttons.append(("replay_dead_letters", _("Replay dead letters"), ""))
        return buttons
