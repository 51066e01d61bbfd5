"""What became of a message, on its page: the "fate" field (a badge, where the message is
now, links to its receipts, its dead-letter entry and its failure group), the page's
title and its "Replay from the DLQ" button, as :class:`FateDisplay`, a mixin of
:class:`~messaging.admin.message_admin.MessageAdmin`. The fate itself is
:mod:`.message_fate`'s; this adds what the admin log says a user did to the dead letter
since.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Message, Queue
from . import display
from .message_fate import Fate, after_death, annotated, fate_of
from .mixin_types import MessageAdminMixin


def admin_url(model_admin: admin.ModelAdmin, name: str, *args: Any) -> str:
    """The URL of the admin page ``admin:<app>_<name>`` ("" when there is none)."""
    try:
        return reverse(
            f"admin:{model_admin.opts.app_label}_{name}",
            args=args,
            current_app=model_admin.admin_site.name,
        )
    except NoReverseMatch:
        return ""


class FateDisplay(MessageAdminMixin):
    """The message admin's fate field, page title and replay button (a mixin before the
    ``ModelAdmin``: it uses ``has_publish_permission``)."""

    @admin.display(description=gettext_lazy("fate"))
    def fate_summary(self, obj: Message) -> str:
        """The fate as a badge, where the message is now, and links to its receipts,
        its dead-letter entry and its failure group."""
        fate = self.page_fate(obj)
        lines = []
        event = getattr(obj, "_after_death", None)
        if event is not None:
            text = (
                _("Replayed from %(dlq)s by %(user)s at %(time)s; not consumed again yet.")
                if event.kind == "replayed"
                else _("Discarded from %(dlq)s by %(user)s at %(time)s: gone for good.")
            )
            when = display.seconds_ago(event.time)
            dlq = f"{fate.queue}.dlq"
            lines.append(text % {"dlq": dlq, "user": event.user or "?", "time": when})
        if fate.in_dead_letter_queue:
            lines.append(
                format_html(
                    '<span class="fate-where">{}</span>',
                    _("In %(dlq)s now (unless replayed or discarded since).")
                    % {"dlq": fate.dead_letter_queue},
                )
            )
        if fate.replayed:
            lines.append(_("It was dead-lettered, replayed from the DLQ and consumed again."))
        links = [(url, css, text) for url, css, text in self.fate_links(obj, fate) if url]
        if links:
            lines.append(format_html_join(" · ", '<a href="{}" class="{}">{}</a>', links))
        return format_html(
            '<div class="messaging-fate">{}{}</div>',
            display.badge(fate.key, fate.label),
            format_html_join("", "<div>{}</div>", ((line,) for line in lines)),
        )

    def fate_links(self, obj: Message, fate: Fate) -> list[tuple[str, str, str]]:
        """(url, css class, text) of the message's receipts, its dead-letter entry and its
        failure group ("" for a link that does not apply)."""
        receipts = admin_url(self, "receipt_changelist")
        receipts += "?" + urlencode({"message__exact": obj.message_id}) if receipts else ""
        links = [(receipts if fate.received else "", "fate-receipts", _("its receipts"))]
        dead_letters = self.dead_letter_url(obj, fate)
        links.append((dead_letters, "fate-dead-letters", _("its dead-letter entry")))
        outcome = fate.dead_letter_outcome or ("" if fate.replayed else "requeued")
        failed = fate.dead_letter_outcome or fate.replayed or fate.retries
        failures = admin_url(self, "failures") if failed else ""
        if failures:
            group = {"queue": fate.queue, "outcome": outcome} if outcome else {"queue": fate.queue}
            failures += "?" + urlencode(group)
        links.append((failures, "fate-failures", _("its failure group")))
        return links

    def page_fate(self, obj: Message) -> Fate:
        """:func:`fate_of`, plus what the admin log says a user did to the dead letter
        since (replayed, discarded): the page's fate (a few queries, once per page)."""
        cached = getattr(obj, "_page_fate", None)
        if cached is not None:
            return cached
        fate = fate_of(annotated(obj))
        queue = self._dead_letter_queue_row(obj, fate)
        event = after_death(obj, fate, queue) if queue is not None else None
        obj._after_death = event  # type: ignore[attr-defined]
        if event is not None:
            label = (
                _("%(fate)s, replayed from the DLQ, not consumed again yet")
                if event.kind == "replayed"
                else _("%(fate)s, then discarded from the DLQ")
            ) % {"fate": fate.label}
            fate = replace(fate, key=event.kind, label=label, short=event.kind)
        obj._page_fate = fate  # type: ignore[attr-defined]
        return fate

    def _dead_letter_queue_row(self, obj: Message, fate: Fate) -> Queue | None:
        """The ``Queue`` row whose app-managed DLQ the fate names (None if none)."""
        if not fate.dead_letter_outcome:
            return None
        if not hasattr(obj, "_dead_letter_queue_row"):
            queue = Queue.objects.filter(name=fate.queue).first()
            queue = queue if queue and queue.dead_letter_queue else None
            obj._dead_letter_queue_row = queue  # type: ignore[attr-defined]
        return obj._dead_letter_queue_row  # type: ignore[attr-defined]

    def dead_letter_url(self, obj: Message, fate: Fate) -> str:
        """The dead-letter browser of the queue whose DLQ holds the message ("" when it
        is in none, or no ``Queue`` row manages that DLQ)."""
        if not fate.in_dead_letter_queue:
            return ""
        queue = self._dead_letter_queue_row(obj, fate)
        if queue is None:
            return ""
        url = admin_url(self, "queue_dead_letters", queue.pk)
        return url + "?" + urlencode({"message_id": obj.message_id}) if url else ""

    def page_label(self, obj: Message) -> str:
        """The page's title: ``<id> → <destination> (<fate>)``."""
        fate = self.page_fate(obj)
        return f"{obj.message_id} → {obj.destination_label} ({fate.label})"

    def replay_button(self, request: HttpRequest, obj: Message | None) -> dict[str, str] | None:
        """Replay from the DLQ (a form posted to the dead-letter browser, which comes back
        here): publish permission and queue view permission, message in a DLQ."""
        if obj is None or obj._state.adding or not self.has_publish_permission(request):
            return None
        if not request.user.has_perm(f"{self.opts.app_label}.view_queue") and not (
            request.user.has_perm(f"{self.opts.app_label}.change_queue")
        ):
            return None
        fate = self.page_fate(obj)
        url = self.dead_letter_url(obj, fate).split("?")[0]
        if not url:
            return None
        return {
            "url": url,
            "message_id": obj.message_id,
            "dlq": fate.dead_letter_queue,
            "next": request.get_full_path(),
        }
