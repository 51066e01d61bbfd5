"""Publishing with many confirms in flight on one confirm-mode channel of a
:class:`~messaging.broker.loop.LoopConnection`: the I/O loop's callbacks (confirm,
return, channel closed, confirm timeout) settle the :class:`~messaging.broker.batch.Batch`
in progress."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pika

from ..exceptions import BrokerError, BrokerUnavailable, ConfirmTimeout, PublishInterrupted
from .batch import Batch
from .errors import ENCODE_ERRORS, refusal, translate
from .loop import LoopConnection
from .outgoing import Outgoing


class ConfirmChannel:
    """The publishing channel: every message ``mandatory``, at most ``window`` of them
    unconfirmed at once, and no confirm for ``timeout`` seconds ends the batch."""

    def __init__(self, link: LoopConnection) -> None:
        self._link = link
        self.channel: Any = None
        self._tag = 0  # last delivery tag used on the channel
        self._selected: Any = None  # the channel whose confirm.select-ok came last
        self._close_reason: BaseException | None = None
        self._batch: Batch | None = None
        self._window = 1
        self._timeout = 0.0
        self._timer: Any = None  # the confirm-timeout watchdog
        self._progress_at = 0.0  # when the last confirm arrived

    @property
    def is_open(self) -> bool:
        return self.channel is not None and self.channel.is_open

    def forget(self) -> None:
        self.channel = None

    def open(self, timeout: float) -> None:
        """Open the channel in confirm mode (delivery tags start again at 1)."""
        channel = self._link.open_channel(self.on_channel_closed, timeout)
        channel.add_on_return_callback(self.on_return)
        channel.confirm_delivery(
            ack_nack_callback=self.on_confirm,
            callback=partial(self.on_confirm_select_ok, channel),
        )
        self._link.run(lambda: self._selected is channel or channel.is_closed, timeout)
        self._selected = None
        if channel.is_closed:
            raise translate(self._close_reason or BrokerError("channel closed"))
        self._tag = 0
        self.channel = channel

    def on_confirm_select_ok(self, channel: Any, _frame: Any) -> None:
        self._selected = channel
        self._link.stop()

    # ----------------------------------------------------------------- a batch

    def publish(self, items: list[Outgoing], window: int, timeout: float) -> list[Any]:
        """Publish ``items`` in order; one outcome per item (``None``: confirmed)."""
        batch = self._batch = Batch(items)
        self._window, self._timeout = window, timeout
        loop = self._link.loop
        try:
            self._progress_at = time.monotonic()
            self._timer = loop.call_later(timeout, self.on_confirm_timeout)
            self._pump()
            while batch.left:
                if not self._link.is_open:
                    reason = translate(self._link.close_reason or ConnectionError("closed"))
                    batch.settle_rest(
                        BrokerUnavailable(f"connection lost before the broker confirmed: {reason}")
                    )
                    break
                loop.start()
        finally:
            if self._timer is not None and self._link.loop is not None:
                self._link.loop.remove_timeout(self._timer)
            self._timer = None
            self._batch = None
        return batch.outcomes()

    def _pump(self) -> None:
        """Publish until the window is full or everything is sent."""
        batch, channel = self._batch, self.channel
        if batch is None or channel is None:
            return
        items, pending, window, total = batch.items, batch.pending, self._window, len(batch.items)
        while batch.sent < total and len(pending) < window:
            index = batch.sent
            item = items[index]
            try:
                channel.basic_publish(
                    item.exchange,
                    item.routing_key,
                    item.body,
                    batch.properties(item),
                    mandatory=True,
                )
            except ENCODE_ERRORS as exc:  # this item's fault: nothing was written
                batch.refused(index, refusal(exc, item))
                continue
            except Exception as exc:  # noqa: BLE001 - the channel or connection is gone
                batch.settle_rest(PublishInterrupted(f"not sent: {translate(exc)}"))
                self._link.stop()
                return
            self._tag += 1
            batch.sent_as(index, self._tag)
        if batch.left == 0:
            self._link.stop()

    # ----------------------------------------------------------------- callbacks

    def on_confirm(self, frame: Any) -> None:
        """basic.ack or basic.nack (pika has one callback for both)."""
        batch = self._batch
        if batch is None:
            return
        method = frame.method
        nacked = isinstance(method, pika.spec.Basic.Nack)
        batch.confirm(method.delivery_tag, multiple=method.multiple, nacked=nacked)
        self._progress_at = time.monotonic()
        if batch.left == 0:
            self._link.stop()
        else:
            self._pump()

    def on_return(self, _channel: Any, method: Any, props: Any, body: bytes) -> None:
        if self._batch is not None:
            self._batch.returned_message(method, props, body)

    def on_confirm_timeout(self) -> None:
        """The watchdog: no confirm for ``timeout`` seconds fails what is unconfirmed."""
        self._timer = None
        batch = self._batch
        if batch is None or batch.left == 0:
            return
        idle = time.monotonic() - self._progress_at
        if idle >= self._timeout:
            batch.settle_rest(
                ConfirmTimeout(f"no publisher confirm from the broker within {self._timeout:g} s")
            )
            self._link.stop()
        else:
            self._timer = self._link.loop.call_later(self._timeout - idle, self.on_confirm_timeout)

    def on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is self.channel:
            self.channel = None
            if self._batch is not None:
                self._batch.channel_closed(translate(reason))
        self._close_reason = reason
        self._link.stop()

    def connection_lost(self, reason: BaseException) -> None:
        """The connection closed: whatever is unconfirmed is :class:`BrokerUnavailable`."""
        self.channel = None
        if self._batch is not None:
            error = translate(reason)
            if not isinstance(error, BrokerUnavailable):
                error = BrokerUnavailable(f"connection lost before the broker confirmed: {error}")
            self._batch.settle_rest(error)
