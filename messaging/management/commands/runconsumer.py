"""``manage.py runconsumer QUEUE [QUEUE ...]`` — consume with prefetch and manual ack,
writing a receipt for every delivery before acking it."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging import broker, conf
from messaging.amqp.stream_offsets import consume_arguments, parse_offset
from messaging.amqp.validators import first_message, validate_exchange_name, validate_routing_key
from messaging.broker.queue_ops import inspect_queue
from messaging.broker.subscriptions import missing_exchanges
from messaging.consumer import Consumer
from messaging.consumer.handlers import DEFAULT_HANDLER, discard, handler_path_for, load_handler
from messaging.exceptions import BrokerError, MessagingError
from messaging.management import reloading
from messaging.management.commandline import (
    AMQP_SHORT_MAX,
    bounded_int,
    configure_logging,
    name_text,
    non_negative_float,
    positive_float,
    positive_int,
)
from messaging.management.observing import add_observing_arguments, observing
from messaging.management.shutdown import GracefulStop
from messaging.models import Queue
from messaging.publishing import get_queue

logger = logging.getLogger("messaging")

#: Where messages that fail MAX_ATTEMPTS times on a ``--bind`` queue go (its own name is
#: the broker's, gone with the connection, and ``amq.`` names cannot be declared).
SUBSCRIPTION_DEAD_LETTER_QUEUE = "messaging.subscriptions.dlq"


def parse_binding(text: str) -> tuple[str, str]:
    """argparse type: ``EXCHANGE[:ROUTING_KEY]`` (split at the first colon)."""
    exchange, _sep, routing_key = text.partition(":")
    if not exchange:
        raise argparse.ArgumentTypeError(
            f"expected EXCHANGE[:ROUTING_KEY] with an exchange name, got {text!r} (the "
            "default exchange takes no bindings)"
        )
    for value, check in ((exchange, validate_exchange_name), (routing_key, validate_routing_key)):
        try:
            check(value)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(first_message(exc)) from None
    return exchange, routing_key


def add_subscription_arguments(parser: CommandParser) -> None:
    """``--bind`` (tutorials 3-5) and ``--offset`` (streams)."""
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        type=parse_binding,
        metavar="EXCHANGE[:ROUTING_KEY]",
        help="With no QUEUE: consume a fresh exclusive, server-named queue bound to "
        "this existing exchange with this routing key (default empty; repeatable).",
    )
    parser.add_argument(
        "--offset",
        type=parse_offset,
        default=None,
        metavar="first|last|next|N|TIMESTAMP",
        help="Where to start reading a stream (x-stream-offset): first, last, next, an "
        "offset N, or an ISO 8601 timestamp.",
    )


def describe_bindings(binds: list[tuple[str, str]]) -> str:
    return ", ".join(f"{e} (routing key {k!r})" if k else e for e, k in binds)


def add_concurrency_arguments(parser: CommandParser) -> None:
    """``--threads``, ``--shutdown-timeout`` and ``--reload``."""
    parser.add_argument(
        "--threads",
        type=bounded_int(1, 1024),
        default=None,
        metavar="N",
        help="Run up to N handlers at once, each on a worker thread with its own database "
        "connection and its receipt committed before its ack (default MESSAGING['THREADS'], "
        "1). Messages of a queue may then finish out of order.",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="After SIGTERM/SIGINT, give running handlers this long to finish, then exit 1 "
        "leaving their deliveries to the broker (default MESSAGING['SHUTDOWN_TIMEOUT'], 25).",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="Restart when a Python file changes (Django's autoreloader, as runserver), "
        "finishing the messages in hand first. For development; off unless given.",
    )


def default_prefetch(prefetch: int | None, threads: int) -> int:
    """``--prefetch`` if given; else MESSAGING['PREFETCH'], raised to twice the threads
    (a delivery is waiting whenever a worker frees up)."""
    if prefetch:
        return prefetch
    configured = int(conf.get("PREFETCH"))
    return configured if threads <= 1 else min(AMQP_SHORT_MAX, max(configured, 2 * threads))


def consumer_stopper(consumer: Consumer, health: Any, timeout: float | None) -> GracefulStop:
    """The signals and deadline of a consumer: stop consuming, withdraw the health file,
    mark the registry row stopped on a forced exit."""

    def stop() -> None:
        if health is not None:
            health.withdraw()
        consumer.stop()

    def exit_now(reason: str) -> None:
        if consumer.registry is not None:
            consumer.registry.mark_stopped(reason)

    return GracefulStop(
        stop,
        what="messages",
        timeout=timeout or float(conf.get("SHUTDOWN_TIMEOUT")),
        running=lambda: f"{consumer.in_flight} handler(s)" if consumer.in_flight else "",
        on_exit_now=exit_now,
        command="runconsumer",
    )


class Command(BaseCommand):
    help = (
        "Consume QUEUE(s) with manual acks: call the handler, commit its receipt, then ack. "
        "SIGTERM/SIGINT stop consuming, finish the messages in hand (within "
        "--shutdown-timeout) and exit 0; a second signal a second later exits at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queues", nargs="*", metavar="QUEUE")
        parser.add_argument(
            "--tasks",
            nargs="?",
            const="*",
            default=None,
            metavar="ALIAS",
            help="Run Django tasks too: the queues of every RabbitMQBackend in TASKS (or of "
            "backend ALIAS), each task in its receipt's transaction (messaging.task_backend).",
        )
        add_subscription_arguments(parser)
        parser.add_argument(
            "--prefetch",
            type=bounded_int(1, AMQP_SHORT_MAX),
            default=None,
            help="basic.qos prefetch_count, 1..65535 (default MESSAGING['PREFETCH'], 1).",
        )
        parser.add_argument(
            "--handler",
            default=None,
            help="Dotted path of the handler for every queue (default: MESSAGING['CONSUMERS'] "
            "or one that prints the body like the tutorial).",
        )
        parser.add_argument(
            "--max-messages", type=positive_int, default=None, help="Exit 0 after N deliveries."
        )
        parser.add_argument(
            "--idle-timeout",
            type=non_negative_float,
            default=None,
            metavar="SECONDS",
            help="Exit 0 after this long without a delivery.",
        )
        parser.add_argument(
            "--name",
            type=name_text,
            default="",
            help="Consumer name on receipts, at most 255 characters (default host:pid).",
        )
        parser.add_argument(
            "--batch-size",
            type=bounded_int(1, AMQP_SHORT_MAX),
            default=None,
            help="Deliveries whose handlers and receipts share one commit and one "
            "multiple-ack, at most the prefetch (default: prefetch/3, capped at 500; 1 at "
            "prefetch 1-3). A batch also closes after MESSAGING['BATCH_FLUSH_INTERVAL'] (50 ms).",
        )
        add_concurrency_arguments(parser)
        add_observing_arguments(parser, health_file=True)

        parser.add_argument(
            "--connect-timeout",
            type=non_negative_float,
            default=None,
            metavar="SECONDS",
            help="Give up (exit 1 with one line) when the first connection and "
            "declarations have not succeeded within SECONDS (default: keep retrying "
            "with backoff, logging each try).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["verbosity"])
        names, handlers, queues = self._targets(options, options["verbosity"])
        if options["reload"] and reloading.in_parent():
            sys.exit(reloading.parent())
        self._consume(names, handlers, queues, options)

    def _consume(
        self, names: list[str], handlers: dict[str, Any], queues: list[Any], options: dict
    ) -> None:
        verbosity: int = options["verbosity"]
        threads = options["threads"] or conf.get("THREADS")
        consumer = Consumer(
            queues,
            handlers,
            prefetch=default_prefetch(options["prefetch"], threads),
            name=options["name"],
            max_messages=options["max_messages"],
            idle_timeout=options["idle_timeout"],
            batch_size=options["batch_size"],
            register=True,
            consume_arguments=consume_arguments(options["offset"]),
            connect_timeout=options["connect_timeout"],
            on_event=(lambda text: self.stderr.write(text)) if verbosity >= 2 else None,
            threads=threads,
        )
        if verbosity >= 1:
            self.stderr.write(
                f" [*] Waiting for messages on {', '.join(names)} {consumer.describe()}. "
                "To exit press CTRL+C"
            )
        with observing(options) as health:
            stopper = consumer_stopper(consumer, health, options["shutdown_timeout"])
            restore = stopper.install()
            try:
                if options["reload"]:
                    stats = reloading.run_in_child(consumer.run, stopper.request)
                else:
                    stats = consumer.run()
            except BrokerError as exc:
                raise CommandError(str(exc)) from exc
            finally:
                restore()
        if verbosity >= 1:
            self.stderr.write(
                f" [*] Stopped: {stats.handled} handled, {stats.acked} acked, "
                f"{stats.duplicates} duplicate, {stats.failed} failed "
                f"({stats.rejected} rejected, {stats.dead_lettered} dead-lettered)"
                + (f", {stats.over_budget} over their time budget" if stats.over_budget else "")
            )

    def _targets(
        self, options: dict[str, Any], verbosity: int
    ) -> tuple[list[str], dict[str, Any], list[Any]]:
        """What to consume: (names to show, handlers, queues or specs)."""
        names = list(dict.fromkeys(options["queues"]))
        binds: list[tuple[str, str]] = list(dict.fromkeys(options["bind"]))
        tasks = self._task_queues(options)
        if bool(names or tasks) == bool(binds):
            raise CommandError(
                "give QUEUE(s) and/or --tasks, or --bind EXCHANGE[:ROUTING_KEY], not both"
            )
        # Handlers first: a handler that cannot run is refused before anything connects.
        if binds:
            first = binds[0][0]  # MESSAGING["CONSUMERS"] may name a handler per exchange
            handlers = {"": self._load_handlers([first], options["handler"], verbosity)[first]}
            queues: list[Any] = [self._subscription(binds)]
            names = [f"a server-named queue bound to {describe_bindings(binds)}"]
        else:
            handlers = self._load_handlers(names, options["handler"], verbosity)
            queues = [self._resolve_queue(name) for name in names]
        if options["offset"] is not None:
            self._check_streams(queues)
        for name, (row, runner) in tasks.items():
            names, queues, handlers[name] = [*names, name], [*queues, row], runner
        return names, handlers, queues

    def _task_queues(self, options: dict[str, Any]) -> dict[str, Any]:
        """``--tasks [ALIAS]``: task queue name → (its Queue row, the task runner)."""
        if options["tasks"] is None:
            return {}
        try:
            from messaging.task_backend.worker_queues import task_queues  # the [tasks] extra

            return task_queues(options["tasks"], options["name"])
        except (ImproperlyConfigured, MessagingError) as exc:
            raise CommandError(str(exc)) from exc

    def _load_handlers(
        self, names: list[str], override: str | None, verbosity: int
    ) -> dict[str, Any]:
        """Each queue's handler, imported and checked (an ``async def`` or a callable
        that takes neither one Delivery nor the four pika arguments is refused)."""
        handlers = {}
        for name in names:
            path = handler_path_for(name, override)
            try:
                handlers[name] = (
                    discard if path == DEFAULT_HANDLER and verbosity == 0 else load_handler(path)
                )
            except MessagingError as exc:
                raise CommandError(str(exc)) from exc
        return handlers

    def _subscription(self, binds: list[tuple[str, str]]) -> broker.QueueSpec:
        """The spec of ``--bind``'s queue; its exchanges must exist (used passively)."""
        try:
            missing = missing_exchanges(exchange for exchange, _key in binds)
        except BrokerError as exc:
            raise CommandError(str(exc)) from exc
        if missing:
            raise CommandError(
                f"unknown exchange {missing[0]!r}: it does not exist on the broker "
                "(--bind uses an exchange as it is; declare it first)"
            )
        return broker.QueueSpec(
            name="", bindings=tuple(binds), dead_letter_queue=SUBSCRIPTION_DEAD_LETTER_QUEUE
        )

    def _check_streams(self, queues: list[Any]) -> None:
        for queue in queues:
            if isinstance(queue, Queue) and queue.queue_type != Queue.QueueType.STREAM:
                raise CommandError(
                    f"--offset is for streams: queue {queue.name!r} is a {queue.queue_type} queue"
                )
            if isinstance(queue, broker.QueueSpec) and queue.bindings:
                raise CommandError("--offset is for streams, not --bind")

    def _resolve_queue(self, name: str) -> Queue | broker.QueueSpec:
        """The Queue row (declared as it says); a queue without a row must exist on the
        broker and is consumed as it is."""
        try:
            row = get_queue(name, create=False)
        except Queue.DoesNotExist:
            row = None
        except MessagingError as exc:
            raise CommandError(str(exc)) from exc
        if row is not None:
            return row
        try:
            with broker.connection() as conn:
                state = inspect_queue(conn.channel(), name)
        except BrokerError as exc:
            if broker.is_temporary(exc):
                # The broker is down for now: the consumer waits for it, and its
                # passive declare says then whether the queue exists.
                return broker.QueueSpec(name=name, passive=True)
            raise CommandError(str(exc)) from exc
        if state is None:
            raise CommandError(
                f"unknown queue {name!r}: no Queue row and no such queue on the broker "
                "(create it with `manage.py send`, the admin, or a Queue row + declarequeues)"
            )
        return broker.QueueSpec(name=name, passive=True)
