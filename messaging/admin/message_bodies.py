"""Bodies in the message admin, never loaded whole to be shown.

:class:`MessageBodies` is the ``MessageAdmin`` mixin for them: rows fetched with only
their first bytes (:func:`~.forms.with_body_head`), the list's preview column, the
read-only display (a big body as a bounded preview), and the whole body as a download
(``admin:messaging_message_body``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy, ngettext

from ..models import Message
from .body_preview import BIG_BODY, BIG_BODY_PREVIEW, body_as_text, body_preview, bounded_preview
from .forms import BODY_HEAD, BODY_SIZE, pretty_json, stored_body, with_body_head
from .mixin_types import MessageAdminMixin
from .views import body_download_view


class MessageBodies(MessageAdminMixin):
    """Mixin for the ``Message`` ``ModelAdmin``: the body download URL and view, rows
    without their body column, and the body columns."""

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_body"
        view = self.admin_site.admin_view(self.body_download_view)
        return [path("<path:object_id>/body/", view, name=name), *super().get_urls()]

    def body_download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return body_download_view(self, request, object_id)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Message | None:
        """The row without its body column (see :func:`stored_body`): a big body is
        shown by its first bytes and kept as it is on save."""
        queryset = with_body_head(self.get_queryset(request), BIG_BODY_PREVIEW + 3)
        field: Any = self.opts.pk if from_field is None else self.opts.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Message.DoesNotExist, ValidationError, ValueError):
            return None

    # ----------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("body"))
    def body_preview(self, obj: Message) -> str:
        head = getattr(obj, BODY_HEAD, None)
        if head is None:
            return body_preview(obj.body_bytes)
        return body_preview(bytes(head), size=getattr(obj, BODY_SIZE))

    @admin.display(description=gettext_lazy("body"))
    def body_display(self, obj: Message) -> str:
        head, size = stored_body(obj)
        if size > BIG_BODY:
            shown = bounded_preview(head, size)
        else:
            text = pretty_json(head, obj.content_type) or body_as_text(head)
            shown = repr(head) if text is None else text
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', shown)

    @admin.display(description=gettext_lazy("whole body"))
    def body_download(self, obj: Message) -> str:
        size = stored_body(obj)[1]
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_body",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )
        text = ngettext("Download (%(size)s byte)", "Download (%(size)s bytes)", size) % {
            "size": f"{size:,}"
        }
        return format_html('<a href="{}">{}</a>', url, text)
