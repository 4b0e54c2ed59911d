"""A dashboard sign-in holds whichever web worker answers: every app that starts on the same
var directory signs with the same key (without SVCFLOW_SECRET_KEY, 4 of 5 sign-ins under two
gunicorn workers were refused with "表单被拒绝"), and a configured key wins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from api import state
from api.app import create_app
from engine.errors import SecretKeyInvalid
from engine.runtime import secret_key
from tests.api.conftest import make_tokens, sqlite_only


def _app(db_url: str, redis_url: str, **config: str) -> Flask:
    return create_app({"DATABASE_URL": db_url, "REDIS_URL": redis_url, **config})


def _move_cookie(source: FlaskClient, target: FlaskClient) -> None:
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


@sqlite_only
def test_a_sign_in_made_on_one_worker_holds_on_the_other(
    db_url: str, closed_redis_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    var = str(tmp_path / "var")
    first, second = (
        _app(db_url, closed_redis_url, VAR_DIR=var),
        _app(db_url, closed_redis_url, VAR_DIR=var),
    )
    token = make_tokens(sessions, "shared")["supervisor"]
    a, b = first.test_client(), second.test_client()

    form = a.get("/dashboard/login")  # the form from one worker ...
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.get_data(as_text=True))
    assert csrf
    _move_cookie(a, b)
    signed_in = b.post(  # ... is posted to the other
        "/dashboard/login", data={"csrf_token": csrf[1], "token": token, "next": "/dashboard/"}
    )
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    assert signed_in.headers["Location"] == "/dashboard/"
    _move_cookie(b, a)
    page = a.get("/dashboard/stuck")  # and the first worker knows who signed in

    assert page.status_code == 200
    assert "shared-supervisor" in page.get_data(as_text=True)
    assert secret_key.is_private(tmp_path / "var" / "secret_key")
    for app in (first, second):
        state.of(app).runtime.close()


@sqlite_only
def test_a_configured_key_wins_and_nothing_is_written(
    db_url: str, closed_redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SVCFLOW_SECRET_KEY", "k" * 40)
    app = _app(db_url, closed_redis_url, VAR_DIR=str(tmp_path / "var"))

    assert app.config["SECRET_KEY"] == "k" * 40
    assert not (tmp_path / "var").exists()
    state.of(app).runtime.close()


@sqlite_only
def test_a_key_file_that_is_not_there_stops_the_app_with_a_clear_error(
    db_url: str, closed_redis_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "secrets" / "svcflow"

    with pytest.raises(SecretKeyInvalid, match="does not exist"):
        _app(db_url, closed_redis_url, SECRET_KEY_FILE=str(missing))
