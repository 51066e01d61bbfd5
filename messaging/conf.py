"""Settings accessor: everything the app reads from ``settings.MESSAGING``.

Values are read at call time (never cached at import), so ``override_settings``
works in tests. A bad value raises :class:`~django.core.exceptions.ImproperlyConfigured`
naming the exact key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, TypedDict, overload

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # One URL, or a list of URLs tried in turn (cluster nodes).
    "BROKER_URL": "amqp://guest:guest@localhost:5672/%2F",
    # Seconds; 0 disables heartbeats (not recommended).
    "HEARTBEAT": 60,
    # Seconds to wait for the TCP connect and the AMQP handshake.
    "CONNECTION_TIMEOUT": 10,
    # Seconds a publisher waits while the broker blocks the connection (resource alarm).
    "BLOCKED_CONNECTION_TIMEOUT": 60,
    # Queue name -> dotted path of the handler runconsumer calls for it.
    "CONSUMERS": {},
    # Default prefetch for runconsumer (the tutorial's fair dispatch). With THREADS > 1
    # and no --prefetch, runconsumer uses max(PREFETCH, 2 * THREADS).
    "PREFETCH": 1,
    # Handlers runconsumer runs at once, each on a worker thread with its own database
    # connection (runconsumer --threads). 1 keeps one-at-a-time, in order.
    "THREADS": 1,
    # Seconds runconsumer (and relay) give the work in hand after SIGTERM/SIGINT before
    # they exit non-zero, leaving unfinished deliveries to the broker (below
    # Kubernetes' default 30 s grace period).
    "SHUTDOWN_TIMEOUT": 25.0,
    # Reconnect backoff for runconsumer (seconds): first delay and cap.
    "RECONNECT_DELAY": 0.5,
    "RECONNECT_MAX_DELAY": 30.0,
    # Handler attempts before a message goes to its dead-letter queue (<queue>.dlq).
    # A Queue row's max_attempts overrides it.
    "MAX_ATTEMPTS": 5,
    # Wait the broker holds a failed message for (in <queue>.delay.<ms>) before its next
    # attempt: RETRY_DELAY * 2**(attempt-1) seconds, capped at RETRY_MAX_DELAY.
    # 0 requeues at once.
    "RETRY_DELAY": 0.0,
    "RETRY_MAX_DELAY": 30.0,
    # Seconds a handler may run before a warning is logged and counted (None: no
    # budget; a Queue row's handler_time_budget overrides it). Never stops the handler.
    "HANDLER_TIME_BUDGET": None,
    # Seconds between a runconsumer's writes to the Consumer table; silent for 3 of these
    # means "lost".
    "CONSUMER_HEARTBEAT_INTERVAL": 5,
    # The broker's consumer_timeout in seconds (RabbitMQ's default: 30 min); runconsumer
    # warns when a handler holds a delivery for 80% of it. 0 = the broker has none.
    "BROKER_CONSUMER_TIMEOUT": 1800,
    # Longest a batch of receipts waits before it is committed and acked (seconds).
    "BATCH_FLUSH_INTERVAL": 0.05,
    # "immediate": publish() sends at once (after commit inside a transaction);
    # "relay": publish() only writes the row and the relay sends it.
    "PUBLISH_MODE": "immediate",
    # "immediate" mode inside a transaction: after the commit the rows are handed to this
    # process's publisher thread and the request returns at once (False: the committing
    # thread publishes them and waits for the confirms, as before 0.3).
    "PUBLISH_IN_BACKGROUND": True,
    # Bound of that hand-off (rows, and their bodies' bytes plus 1 KiB each): rows beyond
    # it are left pending for the relay (at once, not after the creator's lease).
    "PUBLISH_BACKLOG_MAX": 10000,
    "PUBLISH_BACKLOG_MAX_BYTES": 64 * 1024 * 1024,
    # Admin "publish" on many messages hands the work to Celery (messaging.tasks).
    "PUBLISH_VIA_CELERY": False,
    # Seconds to wait for a publisher confirm before the publish counts as failed (retried).
    "CONFIRM_TIMEOUT": 10.0,
    # Relay: rows per batch, seconds between polls, and per-message retry backoff.
    "RELAY_BATCH_SIZE": 500,
    "RELAY_INTERVAL": 1.0,
    "PUBLISH_RETRY_DELAY": 1.0,
    "PUBLISH_RETRY_MAX_DELAY": 300.0,
    # Seconds a pending message may wait while no relay runs before the admin (a banner,
    # the overview) and the system check messaging.W002 warn that nothing sends it.
    "RELAY_WARNING_AFTER": 300.0,
    # Observability: put the send time (epoch ms) in an x-messaging-sent-at header, from which
    # consumers measure messaging_end_to_end_seconds.
    "SENT_AT_HEADER": False,
    # Seconds publish() may reuse a Queue row it read (this process's own changes to
    # Queue rows are seen at once); 0 reads the row on every call.
    "QUEUE_CACHE_SECONDS": 10.0,
    # Cluster: each process tries the broker URLs in its own random order, so
    # connections (and client-local queue leaders) spread over the nodes.
    "SHUFFLE_BROKER_URLS": True,
    # Type of the Queue rows the app creates itself (send, publish() to a new name).
    "DEFAULT_QUEUE_TYPE": "classic",
    # Type of <queue>.dlq (and delay queues): "same" as the queue, "classic" or "quorum".
    "DEAD_LETTER_QUEUE_TYPE": "same",
    # RabbitMQ's management HTTP API (rabbitmq_management plugin), e.g.
    # "http://guest:guest@localhost:15672/": the admin asks it for unacked counts (AMQP
    # cannot tell them). None: the admin shows "—" for unacked and makes no HTTP call.
    "MANAGEMENT_URL": None,
}


def _is_url_or_urls(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str) and v for v in value)
    )


def _non_negative_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _http_url(value: Any) -> bool:
    """An ``http://`` or ``https://`` URL with a host and (if any) a numeric port."""
    from urllib.parse import urlsplit

    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _consumers(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items()
    )


