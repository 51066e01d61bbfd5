"""Validation of names the broker would otherwise refuse at run time."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_NAME_BYTES = 255  # AMQP 0-9-1 shortstr


def validate_queue_name(name: str) -> None:
    """Refuse what RabbitMQ would refuse: empty, over 255 bytes of UTF-8, ``amq.`` prefix."""
    if not name:
        raise ValidationError(_("A queue name cannot be empty."), code="empty")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ValidationError(
            _("Queue name is %(size)d bytes of UTF-8; AMQP allows at most 255.") % {"size": size},
            code="too_long",
        )
    if name.startswith("amq."):
        raise ValidationError(
            _("Queue names starting with 'amq.' are reserved by the broker."), code="reserved"
        )


def validate_x_arguments(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("Arguments must be a JSON object."), code="invalid")
    for key in value:
        if not isinstance(key, str) or not key.startswith("x-"):
            raise ValidationError(
                _("Argument %(key)r is not an x- argument.") % {"key": key}, code="invalid"
            )
