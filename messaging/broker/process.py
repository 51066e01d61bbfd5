"""The publisher of a process: one long-lived broker connection that ``publish()``, the
admin, ``send``, the relay and the Celery tasks share, from any thread.

- **Threads**: a lock serialises the connection; :meth:`ProcessPublisher.session` holds it
  over several calls (declare, then publish). Every call gets its own outcomes.
- **Fork**: a child never touches its parent's connection: after ``fork()`` every
  :class:`ProcessPublisher` forgets (without closing) what the parent opened, and the
  child connects on first use under its own name.
- **Reconnect**: a connection the broker closed is noticed before the next call (a call
  that finds it dead is made once more on a new one, see :data:`IDLE`), trying each
  URL in turn (:func:`~messaging.broker.connecting.connect_first`). While the broker is
  down a call waits for one connection attempt at most (threads waiting meanwhile share
  its failure), and for the publisher no longer than CONNECTION_TIMEOUT + CONFIRM_TIMEOUT.
- **Idle**: a keeper thread runs the connection's I/O loop every few seconds while nobody
  publishes (heartbeats, a close from the broker); :func:`close_process_publisher` runs at
  exit.
- **Declarations**: once per queue per connection (the inner publisher's
  :class:`~messaging.broker.queue_ops.DeclarationCache`); a queue deleted behind the
  publisher's back (its messages come back unroutable) is declared again and its
  messages sent once more.

:func:`set_publisher_factory` replaces what the publisher is built from (``messaging.testing``
puts its capturing stand-in there).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import conf
from ..exceptions import BrokerError, BrokerUnavailable, PublishInterrupted, Unroutable
from .keeper import Keeper
from .outgoing import Outgoing
from .publisher import PipelinedPublisher, PublisherBase
from .queue_ops import QueueSpec

logger = logging.getLogger(__name__)

#: Builds the inner publisher: ``factory(connection_name=...)`` -> a PublisherBase.
PublisherFactory = Callable[..., PublisherBase]

_factory: PublisherFactory = PipelinedPublisher
_instances: weakref.WeakSet[ProcessPublisher] = weakref.WeakSet()
#: Publishers a parent opened, kept (never closed, never collected) in a forked child.
_abandoned: list[Any] = []
_state_lock = threading.Lock()
_current: ProcessPublisher | None = None

#: A connection unused this long is serviced before a call (a close the broker sent
#: meanwhile is noticed). A call that loses every message to a connection that turns out
#: dead is made once more on a new one when the broker had closed it (``connection.close``:
#: it ignored what followed) or it had been idle this long; a connection lost while in
#: use otherwise leaves its messages pending for the relay.
IDLE = 1.0


def publisher_connection_name() -> str:
    """What ``rabbitmqctl list_connections name`` shows for this process's publisher."""
    return f"messaging publisher {socket.gethostname()}:{os.getpid()}"


def _connection_settings() -> tuple[Any, ...]:
    return (
        tuple(sorted(conf.broker_urls())),  # the order may change (shuffled): same broker
        conf.get("HEARTBEAT"),
        conf.get("CONNECTION_TIMEOUT"),
        conf.get("BLOCKED_CONNECTION_TIMEOUT"),
    )


