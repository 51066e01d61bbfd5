"""JSON payloads and per-queue JSON Schemas (pure logic, no broker, no queries).

``publish(queue, json=obj)`` encodes with Django's JSON encoder (:func:`encode_json`); a
``Queue`` row may carry a JSON Schema in ``Queue.schema``, checked with the ``jsonschema``
library when the row is saved (:func:`check_schema`), by ``publish()`` before a message
is saved, and by the consumer before its handler runs (:func:`body_problem`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder

JSON_CONTENT_TYPE = "application/json"


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (dates, decimals, UUIDs… as Django encodes them)."""
    try:
        text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"json: cannot encode the value: {exc}") from None
    except RecursionError:
        raise ValueError("json: the value is nested too deeply to encode") from None
    return text.encode("utf-8")


def decode_json(body: bytes) -> Any:
    """Parse a JSON body; ``ValueError`` with one line when it is not JSON."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray | memoryview) else body
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8 text, so not JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"the body is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ValueError("the body is JSON nested too deeply to parse") from None


def _validator_class(schema: Any) -> Any:
    from jsonschema.validators import validator_for

    return validator_for(schema)


def check_schema(schema: Any) -> None:
    """Raise a one-line ``ValidationError`` unless ``schema`` is a valid JSON Schema
    (``None`` means no schema)."""
    if schema is None:
        return
    if not isinstance(schema, dict | bool):
        raise ValidationError(
            "A JSON Schema is a JSON object (or true/false).", code="not_a_schema"
        )
    from jsonschema.exceptions import SchemaError

    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        where = _path(exc.absolute_path)
        raise ValidationError(
            f"Not a valid JSON Schema: {exc.message} (at {where})", code="not_a_schema"
        ) from None


@lru_cache(maxsize=256)
def _compiled(text: str) -> Any:
    schema = json.loads(text)
    return _validator_class(schema)(schema)


def validator(schema: Any) -> Any:
    """A ready ``jsonschema`` validator for ``schema`` (cached by its JSON text)."""
    return _compiled(json.dumps(schema, sort_keys=True))


def _path(parts: Any) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def data_problem(schema: Any, data: Any) -> str | None:
    """Why ``data`` does not match ``schema`` (one line naming the failing path), or None."""
    from jsonschema.exceptions import best_match

    error = best_match(validator(schema).iter_errors(data))
    if error is None:
        return None
    message = error.message if len(error.message) <= 300 else error.message[:297] + "…"
    return f"{_path(error.absolute_path)}: {message}"


def body_problem(schema: Any, body: bytes) -> str | None:
    """Why a message body does not match ``schema`` (not JSON, or invalid), or None."""
    if schema is None:
        return None
    try:
        data = decode_json(body)
    except ValueError as exc:
        return str(exc)
    return data_problem(schema, data)
