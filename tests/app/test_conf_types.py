"""The settings accessor's types (``messaging.conf``): :class:`MessagingSettings`, the
overloads of :func:`conf.get` and :data:`DEFAULTS` name the same keys, each key's
overload returns its ``MessagingSettings`` type, and each default is of that type."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, get_args, get_origin, get_overloads, get_type_hints

import pytest

from messaging import conf

pytestmark = pytest.mark.unit


def overload_types() -> dict[str, Any]:
    """Key → return type, from each overload of ``conf.get``."""
    found: dict[str, Any] = {}
    for function in get_overloads(conf.get):
        hints = get_type_hints(function, vars(conf))
        for key in get_args(hints["key"]):
            assert key not in found, f"{key} in two overloads of conf.get"
            found[key] = hints["return"]
    return found


def is_of(value: Any, annotation: Any) -> bool:
    origin = get_origin(annotation)
    if annotation is type(None):
        return value is None
    if origin is Literal:
        return value in get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(is_of(value, arm) for arm in get_args(annotation))
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        key_type, value_type = get_args(annotation)
        return isinstance(value, dict) and all(
            is_of(k, key_type) and is_of(v, value_type) for k, v in value.items()
        )
    if origin in (list, tuple):
        return isinstance(value, origin) and all(is_of(v, get_args(annotation)[0]) for v in value)
    return isinstance(value, annotation)


def test_the_typed_dict_names_every_setting():
    assert set(get_type_hints(conf.MessagingSettings)) == set(conf.DEFAULTS)


def test_get_has_one_overload_per_setting_with_the_typed_dicts_type():
    hints = get_type_hints(conf.MessagingSettings)
    returns = overload_types()
    assert set(returns) == set(conf.DEFAULTS)
    for key, returned in returns.items():
        assert returned == hints[key], key


def test_every_default_is_of_its_declared_type():
    hints = get_type_hints(conf.MessagingSettings)
    wrong = {k: v for k, v in conf.DEFAULTS.items() if not is_of(v, hints[k])}
    assert wrong == {}


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (True, int, False),
        (1, float, True),
        ("quorum", Literal["classic", "quorum"], True),
        ("stream", Literal["classic", "quorum"], False),
        (None, float | None, True),
        ({"q": 1}, dict[str, str], False),
        (["amqp://x"], str | list[str], True),
    ],
)
def test_the_type_test_itself(value, annotation, expected):
    assert is_of(value, annotation) is expected
