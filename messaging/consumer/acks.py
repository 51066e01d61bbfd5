"""Carrying verdicts out on a channel: one (multiple-)ack for a batch's committed work,
requeue, nack to the queue's own dead-letter exchange, or a confirmed copy to the
app's dead-letter queue (or to a delay queue) followed by the ack. Runs on whichever
thread holds the connection (see :mod:`.io`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..amqp.retry_delays import delay_queue_arguments, retry_headers
from ..broker.dead_letters import DeadLetterer
from ..broker.delay_publisher import DelayPublisher
from ..broker.pika_properties import copy_properties, reply_properties
from ..exceptions import BrokerError
from ..models import dead_letter_queue_name
from ..observability import log_fields
from . import fault_points
from .retry_policy import QueuePolicy, Verdict
from .verdicts import Settlement

logger = logging.getLogger("messaging.consumer")


class Settler:
    """Settles deliveries of the current channel; ``attach`` it to each new one.

    ``delay_publisher`` makes the publisher of delayed copies from the connection
    (:class:`~messaging.broker.delay_publisher.DelayPublisher`; a test passes its own)."""

    def __init__(
        self,
        policies: Mapping[str, QueuePolicy],
        sources: Mapping[str, Any] | None = None,
        delays_refused: set[str] | None = None,
        *,
        delay_publisher: Callable[[Any], Any] = DelayPublisher,
        single_acks: bool = False,
    ) -> None:
        self.policies = policies
        #: ``--threads``: batches finish out of order, so a multiple-ack could cover a
        #: delivery still running on another worker; each delivery is acked by itself.
        self.single_acks = single_acks
        self.make_delayer = delay_publisher
        #: Queue name -> its QueueSpec: the type a DLQ declared here follows.
        self.sources = dict(sources or {})
        self.connection: Any = None
        self.channel: Any = None
        self.generation = 0
        self._dead_letterer: Any = None
        self._delayer: Any = None
        #: Queues whose delay queue the broker refused for good (shared with Failures).
        self.delays_refused = delays_refused if delays_refused is not None else set()

    def attach(self, connection: Any, channel: Any, generation: int) -> None:
        self.connection, self.channel, self.generation = connection, channel, generation
        self._dead_letterer = self._delayer = None

    def detach(self) -> None:
        self.channel = None
        self._dead_letterer = self._delayer = None

    def cancel(self, consumer_tags: Sequence[str]) -> None:
        """basic.cancel each of ``consumer_tags`` on the current channel (a stopping
        consumer); nothing when the channel is gone."""
        channel = self.channel
        if not _open(channel):
            return
        for tag in consumer_tags:
            try:
                channel.basic_cancel(tag)
            except Exception:  # noqa: BLE001 - the channel is going anyway
                logger.info("basic.cancel of %s failed", tag, exc_info=True)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Carry ``settlements`` out in order (none when they belong to a channel that is
        gone: the broker redelivers them)."""
        channel = self.channel
        if not settlements:
            return
        if settlements[0].delivery.generation != self.generation or not _open(channel):
            logger.info("not settling %d deliveries from a closed channel", len(settlements))
            return
        last_ack, acks = 0, 0
        for settlement in settlements:
            tag = settlement.delivery.delivery_tag
            if settlement.verdict is Verdict.ACK:
                if settlement.replies:
                    _send_replies(channel, settlement.replies)
                if self.single_acks:
                    channel.basic_ack(delivery_tag=tag)
                    continue
                last_ack, acks = max(last_ack, tag), acks + 1
            elif settlement.verdict is Verdict.DEAD_LETTER:
                self._move_to_dead_letter_queue(channel, settlement)
            elif settlement.verdict is Verdict.DELAY:
                self._move_to_delay_queue(channel, settlement)
            elif settlement.verdict is Verdict.REQUEUE:
                channel.basic_nack(delivery_tag=tag, requeue=True)
            elif settlement.verdict is Verdict.NACK:
                # The queue's own dead-letter exchange (or policy) takes it.
                channel.basic_nack(delivery_tag=tag, requeue=False)
        if acks:
            # A batch is consecutive deliveries of one channel, settled in tag order, so
            # everything up to last_ack still unsettled is this batch's committed work.
            channel.basic_ack(delivery_tag=last_ack, multiple=acks > 1)

    def _move_to_dead_letter_queue(self, channel: Any, settlement: Settlement) -> None:
        delivery = settlement.delivery
        policy = self.policies.get(delivery.queue, QueuePolicy())
        dlq = policy.dead_letter_queue or dead_letter_queue_name(delivery.queue)
        try:
            if self._dead_letterer is None:
                self._dead_letterer = DeadLetterer(self.connection, self.sources)
            self._dead_letterer.publish(
                delivery.queue,
                dlq,
                delivery.body,
                copy_properties(delivery.properties, extra_death=settlement.death),
            )
        except BrokerError as exc:
            # Not in the DLQ, so keep it on its queue: requeued, never dropped.
            logger.error(
                "could not move message to %s (%s); requeued",
                dlq,
                exc,
                extra=log_fields(delivery, outcome="requeued"),
            )
            channel.basic_nack(delivery_tag=delivery.delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag=delivery.delivery_tag)

    def _move_to_delay_queue(self, channel: Any, settlement: Settlement) -> None:
        """Publish the delayed copy (confirmed), then ack the original; if the broker
        does not take the copy, requeue the original (its redelivery is delayed again)."""
        delivery, retry = settlement.delivery, settlement.retry or {}
        name = settlement.delay_queue or ""
        arguments = delay_queue_arguments(
            delivery.queue, int(retry["delay_ms"]) / 1000, quorum=settlement.quorum
        )
        headers = retry_headers(delivery.properties.headers, retry)
        try:
            if self._delayer is None:
                self._delayer = self.make_delayer(self.connection)
            props = copy_properties(delivery.properties, extra_headers=headers)
            self._delayer.publish(name, arguments, delivery.body, props)
        except BrokerError as exc:
            if not exc.temporary:
                self.delays_refused.add(delivery.queue)
            logger.error("could not delay message in %s (%s); requeued at once", name, exc)
            channel.basic_nack(delivery_tag=delivery.delivery_tag, requeue=True)
            return
        fault_points.reach(fault_points.AFTER_DELAY_CONFIRMED, delivery=delivery)
        channel.basic_ack(delivery_tag=delivery.delivery_tag)


def _send_replies(channel: Any, replies: Sequence[Any]) -> None:
    """Publish a committed delivery's replies on its channel, before its ack (so a
    consumer killed in between has committed the reply on the receipt, and the
    redelivered request gets it again)."""
    for reply in replies:
        props = reply.properties
        if props is None:
            props = reply_properties(reply.correlation_id, reply.content_type)
        channel.basic_publish(
            exchange=reply.exchange,
            routing_key=reply.routing_key,
            body=reply.body,
            properties=props,
        )


def _open(channel: Any) -> bool:
    return channel is not None and channel.is_open
