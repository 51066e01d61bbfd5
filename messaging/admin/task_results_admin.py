"""Task results (``TaskRecord``): the Django tasks run on RabbitMQ
(:mod:`messaging.task_backend`) as an operator sees them — status, task, queue, an args
preview, attempts, the last error, the worker and the times; filters by status, task,
queue and backend; each result links to its message and receipts. "Run again" (the
``rerun_taskrecord`` permission) enqueues a new run with the same arguments, audited."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy, ngettext

from ..models import Message, TaskRecord
from . import audit, display

#: Characters of ``args``/``kwargs`` the list shows.
ARGS_PREVIEW = 60
#: Status → the colour of the console's badges.
STATUS_COLOURS = {
    "READY": "pending",
    "RUNNING": "replayed",
    "SUCCESSFUL": "acked",
    "FAILED": "failed",
}


class TaskPathFilter(admin.SimpleListFilter):
    """The tasks there are results of (at most 200 distinct paths)."""

    title = gettext_lazy("task")
    parameter_name = "task_path"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        paths = TaskRecord.objects.order_by("task_path").values_list("task_path", flat=True)
        return [(p, p.rsplit(".", 1)[-1]) for p in paths.distinct()[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(task_path=self.value()) if self.value() else queryset


def rerun(records: Iterable[TaskRecord], user: Any) -> list[tuple[TaskRecord, TaskRecord]]:
    """Enqueue each result's task again with its arguments, queue and priority: a new
    result (``rerun_of`` = the old id), logged for ``user``. (old, new) pairs."""
    with transaction.atomic():  # all of them or none, published after the commit
        pairs = [(record, _enqueue_again(record)) for record in records]
        audit.log_each(
            user, [(new, f"Run again from task result {old.result_id}.") for old, new in pairs]
        )
    return pairs


def _enqueue_again(record: TaskRecord) -> TaskRecord:
    from ..task_backend.compat import task_backends  # the [tasks] extra
    from ..task_backend.resolve import resolve_task

    backend: Any = task_backends[record.backend]  # a RabbitMQBackend
    task = resolve_task(record.task_path, type(backend), backend.task_options.task_modules)
    task = task.using(queue_name=record.queue_name, priority=record.priority)
    result = task.enqueue(*record.args, **record.kwargs)
    TaskRecord.objects.filter(result_id=result.id).update(rerun_of=record.result_id)
    return TaskRecord.objects.get(result_id=result.id)


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = (
        "status_badge",
        "task_name",
        "queue_name",
        "args_preview",
        "attempts",
        "last_error",
        "worker",
        "enqueued_at",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", TaskPathFilter, "queue_name", "backend")
    search_fields = ("result_id__startswith", "task_path__icontains")
    search_help_text = gettext_lazy("Result ids that start with the text, or tasks containing it.")
    date_hierarchy = "enqueued_at"
    actions = ["run_again"]
    readonly_fields = ("message_and_receipts", "errors_shown")
    fieldsets = (
        (
            None,
            {"fields": ("result_id", "status", "task_path", "backend", "queue_name", "priority")},
        ),
        (gettext_lazy("Arguments and result"), {"fields": ("args", "kwargs", "return_value")}),
        (
            gettext_lazy("Times and workers"),
            {
                "fields": (
                    "enqueued_at",
                    "run_after",
                    "started_at",
                    "last_attempted_at",
                    "finished_at",
                    "worker_ids",
                    "rerun_of",
                )
            },
        ),
        (
            gettext_lazy("Message, receipts and errors"),
            {"fields": ("message_and_receipts", "errors_shown")},
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("messaging.rerun_taskrecord")

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj: TaskRecord) -> SafeString:
        return display.badge(STATUS_COLOURS.get(obj.status, ""), obj.get_status_display())

    @admin.display(description=gettext_lazy("task"), ordering="task_path")
    def task_name(self, obj: TaskRecord) -> SafeString:
        return format_html(
            '<span title="{}">{}</span>', obj.task_path, obj.task_path.rsplit(".", 1)[-1]
        )

    @admin.display(description=gettext_lazy("args"))
    def args_preview(self, obj: TaskRecord) -> str:
        parts = [json.dumps(a) for a in obj.args or []]
        parts += [f"{k}={json.dumps(v)}" for k, v in (obj.kwargs or {}).items()]
        return display.one_line(", ".join(parts), ARGS_PREVIEW)

    @admin.display(description=gettext_lazy("attempts"))
    def attempts(self, obj: TaskRecord) -> int:
        return len(obj.worker_ids or [])

    @admin.display(description=gettext_lazy("last error"))
    def last_error(self, obj: TaskRecord) -> str:
        if not obj.errors:
            return ""
        lines = (obj.errors[-1].get("traceback") or "").strip().splitlines()
        return display.one_line(
            lines[-1] if lines else obj.errors[-1].get("exception_class_path", "")
        )

    @admin.display(description=gettext_lazy("worker"))
    def worker(self, obj: TaskRecord) -> str:
        return (obj.worker_ids or [""])[-1]

    @admin.display(description=gettext_lazy("message and receipts"))
    def message_and_receipts(self, obj: TaskRecord) -> SafeString:
        message = (
            Message.objects.filter(message_id=obj.result_id).values_list("pk", flat=True).first()
        )
        receipts = (
            reverse("admin:messaging_receipt_changelist") + "?" + urlencode({"q": obj.result_id})
        )
        links = [(receipts, gettext_lazy("its receipts"))]
        if message is not None:
            links.insert(
                0,
                (
                    reverse("admin:messaging_message_change", args=[message]),
                    gettext_lazy("its message"),
                ),
            )
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description=gettext_lazy("errors"))
    def errors_shown(self, obj: TaskRecord) -> SafeString | str:
        if not obj.errors:
            return display.EMPTY
        return format_html_join(
            "",
            "<p>attempt {} on {}: <code>{}</code></p>{}",
            (
                (
                    e.get("attempt"),
                    e.get("worker") or "?",
                    e.get("exception_class_path"),
                    display.preformatted(e.get("traceback", "")),
                )
                for e in obj.errors
            ),
        )

    @admin.action(
        description=gettext_lazy("Run again (a new result, same arguments)"), permissions=["rerun"]
    )
    def run_again(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        try:
            pairs = rerun(queryset, request.user)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, one line
            self.message_user(request, f"Not run again: {exc}", messages.ERROR)
            return
        count = len(pairs)
        self.message_user(
            request,
            ngettext("%(count)d task enqueued again.", "%(count)d tasks enqueued again.", count)
            % {"count": count},
            messages.SUCCESS,
        )
