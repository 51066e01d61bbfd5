"""How the console shows values: one time format to the second (``2026-12-07 18:02:11``
in the current time zone: ``settings.TIME_ZONE`` unless a middleware activates another),
"12 s ago" where freshness matters, a status or outcome as a coloured badge, a yes/no
that is not an alarm, an error cut to one line, a traceback with its indentation kept.

Every admin page shows times through :func:`seconds` (or :func:`seconds_ago`,
:func:`ago`, :func:`from_epoch`), never Django's ``DATETIME_FORMAT`` ("Dec. 7, 2026,
6 p.m.")."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext as _

#: Shown for an empty time.
EMPTY = "–"
#: The one time format of the console (Django's ``date`` format characters).
TIME_FORMAT = "Y-m-d H:i:s"
#: Badge colour per status or outcome (the rest are grey).
COLOURS = {
    "published": "#2e7d32",
    "acked": "#2e7d32",
    "consumed": "#2e7d32",
    "pending": "#9a6700",
    "held": "#6f42c1",
    "requeued": "#9a6700",
    "retrying": "#9a6700",
    "duplicate": "#5f6b7a",
    "failed": "#ba2121",
    "rejected": "#ba2121",
    "dead_lettered": "#ba2121",
    "replayed": "#1565c0",
    "discarded": "#5f6b7a",
}
#: Neutral text colour (a yes/no that is a fact, not an alarm).
NEUTRAL = "#5f6b7a"


def local(value: datetime) -> datetime:
    """``value`` in the current time zone (a naive value is taken as it is)."""
    return timezone.localtime(value) if timezone.is_aware(value) else value


def seconds(value: datetime | None) -> str:
    """``2026-12-01 13:04:05`` in the current time zone (received and finished differ)."""
    if value is None:
        return EMPTY
    return date_format(local(value), TIME_FORMAT)


#: Another name for :func:`seconds`: a time as the console shows it.
timestamp = seconds


def from_epoch(value: object) -> datetime | None:
    """An aware datetime from what a header carries as a time: Unix seconds (an int, as
    ``x-messaging-death`` writes it) or a datetime (pika decodes ``x-death``'s AMQP
    timestamps as one); None for anything else."""
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def age(value: datetime, now: datetime | None = None) -> str:
    """How long ago ``value`` was, short: ``12 s``, ``4 min``, ``3 h``, ``2 d``
    (whole units, rounded down)."""
    delta = ((now or timezone.now()) - value).total_seconds()
    amount = abs(int(delta))
    if amount < 120:
        return _("%(n)d s") % {"n": amount}
    if amount < 120 * 60:
        return _("%(n)d min") % {"n": amount // 60}
    if amount < 48 * 3600:
        return _("%(n)d h") % {"n": amount // 3600}
    return _("%(n)d d") % {"n": amount // 86400}


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``12 s ago``, ``4 min ago``, ``3 h ago``, ``2 d ago`` (``in 5 s`` for a time
    ahead); :data:`EMPTY` for none."""
    if value is None:
        return EMPTY
    now = now or timezone.now()
    if value > now and (value - now).total_seconds() >= 1:
        return _("in %(age)s") % {"age": age(value, now)}
    return _("%(age)s ago") % {"age": age(value, now)}


def seconds_ago(value: datetime | None, now: datetime | None = None) -> str:
    """``2026-12-07 18:02:11 (12 s ago)``: where freshness matters (heartbeats, last
    seen, oldest pending)."""
    if value is None:
        return EMPTY
    return f"{seconds(value)} ({ago(value, now)})"


def yes_no(value: bool | None) -> SafeString | str:
    """``yes`` / ``no`` as neutral text (Django's boolean icons make "no" a red ✖)."""
    if value is None:
        return EMPTY
    return format_html(
        '<span class="messaging-yes-no" style="color:{}">{}</span>',
        NEUTRAL,
        _("yes") if value else _("no"),
    )


def badge(value: str, label: str, title: str = "") -> SafeString:
    """``label`` on the colour of ``value``; the whole text (``title``, else ``label``)
    shows on hover, where a narrow column cuts the label."""
    colour = COLOURS.get(value, "#5f6b7a")
    return format_html(
        '<span class="messaging-badge messaging-badge-{}" title="{}" style="background:{};'
        'color:#fff;padding:1px 6px;border-radius:8px;white-space:nowrap">{}</span>',
        value,
        title or label,
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
