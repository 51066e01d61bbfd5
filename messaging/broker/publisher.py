"""Publishing many messages with publisher confirms in flight.

Bulk publishing (``send --count``, the admin's bulk publish, the outbox relay) keeps many
confirms in flight on one channel instead of waiting for each. pika's BlockingChannel
waits per message in confirm mode, so :class:`PipelinedPublisher` uses pika's public
asynchronous API with its I/O loop run in the calling thread while a call is in progress
(:mod:`~messaging.broker.loop`): no extra thread, and the caller sees plain blocking
methods. Its parts: the connection (:class:`~messaging.broker.loop.LoopConnection`), the
confirm-mode channel (:class:`~messaging.broker.confirms.ConfirmChannel`) and the RPC
channels for declarations (:class:`~messaging.broker.channel_calls.RpcChannel`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial
from typing import Any

import pika.exceptions as pe

from .. import conf, observability
from ..exceptions import BrokerError, ConfirmTimeout
from .channel_calls import RpcChannel, SyncChannel
from .confirms import ConfirmChannel
from .connecting import connect_first, default_connection_name
from .exchanges import declare_exchange, exchange_spec
from .loop import LoopConnection
from .outgoing import Outgoing
from .queue_ops import DeclarationCache, QueueSpec, declare_queue

#: Most unconfirmed messages in flight on the channel at once.
DEFAULT_WINDOW = 1000
#: Most channels :meth:`PipelinedPublisher.call_each` opens at once.
CALLS_AT_ONCE = 100


class PublisherBase:
    """What every publisher shares (the real one, and :mod:`messaging.testing`'s stand-in):
    a context manager around ``open()``/``close()``, and the confirm timeout."""

    _confirm_timeout: float | None = None
    #: pika's connection while open, and the URL it went to (none for stand-ins).
    connection: Any = None
    connected_url: str | None = None

    def open(self) -> None:
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        """The connection is open (every publisher says)."""
        raise NotImplementedError

    def publish_many(self, items: Iterable[Outgoing]) -> list[BrokerError | None]:
        """Publish ``items`` with confirms; one outcome per item (None: confirmed)."""
        raise NotImplementedError

    @property
    def idle_seconds(self) -> float:
        """Seconds since the connection was last used (stand-ins: never idle)."""
        return 0.0

    @property
    def closed_by_broker(self) -> bool:
        """The last connection ended with the broker closing it (stand-ins: never)."""
        return False

    def service(self) -> None:
        """Run the I/O loop once without waiting (heartbeats); nothing for stand-ins."""

    def forget_declared(self, name: str) -> None:
        """Declare ``name`` again on its next ``ensure_declared``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def confirm_timeout(self) -> float:
        """Seconds to wait for a publisher confirm (``MESSAGING["CONFIRM_TIMEOUT"]``)."""
        if self._confirm_timeout is not None:
            return self._confirm_timeout
        return float(conf.get("CONFIRM_TIMEOUT"))


class PipelinedPublisher(PublisherBase):
    """Publishes many messages over one connection with up to ``window`` publisher confirms
    in flight; every message is persistent (unless asked otherwise) and ``mandatory``.

    :meth:`publish_many` returns one outcome per message, in order: ``None`` (confirmed),
    or the :class:`BrokerError` saying why not — :class:`Unroutable` (returned),
    :class:`PublishNacked`, :class:`ConfirmTimeout` (no confirm for CONFIRM_TIMEOUT
    seconds), :class:`BrokerUnavailable` / :class:`PublishInterrupted` (connection or
    channel lost first). It raises only when it cannot connect at all. Queues are declared
    (:meth:`ensure_declared`) and exchanges checked (:meth:`check_exchange`) on a second
    channel of the same connection. An idle connection is replaced before use once it may
    have missed heartbeats. Use from one thread; as a context manager it closes itself.
    """

    def __init__(
        self,
        urls: Iterable[str] | None = None,
        *,
        connection_name: str | None = None,
        window: int = DEFAULT_WINDOW,
        confirm_timeout: float | None = None,
        rpc_timeout: float | None = None,
    ) -> None:
        self._urls = list(urls) if urls is not None else None
        self._connection_name = connection_name
        self.window = max(1, window)
        self._confirm_timeout = confirm_timeout
        self._rpc_timeout = rpc_timeout
        self._link = LoopConnection(on_closed=self.on_connection_closed)
        self._confirms = ConfirmChannel(self._link)
        self._calls = RpcChannel(self._link)
        self._declared = DeclarationCache()  # queues, per connection
        self._exchanges = DeclarationCache()  # exchanges checked, per connection
        #: The URL of the last connection opened.
        self.connected_url: str | None = None

    @property
    def rpc_timeout(self) -> float:
        """Seconds a declaration (or another RPC) may wait for its answer:
        CONNECTION_TIMEOUT (CONFIRM_TIMEOUT when that is 0)."""
        if self._rpc_timeout is not None:
            return self._rpc_timeout
        return float(conf.get("CONNECTION_TIMEOUT") or self.confirm_timeout)

    @property
    def is_open(self) -> bool:
        return self._link.is_open

    @property
    def connection(self) -> Any:
        """pika's connection object while open (a new one after each reconnect)."""
        return self._link.conn

    # ----------------------------------------------------------------- connection

    def open(self) -> None:
        """Connect (trying each URL in turn) unless an open, recently used connection is
        there. Raises :class:`BrokerUnavailable`, :class:`AuthenticationFailed` or
        :class:`AccessRefused`."""
        if self._link.fresh():
            return
        self.close()
        connect_first(self._urls, self._connect_or_close)

    def _connect_or_close(self, url: str) -> None:
        try:
            self._connect(url)
        except Exception:
            self.close()
            raise

    def _connect(self, url: str) -> None:
        """Connect to ``url`` and open the confirm-mode channel."""
        self._link.connect(url, self._connection_name)
        observability.connected(url, self._connection_name)
        self._confirms.open(self.confirm_timeout)
        self._link.mark_used()
        self.connected_url = url

    def on_connection_closed(self, reason: BaseException) -> None:
        self._calls.forget()
        self._confirms.connection_lost(reason)

    def close(self) -> None:
        """Close the connection (waiting 2 s at most); never raises."""
        self._confirms.forget()
        self._calls.forget()
        self._link.close()

    # ----------------------------------------------------------------- declarations

    def call(self, name: str, kwargs: dict[str, Any]) -> Any:
        """Channel method ``name`` on the declarations channel (see :meth:`RpcChannel.call`);
        :class:`~messaging.broker.channel_calls.SyncChannel` calls it."""
        self.open()
        return self._calls.call(name, kwargs, self.rpc_timeout, self.confirm_timeout)

    def declare(self, queue: Any) -> int:
        """Declare ``queue`` exactly as its row (or :class:`QueueSpec`) says."""
        return declare_queue(SyncChannel(self), QueueSpec.of(queue))

    def ensure_declared(self, queue: Any) -> None:
        """Declare once per connection (cheap for repeated publishes to one queue)."""
        spec = QueueSpec.of(queue)
        self.open()
        self._declared.ensure(self._link.conn, spec.name, partial(self.declare, spec), spec)

    def forget_declared(self, name: str) -> None:
        """Declare ``name`` again on its next :meth:`ensure_declared` (it was deleted)."""
        self._declared.forget(name)

    def service(self) -> None:
        """Run the I/O loop once without waiting, if connected: send a heartbeat that is
        due, notice a close the broker sent while nobody was publishing. The connection
        then counts as used (its heartbeats are current)."""
        if self._link.is_open:
            self._link.poll()
            self._link.mark_used()

    @property
    def idle_seconds(self) -> float:
        """Seconds since the connection was last used (or serviced)."""
        return time.monotonic() - self._link.last_used

    @property
    def closed_by_broker(self) -> bool:
        """The last connection ended with the broker's ``connection.close`` (a forced
        close, a broker shutdown): the broker ignored whatever was sent after it."""
        return isinstance(self._link.close_reason, pe.ConnectionClosedByBroker)

    def check_exchange(self, exchange: str) -> None:
        """Declare ``exchange`` from its ``Exchange`` row, or check that it exists when it
        has none (once per connection), so a missing exchange (:class:`NotFound`) or one
        that drifted from its row fails its own messages, not the channel."""
        self.open()
        if exchange:
            self._exchanges.ensure(
                self._link.conn, ("exchange", exchange), partial(self._declare_exchange, exchange)
            )

    def _declare_exchange(self, exchange: str) -> None:
        declare_exchange(SyncChannel(self), exchange_spec(exchange))

    def call_each(
        self, method: str, calls: Iterable[dict[str, Any]], timeout: float | None = None
    ) -> list[Any]:
        """Call channel method ``method`` once per kwargs in ``calls``, each on a channel of
        its own and all at once (a refusal or a hang then concerns that call only); wait
        ``timeout`` seconds (:attr:`rpc_timeout`) at most for all of them. Returns, per
        call, the ``*-ok`` frame or the exception: pika's ChannelClosedByBroker for a
        refusal, :class:`BrokerUnavailable` for no answer or a lost connection."""
        calls = list(calls)
        timeout = self.rpc_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        results: list[Any] = []
        for start in range(0, len(calls), CALLS_AT_ONCE):
            chunk = calls[start : start + CALLS_AT_ONCE]
            left = max(deadline - time.monotonic(), 0.01)
            self.open()
            results.extend(self._calls.each(method, chunk, left))
        return results

    # ----------------------------------------------------------------- publishing

    def publish_many(self, items: Iterable[Outgoing]) -> list[BrokerError | None]:
        """Publish ``items`` in order with up to ``window`` confirms in flight; returns one
        outcome per item (``None`` = confirmed by the broker). Raises only if it cannot
        connect (then nothing was sent)."""
        items = list(items)
        if not items:
            return []
        self.open()
        if not self._confirms.is_open:
            self._confirms.open(self.confirm_timeout)
        try:
            with observability.confirm_wait():
                outcomes = self._confirms.publish(items, self.window, self.confirm_timeout)
        finally:
            self._link.mark_used()
        if any(isinstance(outcome, ConfirmTimeout) for outcome in outcomes):
            self.close()  # late confirms must not be taken for the next batch's
        return outcomes


def publisher_for(urls: Iterable[str] | None, purpose: str) -> PipelinedPublisher:
    """A publisher of its own for one job over one connection (``declare``, ``check``,
    ``admin``), named ``messaging@host:pid <purpose>`` on the broker."""
    return PipelinedPublisher(urls, connection_name=f"{default_connection_name()} {purpose}")
