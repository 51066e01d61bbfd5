"""Testing code that publishes and consumes, without a broker.

::

    from messaging.testing import capture

    with capture() as captured:
        place_order()                      # calls messaging.publish("orders", ...)
    captured.assert_published(queue="orders", body=b"order 42")
    captured.deliver()                     # runs MESSAGING["CONSUMERS"]["orders"]

Messages are captured only once their transaction commits, exactly when they would
have been published. With pytest, the ``captured_messages`` fixture (this package's
pytest plugin, :mod:`messaging.testing.plugin`) gives the same object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .captured import CapturedMessages
    from .capturing import CapturedMessage, CapturingPublisher, capture
    from .delivery import DeadLetter, DeliveryResult

__all__ = [
    "CapturedMessage",
    "CapturedMessages",
    "CapturingPublisher",
    "DeadLetter",
    "DeliveryResult",
    "capture",
]

_WHERE = {
    "CapturedMessage": "capturing",
    "CapturingPublisher": "capturing",
    "capture": "capturing",
    "CapturedMessages": "captured",
    "DeadLetter": "delivery",
    "DeliveryResult": "delivery",
}


def __getattr__(name: str) -> Any:
    # Lazy, so the pytest plugin can import this package before Django is set up.
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
