"""Message admin: compose, publish, republish, retry; receipts inline; bodies shown and
downloaded without loading them whole (:mod:`.message_bodies`).

The actions keep their logic in plain functions (:func:`publish_selected`,
:func:`republish_selected`, :func:`hand_to_celery`) that work without a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import connections, router, transaction
from django.db.models import F, Q, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import conf
from ..amqp.properties import FIELDS as PROPERTY_FIELDS
from ..db import operations
from ..models import Message, Queue, Receipt
from ..publishing import PUBLISHABLE, PublishResult, publish_ids
from ..publishing.outbox import chunks
from . import audit, display
from .body_preview import preview_prefix_size
from .feedback import PublishFeedback, saved_and_published
from .forms import MessageForm, with_body_head
from .message_bodies import MessageBodies
from .message_fate import (
    FILTER_CHOICES,
    Fate,
    after_death,
    annotated,
    fate_of,
    filter_fate,
    with_fate,
)

#: Statuses of rows no broker has confirmed yet (they can still be edited and published).
UNPUBLISHED = PUBLISHABLE

#: Rows loaded (with their bodies), claimed and published at a time; all chunks share
#: one broker connection.
PUBLISH_CHUNK = 2000

#: Set on a request whose "Save and publish" is saving the row.
SAVING_TO_PUBLISH = "_messaging_saving_to_publish"

#: Message ids per Celery task when ``MESSAGING["PUBLISH_VIA_CELERY"]`` is on.
CELERY_CHUNK = 10_000


# --------------------------------------------------------------------------- actions


@dataclass
class PublishSelection(PublishResult):
    """A :class:`~messaging.publishing.PublishResult` plus how many selected rows were
    skipped because of their status."""

    skipped: int = 0


def publish_pks(
    ids: Sequence[int], user: Any = None, statuses: Sequence[str] = PUBLISHABLE
) -> PublishResult:
    """Publish the messages with primary keys ``ids`` (in that order) whose status is
    still one of ``statuses``: :func:`messaging.publishing.publish_ids`, rows loaded
    :data:`PUBLISH_CHUNK` at a time. Never raises a broker error (see the result:
    ``retrying`` ids stay ``pending`` because the broker could not take them now)."""
    return publish_ids(ids, user=user, chunk_size=PUBLISH_CHUNK, statuses=statuses)


def _publishable_ids(queryset: QuerySet[Message], statuses: Sequence[str]) -> list[int]:
    return list(
        queryset.filter(status__in=statuses)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


def publish_selected(
    queryset: QuerySet[Message], user: Any = None, statuses: Sequence[str] = PUBLISHABLE
) -> PublishSelection:
    """Publish the rows of ``queryset`` whose status is in ``statuses`` (by default
    ``pending`` and ``failed``), oldest first; the others are counted as skipped."""
    selection = PublishSelection(skipped=queryset.exclude(status__in=statuses).count())
    selection.extend(publish_pks(_publishable_ids(queryset, statuses), user, statuses))
    return selection


def hand_to_celery(ids: Sequence[int], user: Any = None) -> int:
    """Queue ``messaging.tasks.publish_messages_task(ids, user_id)`` in chunks of
    :data:`CELERY_CHUNK` ids; returns how many ids were handed over. Raises whatever
    Celery raises when it cannot queue a task (the rows then stay as they were)."""
    from ..tasks import publish_messages_task

    user_id = getattr(user, "pk", None)
    handed = 0
    for chunk in chunks(list(ids), CELERY_CHUNK):
        publish_messages_task.delay(list(chunk), user_id)
        handed += len(chunk)
    return handed


def copy_messages(queryset: QuerySet[Message]) -> list[int]:
    """Create a new ``pending`` message (new message_id) for each selected one, copying
    destination, body, content type, headers and persistence; returns the new pks."""
    return [pk for _original, pk in copy_pairs(queryset)]


def copy_pairs(queryset: QuerySet[Message]) -> list[tuple[str, int]]:
    """:func:`copy_messages`, returning ``(original message_id, copy pk)`` pairs."""
    originals: list[str] = []
    copies: list[Message] = []
    rows = Message.objects.filter(pk__in=queryset.values("pk")).order_by("created_at", "pk")
    for original in rows.iterator(chunk_size=2000):
        originals.append(original.message_id)
        copies.append(
            Message(
                queue_id=original.queue_id,
                exchange=original.exchange,
                routing_key=original.routing_key,
                body=original.body_bytes,
                **{name: getattr(original, name) for name in PROPERTY_FIELDS},
            )
        )
    created = Message.objects.bulk_create(copies, batch_size=500)
    if created and created[0].pk is None:  # a backend that does not return primary keys
        ids = [c.message_id for c in created]
        by_id = dict(Message.objects.filter(message_id__in=ids).values_list("message_id", "pk"))
        return list(zip(originals, [by_id[i] for i in ids], strict=True))
    return list(zip(originals, [c.pk for c in created], strict=True))


def republish_selected(queryset: QuerySet[Message], user: Any = None) -> PublishResult:
    """Publish a copy (new message_id) of each selected message, whatever its status."""
    return publish_pks(copy_messages(queryset), user)


# --------------------------------------------------------------------------- inline


class ReceiptInline(admin.TabularInline):
    model = Receipt
    fk_name = "message"
    fields = (
        "outcome",
        "attempt",
        "queue_name",
        "consumer_name",
        "consumer_host",
        "redelivered_text",
        "received",
        "finished",
        "error",
    )
    readonly_fields = fields
    extra = 0

    @admin.display(description=gettext_lazy("redelivered"))
    def redelivered_text(self, obj: Receipt) -> str:
        return display.yes_no(obj.redelivered)

    @admin.display(description=gettext_lazy("received"))
    def received(self, obj: Receipt) -> str:
        return display.seconds(obj.received_at)

    @admin.display(description=gettext_lazy("finished"))
    def finished(self, obj: Receipt) -> str:
        return display.seconds(obj.finished_at)

    can_delete = False
    show_change_link = True
    verbose_name_plural = gettext_lazy("receipts (deliveries handled by consumers)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --------------------------------------------------------------------------- search


def body_contains(queryset: QuerySet[Message], term: str) -> tuple[QuerySet[Message], Q]:
    """``queryset`` annotated so that the returned ``Q`` matches bodies containing
    ``term`` (UTF-8), case-insensitively for ASCII letters, on SQLite and PostgreSQL."""
    ops = operations(connections[queryset.db])
    queryset = queryset.alias(_body_text=ops.bytes_as_text(F("body")))
    return queryset, Q(_body_text__icontains=ops.bytes_text_term(term))


# --------------------------------------------------------------------------- admin


MESSAGE_FIELDS = ("queue", "exchange", "routing_key", "content_type")
STATUS_FIELDS = (
    "message_id",
    "status",
    "attempts",
    "last_error",
    "error_class",
    "created",
    "published",
    "published_by",
)
#: What became of it (from its receipts): the fate and its links.
FATE_FIELDS = ("fate_summary",)


class FateFilter(admin.SimpleListFilter):
    """By consumer outcome, from the receipts (:mod:`.message_fate`)."""

    title = gettext_lazy("consumer outcome")
    parameter_name = "fate"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return FILTER_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> Any:
        value = self.value()
        return filter_fate(queryset, value) if value else queryset


class MessageChangeList(ChangeList):
    """Loads each row's first bytes and size for the preview column, never its body."""

    def get_results(self, request: HttpRequest) -> None:
        self.queryset = with_fate(with_body_head(self.queryset, preview_prefix_size()))
        super().get_results(request)


