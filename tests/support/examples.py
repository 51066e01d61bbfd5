"""Example data several test modules share."""

from __future__ import annotations

#: A JSON schema for an order: an integer ``id`` and ``items`` with numeric prices.
ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "integer"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"price": {"type": "number"}}},
        },
    },
}


#: Queue names the validators refuse, each with what its error message says.
BAD_QUEUE_NAMES = [
    ("bad\nname", "control character U+000A"),
    ("tab\tname", "control character U+0009"),
    (" lead", "whitespace"),
    ("trail ", "whitespace"),
    ("a" * 252, "<name>.dlq would pass AMQP's 255 bytes"),
    ("é" * 126, "<name>.dlq would pass AMQP's 255 bytes"),
    ("a" * 256, "256 bytes of UTF-8; AMQP allows at most 255"),
    ("amq.mine", "reserved"),
]
