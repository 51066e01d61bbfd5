"""Writes a handler leaves for the end of its transaction: run after every handler of
the batch (or of the one delivery) has returned and before their receipts are
inserted, in the same transaction — so they commit with the handlers' work and the
receipts, or not at all.

A handler that writes one row of the same kind per delivery can gather those writes
and send them as one statement per batch: :func:`pending` gives it the object kept
under a key for the transaction being run on this thread (made by ``make()`` the first
time), whose ``flush()`` the dispatcher calls; ``None`` outside a dispatcher's
transaction (the handler then writes at once). A transaction that fails (a handler
raised, the database failed) drops what was gathered with it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar


class Flushable(Protocol):
    def flush(self) -> None: ...


F = TypeVar("F", bound=Flushable)

_local = threading.local()


class Deferred:
    """The gathered writes of one transaction, flushed in the order first asked for."""

    def __init__(self) -> None:
        self.items: dict[Hashable, Any] = {}

    def flush(self) -> None:
        while self.items:
            key = next(iter(self.items))
            self.items.pop(key).flush()


@contextmanager
def deferring() -> Iterator[Deferred]:
    """The dispatcher's side: handlers running on this thread meanwhile may defer
    writes into the yielded :class:`Deferred` (its caller flushes it)."""
    previous = getattr(_local, "deferred", None)
    deferred = _local.deferred = Deferred()
    try:
        yield deferred
    finally:
        _local.deferred = previous


def pending(key: Hashable, make: Callable[[], F]) -> F | None:
    """The object under ``key`` in the current transaction's deferred writes (made by
    ``make()`` on first ask), or ``None`` when no dispatcher is running one here."""
    deferred: Deferred | None = getattr(_local, "deferred", None)
    if deferred is None:
        return None
    found = deferred.items.get(key)
    if found is None:
        found = deferred.items[key] = make()
    return found
