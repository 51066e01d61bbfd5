"""The AMQP properties a producer sets on a message — content type, headers, delivery
mode, ``correlation_id``, ``reply_to``, ``priority``, ``expiration``, ``type``,
``app_id`` — as one checked value, :class:`Properties`, built once from the keyword
arguments of :func:`messaging.publish`, :func:`messaging.call`, ``send`` or the admin
form and carried to the broker (:func:`messaging.broker.pika_properties.basic_properties`
makes the pika object of it). Pure code: ``tests/amqp/test_properties_replies_offsets.py``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from ..exceptions import InvalidMessage
from .headers import validate_headers
from .short_strings import check_short_string, first_message

#: The properties :func:`messaging.publish` takes as keyword arguments besides the
#: content type, headers and persistence (``Message`` stores them in fields of the same
#: names).
NAMES = ("correlation_id", "reply_to", "priority", "expiration", "type", "app_id")
#: The text properties among them (AMQP short strings).
TEXT_NAMES = ("correlation_id", "reply_to", "type", "app_id")
#: Every field of :class:`Properties`, named as ``Message`` stores them.
FIELDS = ("content_type", "headers", "persistent", *NAMES)
#: AMQP's priority is an octet; RabbitMQ orders by it only on a queue declared with
#: ``x-max-priority`` (at most 255, the broker advises at most 10).
MAX_PRIORITY = 255
#: RabbitMQ refuses a per-message TTL above 2**32 - 1 ms (about 49 days).
MAX_EXPIRATION_MS = 2**32 - 1
#: AMQP ``delivery_mode``: written to disk (survives a broker restart), or not.
PERSISTENT = 2
TRANSIENT = 1


# --------------------------------------------------------------------------- one property


def validate_content_type(value: str) -> None:
    if value:
        check_short_string(value, _("Content type"), names=False)


def validate_priority(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            _("priority must be a whole number from 0 to 255, got %(value)r") % {"value": value},
            code="priority",
        )
    if not 0 <= value <= MAX_PRIORITY:
        raise ValidationError(
            _("priority must be between 0 and 255, got %(value)d") % {"value": value},
            code="priority",
        )


def validate_expiration(value: Any) -> None:
    """Milliseconds as a whole number, 0 to 2**32 - 1 (the broker's limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            _("expiration must be whole milliseconds, got %(value)r") % {"value": value},
            code="expiration",
        )
    if value < 0:
        raise ValidationError(
            _("expiration must not be negative, got %(value)d ms") % {"value": value},
            code="expiration",
        )
    if value > MAX_EXPIRATION_MS:
        raise ValidationError(
            _("expiration must be at most %(most)d ms (about 49 days), got %(value)d")
            % {"most": MAX_EXPIRATION_MS, "value": value},
            code="expiration",
        )


def validate_property_text(value: Any) -> None:
    if value:
        if not isinstance(value, str):
            raise ValidationError(_("must be a string"), code="not_a_string")
        check_short_string(value, _("Property"), names=False)


def expiration_ms(value: int | timedelta | str | None) -> int | None:
    """``expiration`` as whole milliseconds: an ``int`` (or digit string) is taken as
    milliseconds, a :class:`~datetime.timedelta` is converted (rounded down); other
    strings raise :class:`~messaging.exceptions.InvalidMessage` (a ``ValueError``)."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value // timedelta(milliseconds=1)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidMessage(f"expiration must be whole milliseconds, got {value!r}") from None
    return value


# --------------------------------------------------------------------------- all of them


@dataclass(frozen=True)
class Properties:
    """The properties of one message, checked when built: a bad value raises
    :class:`~messaging.exceptions.InvalidMessage` (a ``ValueError``) with one line.

    Text left unset is ``""``, numbers ``None``. ``expiration`` is whole milliseconds (a
    :class:`~datetime.timedelta` or a digit string given is converted). ``message_id``
    and ``timestamp`` are not here: the sender sets them on each message it sends."""

    content_type: str = ""
    headers: Mapping[str, Any] | None = None
    persistent: bool = True
    correlation_id: str = ""
    reply_to: str = ""
    priority: int | None = None
    expiration: int | None = None
    type: str = ""
    app_id: str = ""

    def __post_init__(self) -> None:
        for name in ("content_type", *TEXT_NAMES):
            object.__setattr__(self, name, getattr(self, name) or "")
        object.__setattr__(self, "expiration", expiration_ms(self.expiration))
        problem = _problem(self)
        if problem is not None:
            raise InvalidMessage(problem)
        object.__setattr__(self, "headers", dict(self.headers) if self.headers else None)

    @classmethod
    def of(cls, message: Any) -> Properties:
        """The properties stored on a ``Message`` row (or any object with attributes of
        the names in :data:`FIELDS`)."""
        return cls(**{name: getattr(message, name) for name in FIELDS})

    @property
    def delivery_mode(self) -> int:
        return PERSISTENT if self.persistent else TRANSIENT

    def fields(self) -> dict[str, Any]:
        """The ``Message`` fields these properties are stored in (``headers`` a dict)."""
        values = {name: getattr(self, name) for name in FIELDS}
        values["headers"] = dict(self.headers or {})
        return values


def _problem(props: Properties) -> str | None:
    """The first property of ``props`` the broker would refuse, in one line."""
    checks = [(validate_content_type, "content_type"), (validate_headers, "headers")]
    checks += [(validate_priority, "priority"), (validate_expiration, "expiration")]
    checks += [(validate_property_text, name) for name in TEXT_NAMES]
    for check, name in checks:
        try:
            check(getattr(props, name))
        except ValidationError as exc:
            text = first_message(exc)
            if name in TEXT_NAMES:
                text = f"{name}: {text}".replace("Property ", "")
            return text
    return None


def clean_properties(values: Mapping[str, Any]) -> dict[str, Any]:
    """The properties in ``values`` (keys from :data:`NAMES`) checked and normalised
    (expiration in ms, text ``""`` for unset); ``ValueError`` with one line for the first
    bad one. Unset numbers stay ``None``."""
    unknown = set(values) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown message properties: {', '.join(sorted(unknown))}")
    props = Properties(**values)
    return {name: getattr(props, name) for name in NAMES}


def properties_problem(message: Any) -> str | None:
    """Why the stored properties of a ``Message`` row cannot be sent, or ``None``."""
    try:
        Properties.of(message)
    except ValueError as exc:
        return str(exc)
    return None


def pika_kwargs(message: Any) -> dict[str, Any]:
    """The ``pika.BasicProperties`` keyword arguments for the :data:`NAMES` properties of
    a :class:`Properties`, a row or any object with those attributes; unset ones are left
    out, ``expiration`` is a string of milliseconds (AMQP sends it as text)."""
    kwargs: dict[str, Any] = {}
    for name in TEXT_NAMES:
        value = getattr(message, name, "")
        if value:
            kwargs[name] = value
    priority = getattr(message, "priority", None)
    if priority is not None:
        kwargs["priority"] = priority
    expiration = getattr(message, "expiration", None)
    if expiration is not None:
        kwargs["expiration"] = str(expiration)
    return kwargs
