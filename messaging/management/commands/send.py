"""``manage.py send QUEUE [BODY]`` — record and publish persistent, confirmed messages."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from messaging.amqp.properties import MAX_EXPIRATION_MS, MAX_PRIORITY, Properties
from messaging.exceptions import MessagingError
from messaging.management.commandline import bounded_int, configure_logging, positive_int
from messaging.models import Message
from messaging.publishing import (
    NO_JSON,
    PublishResult,
    build_message,
    get_queue,
    send_copies,
)


def parse_header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CommandError(f"--header expects KEY=VALUE, got {text!r}")
    return key, value


class Command(BaseCommand):
    help = (
        "Publish a message to QUEUE (declared durable first). BODY '-' or omitted reads "
        "stdin, bytes kept exactly. Messages are persistent and confirmed by the broker "
        "(many confirms in flight); each one is recorded as a Message row first. If the "
        "broker is down the rows stay pending and the relay sends them later."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Options may come between QUEUE and BODY: `send q1 --header a=b "body"`.
        parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", help="Queue to publish to (or routing key with --exchange).")
        parser.add_argument("body", nargs="?", default="-", help="Message body; '-' = stdin.")
        parser.add_argument(
            "--count", type=positive_int, default=1, help="Send N copies, >= 1 (default 1)."
        )
        parser.add_argument(
            "--header",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="AMQP header (repeatable).",
        )
        parser.add_argument("--content-type", default="", help="AMQP content_type property.")
        parser.add_argument(
            "--json",
            default=None,
            metavar="JSON",
            help="Send this JSON value as the body (checked, re-encoded compactly; "
            "content_type application/json). Not with BODY.",
        )
        parser.add_argument(
            "--exchange",
            default="",
            help="Publish to this exchange instead of straight to QUEUE (QUEUE is then "
            "the default routing key and is not declared). The exchange is declared from "
            "its Exchange row if it has one, else it must exist on the broker.",
        )
        parser.add_argument("--routing-key", default="", help="Routing key (with --exchange).")
        parser.add_argument("--correlation-id", default="", help="AMQP correlation_id property.")
        parser.add_argument("--reply-to", default="", help="AMQP reply_to property.")
        parser.add_argument(
            "--priority",
            type=bounded_int(0, MAX_PRIORITY),
            default=None,
            help="AMQP priority, 0..255 (the queue needs x-max-priority to order by it).",
        )
        parser.add_argument(
            "--expiration",
            type=bounded_int(0, MAX_EXPIRATION_MS),
            default=None,
            metavar="MS",
            help="Per-message TTL in milliseconds (AMQP expiration).",
        )
        parser.add_argument("--type", default="", help="AMQP type property.")
        parser.add_argument(
            "--transient",
            action="store_true",
            help="delivery_mode=1 (default is persistent, delivery_mode=2).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["verbosity"])  # -v 2: when the publisher connects
        count: int = options["count"]
        if count < 1:
            raise CommandError("--count must be at least 1")
        if options["routing_key"] and not options["exchange"]:
            raise CommandError("--routing-key needs --exchange")
        template = self._template(options)
        show_progress = count >= 1000 and options["verbosity"] >= 1 and sys.stderr.isatty()
        with tqdm(total=count, unit="msg", disable=not show_progress, file=sys.stderr) as bar:
            result = send_copies(template, count, progress=bar.update)
        if result.failed:
            self._fail(result, count)
        if options["verbosity"] >= 1:
            if template.exchange:
                where = f"exchange {template.exchange!r} routing key {template.routing_key!r}"
            else:
                where = template.queue.name if template.queue is not None else "?"
            if count == 1:
                shown, message_id = _preview(template.body_bytes), result.published[0]
                self.stdout.write(f" [x] Sent {shown} to {where} (message_id {message_id})")
            else:
                self.stdout.write(f" [x] Sent {count} messages to {where}")

    def _template(self, options: dict[str, Any]) -> Message:
        """The unsaved message every copy is made of (destination, properties and body
        checked: a refusal is a :class:`CommandError`)."""
        headers = dict(parse_header(h) for h in options["header"])
        payload = self._json_option(options["json"], options["body"])
        body = b"" if payload is not NO_JSON else self._read_body(options["body"])
        exchange = options["exchange"]
        try:
            if exchange:
                queue = None
                routing_key = options["routing_key"] or options["queue"]
            else:
                queue = get_queue(options["queue"])
                routing_key = ""
            props = Properties(
                content_type=options["content_type"],
                headers=headers,
                persistent=not options["transient"],
                correlation_id=options["correlation_id"],
                reply_to=options["reply_to"],
                priority=options["priority"],
                expiration=options["expiration"],
                type=options["type"],
            )
            return build_message(
                queue,
                body,
                exchange=exchange,
                routing_key=routing_key,
                json=payload,
                properties=props,
            )
        except (MessagingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    def _json_option(self, text: str | None, body: str) -> Any:
        """The parsed ``--json`` value, or NO_JSON without the flag."""
        if text is None:
            return NO_JSON
        if body != "-":
            raise CommandError("give BODY or --json, not both")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--json is not valid JSON: {exc}") from None
        except RecursionError:
            raise CommandError("--json is nested too deeply") from None

    def _read_body(self, value: str) -> bytes:
        if value != "-":
            # argv arrives decoded; os.fsencode gives back the exact bytes typed.
            return os.fsencode(value)
        stdin = getattr(self, "stdin", None) or sys.stdin
        if stdin.isatty():
            self.stderr.write("Reading the message body from stdin (end with Ctrl-D)…")
        data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
        return data.encode() if isinstance(data, str) else data

    def _fail(self, result: PublishResult, count: int) -> None:
        reason = str(result.first_error) if result.first_error else "publish failed"
        retrying = len(result.retrying)
        failed = len(result.failed) - retrying
        parts = []
        if failed:
            parts.append(f"{failed} message(s) recorded as failed")
        if retrying:
            parts.append(f"{retrying} message(s) left pending for the relay")
        parts.append(f"{len(result.published)} published")
        unrecorded = count - len(result.failed) - len(result.published)
        if unrecorded > 0:
            parts.append(f"{unrecorded} not recorded")
        raise CommandError(f"{reason} ({', '.join(parts)})")


def _preview(body: bytes, limit: int = 60) -> str:
    text = repr(body)
    return text if len(text) <= limit else text[: limit - 1] + "…"
