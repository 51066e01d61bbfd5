"""RabbitMQ tutorials 3-6 (publish/subscribe, routing, topics, RPC): the tutorials' own
pika scripts (tests/tutorials/pika/) against ``send``, ``runconsumer --bind``, a handler's
return value and ``call()``, in both directions, on the real broker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging import broker, call
from messaging.models import Queue, Receipt
from tests.support.environment import manage_env
from tests.support.interop import consumer
from tests.support.rpc_handlers import effects
from tests.support.waiting import wait_for

TUTORIAL = Path(__file__).resolve().parent / "pika"

pytestmark = pytest.mark.django_db(transaction=True)


def script(name: str) -> str:
    return str(TUTORIAL / name)


def run_script(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, script(name), *args], capture_output=True, timeout=30, env=manage_env()
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def declare_exchange(name: str, kind: str) -> None:
    """As the tutorials' scripts do: ``channel.exchange_declare(exchange=…, exchange_type=…)``."""
    with broker.connection() as conn:
        conn.channel().exchange_declare(exchange=name, exchange_type=kind)


@pytest.fixture
def rpc_queue() -> Iterator[str]:
    yield "rpc_queue"
    with broker.connection() as conn:
        conn.channel().queue_delete("rpc_queue")
        conn.channel().queue_delete("rpc_queue.dlq")


# --------------------------------------------------------------------------- 3: pub/sub


def test_emit_log_reaches_every_runconsumer_bind(launch, manage):
    declare_exchange("logs", "fanout")
    first = consumer(launch, "--bind", "logs", "--max-messages", "1")
    second = consumer(launch, "--bind", "logs", "--max-messages", "1")
    run_script("emit_log.py", "info: fanned out")
    for proc in (first, second):
        assert proc.finish() == 0, proc.err
        assert " [x] Received b'info: fanned out'" in proc.out
    got = list(Receipt.objects.filter(exchange="logs"))
    assert len(got) == 2 and {r.outcome for r in got} == {"acked"}
    names = {r.queue_name for r in got}
    assert len(names) == 2 and all(n.startswith("amq.gen-") for n in names)
    assert {r.routing_key for r in got} == {""}


def test_send_with_message_id_fans_out_to_two_subscriptions_both_acked(launch, manage):
    declare_exchange("logs", "fanout")
    procs = [consumer(launch, "--bind", "logs", "--max-messages", "1") for _ in range(2)]
    sent = manage("send", "", "--exchange", "logs", "one id, two queues")
    assert sent.returncode == 0, sent.stderr
    for proc in procs:
        assert proc.finish() == 0, proc.err
    got = Receipt.objects.filter(exchange="logs")
    assert sorted(r.outcome for r in got) == ["acked", "acked"]
    assert len({r.message_id for r in got}) == 1  # same message, each queue its receipt


def test_send_exchange_reaches_receive_logs(launch, manage):
    declare_exchange("logs", "fanout")
    receiver = launch(script("receive_logs.py"))
    receiver.wait_line("Waiting for logs")
    sent = manage("send", "", "--exchange", "logs", "info: from send")
    assert sent.returncode == 0, sent.stderr
    receiver.wait_line(" [x] b'info: from send'")


def test_bind_to_missing_exchange_is_one_clear_line(manage):
    r = manage("runconsumer", "--bind", "no.such.exchange", "--max-messages", "1")
    assert r.returncode != 0
    lines = r.stderr.decode().strip().splitlines()
    assert lines == [
        "CommandError: unknown exchange 'no.such.exchange': it does not exist on the broker "
        "(--bind uses an exchange as it is; declare it first)"
    ]


def test_bind_and_queue_together_are_refused(manage, queue_name):
    r = manage("runconsumer", queue_name, "--bind", "logs")
    assert r.returncode != 0
    assert b"or --bind EXCHANGE[:ROUTING_KEY], not both" in r.stderr


def test_bind_reconnect_declares_a_new_queue_and_rebinds(launch, manage):
    from tests.support.rabbitmq import close_broker_connections

    declare_exchange("logs", "fanout")
    proc = consumer(launch, "--bind", "logs", "--max-messages", "2", "--name", "rebind")
    run_script("emit_log.py", "before")
    proc.wait_line("Received b'before'")
    assert close_broker_connections("runconsumer rebind") >= 1
    wait_for(lambda: sum("consuming " in line for line in proc.err) >= 2)
    run_script("emit_log.py", "after")
    assert proc.finish() == 0, proc.err
    got = list(Receipt.objects.filter(exchange="logs").order_by("id"))
    assert [r.outcome for r in got] == ["acked", "acked"]
    assert len({r.queue_name for r in got}) == 2  # a new server-named queue


