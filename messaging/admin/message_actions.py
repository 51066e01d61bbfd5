"""The message actions (publish, retry failed, republish as copies) as
:class:`MessageActions`, a mixin of :class:`~messaging.admin.message_admin.MessageAdmin`,
over plain functions that work without a request (:func:`publish_selected`,
:func:`republish_selected`, :func:`hand_to_celery`). With
``MESSAGING["PUBLISH_VIA_CELERY"]`` on, the actions hand the ids to Celery instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import conf
from ..amqp.properties import FIELDS as PROPERTY_FIELDS
from ..models import Message
from ..publishing import PUBLISHABLE, PublishResult, publish_ids
from ..publishing.outbox import chunks
from . import audit
from .mixin_types import MessageAdminMixin

#: Rows loaded (with their bodies), claimed and published at a time; all chunks share
#: one broker connection.
PUBLISH_CHUNK = 2000

#: Message ids per Celery task when ``MESSAGING["PUBLISH_VIA_CELERY"]`` is on.
CELERY_CHUNK = 10_000


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


def action_label(description: Any) -> str:
    """How a log entry names an admin action or button."""
    return _("admin action “%(name)s”") % {"name": description}


class MessageActions(MessageAdminMixin):
    """The message admin's actions (a mixin before the ``ModelAdmin``: it reports with
    :class:`~messaging.admin.feedback.PublishFeedback`'s ``_report``)."""

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
