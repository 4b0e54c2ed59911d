"""bench/http.py keeps the gunicorn logs of a run in which a fire was answered 5xx."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import bench.http


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "run"
    logs.mkdir()
    (logs / "gunicorn-api.log").write_text("Traceback (most recent call last):\n", "utf-8")
    return logs


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "var" / "bench-logs"
    monkeypatch.setattr(bench.http, "KEPT_LOGS", target)
    return target


def test_a_5xx_in_any_phase_keeps_the_logs_and_says_where(
    tmp_path: Path, kept: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = _logs(tmp_path)
    bench.http.dispose_of_logs(logs, "sqlite", Counter({"409": 3, "500": 1}), keep=False)
    [moved] = kept.iterdir()
    assert not logs.exists()
    assert moved.name.startswith("http-sqlite-")
    assert (moved / "gunicorn-api.log").read_text("utf-8").startswith("Traceback")
    assert f"1 answer(s) 5xx): {moved}" in capsys.readouterr().out


def test_without_a_5xx_the_logs_are_deleted(tmp_path: Path, kept: Path) -> None:
    logs = _logs(tmp_path)
    bench.http.dispose_of_logs(logs, "postgresql", Counter({"409": 7}), keep=False)
    assert not logs.exists()
    assert not kept.exists()


def test_keep_logs_keeps_them_whatever_the_answers(tmp_path: Path, kept: Path) -> None:
    logs = _logs(tmp_path)
    bench.http.dispose_of_logs(logs, "sqlite", Counter(), keep=True)
    [moved] = kept.iterdir()
    assert moved.name.startswith("http-sqlite-")
    assert not logs.exists()
