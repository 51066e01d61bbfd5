"""Messages ``publish()`` records inside one transaction go out together after its commit,
in the order they were published: handed to the process's publisher thread
(:mod:`.handoff`), or, when not in the background, one pipelined flush on the committing
thread.

Each thread collects the rows of its current transaction in a :class:`CommitBatch`. The
batch registers one ``on_commit`` hook per savepoint nesting it saw (one for a flat
transaction): Django drops the hook of a savepoint that rolls back, and the first hook
that runs after the commit flushes the batch. Rows published at the nesting of that hook
(or an enclosing one) committed for sure; rows published inside other savepoints are
looked up (one SELECT), since their savepoint may have rolled back. A transaction that
rolls back runs no hook: nothing is sent, and the next transaction starts a new batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import connections, router
from django.utils import timezone

from ..models import Message
from . import handoff
from .outbox import claim_lease, lease_end, release_lease, user_id_of
from .queue_cache import remember_committed
from .sending import publish_rows

logger = logging.getLogger("messaging.publishing")

#: A row saved longer ago than this gets its creator's lease renewed before it is sent
#: (the relay may take a row whose lease ran out while its transaction was open).
RENEW_AFTER = timedelta(seconds=15)

_local = threading.local()


class CommitBatch:
    """The rows one thread published in one transaction of database ``alias``."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.entries: list[tuple[Message, Any, frozenset[str]]] = []
        self.hooks: dict[frozenset[str], Any] = {}
        self.hook_list: Any = None  # the connection's run_on_commit list when last seen
        self.closed = False

    def add(self, message: Message, user: Any) -> None:
        conn = connections[self.alias]
        sids = frozenset(conn.savepoint_ids)
        self.entries.append((message, user, sids))
        if sids not in self.hooks:
            hook = self.hooks[sids] = partial(self.flush, sids)
            conn.on_commit(hook, robust=True)
        self.hook_list = conn.run_on_commit

    def alive(self) -> bool:
        """Still the open transaction's batch (one of its hooks is registered)? Django
        makes a new hook list at every commit and rollback (of a savepoint too)."""
        if self.closed:
            return False
        hook_list = connections[self.alias].run_on_commit
        if hook_list is self.hook_list:
            return True
        ours = {id(hook) for hook in self.hooks.values()}
        return any(id(entry[1]) in ours for entry in hook_list)

    def flush(self, committed: frozenset[str]) -> None:
        """The first hook to run: publish every row that committed, in order."""
        if self.closed:
            return
        self.closed = True
        rows = self._committed(committed)
        for message, _ in rows:
            remember_committed(message.queue)
        if rows:
            _send_after_commit(self.alias, rows)

    def _committed(self, committed: frozenset[str]) -> list[tuple[Message, Any]]:
        unsure = [m.message_id for m, _, sids in self.entries if not sids <= committed]
        present: set[str] = set()
        if unsure:
            present = set(
                Message.objects.using(self.alias)
                .filter(message_id__in=unsure)
                .values_list("message_id", flat=True)
            )
        return [
            (m, user)
            for m, user, sids in self.entries
            if sids <= committed or m.message_id in present
        ]


def add_after_commit(message: Message, user: Any) -> None:
    """Publish ``message`` (saved in the open transaction) with the others of that
    transaction once it commits."""
    alias = router.db_for_write(Message)
    batches = getattr(_local, "batches", None)
    if batches is None:
        batches = _local.batches = {}
    batch = batches.get(alias)
    if batch is None or not batch.alive():
        batch = batches[alias] = CommitBatch(alias)
    batch.add(message, user)


def _send_after_commit(alias: str, entries: Sequence[tuple[Message, Any]]) -> None:
    """Renew the lease of rows saved long ago (skipping any the relay has tried since),
    then hand the rows to the publisher thread (or publish them here, in runs of one
    user, when not :func:`.handoff.in_background`); log what was not published."""
    committed = time.monotonic()
    now = timezone.now()
    rows = [message for message, _ in entries]
    if min(m.next_attempt_at or now for m in rows) - now < claim_lease() - RENEW_AFTER:
        kept = _renew(alias, rows, now)
        entries = [(m, user) for m, user in entries if m.message_id in kept]
    if handoff.in_background(alias):
        _hand_off(entries, committed)
        return
    start = 0
    while start < len(entries):
        user_id = user_id_of(entries[start][1])
        end = start
        while end < len(entries) and user_id_of(entries[end][1]) == user_id:
            end += 1
        run = [message for message, _ in entries[start:end]]
        handoff.log_failures(run, publish_rows(run, user=user_id))
        start = end


def _hand_off(entries: Sequence[tuple[Message, Any]], committed: float) -> None:
    """Queue the rows for the publisher thread; those beyond the backlog's bound are
    released to the relay at once (not after their lease)."""
    rows = [handoff.handed(m, user_id_of(user), committed) for m, user in entries]
    left = handoff.process_handoff().offer(rows)
    if left:
        release_lease([row.message.message_id for row in left], timezone.now())


def _renew(alias: str, rows: Sequence[Message], now: Any) -> set[str]:
    """Extend the creator's lease of ``rows``; the message_ids still the untouched
    pending rows they were (the others the relay has tried meanwhile: its outcome stands)."""
    lease = lease_end(now)
    ids = [m.message_id for m in rows]
    untouched = Message.objects.using(alias).filter(
        message_id__in=ids, status=Message.Status.PENDING, attempts=0
    )
    if untouched.update(next_attempt_at=lease) == len(ids):
        kept = set(ids)
    else:
        kept = set(
            Message.objects.using(alias)
            .filter(message_id__in=ids, status=Message.Status.PENDING, next_attempt_at=lease)
            .values_list("message_id", flat=True)
        )
    for message in rows:
        if message.message_id in kept:
            message.next_attempt_at = lease
    return kept
