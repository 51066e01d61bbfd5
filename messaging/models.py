"""Queues the app declares, messages it sends, receipts of deliveries it handled."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf
from .amqp.exchange_rules import (
    validate_arguments_object,
    validate_binding_arguments,
    validate_binding_key,
    validate_declared_exchange_name,
    validate_exchange_type,
)
from .amqp.properties import validate_expiration, validate_priority, validate_property_text
from .amqp.schemas import check_schema
from .amqp.validators import (
    validate_content_type,
    validate_exchange_name,
    validate_headers,
    validate_queue_name,
    validate_routing_key,
    validate_x_arguments,
)
from .fields import LooseForeignKey

#: Arguments that have their own field on ``Queue`` and may not appear in ``arguments``.
RESERVED_ARGUMENTS = ("x-queue-type", "x-dead-letter-exchange", "x-dead-letter-routing-key")

#: The exchange (direct, durable) the app routes dead letters through: ``runconsumer``
#: publishes a message that failed MAX_ATTEMPTS times (or was rejected) from queue ``q``
#: here with routing key ``q``, and ``q.dlq`` is bound to it with that key. The queue
#: itself gets no x-dead-letter arguments, so plain pika scripts that declare it with
#: ``durable=True`` (as in the tutorial) keep working.
DEAD_LETTER_EXCHANGE = "messaging.dlx"


def dead_letter_queue_name(queue: str) -> str:
    """The dead-letter queue of ``queue``: ``<queue>.dlq``."""
    return f"{queue}.dlq"


def new_message_id() -> str:
    return str(uuid.uuid4())


class Queue(models.Model):
    class QueueType(models.TextChoices):
        CLASSIC = "classic", _("classic")
        QUORUM = "quorum", _("quorum")
        #: RabbitMQ 3.9+ append-only log: consumers read from an offset
        #: (``runconsumer --offset``); always durable.
        STREAM = "stream", _("stream")

    name = models.CharField(
        _("name"),
        max_length=255,
        unique=True,
        validators=[validate_queue_name],
        help_text=_(
            "At most 251 bytes of UTF-8 (so that <name>.dlq fits AMQP's 255), no control "
            "characters or surrounding spaces; names starting with 'amq.' are reserved."
        ),
    )
    durable = models.BooleanField(
        _("durable"), default=True, help_text=_("Survives a broker restart.")
    )
    queue_type = models.CharField(
        _("queue type"), max_length=16, choices=QueueType.choices, default=QueueType.CLASSIC
    )
    dead_letter_exchange = models.CharField(
        _("dead-letter exchange"),
        max_length=255,
        blank=True,
        help_text=_("x-dead-letter-exchange: where rejected or expired messages go."),
    )
    dead_letter_routing_key = models.CharField(
        _("dead-letter routing key"), max_length=255, blank=True
    )
    dead_lettering = models.BooleanField(
        _("dead-letter queue"),
        default=True,
        help_text=_(
            "Declare <name>.dlq; runconsumer moves messages that fail MAX_ATTEMPTS times (or "
            "are rejected) there through the messaging.dlx exchange. When a dead-letter "
            "exchange is set above, the broker dead-letters instead."
        ),
    )
    max_attempts = models.PositiveIntegerField(
        _("max attempts"),
        null=True,
        blank=True,
        help_text=_("Handler attempts before dead-lettering (empty: MESSAGING['MAX_ATTEMPTS'])."),
    )
    handler_time_budget = models.FloatField(
        _("handler time budget"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001)],
        help_text=_(
            "Seconds a handler may run before a warning is logged and counted (empty: "
            "MESSAGING['HANDLER_TIME_BUDGET']). A warning only: the handler is not stopped."
        ),
    )
    arguments = models.JSONField(
        _("other arguments"),
        default=dict,
        blank=True,
        validators=[validate_x_arguments],
        help_text=_('Other x- arguments, e.g. {"x-max-length": 10000}.'),
    )
    schema = models.JSONField(
        _("JSON Schema"),
        null=True,
        blank=True,
        default=None,
        validators=[check_schema],
        help_text=_(
            "Optional JSON Schema every message body must match: publish() refuses a body "
            "that does not, and runconsumer sends such a delivery to <name>.dlq unhandled."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["name"]
        permissions = [("purge_queue", _("Can purge a queue on the broker"))]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        check_schema(self.schema)  # refused when saving, whoever saves it
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if self.queue_type == self.QueueType.QUORUM and not self.durable:
            raise ValidationError({"durable": _("Quorum queues are always durable.")})
        if self.queue_type == self.QueueType.STREAM and not self.durable:
            raise ValidationError({"durable": _("Streams are always durable.")})
        if self.dead_letter_routing_key and not self.dead_letter_exchange:
            raise ValidationError(
                {"dead_letter_routing_key": _("Set a dead-letter exchange to use a routing key.")}
            )
        if self.name and self.name.endswith(".dlq") and self.dead_lettering:
            self.dead_lettering = False  # a dead-letter queue has no dead-letter queue
        if isinstance(self.arguments, dict):
            for key in RESERVED_ARGUMENTS:
                if key in self.arguments:
                    raise ValidationError(
                        {"arguments": _("Set %(key)s with its own field.") % {"key": key}}
                    )

    def declare_arguments(self) -> dict[str, Any]:
        """The ``arguments`` table sent with ``queue.declare`` for this row."""
        args: dict[str, Any] = dict(self.arguments or {})
        if self.queue_type in (self.QueueType.QUORUM, self.QueueType.STREAM):
            args["x-queue-type"] = str(self.queue_type)
        if self.dead_letter_exchange:
            args["x-dead-letter-exchange"] = self.dead_letter_exchange
            if self.dead_letter_routing_key:
                args["x-dead-letter-routing-key"] = self.dead_letter_routing_key
        return args

    @property
    def dead_letter_queue(self) -> str | None:
        """Name of the app-managed dead-letter queue, or None when the app manages none."""
        if self.dead_letter_exchange or not self.dead_lettering:
            return None
        return dead_letter_queue_name(self.name)

    @property
    def has_dead_letter_exchange(self) -> bool:
        """True when the broker itself dead-letters messages rejected from this queue."""
        return bool(self.dead_letter_exchange)


class MessageQuerySet(models.QuerySet):
    def pending(self) -> MessageQuerySet:
        return self.filter(status=Message.Status.PENDING)

    def published(self) -> MessageQuerySet:
        return self.filter(status=Message.Status.PUBLISHED)

    def failed(self) -> MessageQuerySet:
        return self.filter(status=Message.Status.FAILED)

    def held(self) -> MessageQuerySet:
        return self.filter(status=Message.Status.HELD)


class Message(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        PUBLISHED = "published", _("published")
        FAILED = "failed", _("failed")
        #: Composed by a user without the publish permission: the relay leaves it alone
        #: until a user with ``publish_message`` publishes it.
        HELD = "held", _("held (waiting for a user with publish permission)")

    message_id = models.CharField(
        _("message id"),
        max_length=255,
        unique=True,
        default=new_message_id,
        editable=False,
        help_text=_("Sent as the AMQP message_id property."),
    )
    queue = models.ForeignKey(
        Queue,
        verbose_name=_("queue"),
        related_name="messages",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("Destination queue (via the default exchange). Empty for an exchange."),
    )
    exchange = models.CharField(
        _("exchange"), max_length=255, blank=True, validators=[validate_exchange_name]
    )
    routing_key = models.CharField(
        _("routing key"), max_length=255, blank=True, validators=[validate_routing_key]
    )
    body = models.BinaryField(_("body"), default=b"", blank=True)
    content_type = models.CharField(
        _("content type"), max_length=255, blank=True, validators=[validate_content_type]
    )
    headers = models.JSONField(
        _("headers"), default=dict, blank=True, validators=[validate_headers]
    )
    persistent = models.BooleanField(
        _("persistent"), default=True, help_text=_("delivery_mode=2: survives a broker restart.")
    )
    correlation_id = models.CharField(
        _("correlation id"),
        max_length=255,
        blank=True,
        validators=[validate_property_text],
        help_text=_("AMQP correlation_id: ties a reply to its request."),
    )
    reply_to = models.CharField(
        _("reply to"),
        max_length=255,
        blank=True,
        validators=[validate_property_text],
        help_text=_("AMQP reply_to: the queue a reply should be sent to."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        null=True,
        blank=True,
        validators=[validate_priority],
        help_text=_("0-255; only a queue declared with x-max-priority orders by it."),
    )
    expiration = models.PositiveBigIntegerField(
        _("expiration (ms)"),
        null=True,
        blank=True,
        validators=[validate_expiration],
        help_text=_("Per-message TTL in milliseconds: the broker drops it after that long."),
    )
    type = models.CharField(
        _("type"),
        max_length=255,
        blank=True,
        validators=[validate_property_text],
        help_text=_("AMQP type property (the message's kind, e.g. order.created)."),
    )
    app_id = models.CharField(
        _("app id"),
        max_length=255,
        blank=True,
        validators=[validate_property_text],
        help_text=_("AMQP app_id: the application that sent it."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("publish attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    error_class = models.CharField(
        _("error class"),
        max_length=64,
        blank=True,
        help_text=_(
            "The kind of the last error (Unroutable, QueueMismatch, BrokerUnavailable…). "
            "A failed row whose error class is a broker outage is retried by the relay."
        ),
    )
    next_attempt_at = models.DateTimeField(
        _("next attempt"),
        null=True,
        blank=True,
        help_text=_("When the relay may try a pending message again (backoff); empty = now."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    # W3C trace context of the request that created the row (OpenTelemetry), sent as
    # the traceparent / tracestate headers whenever the row is published.
    traceparent = models.CharField(_("traceparent"), max_length=55, blank=True, editable=False)
    tracestate = models.CharField(_("tracestate"), max_length=512, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("published by"),
        related_name="+",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
    )

    objects = MessageQuerySet.as_manager()

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-id"]
        permissions = [("publish_message", _("Can publish a message to the broker"))]
        indexes = [
            models.Index(fields=["status", "created_at"], name="messaging_msg_status_idx"),
            models.Index(fields=["queue", "status"], name="messaging_msg_queue_idx"),
            models.Index(fields=["created_at"], name="messaging_msg_created_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="messaging_msg_due_idx"),
            # The overview's published-per-minute counts: one range of published_at.
            models.Index(fields=["published_at", "queue"], name="messaging_msg_published_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(queue__isnull=False) & Q(exchange="") & Q(routing_key=""))
                | (Q(queue__isnull=True) & ~Q(exchange="")),
                name="messaging_message_has_destination",
                violation_error_message=_(
                    "A message goes to a queue, or to an exchange with a routing key — "
                    "one of the two."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.destination_label} ({self.status})"

    @property
    def destination(self) -> tuple[str, str]:
        """(exchange, routing key) the message is published with."""
        if self.exchange:
            return self.exchange, self.routing_key
        return "", self.routing_key or (self.queue.name if self.queue is not None else "")

    @property
    def destination_label(self) -> str:
        exchange, routing_key = self.destination
        return f"{exchange}/{routing_key}" if exchange else routing_key

    @property
    def body_bytes(self) -> bytes:
        """The body as ``bytes`` on every database backend (some return memoryview)."""
        return bytes(self.body)


class ReceiptQuerySet(models.QuerySet):
    def acked(self) -> ReceiptQuerySet:
        return self.filter(outcome=Receipt.Outcome.ACKED)


class ErrorCauseField(models.CharField):
    """``Receipt.error_cause``: filled from the receipt's ``error`` when an ORM insert or
    save leaves it empty (:func:`messaging.db.error_causes.stored_cause`), so every
    receipt with an error has its cause; the consumer's COPY batches write it
    themselves. A plain CharField in migrations."""

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if not value and model_instance.error:
            from .db.error_causes import stored_cause

            value = stored_cause(model_instance.error)
            setattr(model_instance, self.attname, value)
        return value

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


class Receipt(models.Model):
    class Outcome(models.TextChoices):
        ACKED = "acked", _("acked")
        DUPLICATE = "duplicate", _("duplicate (acked, handler skipped)")
        REQUEUED = "requeued", _("requeued (handler failed or nacked)")
        REJECTED = "rejected", _("rejected (handler rejected it, not requeued)")
        DEAD_LETTERED = "dead_lettered", _("dead-lettered (failed MAX_ATTEMPTS times)")

    message = LooseForeignKey(
        Message,
        to_field="message_id",
        verbose_name=_("message"),
        related_name="receipts",
        on_delete=models.DO_NOTHING,
        # Indexed in Meta instead: a field index on PostgreSQL also builds a second
        # varchar_pattern_ops (_like) index that exact lookups never use.
        db_index=False,
        help_text=_("The AMQP message_id; links to the Message row when one has that id."),
    )
    queue_name = models.CharField(_("queue"), max_length=255)
    consumer_name = models.CharField(_("consumer"), max_length=255, blank=True)
    consumer_host = models.CharField(_("host"), max_length=255, blank=True)
    consumer_pid = models.PositiveIntegerField(_("pid"), null=True, blank=True)
    consumer_tag = models.CharField(_("consumer tag"), max_length=255, blank=True)
    delivery_tag = models.BigIntegerField(_("delivery tag"), null=True, blank=True)
    redelivered = models.BooleanField(_("redelivered"), default=False)
    attempt = models.PositiveIntegerField(
        _("attempt"), default=1, help_text=_("1 for the first delivery, 2 for the first retry…")
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    error = models.TextField(_("error"), blank=True)
    traceback = models.TextField(_("traceback"), blank=True)
    error_cause = ErrorCauseField(
        _("cause"),
        max_length=500,
        blank=True,
        default="",
        db_default="",
        editable=False,
        help_text=_(
            "The error's first line with numbers, ids, addresses and URLs folded "
            "(messaging.db.error_causes.stored_cause), written with a failed receipt; what "
            "the failures page groups by."
        ),
    )
    received_at = models.DateTimeField(_("received"))
    finished_at = models.DateTimeField(_("finished"))
    exchange = models.CharField(
        _("exchange"),
        max_length=255,
        blank=True,
        help_text=_("The exchange the message was published to (empty: the default)."),
    )
    routing_key = models.CharField(_("routing key"), max_length=255, blank=True)
    stream_offset = models.BigIntegerField(
        _("stream offset"),
        null=True,
        blank=True,
        help_text=_("x-stream-offset of a delivery from a stream."),
    )
    reply = models.BinaryField(
        _("reply"),
        null=True,
        blank=True,
        help_text=_(
            "The handler's return value sent to reply_to (sent again, handler not rerun, "
            "to a redelivered request)."
        ),
    )
    reply_content_type = models.CharField(_("reply content type"), max_length=255, blank=True)
    next_attempt_at = models.DateTimeField(
        _("next attempt due"),
        null=True,
        blank=True,
        help_text=_(
            "A failed attempt waiting in a delay queue (RETRY_DELAY > 0): when the broker "
            "puts it back on its queue."
        ),
    )

    objects = ReceiptQuerySet.as_manager()

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["-received_at", "-id"]
        indexes = [
            # Every secondary index slows the consumer's inserts: two, each earning its
            # place. Time first: the overview reads the last hour as one range with the
            # queue and outcome in the index; the admin's ordering, date hierarchy and
            # outcome filter (checked on the index entries) and retention use it too.
            models.Index(
                fields=["received_at", "queue_name", "outcome"], name="messaging_rcpt_time_idx"
            ),
            # One queue's receipts, newest first: admin queue filter, `receipts --queue`,
            # the overview's latency sample and the loose scan for queue names.
            models.Index(fields=["queue_name", "received_at"], name="messaging_rcpt_queue_idx"),
            # Failed receipts only (the failure triage page): partial, so the consumer's
            # acked inserts never touch it.
            models.Index(
                fields=["received_at", "queue_name"],
                name="messaging_rcpt_failed_idx",
                condition=Q(outcome__in=["requeued", "dead_lettered", "rejected"]),
            ),
            # One cause's failed receipts (the failures page's group links, its
            # grouping): partial as above, so acked inserts never touch it.
            models.Index(
                fields=["error_cause", "queue_name", "received_at"],
                name="messaging_rcpt_cause_idx",
                condition=Q(outcome__in=["requeued", "dead_lettered", "rejected"]),
            ),
        ]
        constraints = [
            # Also the message_id index (a message's receipts: the admin inline, the
            # consumer's redelivery look-up, prefix search): message_id first, and the
            # third part is NULL — never equal to another — unless the receipt is acked
            # and has an id, so only acked receipts of one message in one queue clash.
            # One index where there were two: the consumer's inserts update one index
            # keyed by a random id instead of two.
            models.UniqueConstraint(
                F("message"),
                F("queue_name"),
                Case(When(Q(outcome="acked") & ~Q(message=""), then=Value(True))),
                name="messaging_one_acked_receipt",
                violation_error_message=_(
                    "This queue already has an acked receipt for this message_id."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.queue_name} {self.message_id or '(no id)'} {self.outcome}"


def heartbeat_cutoff(now: Any = None) -> Any:
    """A consumer whose last heartbeat is older than this missed 3 and counts as lost."""
    interval = conf.get("CONSUMER_HEARTBEAT_INTERVAL")
    return (now or timezone.now()) - timedelta(seconds=3 * interval)


class ConsumerQuerySet(models.QuerySet):
    def running(self) -> ConsumerQuerySet:
        return self.filter(state=Consumer.State.RUNNING)

    def lost(self, now: Any = None) -> ConsumerQuerySet:
        """Consumers not marked stopped that missed 3 heartbeats (killed, host gone,
        frozen) — the same rule as :attr:`Consumer.is_lost`."""
        cutoff = heartbeat_cutoff(now)
        return self.exclude(state=Consumer.State.STOPPED).filter(last_heartbeat__lt=cutoff)

    def live(self, now: Any = None) -> ConsumerQuerySet:
        cutoff = heartbeat_cutoff(now)
        return self.exclude(state=Consumer.State.STOPPED).filter(last_heartbeat__gte=cutoff)


class Consumer(models.Model):
    """One ``runconsumer`` process: written at start, every few seconds, and at exit."""

    class State(models.TextChoices):
        RUNNING = "running", _("running")
        STOPPING = "stopping", _("stopping")
        STOPPED = "stopped", _("stopped")

    name = models.CharField(_("name"), max_length=255)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("pid"))
    queues = models.JSONField(_("queues"), default=list)
    prefetch = models.PositiveIntegerField(_("prefetch"), default=1)
    threads = models.PositiveIntegerField(
        _("threads"), default=1, help_text=_("Handlers it runs at once (runconsumer --threads).")
    )
    in_flight = models.PositiveIntegerField(
        _("in flight"), default=0, help_text=_("Deliveries whose handlers were running.")
    )
    started_at = models.DateTimeField(_("started"))
    last_heartbeat = models.DateTimeField(_("last heartbeat"))
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    processed = models.PositiveBigIntegerField(_("processed"), default=0)
    failed = models.PositiveBigIntegerField(_("failed"), default=0)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.RUNNING
    )
    last_error = models.TextField(_("last error"), blank=True)

    objects = ConsumerQuerySet.as_manager()

    class Meta:
        verbose_name = _("consumer")
        verbose_name_plural = _("consumers")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["state", "last_heartbeat"], name="messaging_consumer_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.pid})"

    @property
    def is_lost(self) -> bool:
        """Marked running but silent for longer than 3 heartbeat intervals."""
        if self.state == self.State.STOPPED:
            return False
        return self.last_heartbeat < heartbeat_cutoff()

    @property
    def status(self) -> str:
        """``running``, ``stopping``, ``stopped`` or ``lost`` — what the admin shows."""
        return "lost" if self.is_lost else self.state


# --------------------------------------------------------------------------- topology


def _sorted_json(value: Any) -> Any:
    """``value`` with its object keys sorted (one spelling per table, for uniqueness)."""
    if isinstance(value, dict):
        return {key: _sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(item) for item in value]
    return value


class Exchange(models.Model):
    """An exchange the app declares (``declarequeues``, publishing to it, ``runconsumer``
    for its bindings). The broker's built-in ``amq.*`` exchanges and the default
    exchange are used, never declared, so they have no row."""

    class ExchangeType(models.TextChoices):
        DIRECT = "direct", _("direct")
        FANOUT = "fanout", _("fanout")
        TOPIC = "topic", _("topic")
        HEADERS = "headers", _("headers")

    name = models.CharField(
        _("name"),
        max_length=255,
        unique=True,
        validators=[validate_declared_exchange_name],
        help_text=_("At most 255 bytes of UTF-8; names starting with 'amq.' are reserved."),
    )
    exchange_type = models.CharField(
        _("type"),
        max_length=16,
        choices=ExchangeType.choices,
        default=ExchangeType.DIRECT,
        validators=[validate_exchange_type],
    )
    durable = models.BooleanField(
        _("durable"), default=True, help_text=_("Survives a broker restart.")
    )
    auto_delete = models.BooleanField(
        _("auto-delete"),
        default=False,
        help_text=_("The broker deletes it when its last binding is removed."),
    )
    internal = models.BooleanField(
        _("internal"),
        default=False,
        help_text=_("Only other exchanges can publish to it (exchange-to-exchange bindings)."),
    )
    arguments = models.JSONField(
        _("arguments"),
        default=dict,
        blank=True,
        validators=[validate_arguments_object],
        help_text=_('Declaration arguments, e.g. {"alternate-exchange": "unrouted"}.'),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("exchange")
        verbose_name_plural = _("exchanges")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(exchange_type__in=["direct", "fanout", "topic", "headers"]),
                name="messaging_exchange_type_known",
                violation_error_message=_("Unknown exchange type."),
            ),
            models.CheckConstraint(
                condition=~Q(name="") & ~Q(name__startswith="amq."),
                name="messaging_exchange_not_builtin",
                violation_error_message=_(
                    "The default exchange and amq.* exchanges are built in, never declared."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.exchange_type})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Refused when saving, whoever saves it (the admin, a data migration, the ORM).
        self.arguments = _sorted_json(self.arguments) if self.arguments else {}
        self.full_clean(validate_unique=False, validate_constraints=False)
        super().save(*args, **kwargs)


class Binding(models.Model):
    """A binding from ``source`` to a queue or to another exchange (exactly one)."""

    source = models.ForeignKey(
        Exchange,
        verbose_name=_("source exchange"),
        related_name="bindings",
        on_delete=models.CASCADE,
    )
    queue = models.ForeignKey(
        Queue,
        verbose_name=_("queue"),
        related_name="bindings",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    destination_exchange = models.ForeignKey(
        Exchange,
        verbose_name=_("destination exchange"),
        related_name="incoming_bindings",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    routing_key = models.CharField(
        _("routing key"),
        max_length=255,
        blank=True,
        help_text=_(
            "Topic exchanges: dot-separated words, * matches one word and # zero or more. "
            "Direct: matched literally. Fanout and headers: ignored."
        ),
    )
    arguments = models.JSONField(
        _("arguments"),
        default=dict,
        blank=True,
        help_text=_('Headers exchanges: {"x-match": "all", "format": "pdf"} (or "any").'),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("binding")
        verbose_name_plural = _("bindings")
        ordering = ["source__name", "routing_key", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(queue__isnull=False) & Q(destination_exchange__isnull=True))
                | (Q(queue__isnull=True) & Q(destination_exchange__isnull=False)),
                name="messaging_binding_one_destination",
                violation_error_message=_(
                    "A binding goes to a queue or to an exchange — exactly one of the two."
                ),
            ),
            models.UniqueConstraint(
                fields=["source", "queue", "routing_key", "arguments"],
                name="messaging_binding_unique_queue",
                violation_error_message=_("This queue is already bound with this key."),
            ),
            models.UniqueConstraint(
                fields=["source", "destination_exchange", "routing_key", "arguments"],
                name="messaging_binding_unique_exchange",
                violation_error_message=_("This exchange is already bound with this key."),
            ),
        ]

    def __str__(self) -> str:
        key = f" [{self.routing_key}]" if self.routing_key else ""
        return f"{self.source_id and self.source.name} → {self.destination_label}{key}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.arguments = _sorted_json(self.arguments) if self.arguments else {}
        self.full_clean(validate_unique=False, validate_constraints=False)
        super().save(*args, **kwargs)

    @property
    def destination_label(self) -> str:
        if self.queue is not None:
            return self.queue.name
        if self.destination_exchange is not None:
            return f"exchange {self.destination_exchange.name}"
        return "?"

    def clean(self) -> None:
        super().clean()
        self.arguments = _sorted_json(self.arguments) if self.arguments else {}
        if (self.queue_id is None) == (self.destination_exchange_id is None):
            raise ValidationError(
                _("A binding goes to a queue or to an exchange — exactly one of the two.")
            )
        if self.source_id is None:
            return
        kind = self.source.exchange_type
        try:
            validate_binding_key(kind, self.routing_key or "")
        except ValidationError as exc:
            raise ValidationError({"routing_key": exc.messages[0]}) from exc
        try:
            validate_binding_arguments(kind, self.arguments)
        except ValidationError as exc:
            raise ValidationError({"arguments": exc.messages[0]}) from exc


# --------------------------------------------------------------------------- Django tasks


class TaskRecord(models.Model):
    """One task run of :class:`messaging.task_backend.RabbitMQBackend` (a ``django.tasks``
    result): written with the task's outbox message in the enqueuer's transaction, stamped
    by ``runconsumer --tasks`` when an attempt starts, and finished in the same
    transaction as the task and its receipt. ``result_id`` is the message's message_id."""

    class Status(models.TextChoices):
        READY = "READY", _("ready")
        RUNNING = "RUNNING", _("running")
        SUCCESSFUL = "SUCCESSFUL", _("successful")
        FAILED = "FAILED", _("failed")

    result_id = models.CharField(
        _("result id"),
        max_length=255,
        unique=True,
        help_text=_("The task result's id: the AMQP message_id of its message."),
    )
    backend = models.CharField(_("backend"), max_length=255)
    task_path = models.CharField(_("task"), max_length=255)
    queue_name = models.CharField(_("queue"), max_length=255)
    priority = models.SmallIntegerField(_("priority"), default=0)
    args = models.JSONField(_("args"), default=list, blank=True)
    kwargs = models.JSONField(_("kwargs"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.READY
    )
    enqueued_at = models.DateTimeField(_("enqueued"))
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    last_attempted_at = models.DateTimeField(_("last attempted"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    return_value = models.JSONField(_("return value"), null=True, blank=True)
    errors = models.JSONField(
        _("errors"),
        default=list,
        blank=True,
        help_text=_("Per failed attempt: attempt, exception_class_path, traceback, worker."),
    )
    worker_ids = models.JSONField(
        _("workers"), default=list, blank=True, help_text=_("The worker of each attempt.")
    )
    rerun_of = models.CharField(
        _("run again from"),
        max_length=255,
        blank=True,
        help_text=_("The result this one was run again from (admin action)."),
    )

    class Meta:
        verbose_name = _("task result")
        verbose_name_plural = _("task results")
        ordering = ["-enqueued_at", "-id"]
        permissions = [("rerun_taskrecord", _("Can run a task again"))]
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="messaging_task_status_idx"),
            models.Index(fields=["enqueued_at"], name="messaging_task_enqueued_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} {self.result_id} ({self.status})"
