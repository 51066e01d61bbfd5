"""The broker layer (``messaging.broker``) against the real RabbitMQ.

Nothing here is mocked: connection failures are provoked with a closed port, a wrong
password and an unknown vhost; mismatches and unroutable messages come from the broker.
"""

from __future__ import annotations

import ssl
import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from messaging import broker, conf
from messaging.exceptions import (
    AccessRefused,
    AuthenticationFailed,
    BrokerUnavailable,
    NotFound,
    QueueMismatch,
    Unroutable,
)
from tests.support.ports import closed_port
from tests.support.waiting import wait_for

PASSWORD = "wr0ng-Pa55w0rd"


def live_url() -> str:
    return conf.broker_urls()[0]


def with_auth(url: str, user: str, password: str) -> str:
    params = broker.connection_parameters(url)
    vhost = "%2F" if params.virtual_host == "/" else params.virtual_host
    return f"amqp://{user}:{password}@{params.host}:{params.port}/{vhost}"


def props(**kwargs) -> object:
    return broker.properties(message_id=uuid.uuid4().hex, **kwargs)


# --------------------------------------------------------------------------- parameters


def test_connection_parameters_come_from_settings():
    value = {
        **settings.MESSAGING,
        "HEARTBEAT": 13,
        "CONNECTION_TIMEOUT": 4,
        "BLOCKED_CONNECTION_TIMEOUT": 9,
    }
    with override_settings(MESSAGING=value):
        params = broker.connection_parameters("amqp://guest:guest@localhost:5672/%2F")
    assert params.heartbeat == 13
    assert params.socket_timeout == 4
    assert params.stack_timeout == 5  # the connect timeout plus 1 s for the handshake
    assert params.blocked_connection_timeout == 9
    assert params.ssl_options is None
    assert params.client_properties["product"] == "django messaging"
    assert params.client_properties["connection_name"].startswith("messaging@")


def test_connection_parameter_defaults():
    with override_settings(MESSAGING={}):
        params = broker.connection_parameters("amqp://localhost/")
    assert params.heartbeat == 60
    assert params.socket_timeout == 10
    assert params.blocked_connection_timeout == 60


def test_url_query_overrides_settings():
    with override_settings(MESSAGING={**settings.MESSAGING, "HEARTBEAT": 60}):
        params = broker.connection_parameters(
            "amqp://guest:guest@localhost:5672/%2F"
            "?heartbeat=7&socket_timeout=3&blocked_connection_timeout=2"
        )
    assert params.heartbeat == 7
    assert params.socket_timeout == 3
    assert params.blocked_connection_timeout == 2


def test_connection_name_is_passed_through():
    params = broker.connection_parameters("amqp://localhost/", connection_name="worker-1")
    assert params.client_properties["connection_name"] == "worker-1"


def test_amqps_enables_verified_tls_with_server_hostname():
    params = broker.connection_parameters("amqps://user:pw@rabbit.example.com/%2F")
    assert params.ssl_options is not None
    assert params.ssl_options.server_hostname == "rabbit.example.com"
    assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert params.ssl_options.context.check_hostname is True
    assert params.port == 5671


def test_heartbeat_from_url_is_negotiated_with_the_broker():
    separator = "&" if "?" in live_url() else "?"
    with broker.connection([live_url() + separator + "heartbeat=7"]) as conn:
        assert conn.is_open
        # pika stores the value agreed in connection.tune back on its parameters.
        assert conn._impl.params.heartbeat == 7


# --------------------------------------------------------------------------- connect


def test_connect_uses_settings():
    with broker.connection() as conn:
        assert conn.is_open
        assert conn.channel().is_open
    assert not conn.is_open  # closed by the context manager


def pipelined(urls: list[str] | None = None) -> broker.PipelinedPublisher:
    publisher = broker.PipelinedPublisher(urls)
    publisher.open()
    return publisher


#: Both kinds of connection go through the same try-each-URL loop (connect_first).
CONNECTORS = [pytest.param(broker.connect, id="blocking"), pytest.param(pipelined, id="pipelined")]


@pytest.mark.parametrize("connect", CONNECTORS)
def test_closed_port_raises_broker_unavailable_without_password(connect):
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{closed_port()}/%2F"
    with pytest.raises(BrokerUnavailable) as info:
        connect([url])
    message = str(info.value)
    assert "connection refused" in message
    assert PASSWORD not in message
    assert "guest:***@127.0.0.1" in message
    # And it is a ConnectionError for callers that catch the builtin.
    assert isinstance(info.value, ConnectionError)


def test_closed_port_from_settings():
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{closed_port()}/%2F"
    with (
        override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": url}),
        pytest.raises(BrokerUnavailable, match="connection refused") as info,
    ):
        broker.connect()
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("connect", CONNECTORS)
def test_wrong_password_raises_authentication_failed(connect):
    url = with_auth(live_url(), "guest", PASSWORD)
    with pytest.raises(AuthenticationFailed) as info:
        connect([url])
    message = str(info.value)
    assert "username/password" in message
    assert "***" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("connect", CONNECTORS)
