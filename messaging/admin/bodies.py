"""Showing message bodies: as text when they are text, as a safe ``bytes`` preview when not."""

from __future__ import annotations

from django.utils.text import Truncator

PREVIEW_CHARS = 60


def body_as_text(body: bytes) -> str | None:
    """The body as text when a text field can round-trip it, else ``None``.

    UTF-8 without NUL characters (form fields refuse NUL) qualifies; anything else is
    binary and is only ever shown as a ``bytes`` literal.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def body_preview(body: bytes, limit: int = PREVIEW_CHARS) -> str:
    """A short plain-text preview: the text, or ``repr`` of the first bytes if binary."""
    text = body_as_text(body)
    if text is None:
        return repr(body[:limit]) + ("…" if len(body) > limit else "")
    return Truncator(text).chars(limit)


def same_text(a: str, b: str) -> bool:
    """Equal up to line endings (browsers submit every textarea line break as CRLF)."""

    def lf(value: str) -> str:
        return value.replace("\r\n", "\n").replace("\r", "\n")

    return lf(a) == lf(b)
