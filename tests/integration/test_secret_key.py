"""One session secret for every process that serves the dashboard: made once, atomically,
readable by its owner only; a configured one wins; a bad one is refused with a clear error."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from engine.errors import SecretKeyInvalid
from engine.runtime import secret_key

PROCESSES = 8


def _race(path: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    results.put(secret_key.load_or_create(Path(path)))  # type: ignore[attr-defined]


def test_processes_starting_together_agree_on_one_key_made_once(tmp_path: Path) -> None:
    """As gunicorn's workers do when they start together on a fresh var directory."""
    path = tmp_path / "var" / "secret_key"
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_race, args=(str(path), barrier, results)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    keys = {key for key, _ in outcomes}
    assert len(keys) == 1
    assert sum(created for _, created in outcomes) == 1
    assert path.read_text().strip() in keys
    assert len(keys.pop()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key.is_private(path)
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no scratch file left


def test_a_key_made_earlier_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    first, created = secret_key.load_or_create(path)

    again, created_again = secret_key.load_or_create(path)

    assert (created, created_again) == (True, False)
    assert again == first


def test_a_missing_key_file_that_was_named_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "key"

    with pytest.raises(SecretKeyInvalid) as caught:
        secret_key.read(path)

    assert caught.value.message == f"The session secret file {path} does not exist."
    assert "SVCFLOW_SECRET_KEY_FILE" in (caught.value.hint or "")
    assert not path.parent.exists()  # nothing made where an operator pointed by mistake


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("hunter2\n")

    with pytest.raises(SecretKeyInvalid) as caught:
        secret_key.read(path)

    assert "has 7 characters; at least 32 are needed" in caught.value.message