def test_unknown_vhost_raises_access_refused(connect):
    vhost = f"no-such-vhost-{uuid.uuid4().hex[:6]}"
    params = broker.connection_parameters(live_url())
    url = with_auth(live_url(), params.credentials.username, params.credentials.password)
    url = url.rsplit("/", 1)[0] + "/" + vhost
    with pytest.raises(AccessRefused) as info:
        connect([url])
    message = str(info.value)
    assert "virtual host" in message
    assert f"vhost {vhost} not found" in message
    assert ":***@" in message


@pytest.mark.parametrize("connect", CONNECTORS)
def test_first_dead_url_then_live_url_connects(connect):
    dead = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"
    conn = connect([dead, live_url()])
    try:
        assert conn.is_open
    finally:
        conn.close()


@pytest.mark.parametrize("connect", CONNECTORS)
def test_all_urls_dead_names_each_without_passwords(connect):
    first, second = closed_port(), closed_port()
    urls = [
        f"amqp://guest:{PASSWORD}@127.0.0.1:{first}/%2F",
        f"amqp://guest:{PASSWORD}@127.0.0.1:{second}/%2F",
    ]
    with pytest.raises(BrokerUnavailable) as info:
        connect(urls)
    message = str(info.value)
    assert message.startswith("no broker answered: ")
    assert f"127.0.0.1:{first}" in message
    assert f"127.0.0.1:{second}" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("connect", CONNECTORS)
def test_authentication_failure_is_not_retried_on_the_next_url(connect):
    # A wrong password is a configuration error, not a dead node: it is raised at once.
    urls = [with_auth(live_url(), "guest", PASSWORD), live_url()]
    with pytest.raises(AuthenticationFailed):
        connect(urls)


# --------------------------------------------------------------------------- declaring


def test_declare_queue_is_idempotent_and_returns_ready_count(queue_name, channel):
    channel.confirm_delivery()  # so the publish below is enqueued before we count
    assert broker.declare_queue(channel, queue_name) == 0
    channel.basic_publish("", queue_name, b"one")
    assert broker.declare_queue(channel, broker.QueueSpec(queue_name, durable=True)) == 1


def test_redeclare_with_other_durability_raises_queue_mismatch(queue_name):
    with broker.connection() as conn:
        broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, durable=True))
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, durable=False))
    assert info.value.argument == "durable"
    assert info.value.queue == queue_name
    message = str(info.value)
    assert "durable" in message
    assert queue_name in message
    assert "PRECONDITION_FAILED" in message


def test_redeclare_with_other_arguments_raises_queue_mismatch(queue_name):
    with broker.connection() as conn:
        broker.declare_queue(
            conn.channel(), broker.QueueSpec(queue_name, arguments={"x-max-length": 10})
        )
        # Same arguments again: fine.
        broker.declare_queue(
            conn.channel(), broker.QueueSpec(queue_name, arguments={"x-max-length": 10})
        )
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(
                conn.channel(), broker.QueueSpec(queue_name, arguments={"x-max-length": 20})
            )
        assert info.value.argument == "x-max-length"
        assert "x-max-length" in str(info.value)
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(conn.channel(), queue_name)  # no arguments at all
        assert info.value.argument == "x-max-length"


def test_declare_from_a_queue_row(queue_name):
    from messaging.models import Queue

    row = Queue(name=queue_name, dead_letter_exchange="amq.fanout", arguments={"x-max-length": 2})
    with broker.connection() as conn:
        broker.declare_queue(conn.channel(), row)
        publishing = conn.channel()
        publishing.confirm_delivery()
        for _ in range(3):
            publishing.basic_publish("", queue_name, b"x")
        # x-max-length 2 was really applied: the oldest of 3 messages was dropped.
        assert broker.inspect_queue(conn.channel(), queue_name) == (2, 0)
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(
                conn.channel(), broker.QueueSpec(queue_name, arguments={"x-max-length": 2})
            )
        assert info.value.argument == "x-dead-letter-exchange"


def test_passive_declare_of_missing_queue_raises_not_found(queue_name):
    with broker.connection() as conn, pytest.raises(NotFound):
        broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, passive=True))


def test_amq_prefixed_name_sent_raw_is_refused_by_the_broker():
    name = f"amq.test.{uuid.uuid4().hex[:8]}"
    with broker.connection() as conn, pytest.raises(AccessRefused) as info:
        broker.declare_queue(conn.channel(), broker.QueueSpec(name))
    assert "amq." in str(info.value)


