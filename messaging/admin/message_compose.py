"""Composing and saving a message, as :class:`MessageCompose`, a mixin of
:class:`~messaging.admin.message_admin.MessageAdmin`: rows saved without the publish
permission are held; "Save and publish" (offered with it) publishes the row once the save
is committed, and tells the publish outcome instead of Django's "changed successfully";
the page's buttons for the list actions that apply to the row.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import messages
from django.db import router, transaction
from django.forms import BaseForm
from django.http import HttpRequest
from django.utils.translation import gettext as _

from ..models import Message
from ..publishing import PUBLISHABLE
from . import audit
from .feedback import saved_and_published
from .message_actions import action_label, publish_pks
from .message_fate_column import admin_url
from .mixin_types import MessageAdminMixin

#: Statuses of rows no broker has confirmed yet (they can still be edited and published).
UNPUBLISHED = PUBLISHABLE

#: Set on a request whose "Save and publish" is saving the row.
SAVING_TO_PUBLISH = "_messaging_saving_to_publish"


class MessageCompose(MessageAdminMixin):
    """Saving (held or published) and the page's action buttons (a mixin before the
    ``ModelAdmin``: it uses ``has_publish_permission`` and ``PublishFeedback``'s
    ``_report``)."""

    def can_save_and_publish(self, request: HttpRequest, obj: Message | None) -> bool:
        """Offer "Save and publish": publish permission, and a row not published yet."""
        if not self.has_publish_permission(request):
            return False
        if obj is None or obj._state.adding:
            return self.has_add_permission(request)
        return obj.status in UNPUBLISHED and self.has_change_permission(request, obj)

    def page_actions(self, request: HttpRequest, obj: Message | None) -> list[tuple[str, str]]:
        """The buttons of a message's page: the list actions that apply to this row
        (posted to the list with this row selected; publish permission)."""
        if obj is None or obj._state.adding or not self.has_publish_permission(request):
            return []
        buttons = []
        if obj.status in (Message.Status.PENDING, Message.Status.HELD):
            buttons.append(("publish_messages", _("Publish")))
        if obj.status == Message.Status.FAILED:
            buttons.append(("retry_failed", _("Retry")))
        buttons.append(("republish", _("Republish as a new message")))
        return buttons

    def save_model(self, request: HttpRequest, obj: Message, form: BaseForm, change: bool) -> None:
        """Rows saved by a user without ``publish_message`` (new ones, or edited ones)
        are ``held``: the relay leaves them alone. "Save and publish" holds the row too
        and publishes it once the save is committed (so the relay cannot take it first)."""
        publisher = self.has_publish_permission(request)
        publish_now = "_publish" in request.POST and self.can_save_and_publish(request, obj)
        if publish_now or (not publisher and (not change or form.has_changed())):
            obj.status = Message.Status.HELD
            obj.next_attempt_at = None
        super().save_model(request, obj, form, change)
        if publish_now:
            # Django's "was added / changed successfully" would name the row "(held)": the
            # publish outcome is told instead, once (see message_user, _publish_saved).
            setattr(request, SAVING_TO_PUBLISH, True)
            transaction.on_commit(
                partial(self._publish_saved, request, obj.pk), using=router.db_for_write(Message)
            )
        elif obj.status == Message.Status.HELD and not publisher:
            self.message_user(
                request,
                _(
                    "Message “%(id)s” is held: it is sent only when a user with the "
                    "permission to publish messages publishes it."
                )
                % {"id": obj.message_id},
                messages.WARNING,
            )

    def _publish_saved(self, request: HttpRequest, pk: int) -> None:
        result = publish_pks([pk], request.user, (Message.Status.HELD,))
        audit.log_publish_result(request.user, result, action_label(_("Save and publish")))
        message = Message.objects.select_related("queue").defer("body").filter(pk=pk).first()
        if message is None:
            self._report(request, result, skipped=0)
            return
        level, text = saved_and_published(message, result, admin_url(self, "message_change", pk))
        messages.add_message(request, level, text, fail_silently=True)

    def message_user(self, request: HttpRequest, message: Any, *args: Any, **kwargs: Any) -> None:
        """As Django's, except its "added / changed successfully" after "Save and
        publish": the publish outcome says it (:func:`.feedback.saved_and_published`)."""
        level = kwargs.get("level", args[0] if args else messages.INFO)
        if getattr(request, SAVING_TO_PUBLISH, False) and level == messages.SUCCESS:
            return
        super().message_user(request, message, *args, **kwargs)
