"""The management API client's pure parts (``messaging.broker.management_api``): the request
built from ``MANAGEMENT_URL`` and the broker URL's vhost, the JSON answer as a mapping,
one-line reasons, the cache; and the ``MANAGEMENT_URL`` setting and its check.

The error paths of a real HTTP exchange (a body that is not JSON, an answer that never
comes) are driven by a small stdlib HTTP server on loopback; the real management API is
in tests/admin/test_unacked.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from messaging import conf
from messaging.broker import management_api as management
from messaging.checks import check_settings

pytestmark = pytest.mark.unit

PASSWORD = "s3cr3t-Pa55w0rd"


# --------------------------------------------------------------------------- the request


@pytest.mark.parametrize(
    ("broker_url", "vhost"),
    [
        ("amqp://guest:guest@localhost:5672/%2F", "/"),
        ("amqp://guest:guest@localhost:5672/", "/"),
        ("amqp://guest:guest@localhost:5672", "/"),
        ("amqps://u:p@h:5671/orders", "orders"),
        ("amqp://u:p@h/team%2Fa?heartbeat=5", "team/a"),
    ],
)
def test_the_vhost_is_read_from_the_broker_url_as_pika_does(broker_url: str, vhost: str):
    assert management.vhost_of(broker_url) == vhost


@pytest.mark.parametrize(
    ("vhost", "quoted"),
    [("/", "%2F"), ("orders", "orders"), ("team/a b", "team%2Fa%20b"), ("ü?#", "%C3%BC%3F%23")],
)
def test_the_vhost_is_one_quoted_path_segment(vhost: str, quoted: str):
    assert management.quote_vhost(vhost) == quoted


def test_the_request_has_the_columns_and_basic_auth_but_no_credentials_in_the_url():
    request = management.api_request(f"http://guest:{PASSWORD}@127.0.0.1:15672/", "/")

    assert request.url == (
        "http://127.0.0.1:15672/api/queues/%2F"
        "?columns=name,messages_ready,messages_unacknowledged,consumers"
    )
    assert (request.username, request.password) == ("guest", PASSWORD)
    assert PASSWORD not in request.url
    assert PASSWORD not in request.shown
    expected = base64.b64encode(f"guest:{PASSWORD}".encode()).decode()
    assert request.authorization() == f"Basic {expected}"


@pytest.mark.parametrize(
    ("url", "vhost", "expected"),
    [
        # A path prefix (management.path_prefix, a proxy) is kept; slashes are not doubled.
        ("https://mq.example.com/rabbitmq/", "/", "https://mq.example.com/rabbitmq/api/queues/%2F"),
        ("https://mq.example.com/rabbitmq", "v", "https://mq.example.com/rabbitmq/api/queues/v"),
        ("http://[::1]:15672", "/", "http://[::1]:15672/api/queues/%2F"),
        ("http://host:15672/?x=1#frag", "/", "http://host:15672/api/queues/%2F"),
    ],
)
def test_the_request_url_keeps_scheme_host_port_and_path_prefix(
    url: str, vhost: str, expected: str
):
    request = management.api_request(url, vhost)

    assert request.shown == expected
    assert request.username is None
    assert request.authorization() is None


def test_percent_encoded_credentials_are_decoded_for_basic_auth():
    request = management.api_request("http://ops%40site:p%3Ass%2Fw@h:15672/", "/")

    assert (request.username, request.password) == ("ops@site", "p:ss/w")
    token = base64.b64decode(request.authorization().removeprefix("Basic ")).decode()
    assert token == "ops@site:p:ss/w"


# --------------------------------------------------------------------------- the answer


def test_the_answer_becomes_counts_by_queue_name():
    payload = json.dumps(
        [
            {"name": "orders", "messages_ready": 2, "messages_unacknowledged": 3, "consumers": 1},
            {"name": "orders.dlq", "messages_ready": 0, "messages_unacknowledged": 0},
            {"name": "fresh"},  # declared less than a statistics interval ago
        ]
    )

    queues = management.parse_queues(payload)

    assert queues["orders"] == management.QueueCounts(ready=2, unacked=3, consumers=1)
    assert queues["orders.dlq"].consumers is None
    assert queues["fresh"] == management.QueueCounts(None, None, None)
    counts = management.ManagementCounts(queues=queues)
    assert counts.unacked("orders") == 3
    assert counts.unacked("fresh") is None
    assert "no statistics" in counts.why_missing("fresh")
    assert counts.unacked("elsewhere") is None
    assert "does not list" in counts.why_missing("elsewhere")
    assert counts.total_unacked() == 3


def test_a_paginated_answer_is_read_too():
    payload = json.dumps({"items": [{"name": "q", "messages_unacknowledged": 7}], "page": 1})

    assert management.parse_queues(payload)["q"].unacked == 7


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>not json</html>",
        b'{"error": "Object Not Found"}',
        b'[{"messages_ready": 1}]',
        b'[{"name": "q", "messages_unacknowledged": "3"}]',
        b'[{"name": "q", "messages_unacknowledged": true}]',
        b"[1, 2]",
    ],
)
def test_anything_but_the_apis_list_is_a_value_error(payload: bytes):
    with pytest.raises(ValueError):
        management.parse_queues(payload)


def test_unavailable_counts_have_no_figures_and_say_why():
    counts = management.ManagementCounts(error="http://h/api/queues/%2F: connection refused")

    assert not counts.available
    assert counts.unacked("orders") is None
    assert counts.total_unacked() is None
    assert counts.why_missing("orders") == "http://h/api/queues/%2F: connection refused"


# --------------------------------------------------------------------------- real HTTP


class _Handler(BaseHTTPRequestHandler):
    """Answers every GET with the server's ``reply`` (status, body) after its ``delay``,
    and keeps the requests it saw."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: Any = self.server
        server.seen.append((self.path, self.headers.get("Authorization")))
        time.sleep(server.delay)
        status, body = server.reply
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.seen, server.delay, server.reply = [], 0.0, (200, b"[]")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: Any, userinfo: str = "") -> str:
    return f"http://{userinfo}127.0.0.1:{server.server_address[1]}/"