def action_label(description: Any) -> str:
    """How a log entry names an admin action or button."""
    return _("admin action “%(name)s”") % {"name": description}


#: The AMQP properties (correlation_id, reply_to, priority, expiration, type, app_id).
PROPERTIES_FIELDSET = (
    gettext_lazy("Properties"),
    {
        "fields": (("correlation_id", "reply_to"), ("priority", "expiration"), ("type", "app_id")),
        "description": gettext_lazy(
            "Optional AMQP properties. Priority 0-255 needs a queue declared with "
            "x-max-priority; expiration is in milliseconds. The timestamp is set on send."
        ),
    },
)


@admin.register(Message)
class MessageAdmin(MessageBodies, PublishFeedback, admin.ModelAdmin):
    form = MessageForm
    list_display = (
        "message_id",
        "destination",
        "status_badge",
        "short_error",
        "content_type",
        "created",
        "published",
        "published_by",
        "body_preview",
    )
    list_filter = ("status", FateFilter, "queue", "created_at", "published_at")
    search_fields = ("message_id",)
    search_help_text = gettext_lazy("Searches message ids and body text.")
    date_hierarchy = "created_at"
    list_select_related = ("queue", "published_by")
    readonly_fields = (*STATUS_FIELDS, *FATE_FIELDS, "body_download")
    inlines = [ReceiptInline]
    actions = ["publish_messages", "retry_failed", "republish"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MessageChangeList

    def get_fieldsets(self, request: HttpRequest, obj: Message | None = None) -> Any:
        if obj is None:
            fields = (*MESSAGE_FIELDS, "body_text", "body_format", "headers", "persistent")
            return [(None, {"fields": fields}), PROPERTIES_FIELDSET]
        # View-only (published, or no change permission): every field is read-only.
        editable = self.has_change_permission(request, obj)
        body = ("body_text", "body_format") if editable else ("body_display",)
        return [
            (None, {"fields": (*MESSAGE_FIELDS, *body, "body_download", "headers", "persistent")}),
            (_("What became of it"), {"fields": FATE_FIELDS}),
            PROPERTIES_FIELDSET,
            (_("Publishing"), {"fields": STATUS_FIELDS}),
        ]

    def get_inlines(self, request: HttpRequest, obj: Message | None) -> list[Any]:
        return list(self.inlines) if obj is not None else []

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        """Every word must be in the message_id or in the body text."""
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            if not bit:
                continue
            queryset, in_body = body_contains(queryset, bit)
            queryset = queryset.filter(Q(message_id__icontains=bit) | in_body)
        return queryset, False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        if obj is not None and obj.status == Message.Status.PUBLISHED:
            return False
        return super().has_change_permission(request, obj)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.publish_message")

    # ----------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("destination"))
    def destination(self, obj: Message) -> str:
        return obj.destination_label

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj: Message) -> str:
        """The message's fate (what the consumers did with it) once it has receipts,
        else its publish status."""
        fate = fate_of(annotated(obj))
        return display.badge(fate.key, fate.short or fate.label, title=fate.label)

    @admin.display(description=gettext_lazy("error"))
    def short_error(self, obj: Message) -> str:
        return display.one_line(obj.last_error)

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created(self, obj: Message) -> str:
        return display.seconds(obj.created_at)

    @admin.display(description=gettext_lazy("published"), ordering="published_at")
    def published(self, obj: Message) -> str:
        return display.seconds(obj.published_at)

    # ----------------------------------------------------------------- fate

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
        receipts = self._url("receipt_changelist")
        receipts += "?" + urlencode({"message__exact": obj.message_id}) if receipts else ""
        links = [(receipts if fate.received else "", "fate-receipts", _("its receipts"))]
        dead_letters = self.dead_letter_url(obj, fate)
        links.append((dead_letters, "fate-dead-letters", _("its dead-letter entry")))
        outcome = fate.dead_letter_outcome or ("" if fate.replayed else "requeued")
        failed = fate.dead_letter_outcome or fate.replayed or fate.retries
        failures = self._url("failures") if failed else ""
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
        obj._after_death = event
        if event is not None:
            label = (
                _("%(fate)s, replayed from the DLQ, not consumed again yet")
                if event.kind == "replayed"
                else _("%(fate)s, then discarded from the DLQ")
            ) % {"fate": fate.label}
            fate = replace(fate, key=event.kind, label=label, short=event.kind)
        obj._page_fate = fate
        return fate

    def _dead_letter_queue_row(self, obj: Message, fate: Fate) -> Queue | None:
        """The ``Queue`` row whose app-managed DLQ the fate names (None if none)."""
        if not fate.dead_letter_outcome:
            return None
        if not hasattr(obj, "_dead_letter_queue_row"):
            queue = Queue.objects.filter(name=fate.queue).first()
            obj._dead_letter_queue_row = queue if queue and queue.dead_letter_queue else None
        return obj._dead_letter_queue_row

    def dead_letter_url(self, obj: Message, fate: Fate) -> str:
        """The dead-letter browser of the queue whose DLQ holds the message ("" when it
        is in none, or no ``Queue`` row manages that DLQ)."""
        if not fate.in_dead_letter_queue:
            return ""
        queue = self._dead_letter_queue_row(obj, fate)
        if queue is None:
            return ""
        url = self._url("queue_dead_letters", queue.pk)
        return url + "?" + urlencode({"message_id": obj.message_id}) if url else ""

    def _url(self, name: str, *args: Any) -> str:
        try:
            return reverse(
                f"admin:{self.opts.app_label}_{name}", args=args, current_app=self.admin_site.name
            )
        except NoReverseMatch:
            return ""

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

    # ----------------------------------------------------------------- compose

    def can_save_and_publish(self, request: HttpRequest, obj: Message | None) -> bool:
        """Offer "Save and publish": publish permission, and a row not published yet."""
        if not self.has_publish_permission(request):
            return False
        if obj is None or obj._state.adding:
            return self.has_add_permission(request)
        return obj.status in UNPUBLISHED and self.has_change_permission(request, obj)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Message | None = None,
    ) -> HttpResponse:
        context["show_save_and_publish"] = self.can_save_and_publish(request, obj)
        context["message_actions"] = self.page_actions(request, obj)
        if obj is not None and not obj._state.adding:
            context["subtitle"] = context["message_label"] = self.page_label(obj)
            context["replay"] = self.replay_button(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

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
        level, text = saved_and_published(message, result, self._url("message_change", pk))
        messages.add_message(request, level, text, fail_silently=True)

    def message_user(self, request: HttpRequest, message: Any, *args: Any, **kwargs: Any) -> None:
        """As Django's, except its "added / changed successfully" after "Save and
        publish": the publish outcome says it (:func:`.feedback.saved_and_published`)."""
        level = kwargs.get("level", args[0] if args else messages.INFO)
        if getattr(request, SAVING_TO_PUBLISH, False) and level == messages.SUCCESS:
            return
        super().message_user(request, message, *args, **kwargs)

    # ----------------------------------------------------------------- actions

    @admin.action(description=gettext_lazy("Publish selected messages"), permissions=["publish"])
    def publish_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._publish(request, queryset, PUBLISHABLE, _("Publish selected messages"))

    @admin.action(description=gettext_lazy("Retry failed messages"), permissions=["publish"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._publish(request, queryset, (Message.Status.FAILED,), _("Retry failed messages"))

    @admin.action(
        description=gettext_lazy("Republish as new messages (copies)"), permissions=["publish"]
    )
    def republish(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        label = action_label(_("Republish as new messages (copies)"))
        pairs = copy_pairs(queryset)
        audit.log_copies(request.user, pairs, label)
        ids = [pk for _original, pk in pairs]
        count = len(ids)
        self.message_user(
            request,
            ngettext(
                "%(count)d copy created (new message id).",
                "%(count)d copies created (new message ids).",
                count,
            )
            % {"count": count},
            messages.INFO,
        )
        if conf.get("PUBLISH_VIA_CELERY"):
            self._to_celery(request, ids, label)
            return
        result = publish_pks(ids, request.user)
        audit.log_publish_result(request.user, result, label)
        self._report(request, result, skipped=0)

    def _publish(
        self,
        request: HttpRequest,
        queryset: QuerySet[Message],
        statuses: Sequence[str],
        description: str,
    ) -> None:
        label = action_label(description)
        skipped = queryset.exclude(status__in=statuses).count()
        ids = _publishable_ids(queryset, statuses)
        self._report_skipped(request, skipped, statuses)
        if conf.get("PUBLISH_VIA_CELERY"):
            self._to_celery(request, ids, label)
            return
        result = publish_pks(ids, request.user, statuses)
        audit.log_publish_result(request.user, result, label)
        self._report(request, result, skipped)

    def _to_celery(self, request: HttpRequest, ids: Sequence[int], label: str) -> None:
        if not ids:
            self.message_user(request, _("Nothing to publish."), messages.WARNING)
            return
        try:
            count = hand_to_celery(ids, request.user)
        except Exception as exc:  # noqa: BLE001 - Celery/kombu errors vary by transport
            self.message_user(
                request,
                _(
                    "Could not hand the messages to Celery (%(error)s): nothing was "
                    "published; they keep their status."
                )
                % {"error": exc},
                messages.ERROR,
            )
            return
        audit.log_handed_to_celery(request.user, ids, label)
        self.message_user(
            request,
            ngettext(
                "%(count)d message handed to Celery for publishing; its status changes "
                "when a worker has published it.",
                "%(count)d messages handed to Celery for publishing; their status changes "
                "when a worker has published them.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