VALIDATORS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "BROKER_URL": (_is_url_or_urls, "an amqp:// or amqps:// URL, or a non-empty list of them"),
    "HEARTBEAT": (_non_negative_int, "a whole number of seconds >= 0 (0 disables)"),
    "CONNECTION_TIMEOUT": (_non_negative_number, "a number of seconds >= 0"),
    "BLOCKED_CONNECTION_TIMEOUT": (_non_negative_number, "a number of seconds >= 0"),
    "CONSUMERS": (_consumers, "a dict mapping queue name to a handler's dotted path"),
    "PREFETCH": (
        lambda v: _positive_int(v) and v <= 65535,
        "an integer from 1 to 65535 (AMQP's prefetch_count is a short)",
    ),
    "THREADS": (
        lambda v: _positive_int(v) and v <= 1024,
        "an integer from 1 to 1024",
    ),
    "SHUTDOWN_TIMEOUT": (_positive_number, "a number of seconds > 0"),
    "RECONNECT_DELAY": (_non_negative_number, "a number of seconds >= 0"),
    "RECONNECT_MAX_DELAY": (_non_negative_number, "a number of seconds >= 0"),
    "MAX_ATTEMPTS": (_positive_int, "an integer >= 1"),
    "RETRY_DELAY": (_non_negative_number, "a number of seconds >= 0"),
    "RETRY_MAX_DELAY": (_non_negative_number, "a number of seconds >= 0"),
    "HANDLER_TIME_BUDGET": (
        lambda v: v is None or _positive_number(v),
        "None or a number of seconds > 0",
    ),
    "CONSUMER_HEARTBEAT_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "BROKER_CONSUMER_TIMEOUT": (_non_negative_number, "a number of seconds >= 0 (0: none)"),
    "BATCH_FLUSH_INTERVAL": (_non_negative_number, "a number of seconds >= 0"),
    "PUBLISH_MODE": (lambda v: v in ("immediate", "relay"), '"immediate" or "relay"'),
    "PUBLISH_VIA_CELERY": (lambda v: isinstance(v, bool), "True or False"),
    "PUBLISH_IN_BACKGROUND": (lambda v: isinstance(v, bool), "True or False"),
    "PUBLISH_BACKLOG_MAX": (_non_negative_int, "an integer >= 0 (0: no hand-off)"),
    "PUBLISH_BACKLOG_MAX_BYTES": (_non_negative_int, "a number of bytes >= 0 (0: no hand-off)"),
    "CONFIRM_TIMEOUT": (_positive_number, "a number of seconds > 0"),
    "RELAY_BATCH_SIZE": (_positive_int, "an integer >= 1"),
    "RELAY_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "PUBLISH_RETRY_DELAY": (_non_negative_number, "a number of seconds >= 0"),
    "RELAY_WARNING_AFTER": (_positive_number, "a number of seconds > 0"),
    "PUBLISH_RETRY_MAX_DELAY": (_non_negative_number, "a number of seconds >= 0"),
    "SENT_AT_HEADER": (lambda v: isinstance(v, bool), "True or False"),
    "QUEUE_CACHE_SECONDS": (_non_negative_number, "a number of seconds >= 0 (0: no cache)"),
    "SHUFFLE_BROKER_URLS": (lambda v: isinstance(v, bool), "True or False"),
    "DEFAULT_QUEUE_TYPE": (lambda v: v in ("classic", "quorum"), '"classic" or "quorum"'),
    "DEAD_LETTER_QUEUE_TYPE": (
        lambda v: v in ("same", "classic", "quorum"),
        '"same", "classic" or "quorum"',
    ),
    "MANAGEMENT_URL": (
        lambda v: v is None or _http_url(v),
        "None or the http:// or https:// URL of RabbitMQ's management API "
        '(e.g. "http://guest:guest@localhost:15672/")',
    ),
}

