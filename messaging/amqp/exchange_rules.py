"""Validation of exchanges and bindings (the rules of the ``Exchange`` and ``Binding``
models, the admin forms and ``declarequeues``): pure code, one line per refusal.

- An exchange the app declares has a name (the default exchange ``""`` is used, never
  declared), and not one of the broker's reserved ``amq.*`` names.
- A binding's routing key suits its source's type: no ``*``/``#`` on a ``direct``
  exchange (they would match only themselves); on a ``topic`` exchange a wildcard is a
  whole dot-separated word; ``headers`` bindings carry an ``x-match`` of ``all``/``any``
  (or the ``-with-x`` variants) in their arguments.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .short_strings import check_short_string

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
X_MATCH_VALUES = ("all", "any", "all-with-x", "any-with-x")


def validate_declared_exchange_name(name: str) -> None:
    """An exchange the app declares: not empty (the default exchange), not ``amq.*``."""
    if not name:
        raise ValidationError(
            _("The default exchange (empty name) is built in: it is used, never declared."),
            code="default_exchange",
        )
    check_short_string(name, _("Exchange name"), names=True)
    if name.startswith("amq."):
        raise ValidationError(
            _(
                "Exchange names starting with 'amq.' are reserved by the broker: its built-in "
                "exchanges are used, never declared."
            ),
            code="reserved",
        )


def validate_exchange_type(value: str) -> None:
    if value not in EXCHANGE_TYPES:
        raise ValidationError(
            _("Unknown exchange type %(type)r: use one of %(types)s.")
            % {"type": value, "types": ", ".join(EXCHANGE_TYPES)},
            code="exchange_type",
        )


def validate_binding_key(exchange_type: str, routing_key: str) -> None:
    """Refuse a routing key that cannot mean what it says on an exchange of that type."""
    if routing_key:
        check_short_string(routing_key, _("Routing key"), names=False)
    if exchange_type == "direct" and ("#" in routing_key or "*" in routing_key):
        raise ValidationError(
            _(
                "Routing key %(key)r has a wildcard (* or #), but a direct exchange matches "
                "keys literally: use a topic exchange for patterns."
            )
            % {"key": routing_key},
            code="wildcard_on_direct",
        )
    if exchange_type == "topic":
        for word in routing_key.split("."):
            if word not in ("*", "#") and ("*" in word or "#" in word):
                raise ValidationError(
                    _(
                        "Routing key %(key)r: the word %(word)r mixes a wildcard with other "
                        "characters; * and # match only as whole dot-separated words."
                    )
                    % {"key": routing_key, "word": word},
                    code="partial_wildcard",
                )


def validate_arguments_object(arguments: Any) -> None:
    """Declaration arguments: a JSON object with non-empty string keys."""
    if not isinstance(arguments, dict):
        raise ValidationError(_("Arguments must be a JSON object."), code="not_an_object")
    for key in arguments:
        if not isinstance(key, str) or not key:
            raise ValidationError(_("Argument names must be non-empty strings."), code="key")


def validate_binding_arguments(exchange_type: str, arguments: Any) -> None:
    """Arguments are a JSON object; on a headers exchange ``x-match`` is all/any."""
    validate_arguments_object(arguments)
    x_match = arguments.get("x-match")
    if x_match is not None and (exchange_type != "headers" or x_match not in X_MATCH_VALUES):
        if exchange_type != "headers":
            text = _("x-match is for headers exchanges only.")
        else:
            text = _("x-match must be one of %(values)s, not %(value)r.") % {
                "values": ", ".join(X_MATCH_VALUES),
                "value": x_match,
            }
        raise ValidationError(text, code="x_match")
