"""From a task's module path to the ``Task`` — and nothing else.

A message names an import path; only a task of a ``RabbitMQBackend`` may run. The
module is looked up in ``sys.modules`` and imported only when it belongs to an
installed app or to the backend's ``TASK_MODULES``; the attribute is read from the
module's namespace (no module ``__getattr__``, nothing called) and must be a ``Task``
whose backend alias is a ``RabbitMQBackend``. Anything else raises :class:`NotATask`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from django.apps import apps

from .compat import Task, task_backends


class NotATask(Exception):  # noqa: N818 - says what the path is not
    """The path names no task of a RabbitMQBackend (one line: why)."""


def resolve_task(path: str, backend_class: type, task_modules: Iterable[str] = ()) -> Any:
    """The ``Task`` at ``path`` (``module.function``) whose backend is a
    ``backend_class``, checked as the module says."""
    module_name, _dot, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise NotATask(f"{path!r} is not a module path")
    found = vars(_module(module_name, tuple(task_modules))).get(attribute)
    if not isinstance(found, Task):
        shown = "nothing" if found is None else f"a {type(found).__name__}"
        raise NotATask(f"{path!r} is not a task ({shown})")
    if not _is_backend(found.backend, backend_class):
        raise NotATask(f"task {path!r} belongs to backend {found.backend!r}, not a RabbitMQBackend")
    return found


def _module(name: str, task_modules: tuple[str, ...]) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    if not _importable(name, task_modules):
        raise NotATask(
            f"module {name!r} is not loaded and is neither in an installed app nor in "
            "the backend's TASK_MODULES"
        )
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NotATask(f"module {name!r} does not import: {exc}") from None


def _importable(name: str, task_modules: tuple[str, ...]) -> bool:
    roots = [config.name for config in apps.get_app_configs()] + list(task_modules)
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def _is_backend(alias: str, backend_class: type) -> bool:
    try:
        return isinstance(task_backends[alias], backend_class)
    except Exception:  # noqa: BLE001 - an unknown or broken alias is not ours
        return False
