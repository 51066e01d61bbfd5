"""The ``Queue`` rows ``publish()`` names, cached per process so that a call for a queue
already seen runs no SELECT.

A row is remembered only once it is committed (a row read or created inside a
transaction is remembered when a message naming it is sent after the commit, see
:mod:`.commit`, so a rollback leaves nothing behind),
for ``QUEUE_CACHE_SECONDS`` at most (other processes may change it), and the whole cache
is dropped whenever this process saves or deletes a ``Queue`` (``post_save``,
``post_delete``) or flushes the database (``post_migrate``). Each call gets its own copy
of the row. A name reaches the cache only through
:func:`~messaging.publishing.get_queue`, which checks it first: a name found here is
not checked again.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from django.db import connections, router
from django.db.models.signals import post_delete, post_migrate, post_save

from .. import conf
from ..amqp.queue_types import default_queue_type
from ..models import Queue

_lock = threading.Lock()
#: (database alias, name) -> (monotonic expiry, field values of the row)
_rows: dict[tuple[str, str], tuple[float, list[Any]]] = {}
_FIELDS = [f.attname for f in Queue._meta.concrete_fields]
#: Bumped by every clear: a row read before it is not remembered after it.
_generation = 0


def _copied(values: list[Any]) -> list[Any]:
    return [copy.deepcopy(v) if isinstance(v, dict | list) else v for v in values]


def remembered(name: str) -> Queue | None:
    """A copy of the cached ``Queue`` row named ``name``, or None (not cached, expired)."""
    alias = router.db_for_write(Queue)
    hit = _rows.get((alias, name))
    if hit is not None and hit[0] > time.monotonic():
        return Queue.from_db(alias, _FIELDS, _copied(hit[1]))
    return None


def cached_queue(name: str) -> Queue:
    """The ``Queue`` row named ``name`` (created durable, of ``DEFAULT_QUEUE_TYPE``, when
    missing)."""
    row = remembered(name)
    if row is not None:
        return row
    alias = router.db_for_write(Queue)
    key = (alias, name)
    now = time.monotonic()
    defaults = {"queue_type": default_queue_type()}
    row = Queue.objects.using(alias).get_or_create(name=name, defaults=defaults)[0]
    seconds = conf.get("QUEUE_CACHE_SECONDS")
    if seconds:
        values = _copied([getattr(row, field) for field in _FIELDS])
        remember = _Remember(key, now + seconds, values)
        if connections[alias].in_atomic_block:
            row._messaging_remember = remember  # type: ignore[attr-defined]
        else:
            remember()
    return row


def remember_committed(queue: Queue | None) -> None:
    """``queue`` (read inside a transaction) is committed: a message that names it was
    committed with it. Called by the transaction's flush."""
    remember = getattr(queue, "_messaging_remember", None)
    if remember is not None:
        del queue._messaging_remember  # type: ignore[union-attr]
        remember()


class _Remember:
    """Put a row in the cache, unless still inside a transaction (a test running the
    on_commit hooks of a transaction it will roll back)."""

    def __init__(self, key: tuple[str, str], expires: float, values: list[Any]) -> None:
        self.key, self.expires, self.values = key, expires, values
        self.generation = _generation

    def __call__(self) -> None:
        if not connections[self.key[0]].in_atomic_block:
            with _lock:
                if self.generation == _generation:
                    _rows[self.key] = (self.expires, self.values)


def clear_queue_cache(**_kwargs: Any) -> None:
    """Forget every cached row (a Queue was saved or deleted, the database flushed)."""
    global _generation
    with _lock:
        _generation += 1
        _rows.clear()


post_save.connect(clear_queue_cache, sender=Queue, dispatch_uid="messaging-queue-cache-save")
post_delete.connect(clear_queue_cache, sender=Queue, dispatch_uid="messaging-queue-cache-del")
post_migrate.connect(clear_queue_cache, dispatch_uid="messaging-queue-cache-migrate")
