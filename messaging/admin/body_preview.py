"""Showing message bodies: as text when they are text, as a safe ``bytes`` preview when not,
and never more than a bounded prefix of a big body."""

from __future__ import annotations

from django.utils.text import Truncator

PREVIEW_CHARS = 60

#: Bodies over this many bytes are not edited in a textarea: the change page shows the
#: first :data:`BIG_BODY_PREVIEW` bytes and offers the whole body as a download.
BIG_BODY = 64 * 1024

#: Bytes of a big body shown on its change page.
BIG_BODY_PREVIEW = 4 * 1024

#: Most bytes a UTF-8 character takes: a prefix of ``n`` characters fits in ``4 * n``.
_UTF8_MAX = 4


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


def prefix_as_text(prefix: bytes, truncated: bool) -> str | None:
    """:func:`body_as_text` for the first bytes of a body: when ``truncated``, a UTF-8
    character cut at the end of ``prefix`` is dropped instead of making it binary."""
    if not truncated:
        return body_as_text(prefix)
    for cut in range(_UTF8_MAX):
        text = body_as_text(prefix[: len(prefix) - cut])
        if text is not None:
            return text
    return None


def preview_prefix_size(limit: int = PREVIEW_CHARS) -> int:
    """Bytes of a body that :func:`body_preview` needs to show ``limit`` characters
    (and to know there are more)."""
    return _UTF8_MAX * (limit + 1)


def body_preview(body: bytes, limit: int = PREVIEW_CHARS, size: int | None = None) -> str:
    """A short plain-text preview: the text, or ``repr`` of the first bytes if binary.

    Only the first :func:`preview_prefix_size` bytes are decoded, so ``body`` may be a
    20 MB body or just its first bytes; ``size`` is the whole body's length when
    ``body`` is a prefix."""
    size = len(body) if size is None else size
    head = body[: preview_prefix_size(limit)]
    text = prefix_as_text(head, truncated=size > len(head))
    if text is None:
        return repr(head[:limit]) + ("…" if size > limit else "")
    preview = Truncator(text).chars(limit)
    if size > len(head) and preview == text:
        preview += "…"
    return preview


def bounded_preview(head: bytes, size: int) -> str:
    """The first bytes of a big body (``head``, of a ``size``-byte body) as text, or as a
    ``bytes`` literal when they are not text."""
    head = head[:BIG_BODY_PREVIEW]
    text = prefix_as_text(head, truncated=size > len(head))
    return repr(head) if text is None else text


def same_text(a: str, b: str) -> bool:
    """Equal up to line endings (browsers submit every textarea line break as CRLF)."""

    def lf(value: str) -> str:
        return value.replace("\r\n", "\n").replace("\r", "\n")

    return lf(a) == lf(b)
