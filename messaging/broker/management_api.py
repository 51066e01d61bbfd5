"""RabbitMQ's management HTTP API, for what AMQP cannot tell: unacked counts.

``queue.declare`` (passive) reports a queue's ready messages and consumers only. The
``rabbitmq_management`` plugin reports unacknowledged messages too; with
``MESSAGING["MANAGEMENT_URL"]`` set, :func:`queue_counts` asks it for every queue of the
vhost of ``BROKER_URL`` in **one** request (``GET /api/queues/<vhost>?columns=…``, stdlib
``urllib``, basic auth from the URL, :data:`TIMEOUT` seconds) and keeps the answer for
:data:`CACHE_SECONDS` per process, so admin pages stay fast and make at most one call.

It never raises into a page: a refused connection, a timeout, a 401 or a body that is not
the API's JSON gives a :class:`ManagementCounts` that is unavailable, with a one-line
reason (no password in it). Without ``MANAGEMENT_URL`` no HTTP call is made at all.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from urllib.request import ProxyHandler, Request, build_opener

import pika
from django.core.exceptions import ImproperlyConfigured

from .. import conf

#: Seconds one request to the management API may take (connect and read).
TIMEOUT = 2.0
#: Seconds a process reuses an answer (a failure too, so a down API costs one timeout
#: per interval, not one per page).
CACHE_SECONDS = 3.0
#: The columns asked for: the API then leaves out everything else (rates, policies…).
COLUMNS = ("name", "messages_ready", "messages_unacknowledged", "consumers")
#: Largest answer read (about 300,000 queues); more is refused as unavailable.
MAX_BYTES = 32 * 1024 * 1024

#: Why unacked counts are missing when ``MANAGEMENT_URL`` is unset.
NOT_CONFIGURED = (
    "Set MESSAGING['MANAGEMENT_URL'] (RabbitMQ's management API, rabbitmq_management "
    "plugin) to see unacked counts."
)


@dataclass(frozen=True)
class QueueCounts:
    """One queue as the management API reports it (``None``: no statistics yet, as for
    a queue declared less than a statistics interval ago)."""

    ready: int | None
    unacked: int | None
    consumers: int | None


@dataclass(frozen=True)
class ManagementCounts:
    """Every queue of the vhost by name, or why there are none: ``error`` is a one-line
    reason (``configured`` False: ``MANAGEMENT_URL`` is unset, nothing was asked)."""

    queues: dict[str, QueueCounts] = field(default_factory=dict)
    error: str | None = None
    configured: bool = True

    @property
    def available(self) -> bool:
        return self.error is None

    def unacked(self, name: str) -> int | None:
        """Unacked messages of queue ``name``; ``None`` when unknown (unavailable, no
        such queue in the vhost, or no statistics yet)."""
        counts = self.queues.get(name)
        return None if counts is None else counts.unacked

    def why_missing(self, name: str) -> str:
        """Why :meth:`unacked` is ``None`` for ``name`` (a tooltip)."""
        if self.error is not None:
            return self.error
        if name not in self.queues:
            return "The management API does not list this queue."
        return "The management API has no statistics for this queue yet."

    def total_unacked(self) -> int | None:
        """Unacked messages over every queue of the vhost; ``None`` when unavailable."""
        if not self.available:
            return None
        return sum(c.unacked or 0 for c in self.queues.values())


@dataclass(frozen=True)
class ApiRequest:
    """Where to send the request and with which credentials (``None``: no auth)."""

    url: str
    username: str | None = None
    password: str | None = None

    @property
    def shown(self) -> str:
        """The URL for messages: it never carries the credentials."""
        return self.url.split("?", 1)[0]

    def authorization(self) -> str | None:
        if self.username is None:
            return None
        token = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")


# --------------------------------------------------------------------------- pure parts


def vhost_of(broker_url: str) -> str:
    """The vhost a broker URL names, as pika reads it (``/%2F``, ``/`` or none: ``/``)."""
    return pika.URLParameters(broker_url).virtual_host


def quote_vhost(vhost: str) -> str:
    """The vhost as one path segment of the API (``/`` → ``%2F``)."""
    return quote(vhost, safe="")


def api_request(management_url: str, vhost: str) -> ApiRequest:
    """The queues-of-a-vhost request for ``management_url`` (its path is kept as a prefix,
    for an API behind ``management.path_prefix`` or a proxy); its user and password,
    percent-decoded, become basic auth and leave the URL."""
    parts = urlsplit(management_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/") + "/api/queues/" + quote_vhost(vhost)
    query = "columns=" + ",".join(COLUMNS)
    url = urlunsplit((parts.scheme, netloc, path, query, ""))
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return ApiRequest(url=url, username=username, password=password)


def parse_queues(payload: bytes | str) -> dict[str, QueueCounts]:
    """The API's JSON list of queues as a mapping; ``ValueError`` for anything else."""
    data = json.loads(payload)
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]  # a paginated answer
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of queues, got {type(data).__name__}")
    queues = {}
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError("a queue without a name in the answer")
        queues[item["name"]] = QueueCounts(
            ready=_count(item, "messages_ready"),
            unacked=_count(item, "messages_unacknowledged"),
            consumers=_count(item, "consumers"),
        )
    return queues


