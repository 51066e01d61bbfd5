"""AMQP 0-9-1 *short strings* — names, routing keys, content types, header keys and the
text properties travel as at most 255 bytes of UTF-8 — and the rule every validator of
this package shares for them, counted in bytes, not characters.

Also :func:`first_message`, the one line a refusal (a ``ValidationError``) is shown as.
The bottom of :mod:`messaging.amqp`: it imports nothing from the package.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_NAME_BYTES = 255  # AMQP 0-9-1 shortstr


def utf8_size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def control_character(value: str) -> str | None:
    """The first control (or otherwise invisible format) character in ``value``."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return char
    return None


def check_short_string(value: str, what: str, *, names: bool) -> None:
    """The rules of every short string: no control characters, at most 255 bytes of
    UTF-8; for ``names`` also no surrounding whitespace. ``what`` names the value in the
    refusal (``ValidationError``)."""
    char = control_character(value)
    if char is not None:
        raise ValidationError(
            _("%(what)s contains the control character %(char)s, which is not allowed.")
            % {"what": what, "char": f"U+{ord(char):04X}"},
            code="control_character",
        )
    if names and value != value.strip():
        raise ValidationError(
            _("%(what)s starts or ends with whitespace, which is not allowed.") % {"what": what},
            code="whitespace",
        )
    size = utf8_size(value)
    if size > MAX_NAME_BYTES:
        raise ValidationError(
            _("%(what)s is %(size)d bytes of UTF-8; AMQP allows at most 255.")
            % {"what": what, "size": size},
            code="too_long",
        )


def first_message(error: ValidationError) -> str:
    """The one line of a ValidationError."""
    return error.messages[0] if error.messages else str(error)
