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

Exported here:

* :func:`capture` — the context manager above;
* :class:`CapturedMessages` — what it yields: the messages, ``filter()``, the
  ``assert_*`` helpers, ``deliver()``;
* :class:`CapturedMessage` — one of them (destination, body, headers, properties);
* :class:`DeliveryResult` — what one ``deliver()`` did (receipts, acked, dead letters),
  and :class:`DeadLetter`, one message it dead-lettered;
* :class:`CapturingPublisher` — the stand-in publisher ``capture()`` installs.

Its modules, each importing only those after it: :mod:`.plugin` (the fixture),
:mod:`.capturing` (the publisher, ``capture()``), :mod:`.captured` (the store),
:mod:`.delivery` (running handlers through the consumer), :mod:`.captured_message`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .captured import CapturedMessages
    from .captured_message import CapturedMessage
    from .capturing import CapturingPublisher, capture
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
    "CapturedMessage": "captured_message",
    "CapturingPublisher": "capturing",
    "capture": "capturing",
    "CapturedMessages": "captured",
    "DeadLetter": "delivery",
    "DeliveryResult": "delivery",
}


def __getattr__(name: str) -> Any:
    # Lazy: the pytest plugin imports this package before Django is set up, and the
    # modules import models.
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
