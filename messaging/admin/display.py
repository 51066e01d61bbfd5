"""How the console shows values: times to the second, a status or outcome as a coloured
badge, an error cut to one line, a traceback with its indentation kept."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

#: Shown for an empty time.
EMPTY = "–"
TIME_FORMAT = "Y-m-d H:i:s"
#: Badge colour per status or outcome (the rest are grey).
COLOURS = {
    "published": "#2e7d32",
    "acked": "#2e7d32",
    "pending": "#9a6700",
    "held": "#6f42c1",
    "requeued": "#9a6700",
    "duplicate": "#5f6b7a",
    "failed": "#ba2121",
    "rejected": "#ba2121",
    "dead_lettered": "#ba2121",
}


def seconds(value: datetime | None) -> str:
    """``2026-12-01 13:04:05`` in the current time zone (received and finished differ)."""
    if value is None:
        return EMPTY
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return date_format(value, TIME_FORMAT)


def badge(value: str, label: str) -> SafeString:
    colour = COLOURS.get(value, "#5f6b7a")
    return format_html(
        '<span class="messaging-badge messaging-badge-{}" style="background:{};color:#fff;'
        'padding:1px 6px;border-radius:8px;white-space:nowrap">{}</span>',
        value,
        colour,
        label,
    )


def one_line(text: str, length: int = 80) -> str:
    """The first line of ``text``, cut to ``length`` characters."""
    return Truncator((text or "").splitlines()[0] if text else "").chars(length)


def preformatted(text: str) -> SafeString | str:
    """A traceback (or any text) in ``<pre>``: escaped, indentation and lines kept."""
    if not text:
        return EMPTY
    return format_html('<pre class="messaging-traceback" style="white-space:pre;'
                       'overflow-x:auto;margin:0">{}</pre>', text)  # fmt: skip
