"""The README's first command, as a new user runs it: ``make run`` from a clean shell (no venv
on PATH, nothing but HOME and a system PATH), then the things that user does first.

It waits for /healthz, publishes a small definition and creates a case over HTTP whose timer
falls due 3 s later, and sees the worker fire it; signs in to the dashboard 10 times with
fresh cookie jars (every web worker must accept every sign-in), each sign-in then opening
three pages; and stops the run with SIGINT, as Ctrl-C does, after which no process of the run
may be left. The run gets its own ports and var directory (SVCFLOW_PORT, SVCFLOW_REDIS_PORT,
SVCFLOW_VAR_DIR), so it collides neither with a developer's ``make run`` nor with another
test process.

Waits are bounded: each polls for its outcome until a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.runtime.ports import free_port, is_free
from tests.conftest import ROOT
from tests.processes import kill_session, session_members

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
READY_SECONDS = 60.0  # make, migrations, publishing the bundled workflows, gunicorn
FIRE_SECONDS = 30.0  # the timer is due 3 s after the case is created
STOP_SECONDS = 30.0  # supervisord stops each program within 10 s, then kills its group
SIGN_INS = 10
REQUEST_SECONDS = 20  # one request, on a machine busy with the rest of the suite

SMOKE_DEFINITION = """\
name: smoke_timer
title: {en: Smoke timer, zh: 冒烟计时}
initial: waiting
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - {name: nudge, after: 3s, trigger: nudge}
  - name: nudged
    title: {en: Nudged, zh: 已提醒}
    final: true
transitions:
  - trigger: nudge
    source: waiting
    dest: nudged
"""


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    base: str
    env: dict[str, str]
    log: Path
    web_port: int
    redis_port: int

    def output(self, tail: int = 6000) -> str:
        return self.log.read_text("utf-8", errors="replace")[-tail:]


def wait_for(what: str, check: Callable[[], Any], seconds: float, run: Run) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if run.process.poll() is not None:
            pytest.fail(
                f"make run exited ({run.process.returncode}) before {what}:\n{run.output()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {seconds:.0f} s; make run printed:\n{run.output()}")
        time.sleep(0.2)  # polling a live system for an outcome, not waiting for time to pass


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=REQUEST_SECONDS).status_code == 200
    except requests.RequestException:  # not listening yet, or still starting its workers
        return False


def stop(run: Run) -> dict[int, str]:
    """SIGINT to the whole run, as Ctrl-C in its terminal; then what is left of it."""
    os.killpg(run.process.pid, signal.SIGINT)
    try:
        run.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"make run still runs {STOP_SECONDS:.0f} s after SIGINT:\n{run.output()}")
    deadline = time.monotonic() + STOP_SECONDS
    while (left := session_members(run.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    web_port, redis_port = free_port(), free_port()
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": CLEAN_PATH,
        "SVCFLOW_PORT": str(web_port),
        "SVCFLOW_REDIS_PORT": str(redis_port),
        "SVCFLOW_VAR_DIR": str(tmp_path / "var"),
    }
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: the test can find all of it
        )
    started = Run(process, f"http://127.0.0.1:{web_port}", env, log, web_port, redis_port)
    try:
        yield started
    finally:
        kill_session(process.pid)  # whatever a failed test left running
        process.wait(timeout=STOP_SECONDS)


def create_token(run: Run, role: str) -> str:
    """A token made as an operator would: the svcflow CLI, on the run's database."""
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "svcflow"),
            "tokens",
            "create",
            "--role",
            role,
            "--name",
            f"smoke-{role}",
        ],
        cwd=ROOT,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def sign_in(base: str, token: str) -> requests.Session:
    browser = requests.Session()  # a fresh cookie jar
    form = browser.get(f"{base}/dashboard/login", timeout=REQUEST_SECONDS)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, form.text
    landed = browser.post(
        f"{base}/dashboard/login",
        data={"csrf_token": csrf[1], "token": token, "next": "/dashboard/"},
        timeout=REQUEST_SECONDS,
    )
    assert landed.status_code == 200, landed.text[:2000]
    assert landed.url == f"{base}/dashboard/", landed.text[:2000]
    return browser


def test_make_run_from_a_clean_shell_serves_fires_timers_and_stops_cleanly(run: Run) -> None:
    wait_for("/healthz answering 200", lambda: healthy(run.base), READY_SECONDS, run)
    output = run.output(tail=10**6)
    assert f"redis://127.0.0.1:{run.redis_port}/0" in output  # the port it was given
    assert not re.search(r"sh: \d+: \S+: not found", output), output  # gunicorn, rq

    admin = {"Authorization": f"Bearer {create_token(run, 'admin')}"}
    published = requests.post(
        f"{run.base}/api/v1/definitions",
        json={"source": SMOKE_DEFINITION},
        headers=admin,
        timeout=REQUEST_SECONDS,
    )
    assert published.status_code == 201, published.text
    created = requests.post(
        f"{run.base}/api/v1/cases",
        json={"definition": "smoke_timer", "data": {}},
        headers=admin,
        timeout=REQUEST_SECONDS,
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]

    def fired() -> list[dict[str, Any]]:
        history = requests.get(
            f"{run.base}/api/v1/cases/{case_id}/history", headers=admin, timeout=REQUEST_SECONDS
        )
        return [e for e in history.json() if e.get("trigger") == "nudge"]

    (event,) = wait_for("timer fired by the worker", fired, FIRE_SECONDS, run)
    assert (event["from_state"], event["to_state"]) == ("waiting", "nudged")
    assert event["actor"] == "timer"

    supervisor = create_token(run, "supervisor")
    pages = ["/dashboard/", "/dashboard/stuck", f"/dashboard/cases/{case_id}"]
    for attempt in range(SIGN_INS):
        browser = sign_in(run.base, supervisor)
        for page in pages:
            shown = browser.get(f"{run.base}{page}", timeout=REQUEST_SECONDS)
            assert shown.status_code == 200, (attempt, page, shown.text[:2000])
            assert shown.url == f"{run.base}{page}", (attempt, page, "sent to the login page")
            assert "smoke-supervisor" in shown.text, (attempt, page)

    left = stop(run)

    assert left == {}, f"left running after SIGINT: {left}\n{run.output()}"
    assert is_free(run.web_port) and is_free(run.redis_port)
