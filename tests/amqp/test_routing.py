"""messaging.amqp.routing: RabbitMQ's matching rules as pure code (the broker's own routing
is compared in tests/broker/test_topology.py), and the topology models' validation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from messaging.amqp.declarations import BindingSpec, ExchangeSpec
from messaging.amqp.exchange_rules import (
    validate_binding_arguments,
    validate_binding_key,
    validate_declared_exchange_name,
    validate_exchange_type,
)
from messaging.amqp.routing import (
    Edge,
    binding_matches,
    headers_match,
    route,
    split_words,
    topic_matches,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("key", "words"),
    [("", ()), ("a", ("a",)), ("a.", ("a", "")), (".", ("", "")), ("a..b", ("a", "", "b"))],
)
def test_split_words_counts_empty_words(key, words):
    assert split_words(key) == words


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("order.*", "order.created", True),
        ("order.*", "order", False),
        ("order.*", "order.created.eu", False),
        ("order.#", "order", True),
        ("order.#", "order.created.eu", True),
        ("#", "", True),
        ("#", "anything.at.all", True),
        ("*", "", False),
        ("*", "a", True),
        ("*", ".", False),
        ("*.*", ".", True),
        ("a.*", "a.", True),
        ("a.#.b", "a.b", True),
        ("a.#.b", "a.x.y.b", True),
        ("a.#.b", "a.x.y.c", False),
        ("#.b", "b", True),
        ("#.#", "", True),
        ("*.#", "", False),
        ("", "", True),
        ("", "a", False),
        ("a..b", "a..b", True),
        ("a.*.b", "a..b", True),
        ("kern.*", "kern.critical", True),
        ("*.critical", "kern.critical", True),
        ("*.orange.*", "quick.orange.rabbit", True),
        ("*.*.rabbit", "lazy.orange.elephant", False),
        ("lazy.#", "lazy.orange.male.rabbit", True),
    ],
)
def test_topic_matches(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


def test_direct_and_fanout():
    assert binding_matches("direct", "error", "error")
    assert not binding_matches("direct", "error", "info")
    assert not binding_matches("direct", "*", "info")  # literal on a direct exchange
    assert binding_matches("fanout", "ignored", "whatever")


def test_headers_all_and_any():
    args = {"x-match": "all", "format": "pdf", "type": "report"}
    assert headers_match(args, {"format": "pdf", "type": "report", "extra": 1})
    assert not headers_match(args, {"format": "pdf"})
    args_any = {"x-match": "any", "format": "pdf", "type": "report"}
    assert headers_match(args_any, {"format": "zip", "type": "report"})
    assert not headers_match(args_any, {"format": "zip"})
    assert headers_match({"format": "pdf"}, {"format": "pdf"})  # all is the default
    assert headers_match({}, {})  # no arguments: everything (all of none)
    assert not headers_match({"x-match": "any"}, {"a": 1})
    assert headers_match({"x-match": "all", "x-k": 1}, {})  # x- keys left out
    assert not headers_match({"x-match": "all-with-x", "x-k": 1}, {})


def test_route_follows_exchange_bindings_and_alternates():
    types = {"orders": "topic", "audit": "fanout", "unrouted": "fanout"}
    edges = [
        Edge("orders", "order.*", queue="created"),
        Edge("orders", "order.#", destination="audit"),
        Edge("audit", "", queue="audit-log"),
        Edge("audit", "", destination="orders"),  # a cycle is followed once
        Edge("unrouted", "", queue="lost"),
    ]
    hit = route("orders", "order.created", types=types, edges=edges)
    assert hit.queues == ["audit-log", "created"]
    assert hit.exchanges == ["orders", "audit"]
    miss = route(
        "orders", "invoice.paid", types=types, edges=edges, alternates={"orders": "unrouted"}
    )
    assert miss.queues == ["lost"]
    assert not route("orders", "invoice.paid", types=types, edges=edges).routable
    assert route("nope", "x", types=types, edges=edges).unknown == ["nope"]


def test_one_binding_type_for_routing_and_declaring():
    from messaging import broker
    from messaging.broker import exchanges

    assert Edge is BindingSpec is broker.BindingSpec is exchanges.BindingSpec
    assert broker.ExchangeSpec is ExchangeSpec
    edge = BindingSpec("orders", "order.*", destination="audit", arguments={"a": 1})
    assert edge.source == ExchangeSpec("orders", passive=True)  # a name: no row, passive
    assert edge.destination_name == "audit"
    assert edge.label == "orders → exchange audit [order.*] {'a': 1}"
    assert edge.bind_call() == (
        "exchange_bind",
        {
            "destination": "audit",
            "source": "orders",
            "routing_key": "order.*",
            "arguments": {"a": 1},
        },
    )
    assert BindingSpec("orders", queue="q").bind_call()[0] == "queue_bind"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["", "amq.topic", "amq.custom"])
def test_builtin_exchange_names_are_refused(name):
    with pytest.raises(ValidationError) as info:
        validate_declared_exchange_name(name)
    assert len(info.value.messages) == 1


def test_unknown_exchange_type():
    with pytest.raises(ValidationError, match="Unknown exchange type 'fan'"):
        validate_exchange_type("fan")


@pytest.mark.parametrize("key", ["order.#", "*", "a.*.b"])
def test_wildcards_on_a_direct_exchange_are_refused(key):
    with pytest.raises(ValidationError, match="direct exchange matches keys literally"):
        validate_binding_key("direct", key)


def test_topic_wildcards_must_be_whole_words():
    validate_binding_key("topic", "a.*.#")
    with pytest.raises(ValidationError, match="whole dot-separated words"):
        validate_binding_key("topic", "a.b*")


def test_x_match_only_on_headers_exchanges():
    validate_binding_arguments("headers", {"x-match": "any", "k": "v"})
    with pytest.raises(ValidationError, match="must be one of"):
        validate_binding_arguments("headers", {"x-match": "some"})
    with pytest.raises(ValidationError, match="headers exchanges only"):
        validate_binding_arguments("topic", {"x-match": "all"})


# --------------------------------------------------------------------------- the drawing


def test_topology_svg_draws_escapes_and_highlights_the_route():
    from messaging.admin.topology_drawing import Node, topology_svg

    edges = [
        Edge("orders", "order.*", queue="<b>q</b>"),
        Edge("orders", "#", destination="audit"),
        Edge("audit", "", queue="log"),
        Edge("gone", "", queue="log"),  # an exchange without a box is not drawn
    ]
    found = route("orders", "order.x", types={"orders": "topic", "audit": "fanout"}, edges=edges)
    svg = topology_svg(
        [Node("orders", "topic"), Node("audit", "fanout")],
        [Node("<b>q</b>", "1 ready"), Node("log", "0 ready")],
        edges,
        hit_edges=found.edges,
        hit_queues=found.queues,
        hit_exchanges=found.exchanges,
        title="t",
    )
    assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;q&lt;/b&gt;" in svg
    assert svg.count('class="topology-binding') == 3
    assert svg.count("topology-hit") == 3  # all three drawn bindings are on the route
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
