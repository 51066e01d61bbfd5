"""Fault-injection points: named moments in the consumer where a test may make it fail.

The consumer calls :func:`reach` at each point below. Nothing happens there unless a hook
is installed for that point with :func:`install` (or :func:`installed`), which only test
code does: the fault-injection suite, for instance, installs a hook that SIGKILLs its
``runconsumer`` subprocess at a point, to prove that a crash just there loses nothing.
With no hook, reaching a point costs one dictionary lookup.

A hook is called with keyword arguments only (those listed for its point), on the thread
that reaches the point; whatever it raises propagates from there.

Points:

:data:`AFTER_DELAY_CONFIRMED`
    A failed delivery's copy is in its delay queue (``<queue>.delay.<ms>``, confirmed by
    the broker) and the original is not acked yet. Keyword: ``delivery``. Reached on the
    thread that holds the connection (see :mod:`messaging.consumer.io`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: After the delayed copy of a failed delivery is confirmed, before the original's ack.
AFTER_DELAY_CONFIRMED = "after_delay_confirmed"

#: Every point the consumer reaches.
POINTS = frozenset({AFTER_DELAY_CONFIRMED})

Hook = Callable[..., Any]

_hooks: dict[str, Hook] = {}


def install(point: str, hook: Hook | None) -> Hook | None:
    """Call ``hook(**context)`` whenever the consumer reaches ``point`` in this process
    (``None``: nothing any more). Returns the hook installed before."""
    if point not in POINTS:
        known = ", ".join(sorted(POINTS))
        raise ValueError(f"unknown fault point {point!r} (known: {known})")
    previous = _hooks.pop(point, None)
    if hook is not None:
        _hooks[point] = hook
    return previous


@contextmanager
def installed(point: str, hook: Hook) -> Iterator[None]:
    """:func:`install` ``hook`` for the body of the block, then put back what was there."""
    previous = install(point, hook)
    try:
        yield
    finally:
        install(point, previous)


def reach(point: str, **context: Any) -> None:
    """The consumer is at ``point``: run its hook, if one is installed."""
    hook = _hooks.get(point)
    if hook is not None:
        hook(**context)
