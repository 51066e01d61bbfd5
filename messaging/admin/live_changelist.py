"""What the queue, exchange and binding admins share: a changelist that asks the broker
about the page's rows once they are known (GET only: an action does not ask), the
warning when the broker could not be asked, and the "Publish a message" link per row."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..exceptions import BrokerError
from ..models import Message


class LiveChangeList(ChangeList):
    """The page's rows, evaluated once (the template iterates the same objects), with
    their live state put on them by the admin's ``attach_states``. POSTs (actions, a
    list_editable save) do not ask the broker."""

    #: Why the broker could not be asked (set by ``attach_states``).
    broker_error: BrokerError | None = None

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        if request.method in ("GET", "HEAD"):
            cast("LiveStateAdmin", self.model_admin).attach_states(request, self)


class LiveStateAdmin(admin.ModelAdmin):
    """A ``ModelAdmin`` whose changelist shows its rows' live state on the broker."""

    #: The warning when the broker could not be asked (``%(error)s``).
    unreachable_warning = gettext_lazy(
        "The broker is unreachable, so the live state is missing: %(error)s"
    )

    def attach_states(self, request: HttpRequest, changelist: LiveChangeList) -> None:
        """Put each row's live state on it (``changelist.result_list``), and on
        ``changelist`` what the page warns about (``broker_error``)."""
        raise NotImplementedError

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LiveChangeList

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        error = getattr(changelist, "broker_error", None)
        if error is not None:
            self.message_user(
                request, self.unreachable_warning % {"error": error}, messages.WARNING
            )
        return changelist

    def can_compose(self, request: HttpRequest) -> bool:
        """May the user open the message form (the "Publish a message" links)?"""
        opts = Message._meta
        return self.admin_site.is_registered(Message) and request.user.has_perm(
            f"{opts.app_label}.add_{opts.model_name}"
        )

    def compose_link(self, obj: Any, field: str, value: Any) -> str:
        """A row's "Publish a message" link, the form's ``field`` set to ``value``; empty
        unless the row says the user may compose (``can_compose``, put on on GET)."""
        if not getattr(obj, "can_compose", False):
            return ""
        url = reverse(
            f"admin:{Message._meta.app_label}_{Message._meta.model_name}_add",
            current_app=self.admin_site.name,
        )
        return format_html('<a href="{}?{}={}">{}</a>', url, field, value, _("Publish a message"))
