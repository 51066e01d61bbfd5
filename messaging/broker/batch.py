"""The book-keeping of one :meth:`PipelinedPublisher.publish_many` call: which messages
were handed to pika, which delivery tags await a confirm, and each message's outcome."""

from __future__ import annotations

from collections import deque
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import ReturnedMessage

from ..exceptions import BrokerError, PublishInterrupted, PublishNacked
from .errors import translate
from .outgoing import Outgoing
from .pika_properties import properties


class Batch:
    """Messages ``items[:sent]`` were handed to pika; an outcome is ``None`` (confirmed),
    a :class:`BrokerError`, or ``False`` while unknown."""

    __slots__ = (
        "items",
        "results",
        "sent",
        "pending",
        "order",
        "by_id",
        "returned",
        "left",
        "_props",
        "_props_key",
    )

    def __init__(self, items: list[Outgoing]) -> None:
        self.items = items
        self.results: list[BrokerError | None | bool] = [False] * len(items)  # False: unknown
        self.sent = 0  # items[:sent] were handed to pika
        self.pending: dict[int, int] = {}  # delivery tag -> index, awaiting a confirm
        self.order: deque[int] = deque()  # delivery tags awaiting a confirm, oldest first
        self.by_id: dict[str, int] = {}  # message_id -> index, for basic.return
        self.returned: dict[int, BrokerError] = {}  # index -> Unroutable
        self.left = len(items)  # outcomes still unknown
        self._props: pika.BasicProperties | None = None
        self._props_key: tuple[Any, ...] | None = None

    # ----------------------------------------------------------------- sending

    def properties(self, item: Outgoing) -> pika.BasicProperties:
        """One BasicProperties object per distinct (content type, headers, persistence,
        other properties): basic_publish encodes it at once, so only message_id and
        timestamp change between messages. (Keyed by ``id(headers)`` and ``id(extra)``:
        only valid while the batch lives.)"""
        key = (item.content_type, id(item.headers), item.persistent, id(item.extra))
        if key != self._props_key or self._props is None:
            self._props = properties(
                content_type=item.content_type,
                headers=item.headers,
                persistent=item.persistent,
                extra=item.extra,
            )
            self._props_key = key
        self._props.message_id = item.message_id or None
        self._props.timestamp = item.timestamp
        return self._props

    def sent_as(self, index: int, tag: int) -> None:
        """``items[index]`` went out with delivery tag ``tag``."""
        self.sent += 1
        self.pending[tag] = index
        self.order.append(tag)
        message_id = self.items[index].message_id
        if message_id:
            self.by_id[message_id] = index

    def refused(self, index: int, error: BrokerError) -> None:
        """pika could not encode ``items[index]``: nothing was written."""
        self.sent += 1
        self.settle(index, error)
        self._props = None  # it may hold the refused item's properties

    # ----------------------------------------------------------------- outcomes

    def settle(self, index: int, outcome: BrokerError | None) -> None:
        if self.results[index] is False:
            self.results[index] = outcome
            self.left -= 1

    def settle_rest(self, error: BrokerError) -> None:
        """Every message without an outcome (sent or not) gets ``error``."""
        for index in self.pending.values():
            self.settle(index, error)
        self.pending.clear()
        for index in range(self.sent, len(self.items)):
            self.settle(index, error)
        self.sent = len(self.items)

    def confirm(self, tag: int, *, multiple: bool, nacked: bool) -> None:
        """basic.ack / basic.nack for ``tag`` (and every older one if ``multiple``)."""
        pending, order = self.pending, self.order
        if multiple:
            tags = []
            while order and order[0] <= tag:
                tags.append(order.popleft())
        else:
            tags = [tag]
        for done in tags:
            index = pending.pop(done, None)
            if index is None:
                continue
            message_id = self.items[index].message_id
            if message_id:
                self.by_id.pop(message_id, None)
            if nacked:
                self.settle(index, PublishNacked("the broker nacked the message (basic.nack)"))
            else:
                self.settle(index, self.returned.pop(index, None))
        while order and order[0] not in pending:
            order.popleft()

    def returned_message(self, method: Any, props: Any, body: bytes) -> None:
        """basic.return (before its confirm): that message is :class:`Unroutable`."""
        index = self.by_id.get(props.message_id) if props.message_id else None
        if index is None:  # no message_id: the oldest unconfirmed one with that destination
            for candidate in self.pending.values():
                item = self.items[candidate]
                if (item.exchange, item.routing_key) == (method.exchange, method.routing_key):
                    index = candidate
                    break
        if index is not None:
            returned = pe.UnroutableError([ReturnedMessage(method, props, body)])
            self.returned[index] = translate(returned)

    def channel_closed(self, error: BrokerError) -> None:
        """The broker closed the channel: a lone unconfirmed message (nothing else sent)
        caused it and gets ``error``; every other open outcome is interrupted."""
        if len(self.pending) == 1 and self.sent == len(self.items):
            self.settle(next(iter(self.pending.values())), error)
            self.pending.clear()
        self.settle_rest(
            PublishInterrupted(f"the broker closed the channel before confirming: {error}")
        )

    def outcomes(self) -> list[BrokerError | None]:
        return [
            PublishInterrupted("no outcome from the broker") if r is False else r  # type: ignore[misc]
            for r in self.results
        ]