# --------------------------------------------------------------------------- 4: routing


def test_emit_log_direct_reaches_only_bound_severities(launch):
    declare_exchange("direct_logs", "direct")
    proc = consumer(
        launch,
        "--bind",
        "direct_logs:error",
        "--bind",
        "direct_logs:warning",
        "--max-messages",
        "2",
    )
    run_script("emit_log_direct.py", "info", "not for us")
    run_script("emit_log_direct.py", "error", "Run. Run. Or it will explode.")
    run_script("emit_log_direct.py", "warning", "careful")
    assert proc.finish() == 0, proc.err
    assert not any("not for us" in line for line in proc.out)
    got = Receipt.objects.filter(exchange="direct_logs").order_by("id")
    assert [r.routing_key for r in got] == ["error", "warning"]


def test_send_routing_key_reaches_receive_logs_direct(launch, manage):
    declare_exchange("direct_logs", "direct")
    receiver = launch(script("receive_logs_direct.py"), "error")
    receiver.wait_line("Waiting for logs")
    for severity, text in (("info", "skip me"), ("error", "disk full")):
        sent = manage("send", severity, "--exchange", "direct_logs", text)
        # Nothing is bound for "info": the broker returns it, the row is failed.
        assert (sent.returncode == 0) == (severity == "error"), sent.stderr
    receiver.wait_line(" [x] error:b'disk full'")
    assert not any("skip me" in line for line in receiver.out)


# --------------------------------------------------------------------------- 5: topics


def test_emit_log_topic_matches_star_and_hash(launch):
    declare_exchange("topic_logs", "topic")
    binds = ("--bind", "topic_logs:*.critical", "--bind", "topic_logs:kern.#")
    proc = consumer(launch, *binds, "--max-messages", "3")
    for key in ("anonymous.info", "kern.critical", "cron.critical", "kern", "cron.info.x"):
        run_script("emit_log_topic.py", key, f"msg {key}")
    assert proc.finish() == 0, proc.err
    got = Receipt.objects.filter(exchange="topic_logs").order_by("id")
    assert [r.routing_key for r in got] == ["kern.critical", "cron.critical", "kern"]


def test_send_topic_reaches_receive_logs_topic(launch, manage):
    declare_exchange("topic_logs", "topic")
    receiver = launch(script("receive_logs_topic.py"), "kern.*")
    receiver.wait_line("Waiting for logs")
    sent = manage("send", "", "--exchange", "topic_logs", "--routing-key", "kern.critical", "oops")
    assert sent.returncode == 0, sent.stderr
    receiver.wait_line(" [x] kern.critical:b'oops'")


# --------------------------------------------------------------------------- 6: RPC


def test_rpc_client_gets_a_handler_return_value(launch, rpc_queue):
    Queue.objects.create(name=rpc_queue, durable=False)  # as the tutorial declares it
    proc = consumer(launch, rpc_queue, "--handler", "tests.support.rpc_handlers.fib")
    out = run_script("rpc_client.py", "30")
    assert " [.] Got 832040" in out
    proc.kill()
    (receipt,) = Receipt.objects.filter(queue_name=rpc_queue)
    assert receipt.outcome == "acked"
    assert bytes(receipt.reply) == b"832040"
    assert effects("fib-handled") == 1


def test_rpc_client_with_the_tutorials_own_callback(launch, rpc_queue):
    Queue.objects.create(name=rpc_queue, durable=False)
    proc = consumer(launch, rpc_queue, "--handler", "tests.support.rpc_handlers.fib_pika")
    assert " [.] Got 55" in run_script("rpc_client.py", "10")
    proc.kill()
    (receipt,) = Receipt.objects.filter(queue_name=rpc_queue)
    assert receipt.outcome == "acked" and bytes(receipt.reply) == b"55"


def test_call_reaches_the_tutorials_rpc_server(launch, rpc_queue):
    server = launch(script("rpc_server.py"))
    server.wait_line("Awaiting RPC requests")
    reply = call(rpc_queue, b"30", timeout=30)
    assert reply.body == b"832040"
    assert reply.correlation_id  # the server echoed ours
    server.wait_line(" [.] fib(30)")


def test_call_and_a_json_handler(launch, rpc_queue):
    Queue.objects.create(name=rpc_queue)
    consumer(launch, rpc_queue, "--handler", "tests.support.rpc_handlers.fib_json")
    reply = call(rpc_queue, json={"n": 20}, timeout=30)
    assert reply.json() == {"n": 20, "fib": 6765}
    assert reply.content_type == "application/json"
    assert call(rpc_queue, json={"n": 10}, timeout=30).json()["fib"] == 55