def test_one_get_with_basic_auth_gives_the_mapping(http_server: Any):
    http_server.reply = (200, b'[{"name": "q", "messages_unacknowledged": 4}]')
    request = management.api_request(_url(http_server, f"ops:{PASSWORD}@"), "/")

    counts = management.fetch_queues(request)

    assert counts.available
    assert counts.unacked("q") == 4
    ((path, authorization),) = http_server.seen
    assert path == "/api/queues/%2F?columns=name,messages_ready,messages_unacknowledged,consumers"
    assert authorization == request.authorization()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ((200, b"<html>hello</html>"), "the answer is not JSON"),
        ((401, b'{"error":"not_authorised"}'), "HTTP 401 Unauthorized (check the user"),
        ((500, b"oops"), "HTTP 500"),
        ((200, b'{"items": "x"}'), "expected a JSON list of queues"),
    ],
)
def test_a_bad_answer_is_unavailable_with_a_one_line_reason(
    http_server: Any, reply: tuple[int, bytes], reason: str
):
    http_server.reply = reply
    request = management.api_request(_url(http_server, f"ops:{PASSWORD}@"), "/")

    counts = management.fetch_queues(request)

    assert not counts.available
    assert counts.queues == {}
    assert reason in counts.error
    assert counts.error.startswith(request.shown + ": ")
    assert "\n" not in counts.error
    assert PASSWORD not in counts.error


def test_an_answer_that_never_comes_is_a_timeout(http_server: Any):
    http_server.delay = 1.0
    request = management.api_request(_url(http_server), "/")

    started = time.monotonic()
    counts = management.fetch_queues(request, timeout=0.2)

    assert time.monotonic() - started < 0.9
    assert "no answer within" in counts.error


def test_a_refused_connection_is_unavailable():
    counts = management.fetch_queues(management.api_request("http://127.0.0.1:1/", "/"))

    assert counts.error == "http://127.0.0.1:1/api/queues/%2F: connection refused"


def test_answers_are_cached_per_process_for_a_few_seconds(http_server: Any):
    management.clear_cache()
    now = [1000.0]

    def clock() -> float:
        return now[0]

    settings = {
        "BROKER_URL": "amqp://guest:guest@localhost:5672/orders",
        "MANAGEMENT_URL": _url(http_server),
    }
    with override_settings(MESSAGING=settings):
        first = management.queue_counts(clock=clock)
        now[0] += management.CACHE_SECONDS - 0.1
        assert management.queue_counts(clock=clock) is first
        assert len(http_server.seen) == 1
        assert http_server.seen[0][0].startswith("/api/queues/orders?")
        now[0] += 0.2
        management.queue_counts(clock=clock)
        assert len(http_server.seen) == 2
    management.clear_cache()


def test_unset_management_url_makes_no_call_and_says_what_to_set(http_server: Any):
    with override_settings(MESSAGING={"BROKER_URL": "amqp://localhost/"}):
        counts = management.queue_counts()

    assert not counts.configured
    assert not counts.available
    assert "MESSAGING['MANAGEMENT_URL']" in counts.error
    assert http_server.seen == []


def test_a_bad_management_url_is_unavailable_not_an_exception():
    with override_settings(MESSAGING={"MANAGEMENT_URL": f"ftp://u:{PASSWORD}@h/"}):
        counts = management.queue_counts()

    assert counts.configured
    assert "MESSAGING['MANAGEMENT_URL']" in counts.error
    assert PASSWORD not in counts.error


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    "value",
    [None, "http://guest:guest@127.0.0.1:15672/", "https://mq.example.com/rabbitmq/", "http://h"],
)
def test_management_url_accepts_none_and_http_urls(value: Any):
    with override_settings(MESSAGING={"MANAGEMENT_URL": value}):
        assert conf.get("MANAGEMENT_URL") == value
        assert check_settings() == []


@pytest.mark.parametrize(
    "value",
    [
        f"amqp://guest:{PASSWORD}@localhost:5672/",
        f"http://guest:{PASSWORD}@localhost:notaport/",
        f"http://guest:{PASSWORD}@/",
        f"http://guest:{PASSWORD}@host name:15672/",
        "",
        15672,
        ["http://localhost:15672/"],
    ],
)
def test_a_malformed_management_url_is_refused_without_its_password(value: Any):
    with (
        override_settings(MESSAGING={"MANAGEMENT_URL": value}),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        conf.get("MANAGEMENT_URL")
    assert "MESSAGING['MANAGEMENT_URL']" in str(info.value)
    assert PASSWORD not in str(info.value)

    with override_settings(MESSAGING={"MANAGEMENT_URL": value}):
        (error,) = check_settings()
    assert error.id == "messaging.E008"
    assert PASSWORD not in error.msg
