"""The request's database session. The view owns the transaction (``with transaction():``);
when an outer decorator (idempotency) already opened it, the view joins it, so the response
record and the change it answers commit together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g
from sqlalchemy.orm import Session

from api import state


def session() -> Session:
    if "svcflow_session" not in g:
        g.svcflow_session = state.runtime().sessions()
    current: Session = g.svcflow_session
    return current


@contextmanager
def transaction() -> Iterator[Session]:
    s = session()
    if s.in_transaction():
        yield s
        return
    with s.begin():
        yield s


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        s = g.pop("svcflow_session", None)
        if s is not None:
            s.close()
