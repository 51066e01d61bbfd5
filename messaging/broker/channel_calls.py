"""Channel RPCs on a :class:`~messaging.broker.loop.LoopConnection` (declarations,
passive checks, purges): one at a time on a channel kept for them, or many at once on
a channel each, so a refusal or a hang concerns one call only."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from ..exceptions import BrokerError, BrokerUnavailable
from .loop import LoopConnection

if TYPE_CHECKING:
    from .publisher import PipelinedPublisher

logger = logging.getLogger(__name__)

_NO_ANSWER: Any = object()


def _no_answer(method: str, kwargs: Mapping[str, Any], timeout: float) -> BrokerUnavailable:
    what = kwargs.get("queue") or kwargs.get("exchange")
    about = f" for {what!r}" if what else ""
    amqp = method.replace("_", ".")  # queue_declare -> queue.declare
    return BrokerUnavailable(f"the broker did not answer {amqp}{about} within {timeout:.3g} s")


class RpcChannel:
    """The channel RPCs go over one at a time (:meth:`call`), and :meth:`each`."""

    def __init__(self, link: LoopConnection) -> None:
        self._link = link
        self.channel: Any = None
        self._abandoned: list[Any] = []  # channels given up on, closing
        self._answer: Any = None  # the *-ok frame of the call in progress
        self._close_reason: BaseException | None = None

    def forget(self) -> None:
        """The connection is gone (or going): so are its channels."""
        self.channel = None
        self._abandoned = []

    def call(self, name: str, kwargs: dict[str, Any], timeout: float, open_timeout: float) -> Any:
        """Call channel method ``name`` and wait for its ``*-ok`` frame; a refusal raises
        pika's ChannelClosedByBroker (closing only that channel), as a BlockingChannel
        would. No answer within ``timeout`` raises :class:`BrokerUnavailable` and drops
        that channel (pika would queue every later call behind the unanswered one), so
        the next call gets a fresh one."""
        if self.channel is None or not self.channel.is_open:
            self.channel = self._link.open_channel(self.on_channel_closed, open_timeout)
        channel = self.channel
        self._answer = None
        self._close_reason = None
        getattr(channel, name)(callback=partial(self.on_answer, channel), **kwargs)
        try:
            self._link.run(lambda: self._answer is not None or channel.is_closed, timeout)
        except BrokerUnavailable as exc:
            if self._link.is_open:  # the connection works: only this call went unanswered
                self._drop(channel)
                raise _no_answer(name, kwargs, timeout) from exc
            raise
        finally:
            self._link.mark_used()
        answer, self._answer = self._answer, None
        if answer is None:
            reason = self._close_reason
            raise reason if reason is not None else BrokerError("channel closed")
        return answer

    def on_answer(self, channel: Any, frame: Any) -> None:
        if channel is self.channel:  # not a late answer on a channel given up on
            self._answer = frame
            self._link.stop()

    def on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if any(channel is dropped for dropped in self._abandoned):
            self._abandoned = [c for c in self._abandoned if c is not channel]
            return  # a stuck channel given up on: its close concerns nobody
        if channel is self.channel:
            self.channel = None
        self._close_reason = reason
        self._link.stop()

    def _drop(self, channel: Any) -> None:
        """Forget a channel stuck on an unanswered call (and ask the broker to close it,
        without waiting)."""
        if channel is self.channel:
            self.channel = None
        self._abandoned.append(channel)
        self._link.unanswered = True
        try:
            channel.close()
        except Exception:  # noqa: BLE001 - it is abandoned either way
            logger.debug("error closing a stuck channel", exc_info=True)

    def each(self, method: str, calls: list[dict[str, Any]], timeout: float) -> list[Any]:
        """Call ``method`` once per kwargs in ``calls``, each on a channel of its own, all
        at once; per call the ``*-ok`` frame or the exception (see
        :meth:`PipelinedPublisher.call_each`)."""
        link = self._link
        each = _EachCall(method, calls, link.loop)
        for index in range(len(calls)):
            try:
                each.channels.append(
                    link.conn.channel(on_open_callback=partial(each.on_channel_open, index))
                )
            except Exception as exc:  # noqa: BLE001 - the connection is gone: its outcome
                each.finish(index, exc)
        error: BrokerError | None = None
        try:
            link.run(lambda: each.left == 0, timeout)
        except BrokerError as exc:
            error = exc
        finally:
            link.mark_used()
        for index, value in enumerate(each.results):
            if value is _NO_ANSWER:
                link.unanswered = True
                each.results[index] = (
                    _no_answer(method, calls[index], timeout)
                    if link.is_open
                    else error or BrokerUnavailable("the connection closed")
                )
        each.close_unanswered()
        return each.results


class _EachCall:
    """Book-keeping of :meth:`RpcChannel.each`: one channel per call, each result the
    ``*-ok`` frame or the exception that ended its channel."""

    __slots__ = ("method", "calls", "results", "left", "channels", "loop")

    def __init__(self, method: str, calls: list[dict[str, Any]], loop: Any) -> None:
        self.method = method
        self.calls = calls
        self.results: list[Any] = [_NO_ANSWER] * len(calls)
        self.left = len(calls)
        self.channels: list[Any] = []
        self.loop = loop

    def finish(self, index: int, value: Any) -> None:
        if self.results[index] is _NO_ANSWER:
            self.results[index] = value
            self.left -= 1
            if self.left == 0:
                self.loop.stop()

    def on_channel_open(self, index: int, channel: Any) -> None:
        channel.add_on_close_callback(partial(self.on_channel_closed, index))
        try:
            getattr(channel, self.method)(
                callback=partial(self.on_answer, index, channel), **self.calls[index]
            )
        except Exception as exc:  # noqa: BLE001 - an encoding error: this call's outcome
            self.finish(index, exc)

    def on_answer(self, index: int, channel: Any, frame: Any) -> None:
        self.finish(index, frame)
        if channel.is_open:
            channel.close()

    def on_channel_closed(self, index: int, _channel: Any, reason: BaseException) -> None:
        self.finish(index, reason)

    def close_unanswered(self) -> None:
        for channel in self.channels:
            try:
                if channel.is_open or channel.is_opening:
                    channel.close()
            except Exception:  # noqa: BLE001 - abandoned either way
                logger.debug("error closing an unanswered channel", exc_info=True)


class SyncChannel:
    """A publisher's RPC channel with blocking-style methods (``queue_declare(...)``
    returns the ``*-ok`` frame or raises pika's exception), so
    :func:`~messaging.broker.declare_queue` and
    :func:`~messaging.broker.exchanges.declare_exchange` work on it unchanged."""

    def __init__(self, publisher: PipelinedPublisher) -> None:
        self._publisher = publisher

    def __getattr__(self, name: str) -> Any:
        return partial(self._call, name)

    def _call(self, name: str, /, **kwargs: Any) -> Any:
        return self._publisher.call(name, kwargs)
