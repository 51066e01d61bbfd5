"""Old module paths that still import, with a ``DeprecationWarning``.

The 0.2 layout put modules into packages by job (see docs/internals/architecture.md). Code that
imported a module by its old path — ``messaging.validators``, ``messaging.handlers``,
``messaging.relay``, … — or named a function by it in a setting (a handler path such as
``messaging.handlers.print_delivery``) keeps working: the old name is an alias of the new
module (the same module object), installed by :func:`install` when ``messaging`` is
imported. Each old path warns once, naming the new one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

#: Old module path → new module path.
MOVED: dict[str, str] = {
    "messaging.amqp_properties": "messaging.amqp.properties",
    "messaging.validators": "messaging.amqp.validators",
    "messaging.routing": "messaging.amqp.routing",
    "messaging.topology_rules": "messaging.amqp.exchange_rules",
    "messaging.queue_types": "messaging.amqp.queue_types",
    "messaging.streams": "messaging.amqp.stream_offsets",
    "messaging.backoff": "messaging.amqp.backoff",
    "messaging.schemas": "messaging.amqp.schemas",
    "messaging.consumer.delays": "messaging.amqp.retry_delays",
    "messaging.calls": "messaging.rpc.client",
    "messaging.replies": "messaging.rpc.replies",
    "messaging.relay": "messaging.publishing.relay",
    "messaging.retention": "messaging.publishing.retention",
    "messaging.handlers": "messaging.consumer.handlers",
    "messaging.receipts": "messaging.consumer.receipts",
    "messaging.deadletters": "messaging.consumer.replay",
    "messaging.overview": "messaging.admin.overview",
    "messaging.charts": "messaging.admin.charts",
    "messaging.triage": "messaging.admin.failure_groups",
    "messaging.topology_chart": "messaging.admin.topology_drawing",
    "messaging.broker.topology": "messaging.broker.queues",
    "messaging.broker.rpc": "messaging.broker.reply_to",
    "messaging.broker.management": "messaging.broker.management_api",
    "messaging.broker.message_properties": "messaging.broker.pika_properties",
    "messaging.broker.deadletter": "messaging.broker.dead_letters",
    "messaging.broker.delay": "messaging.broker.delay_publisher",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path in :data:`MOVED` and hands out the new module under it."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path will be removed in a later release",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The new module ran when it was imported: nothing more to do."""


def install() -> None:
    """Put the finder on ``sys.meta_path`` once per process."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())


def moved_names(
    package: str,
    homes: Mapping[str, str],
    *,
    modules: Mapping[str, str] | None = None,
    warn: bool = True,
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names ``package`` exported before the 0.2 layout:
    each of ``homes`` (name → the module, relative to ``package``, it lives in) is
    imported from its module on first use, ``modules`` (old name → module) are modules;
    with ``warn``, a ``DeprecationWarning`` names the new place. Nothing is imported
    before a name is asked for, so the package's own imports stay one-way."""
    namespace = sys.modules[package].__dict__
    aliases = dict(modules or {})

    def __getattr__(name: str) -> Any:
        if name in aliases:
            value: Any = importlib.import_module(aliases[name], package)
        elif name in homes:
            module = importlib.import_module(homes[name], package)
            value = getattr(module, name)
            if warn:
                warnings.warn(
                    f"{package}.{name} moved to {module.__name__}.{name}; the old name "
                    "will be removed in a later release",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return value
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # looked up once
        return value

    return __getattr__
