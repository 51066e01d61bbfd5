"""Finding a RabbitMQ / PostgreSQL for the demo and the tests: is a port answering, is a
Docker engine there, and starting one with testcontainers when it is."""

from __future__ import annotations

import atexit
import socket


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - no client, no engine, no permission: all "no"
        return False


def start_rabbitmq() -> str:
    """Start RabbitMQ with testcontainers (stopped at exit); returns its amqp:// URL."""
    from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer("rabbitmq:3.13-management")
    container.start()
    atexit.register(container.stop)
    host = container.get_container_host_ip()
    port = container.get_exposed_port(container.port)
    return f"amqp://guest:guest@{host}:{port}/%2F"


def start_postgres() -> str:
    """Start PostgreSQL with testcontainers (stopped at exit); returns its postgres:// URL."""
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    atexit.register(container.stop)
    return container.get_connection_url()
