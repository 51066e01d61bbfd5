"""One asynchronous pika connection (``SelectConnection``) whose I/O loop runs in the
calling thread, only while a call waits for the broker: no extra thread, and callers
see plain blocking methods. :class:`~messaging.broker.PipelinedPublisher` is built on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.select_connection import IOLoop

from ..exceptions import BrokerUnavailable
from .connecting import connection_parameters
from .errors import translate

logger = logging.getLogger(__name__)


class LoopConnection:
    """The connection, its I/O loop, why it closed, and when it was last used.

    ``on_closed(reason)`` is called when the connection closes after it opened, before
    the loop is stopped.
    """

    def __init__(self, on_closed: Callable[[BaseException], None]) -> None:
        self._on_closed = on_closed
        self.loop: Any = None
        self.conn: Any = None
        self.close_reason: BaseException | None = None
        self.heartbeat = 0
        self.last_used = 0.0
        #: A call went unanswered: closing does not wait long for the broker's close-ok.
        self.unanswered = False
        self._connect_outcome: BaseException | bool | None = None  # True, or the error
        self._opened: Any = None  # the channel whose channel.open-ok came last

    @property
    def is_open(self) -> bool:
        return self.conn is not None and self.conn.is_open

    def fresh(self) -> bool:
        """Open and usable now: not idle long enough to have missed heartbeats (nobody
        ran its loop), and with whatever arrived meanwhile (a close) handled."""
        if not self.is_open:
            return False
        idle = time.monotonic() - self.last_used
        if self.heartbeat and idle > self.heartbeat / 2:
            return False
        if idle > 1:
            self.poll()  # notice a close the broker sent while we were away
        return self.is_open

    def mark_used(self) -> None:
        self.last_used = time.monotonic()

    # ----------------------------------------------------------------- connecting

    def connect(self, url: str, connection_name: str | None) -> None:
        """Connect to ``url`` (a new I/O loop); raise the translated error if it fails."""
        params = connection_parameters(url, connection_name=connection_name)
        self.loop = IOLoop()
        self.close_reason = None
        self._connect_outcome = None
        self.conn = pika.SelectConnection(
            params,
            on_open_callback=self.on_connection_open,
            on_open_error_callback=self.on_connection_open_error,
            on_close_callback=self.on_connection_closed,
            custom_ioloop=self.loop,
        )
        while self._connect_outcome is None:
            self.loop.start()
        if self._connect_outcome is not True:
            self.conn = None
            raise translate(_last_connect_error(self._connect_outcome), url=url)
        self.heartbeat = self.conn.params.heartbeat or 0

    def on_connection_open(self, _conn: Any) -> None:
        self._connect_outcome = True
        self.loop.stop()

    def on_connection_open_error(self, _conn: Any, exc: BaseException) -> None:
        self._connect_outcome = exc
        self.loop.stop()

    def on_connection_closed(self, _conn: Any, reason: BaseException) -> None:
        self.close_reason = reason
        self._on_closed(reason)
        if self.loop is not None:
            self.loop.stop()

    def open_channel(self, on_close: Callable[[Any, BaseException], None], timeout: float) -> Any:
        """A new open channel (``on_close`` called when it closes)."""
        channel = self.conn.channel(on_open_callback=self.on_channel_open)
        self.run(lambda: self._opened is channel, timeout)
        self._opened = None
        channel.add_on_close_callback(on_close)
        return channel

    def on_channel_open(self, channel: Any) -> None:
        self._opened = channel
        self.loop.stop()

    # ----------------------------------------------------------------- running

    def run(self, done: Callable[[], bool], timeout: float) -> None:
        """Run the I/O loop until ``done()``; raise if the connection closes or ``timeout``
        seconds pass first. Callbacks that may complete ``done`` stop the loop."""
        deadline = time.monotonic() + timeout
        timer = self.loop.call_later(timeout, self.loop.stop)
        try:
            while not done():
                if not self.is_open:
                    raise translate(self.close_reason or BrokerUnavailable("connection closed"))
                if time.monotonic() >= deadline:
                    raise BrokerUnavailable(f"the broker did not answer within {timeout:g} s")
                self.loop.start()
        finally:
            self.loop.remove_timeout(timer)

    def poll(self) -> None:
        """Handle whatever arrived while the loop was not running, without waiting."""
        self.loop.call_later(0, self.loop.stop)
        self.loop.start()

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()

    def close(self) -> None:
        """Close the connection (waiting 2 s at most for close-ok, 0.2 s after a call went
        unanswered) and the loop; never raises."""
        conn, loop = self.conn, self.loop
        wait = 0.2 if self.unanswered else 2  # a broker stuck on a call may not answer
        self.conn = None
        self.unanswered = False
        if conn is not None and loop is not None:
            try:
                if conn.is_open:
                    conn.close()
                if not conn.is_closed:  # wait briefly for close-ok (not for a dead peer)
                    deadline = time.monotonic() + wait
                    timer = loop.call_later(wait, loop.stop)
                    while not conn.is_closed and time.monotonic() < deadline:
                        loop.start()
                    loop.remove_timeout(timer)
            except Exception:  # noqa: BLE001 - closing a dead connection must not mask anything
                logger.debug("error while closing a publisher connection", exc_info=True)
        if loop is not None:
            try:
                loop.close()
            except Exception:  # noqa: BLE001
                logger.debug("error while closing an I/O loop", exc_info=True)
        self.loop = None


def _last_connect_error(exc: BaseException) -> BaseException:
    """The error of the last connection attempt, as BlockingConnection would raise it
    (the asynchronous adapter wraps every attempt in AMQPConnectionWorkflowFailed)."""
    from pika.adapters.utils import connection_workflow as workflow

    inner = exc.args[0] if isinstance(exc, pe.AMQPConnectionError) and exc.args else exc
    if isinstance(inner, workflow.AMQPConnectionWorkflowFailed) and inner.exceptions:
        last = inner.exceptions[-1]
        if isinstance(last, workflow.AMQPConnectorSocketConnectError):
            return pe.AMQPConnectionError(last)
        if isinstance(last, workflow.AMQPConnectorPhaseErrorBase):
            return last.exception
        return last
    return exc