def _count(item: dict, key: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} is not a whole number: {value!r}")
    return value


def describe_error(exc: BaseException) -> str:
    """One short line for what went wrong (no URL: the caller names it)."""
    from urllib.error import HTTPError, URLError

    if isinstance(exc, HTTPError):
        hint = " (check the user and password in MANAGEMENT_URL)" if exc.code == 401 else ""
        return f"HTTP {exc.code} {exc.reason}{hint}"
    if isinstance(exc, URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset (is this the management API's port?)"
    if isinstance(exc, json.JSONDecodeError):
        return "the answer is not JSON (is this the management API's port?)"
    if isinstance(exc, http.client.HTTPException):
        return f"not an HTTP answer ({type(exc).__name__}; is this the management API's port?)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return conf.redact_text(text)


# --------------------------------------------------------------------------- asking


def fetch_queues(request: ApiRequest, timeout: float = TIMEOUT) -> ManagementCounts:
    """One GET of the queues; never raises (the failure is the result's ``error``)."""
    try:
        payload = get(request, timeout)
        return ManagementCounts(queues=parse_queues(payload))
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return ManagementCounts(error=f"{request.shown}: {describe_error(exc)}")


def get(request: ApiRequest, timeout: float = TIMEOUT) -> bytes:
    """The body of one GET of ``request`` (no proxy from the environment: credentials go
    to the management API only, and not to where it redirects)."""
    outgoing = Request(request.url, headers={"Accept": "application/json"})
    authorization = request.authorization()
    if authorization is not None:
        outgoing.add_unredirected_header("Authorization", authorization)
    opener = build_opener(ProxyHandler({}))
    with opener.open(outgoing, timeout=timeout) as response:
        body = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ValueError(f"the answer is larger than {MAX_BYTES} bytes")
    return body


_cache: dict[tuple[str, str | None, str | None], tuple[float, ManagementCounts]] = {}
_cache_lock = threading.Lock()


def queue_counts(clock: Callable[[], float] = time.monotonic) -> ManagementCounts:
    """The queues of ``BROKER_URL``'s vhost from ``MANAGEMENT_URL``, asked at most once
    per :data:`CACHE_SECONDS` per process; unconfigured: no call, ``configured`` False.
    A bad ``MANAGEMENT_URL`` or ``BROKER_URL`` is an unavailable answer saying so.

    ``clock`` is what the cache's age is measured with (seconds, only differences
    count): ``time.monotonic``, or a test's own clock to age the cache without waiting."""
    try:
        management_url = conf.get("MANAGEMENT_URL")
        if management_url is None:
            return ManagementCounts(error=NOT_CONFIGURED, configured=False)
        request = api_request(management_url, vhost_of(conf.broker_urls()[0]))
    except ImproperlyConfigured as exc:  # reported by `manage.py check` too (E008)
        return ManagementCounts(error=str(exc))
    key = (request.url, request.username, request.password)
    now = clock()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    counts = fetch_queues(request)
    with _cache_lock:
        _cache[key] = (clock(), counts)
    return counts


def clear_cache() -> None:
    """Forget every cached answer (tests; after changing the settings)."""
    with _cache_lock:
        _cache.clear()