class ProcessPublisher(PublisherBase):
    """A thread-safe, fork-safe, reconnecting front for one :class:`PipelinedPublisher`
    (or the factory's); :meth:`close` keeps the connection, :meth:`shutdown` closes it."""

    def __init__(self, factory: PublisherFactory | None = None) -> None:
        self._factory = factory
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._local = threading.local()
        self._inner: Any = None
        self._made_with: tuple[Any, ...] | None = None  # (factory, connection settings)
        self._failed_at = float("-inf")
        self._failure: BrokerError | None = None
        self._specs: dict[str, QueueSpec] = {}  # queues declared, to declare again
        self._connection: Any = None  # the pika connection last seen open
        self._keeper: Keeper | None = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's connection without a word to the broker."""
        if self._inner is not None:
            _abandoned.append(self._inner)
        if self._keeper is not None:
            self._keeper.abandon()
        self._reset()

    # ----------------------------------------------------------------- holding

    @contextmanager
    def session(self) -> Iterator[ProcessPublisher]:
        """Use the connection alone until the block ends (other threads wait)."""
        with self._holding():
            yield self

    @contextmanager
    def _holding(self) -> Iterator[Any]:
        """Hold the lock (re-entrant); yields the inner publisher for the current settings."""
        if self._pid != os.getpid():
            self.forget_after_fork()
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            started = time.monotonic()
            timeout = float(conf.get("CONNECTION_TIMEOUT") or 0) + float(
                conf.get("CONFIRM_TIMEOUT")
            )
            if not self._lock.acquire(timeout=timeout):
                raise BrokerUnavailable(
                    f"the process's publisher was busy for {timeout:g} s (other threads)"
                )
            self._local.started = started
        else:
            self._lock.acquire()
        self._local.depth = depth + 1
        try:
            if depth == 0:
                self._refresh_inner()
            yield self._inner
        finally:
            self._local.depth = depth
            self._lock.release()

    def _refresh_inner(self) -> None:
        """A new inner publisher when the factory or the connection settings changed."""
        factory = self._factory or _factory
        made_with = (factory, _connection_settings())
        if self._inner is not None and made_with == self._made_with:
            return
        if self._inner is not None:
            logger.info("publisher: broker settings changed, reconnecting")
            self._inner.close()
        self._inner = factory(connection_name=publisher_connection_name())
        self._made_with = made_with
        self._specs.clear()
        self._connection = None

    # ----------------------------------------------------------------- connection

    @property
    def is_open(self) -> bool:
        inner = self._inner
        return inner is not None and inner.is_open and self._pid == os.getpid()

    @property
    def confirm_timeout(self) -> float:
        return float(conf.get("CONFIRM_TIMEOUT"))

    def open(self) -> None:
        """Connect unless connected; raises BrokerUnavailable (AuthenticationFailed,
        AccessRefused) as :class:`PipelinedPublisher` does. A thread that waited while
        another one failed to connect gets that failure at once."""
        self._open()

    def _open(self) -> float:
        """:meth:`open`; returns how long the connection had been idle (0: new)."""
        with self._holding() as inner:
            idle = inner.idle_seconds if inner.is_open else 0.0
            if idle >= IDLE:
                inner.service()  # a close the broker sent, a due heartbeat
            if inner.is_open:
                inner.open()  # replaces a connection idle too long
                return idle
            if self._failed_at > self._local.started and self._failure is not None:
                raise self._failure
            try:
                inner.open()
            except BrokerError as exc:
                self._failed_at, self._failure = time.monotonic(), exc
                logger.info("publisher: cannot connect: %s", conf.redact_text(str(exc)))
                raise
            self._connected(inner)
            return 0.0

    def _connected(self, inner: Any) -> None:
        if inner.connection is self._connection:
            return
        again = "reconnected" if self._connection is not None else "connected"
        url = conf.redact_url(inner.connected_url or "")
        logger.info("publisher %s to %s as %r", again, url, publisher_connection_name())
        self._connection = inner.connection
        if self._keeper is None and inner.connection is not None:
            self._keeper = Keeper(self)

    def keep_alive(self) -> None:
        """The keeper's tick: service an idle connection unless a thread is using it."""
        if self._pid != os.getpid() or not self._lock.acquire(blocking=False):
            return
        try:
            if self._inner is not None and self._inner.is_open:
                self._inner.service()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Nothing: the connection belongs to the process (see :meth:`shutdown`)."""

    def shutdown(self) -> None:
        """Close the connection (waiting 2 s at most for the broker); never raises."""
        if self._pid != os.getpid():
            return
        with self._lock:
            if self._keeper is not None:
                self._keeper.stop()
                self._keeper = None
            if self._inner is not None:
                self._inner.close()
            self._connection = None

    # ----------------------------------------------------------------- declarations

    def declare(self, queue: Any) -> int:
        with self._holding() as inner:
            self.open()
            return inner.declare(queue)

    def ensure_declared(self, queue: Any) -> None:
        """Declare ``queue`` once per connection (again if its row changed)."""
        spec = QueueSpec.of(queue)
        with self._holding() as inner:
            self._retrying(lambda: inner.ensure_declared(spec))
            self._specs[spec.name] = spec

    def check_exchange(self, exchange: str) -> None:
        with self._holding() as inner:
            self._retrying(lambda: inner.check_exchange(exchange))

    def call_each(self, method: str, calls: Iterable[dict[str, Any]], timeout: Any = None) -> Any:
        with self._holding() as inner:
            self.open()
            return inner.call_each(method, calls, timeout)

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """``call()`` after :meth:`open`; once more on a new connection if the one it
        started on turned out dead."""
        self.open()
        try:
            return call()
        except BrokerError as exc:
            if self._inner.is_open or not exc.temporary:
                raise
            logger.info("publisher: connection lost (%s), reconnecting", exc)
        self.open()
        return call()

    # ----------------------------------------------------------------- publishing

    def publish_many(self, items: Iterable[Outgoing]) -> list[BrokerError | None]:
        """:meth:`PipelinedPublisher.publish_many`, plus: messages all lost with a
        connection that turned out dead (see :data:`IDLE`) are sent once more on a new
        one; messages returned
        unroutable because their queue was deleted since it was declared are sent once
        more after declaring it again."""
        items = list(items)
        if not items:
            return []
        with self._holding() as inner:
            idle = self._open()
            outcomes = inner.publish_many(items)
            lost = [i for i, o in enumerate(outcomes) if _lost(o)]
            dead = len(lost) == len(items) and not inner.is_open
            if dead and (idle >= IDLE or inner.closed_by_broker):
                logger.info("publisher: connection lost while publishing, reconnecting")
                self._again(items, outcomes, lost, redeclare=False)
            gone = [i for i, o in enumerate(outcomes) if self._queue_gone(items[i], o)]
            if gone:
                self._again(items, outcomes, gone, redeclare=True)
        return outcomes

    def _queue_gone(self, item: Outgoing, outcome: BrokerError | None) -> bool:
        if not isinstance(outcome, Unroutable) or item.exchange:
            return False
        return item.routing_key in self._specs

    def _again(
        self, items: list[Outgoing], outcomes: list[Any], indexes: list[int], *, redeclare: bool
    ) -> None:
        """Publish ``items[indexes]`` once more (declaring their queues again first)."""
        inner = self._inner
        try:
            self.open()
            for name in {items[i].routing_key for i in indexes if not items[i].exchange}:
                spec = self._specs.get(name)
                if spec is not None:
                    if redeclare:
                        inner.forget_declared(name)
                    inner.ensure_declared(spec)
        except BrokerError:
            return  # the first outcomes stand
        answers = inner.publish_many([items[i] for i in indexes])
        for index, answer in zip(indexes, answers, strict=True):
            outcomes[index] = answer


def _lost(outcome: BrokerError | None) -> bool:
    return isinstance(outcome, BrokerUnavailable | PublishInterrupted)


# --------------------------------------------------------------------------- the process's


def process_publisher() -> ProcessPublisher:
    """This process's publisher (made on first use; a forked child gets its own)."""
    global _current
    publisher = _current
    if publisher is None or publisher._pid != os.getpid():
        with _state_lock:
            if _current is None:
                _current = ProcessPublisher()
            publisher = _current
    return publisher


def close_process_publisher() -> None:
    """Close this process's publisher connection (at exit; tests). Never raises."""
    publisher = _current
    if publisher is not None:
        publisher.shutdown()


def set_publisher_factory(factory: PublisherFactory | None) -> PublisherFactory:
    """Build publishers with ``factory(connection_name=...)`` from now on (``None``: the
    real :class:`PipelinedPublisher`); returns the previous factory. The process's
    publisher switches at its next call (closing the connection it had)."""
    global _factory
    previous = _factory
    _factory = factory or PipelinedPublisher
    return previous


def get_publisher_factory() -> PublisherFactory:
    return _factory


def _after_fork_in_child() -> None:
    global _state_lock
    _state_lock = threading.Lock()
    for publisher in list(_instances):
        publisher.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close_process_publisher)
