"""messaging: RabbitMQ for Django teams.

Public API::

    from messaging import publish, Delivery, Reject

    publish("q1", b"Hello World!")          # recorded, persistent, confirmed
    await apublish("q1", b"Hello World!")   # the same from async code

The models (``Queue``, ``Message``, ``Receipt``) live in ``messaging.models``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import moved
from .exceptions import (
    AccessRefused,
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ExchangeMismatch,
    MessagingError,
    QueueMismatch,
    Reject,
    RequestTimeout,
    Unroutable,
)

if TYPE_CHECKING:
    from .consumer.handlers import Delivery
    from .publishing import apublish, publish
    from .rpc.client import call

__all__ = [
    "AccessRefused",
    "AuthenticationFailed",
    "BrokerError",
    "BrokerUnavailable",
    "Delivery",
    "MessagingError",
    "ExchangeMismatch",
    "QueueMismatch",
    "Reject",
    "RequestTimeout",
    "Unroutable",
    "apublish",
    "call",
    "publish",
]

#: The one source of the version (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0.dev0"

moved.install()  # old module paths (messaging.validators, ...) still import


def __getattr__(name: str) -> Any:
    # Lazy: importing the package must not import models before apps are ready.
    if name in ("publish", "apublish"):
        from . import publishing

        return getattr(publishing, name)
    if name == "call":
        from .rpc.client import call

        return call
    if name == "Delivery":
        from .consumer.handlers import Delivery

        return Delivery
    raise AttributeError(f"module 'messaging' has no attribute {name!r}")
