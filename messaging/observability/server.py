"""``runconsumer --metrics-port`` / ``relay --metrics-port``: an HTTP server in a
daemon thread of the process, answering ``GET /metrics`` in Prometheus' text format."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import metrics
from .exposition import exposition

logger = logging.getLogger("messaging.observability")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        try:
            body, content_type = exposition()
        finally:
            from django.db import connection

            connection.close()  # this request's thread is gone after the answer
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("metrics: " + format, *args)


class MetricsServer:
    """The server; :meth:`start` binds ``port`` (0: any free port, see :attr:`port`)."""

    def __init__(self, port: int, address: str = "") -> None:
        self._server = ThreadingHTTPServer((address, port), _Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="messaging-metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_metrics_server(port: int, address: str = "") -> MetricsServer:
    """Serve ``/metrics`` on ``port``; raises ``RuntimeError`` (one line) when
    prometheus_client is missing and ``OSError`` when the port is taken."""
    if not metrics.available():
        raise RuntimeError(
            "--metrics-port needs prometheus_client: "
            "pip install 'django-messaging-rabbitmq[metrics]'"
        )
    return MetricsServer(port, address).start()
