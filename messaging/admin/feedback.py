"""What the admin tells the user (``message_user``) after publishing, after a broker
action on named objects (queues, exchanges), and after deleting rows whose broker objects
stay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import Message
from ..publishing import PublishResult
from .mixin_types import AdminMixin


class PublishFeedback(AdminMixin):
    """Mixin for a ``ModelAdmin``: one line per kind of outcome of a publish run."""

    def _report_skipped(self, request: HttpRequest, skipped: int, statuses: Sequence[str]) -> None:
        if not skipped:
            return
        if tuple(statuses) == (Message.Status.FAILED,):
            text = ngettext(
                "%(count)d message was not failed and was skipped.",
                "%(count)d messages were not failed and were skipped.",
                skipped,
            )
        else:
            text = ngettext(
                "%(count)d message was already published and was skipped.",
                "%(count)d messages were already published and were skipped.",
                skipped,
            )
        self.message_user(request, text % {"count": skipped}, messages.WARNING)

    def _report(self, request: HttpRequest, result: PublishResult, skipped: int) -> None:
        if result.published:
            count = len(result.published)
            self.message_user(
                request,
                ngettext("%(count)d message published.", "%(count)d messages published.", count)
                % {"count": count},
                messages.SUCCESS,
            )
        self._report_failed(request, result)
        if result.busy:
            count = len(result.busy)
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was being published by another process (or already "
                    "was) and was left alone.",
                    "%(count)d messages were being published by another process (or already "
                    "were) and were left alone.",
                    count,
                )
                % {"count": count},
                messages.WARNING,
            )
        if not (result.published or result.failed or result.busy or skipped):
            self.message_user(request, _("Nothing to publish."), messages.WARNING)

    def _report_failed(self, request: HttpRequest, result: PublishResult) -> None:
        """Refused rows (failed for good) and rows the broker could not take now."""
        retrying = set(result.retrying)
        refused = {k: v for k, v in result.failed.items() if k not in retrying}
        if refused:
            count = len(refused)
            self.message_user(
                request,
                ngettext(
                    "%(count)d message failed: %(error)s",
                    "%(count)d messages failed; first error: %(error)s",
                    count,
                )
                % {"count": count, "error": next(iter(refused.values()))},
                messages.ERROR,
            )
        if retrying:
            count = len(retrying)
            error = result.failed[result.retrying[0]]
            self.message_user(
                request,
                ngettext(
                    "%(count)d message not published yet: %(error)s. It stays pending and "
                    "is retried later (relay), or publish it again.",
                    "%(count)d messages not published yet: %(error)s. They stay pending and "
                    "are retried later (relay), or publish them again.",
                    count,
                )
                % {"count": count, "error": error},
                messages.ERROR,
            )


def saved_and_published(
    message: Message, result: PublishResult, link: str = ""
) -> tuple[int, SafeString]:
    """(level, text) of the one message shown after "Save and publish": what happened to
    the saved ``message`` — published, not published yet (pending: the relay sends it
    when the broker takes it), failed with the broker's reason, or left alone because
    another process was publishing it. ``link``: the message's page (the id links there).
    """
    name = (
        format_html('<a href="{}">{}</a>', link, message.message_id)
        if link
        else (message.message_id)
    )
    where = message.destination_label
    message_id = message.message_id
    if message_id in result.failed and message_id in set(result.retrying):
        return messages.WARNING, format_html(
            _(
                "Message “{}” saved but not published yet ({}): it is pending, and the "
                "relay sends it to {} when the broker takes it (or publish it again)."
            ),
            name,
            result.failed[message_id],
            where,
        )
    if message_id in result.failed:
        return messages.ERROR, format_html(
            _("Message “{}” saved but failed: the broker refused it ({}). It is failed."),
            name,
            result.failed[message_id],
        )
    if message_id in result.published:
        return messages.SUCCESS, format_html(
            _("Message “{}” saved and published to {}."), name, where
        )
    if message_id in result.busy:
        return messages.WARNING, format_html(
            _(
                "Message “{}” saved; another process was publishing it (or already had): "
                "see its status."
            ),
            name,
        )
    return messages.WARNING, format_html(
        _("Message “{}” saved but not published: another user or process changed it first."),
        name,
    )


def tell_refused(
    model_admin: Any, request: HttpRequest, refused: Mapping[str, Any], text: str
) -> None:
    """One error per name the broker refused: ``text`` with ``%(name)s`` and ``%(error)s``."""
    for name, error in refused.items():
        model_admin.message_user(request, text % {"name": name, "error": error}, messages.ERROR)


def tell_not_reached(
    model_admin: Any, request: HttpRequest, text: Any, names: Sequence[str], error: Any
) -> None:
    """When ``error`` (a connection error) stopped the run: how many names it left.
    ``text``: an ``ngettext_lazy(…, "count")`` with ``%(count)d`` and ``%(error)s``."""
    if error is not None:
        model_admin.message_user(
            request, text % {"count": len(names), "error": error}, messages.ERROR
        )


class BrokerKeepsDeleted:
    """Mixin for a ``ModelAdmin`` of rows naming broker objects (queues, exchanges):
    deleting rows never deletes on the broker, so after each delete the user is told
    which names stay there (``_tell_broker_untouched``, worded by each admin)."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)  # type: ignore[misc]
        self._tell_broker_untouched(request, [obj.name])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        names = list(queryset.values_list("name", flat=True))
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        self._tell_broker_untouched(request, names)

    def _tell_broker_untouched(self, request: HttpRequest, names: list[str]) -> None:
        raise NotImplementedError