#: Settings whose value is a URL that may carry a password (shown redacted in errors).
_URL_SETTINGS = ("BROKER_URL", "MANAGEMENT_URL")


def user_settings() -> dict[str, Any]:
    """The raw ``settings.MESSAGING`` dict (empty if unset)."""
    value = getattr(django_settings, "MESSAGING", {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured("settings.MESSAGING must be a dict.")
    return value


def validate(key: str, value: Any) -> None:
    """Raise ImproperlyConfigured naming ``MESSAGING['KEY']`` if ``value`` is bad."""
    check, expected = VALIDATORS.get(key, (lambda v: True, ""))
    if not check(value):
        shown = _redacted(value) if key in _URL_SETTINGS else value
        raise ImproperlyConfigured(f"MESSAGING[{key!r}] must be {expected}; got {shown!r}.")
    if key == "BROKER_URL":
        urls = [value] if isinstance(value, str) else list(value)
        for url in urls:
            if not url.startswith(("amqp://", "amqps://")):
                raise ImproperlyConfigured(
                    f"MESSAGING['BROKER_URL'] must start with amqp:// or amqps://; "
                    f"got {redact_url(url)!r}."
                )


class MessagingSettings(TypedDict, total=False):
    """The shape of ``settings.MESSAGING`` (every key optional): annotate your settings'
    dict with it (``MESSAGING: MessagingSettings = {...}``) for a type checker to check
    it. :func:`get` returns these types; ``tests/app/test_conf_types.py`` keeps this,
    :data:`DEFAULTS` and :func:`get`'s overloads the same keys."""

    BROKER_URL: str | list[str] | tuple[str, ...]
    HEARTBEAT: int
    CONNECTION_TIMEOUT: float
    BLOCKED_CONNECTION_TIMEOUT: float
    CONSUMERS: dict[str, str]
    PREFETCH: int
    THREADS: int
    SHUTDOWN_TIMEOUT: float
    RECONNECT_DELAY: float
    RECONNECT_MAX_DELAY: float
    MAX_ATTEMPTS: int
    RETRY_DELAY: float
    RETRY_MAX_DELAY: float
    HANDLER_TIME_BUDGET: float | None
    CONSUMER_HEARTBEAT_INTERVAL: float
    BROKER_CONSUMER_TIMEOUT: float
    BATCH_FLUSH_INTERVAL: float
    PUBLISH_MODE: Literal["immediate", "relay"]
    PUBLISH_IN_BACKGROUND: bool
    PUBLISH_BACKLOG_MAX: int
    PUBLISH_BACKLOG_MAX_BYTES: int
    PUBLISH_VIA_CELERY: bool
    CONFIRM_TIMEOUT: float
    RELAY_BATCH_SIZE: int
    RELAY_INTERVAL: float
    PUBLISH_RETRY_DELAY: float
    PUBLISH_RETRY_MAX_DELAY: float
    RELAY_WARNING_AFTER: float
    SENT_AT_HEADER: bool
    QUEUE_CACHE_SECONDS: float
    SHUFFLE_BROKER_URLS: bool
    DEFAULT_QUEUE_TYPE: Literal["classic", "quorum"]
    DEAD_LETTER_QUEUE_TYPE: Literal["same", "classic", "quorum"]
    MANAGEMENT_URL: str | None


# get()'s return type per key (the validators above guarantee it at run time).
IntKey = Literal[
    "HEARTBEAT",
    "PREFETCH",
    "THREADS",
    "MAX_ATTEMPTS",
    "PUBLISH_BACKLOG_MAX",
    "PUBLISH_BACKLOG_MAX_BYTES",
    "RELAY_BATCH_SIZE",
]
FloatKey = Literal[
    "CONNECTION_TIMEOUT",
    "BLOCKED_CONNECTION_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "RECONNECT_DELAY",
    "RECONNECT_MAX_DELAY",
    "RETRY_DELAY",
    "RETRY_MAX_DELAY",
    "CONSUMER_HEARTBEAT_INTERVAL",
    "BROKER_CONSUMER_TIMEOUT",
    "BATCH_FLUSH_INTERVAL",
    "CONFIRM_TIMEOUT",
    "RELAY_INTERVAL",
    "PUBLISH_RETRY_DELAY",
    "PUBLISH_RETRY_MAX_DELAY",
    "RELAY_WARNING_AFTER",
    "QUEUE_CACHE_SECONDS",
]
BoolKey = Literal[
    "PUBLISH_IN_BACKGROUND", "PUBLISH_VIA_CELERY", "SENT_AT_HEADER", "SHUFFLE_BROKER_URLS"
]


@overload
def get(key: IntKey) -> int: ...
@overload
def get(key: FloatKey) -> float: ...
@overload
def get(key: BoolKey) -> bool: ...
@overload
def get(key: Literal["BROKER_URL"]) -> str | list[str] | tuple[str, ...]: ...
@overload
def get(key: Literal["CONSUMERS"]) -> dict[str, str]: ...
@overload
def get(key: Literal["HANDLER_TIME_BUDGET"]) -> float | None: ...
@overload
def get(key: Literal["PUBLISH_MODE"]) -> Literal["immediate", "relay"]: ...
@overload
def get(key: Literal["DEFAULT_QUEUE_TYPE"]) -> Literal["classic", "quorum"]: ...
@overload
def get(key: Literal["DEAD_LETTER_QUEUE_TYPE"]) -> Literal["same", "classic", "quorum"]: ...
@overload
def get(key: Literal["MANAGEMENT_URL"]) -> str | None: ...
def get(key: str) -> Any:
    """Return one validated setting, falling back to its default (typed per key: see
    :class:`MessagingSettings`)."""
    if key not in DEFAULTS:
        raise KeyError(f"Unknown messaging setting {key!r}")
    value = user_settings().get(key, DEFAULTS[key])
    validate(key, value)
    return value


def _redacted(value: Any) -> Any:
    """``value`` with the password of every URL string in it replaced by ``***``."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, list | tuple):
        return type(value)(redact_url(v) if isinstance(v, str) else v for v in value)
    return value


def broker_urls() -> list[str]:
    value = get("BROKER_URL")
    return [value] if isinstance(value, str) else list(value)


#: Where a URL starts (``amqp://``, ``postgres://``...).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: What separates the URLs of a list written as one string ("url1,url2", "url1;url2").
_URL_SEPARATORS = re.compile(r"([,;\s]+)")
#: ``scheme://user:password@`` anywhere in a text; group 1 keeps all but the password.
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s@'\"]+@")


def redact_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by
    ``***`` (for error messages and reports that may quote URLs)."""
    return _USERINFO.sub(r"\1***@", text)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` — safe to print or log. A string of
    several URLs separated by commas, semicolons or spaces has each one redacted."""
    if len(_SCHEME.findall(url)) > 1:
        return "".join(
            part if not part or _URL_SEPARATORS.fullmatch(part) else _redact_one_url(part)
            for part in _URL_SEPARATORS.split(url)
        )
    return _redact_one_url(url)


def _redact_one_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a non-numeric port
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        if "@" in url and not parts.netloc:
            # No "scheme://" so no netloc was parsed ("guest:secret@host"): hide the userinfo.
            return "***@" + url.rpartition("@")[2]
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