def test_inspect_queue(queue_name):
    with broker.connection() as conn:
        assert broker.inspect_queue(conn.channel(), queue_name) is None
        broker.declare_queue(conn.channel(), queue_name)
        assert broker.inspect_queue(conn.channel(), queue_name) == (0, 0)
        publishing = conn.channel()
        publishing.confirm_delivery()
        publishing.basic_publish("", queue_name, b"1")
        publishing.basic_publish("", queue_name, b"2")
        assert broker.inspect_queue(conn.channel(), queue_name) == (2, 0)

        consuming = conn.channel()
        consuming.basic_qos(prefetch_count=1)
        delivered: list[bytes] = []
        consuming.basic_consume(queue_name, lambda ch, method, props, body: delivered.append(body))
        wait_for(lambda: conn.process_data_events(time_limit=0.05) or delivered, timeout=5)
        # One message is delivered (unacked) to the consumer, one stays ready.
        assert broker.inspect_queue(conn.channel(), queue_name) == (1, 1)


# --------------------------------------------------------------------------- publishing


def publish_one(publisher: broker.PipelinedPublisher, *args, **kwargs) -> object:
    """The outcome of one message (``None``: confirmed)."""
    [outcome] = publisher.publish_many([broker.Outgoing(*args, **kwargs)])
    return outcome


def test_publisher_publishes_with_confirms(queue_name, channel):
    with broker.PipelinedPublisher() as publisher:
        publisher.ensure_declared(queue_name)
        outcome = publish_one(
            publisher,
            "",
            queue_name,
            b"\x00\xffbody",
            message_id="m-1",
            content_type="application/octet-stream",
        )
    assert outcome is None
    method, properties, body = channel.basic_get(queue_name, auto_ack=True)
    assert body == b"\x00\xffbody"
    assert properties.message_id == "m-1"
    assert properties.content_type == "application/octet-stream"
    assert properties.delivery_mode == 2


def test_properties():
    persistent = broker.properties(message_id="m", headers={"a": 1})
    assert persistent.delivery_mode == broker.PERSISTENT == 2
    assert persistent.headers == {"a": 1}
    transient = broker.properties(persistent=False)
    assert transient.delivery_mode == broker.TRANSIENT == 1
    assert transient.message_id is None
    assert transient.headers is None
    assert transient.content_type is None


def test_unroutable_publish_is_unroutable():
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    with broker.PipelinedPublisher() as publisher:
        outcome = publish_one(publisher, "amq.direct", key, b"x", message_id=uuid.uuid4().hex)
    assert isinstance(outcome, Unroutable)
    assert str(outcome) == f"unroutable: no queue bound for exchange amq.direct routing key {key}"


def test_unroutable_on_the_default_exchange_without_message_id(queue_name):
    # The default exchange routes by queue name: a queue that does not exist is unroutable;
    # without a message_id the return is matched by its destination.
    with broker.PipelinedPublisher() as publisher:
        outcome = publish_one(publisher, "", queue_name, b"x")
    assert isinstance(outcome, Unroutable)
    assert "exchange (default) routing key" in str(outcome)


@pytest.mark.django_db  # check_exchange looks for the exchange's Exchange row
def test_missing_exchange_is_not_found_and_publisher_keeps_working(queue_name, channel):
    exchange = f"no-such-exchange-{uuid.uuid4().hex[:8]}"
    with broker.PipelinedPublisher() as publisher:
        publisher.ensure_declared(queue_name)
        outcome = publish_one(publisher, exchange, "rk", b"lost", message_id="lost")
        assert isinstance(outcome, NotFound)  # the broker closed the channel for it
        assert exchange in str(outcome)
        with pytest.raises(NotFound, match=exchange):
            publisher.check_exchange(exchange)
        # The next publish reopens a channel on the same connection and goes through.
        assert publish_one(publisher, "", queue_name, b"after", message_id="after") is None
        assert publisher.is_open
    method, _, body = channel.basic_get(queue_name, auto_ack=True)
    assert body == b"after"
    assert channel.basic_get(queue_name, auto_ack=True)[0] is None


def test_publisher_after_unroutable_keeps_working(queue_name, channel):
    with broker.PipelinedPublisher() as publisher:
        publisher.ensure_declared(queue_name)
        assert isinstance(publish_one(publisher, "amq.direct", "nobody", b"x"), Unroutable)
        assert publish_one(publisher, "", queue_name, b"ok") is None
    assert channel.basic_get(queue_name, auto_ack=True)[2] == b"ok"


def test_queue_is_declared_once_per_connection(queue_name):
    with broker.connection() as conn, broker.PipelinedPublisher() as publisher:
        publisher.ensure_declared(queue_name)
        conn.channel().queue_delete(queue_name)
        publisher.ensure_declared(queue_name)  # remembered: not declared again
        assert broker.inspect_queue(conn.channel(), queue_name) is None
        publisher.close()
        publisher.ensure_declared(queue_name)  # a new connection declares it again
        assert broker.inspect_queue(conn.channel(), queue_name) == (0, 0)


def test_publisher_to_closed_port_raises_broker_unavailable():
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{closed_port()}/%2F"
    with (
        pytest.raises(BrokerUnavailable, match="connection refused") as info,
        broker.PipelinedPublisher([url]),
    ):
        pass
    assert PASSWORD not in str(info.value)
