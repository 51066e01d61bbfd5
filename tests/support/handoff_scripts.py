"""What the hand-off tests run in a process of its own (``manage.py shell -c``): a process
to SIGKILL right after its commits, and one that forks with threads publishing on both
sides. Each prints one JSON line per report on stdout."""

from __future__ import annotations

import json
import os
import sys
import threading

from django.db import connections, transaction

from messaging import publish
from messaging.publishing import flush


def _commit(queue: str, body: bytes) -> str:
    with transaction.atomic():
        return publish(queue, body).message_id


def commit_then_wait(queue: str, count: int) -> None:
    """Publish one message and wait for its confirm, print ``ready``; on a line from
    stdin commit ``count`` messages (one transaction each), print their ids, and wait
    (for the SIGKILL)."""
    _commit(queue, b"warm")
    assert flush(30)
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    ids = [_commit(queue, f"m{i}".encode()) for i in range(count)]
    print(json.dumps({"committed": ids}), flush=True)
    threading.Event().wait()


def _publish_from_threads(queue: str, threads: int, each: int, tag: str) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for i in range(each):
                message_id = _commit(queue, f"{tag}-{n}-{i}".encode())
                with lock:
                    ids.append(message_id)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return ids


def _report(ids: list[str]) -> str:
    drained = flush(120)
    names = [t.name for t in threading.enumerate()]
    return json.dumps(
        {
            "pid": os.getpid(),
            "drained": drained,
            "publisher_threads": names.count("messaging-publisher"),
            "ids": ids,
        }
    )


def threads_and_fork(queue: str, threads: int, each: int) -> None:
    """gunicorn ``--preload`` style: publish once (the parent's publisher thread starts),
    fork, then ``threads`` threads in parent and child commit ``each`` messages; each
    process prints its report (pid, publisher threads, ids)."""
    _commit(queue, b"preload")
    assert flush(30)
    connections.close_all()
    pid = os.fork()
    tag = "child" if pid == 0 else "parent"
    report = _report(_publish_from_threads(queue, threads, each, tag))
    print(report, flush=True)
    if pid == 0:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"child_status": status}), flush=True)
