"""``svcflow run`` under supervisord, on a Procfile of the test's own: a process that dies is
restarted while the others keep running, output arrives with each process's name, and SIGINT
stops every process with its children. Then what the run says when a port it wants is taken.

(tests/integration/test_make_run.py runs the real Procfile through ``make run``.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from engine.cli import main, run
from engine.errors import PortInUse
from engine.runtime.embedded_redis import EmbeddedRedis
from engine.runtime.ports import free_port
from tests.conftest import ROOT
from tests.processes import kill_session, session_members

SVCFLOW = str(Path(sys.executable).parent / "svcflow")
STOP_SECONDS = 30.0

# First start: up 3 s (past supervisord's startsecs), then it crashes. Later starts: it starts
# a child and stays up; the child must not outlive a stop.
FLAKY = """\
import os, subprocess, sys, time
from pathlib import Path
from urllib.parse import urlsplit

starts = Path(sys.argv[1])
starts.mkdir(exist_ok=True)
first = not any(starts.iterdir())
child = None if first else subprocess.Popen(["sleep", "600"])
(starts / str(os.getpid())).write_text(str(child.pid) if child else "")
print(f"started {os.getpid()}", flush=True)
time.sleep(3 if first else 600)
sys.exit(1)
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port taken by this test process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def wait_until(
    check: Callable[[], bool], seconds: float, output: Path, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if process.poll() is not None:
            pytest.fail(f"svcflow run exited ({process.returncode}):\n{output.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s; the run printed:\n{output.read_text()[-5000:]}")
        time.sleep(0.1)  # polling for an outcome, not waiting for time to pass


def test_a_process_that_dies_is_restarted_and_sigint_stops_all_with_their_children(
    tmp_path: Path,
) -> None:
    starts = tmp_path / "starts"
    (tmp_path / "flaky.py").write_text(FLAKY)
    (tmp_path / "Procfile").write_text(
        f"flaky: python {tmp_path / 'flaky.py'} {starts}\n"
        # A % reaches the shell as written (supervisord would read %(...)s in its config).
        "steady: printf '%s pid %s\\n' steady $$; exec sleep 600\n"
    )
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",  # `python` must come from svcflow's own environment
        "SVCFLOW_VAR_DIR": str(tmp_path / "var"),
        "SVCFLOW_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # none embedded
        "SVCFLOW_PORT": str(free_port()),
    }
    output = tmp_path / "run.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [SVCFLOW, "run", "--procfile", str(tmp_path / "Procfile")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: starts.exists() and len(list(starts.iterdir())) == 2, 60, output, process
        )
        wait_until(lambda: "steady | steady pid" in output.read_text(), 10, output, process)
        first, second = sorted(starts.iterdir(), key=lambda p: p.stat().st_mtime)
        child = int(second.read_text())
        steady = [pid for pid, cmd in session_members(process.pid).items() if "sleep 600" in cmd]
        wait_until(
            lambda: f"flaky  | started {second.name}" in output.read_text(), 10, output, process
        )
        text = output.read_text()

        assert f"flaky  | started {first.name}" in text
        assert "exited: flaky (exit status 1; not expected)" in text
        assert text.count("steady | steady pid") == 1  # never restarted: it did not die
        assert child in steady

        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=STOP_SECONDS)
        deadline = time.monotonic() + STOP_SECONDS
        while session_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)

        assert session_members(process.pid) == {}  # the child (in `steady` above) included
    finally:
        kill_session(process.pid)
        process.wait(timeout=STOP_SECONDS)


def run_cli(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(main, ["run", *args], env=env, catch_exceptions=False)


def test_a_taken_web_port_is_refused_naming_what_holds_it(
    listener: socket.socket, tmp_path: Path
) -> None:
    port = listener.getsockname()[1]

    result = run_cli("--port", str(port), "--var-dir", str(tmp_path / "var"))

    assert result.exit_code == 1  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert f"Port {port} on 127.0.0.1, wanted for the web process, is taken by" in stderr
    assert f"(pid {os.getpid()}," in stderr  # this test process holds it
    assert "SVCFLOW_PORT" in stderr


def test_a_taken_redis_port_that_was_asked_for_is_refused(
    listener: socket.socket, tmp_path: Path
) -> None:
    port = listener.getsockname()[1]

    result = run_cli(
        "--redis-port", str(port), "--port", str(free_port()), "--var-dir", str(tmp_path / "var")
    )

    assert result.exit_code == 1  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert f"Port {port} on 127.0.0.1, wanted for the embedded Redis, is taken by" in stderr
    assert f"(pid {os.getpid()}," in stderr


def test_when_the_default_redis_port_is_taken_the_run_says_so_and_uses_another(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = listener.getsockname()[1]
    monkeypatch.setattr(run, "DEFAULT_REDIS_PORT", taken)

    chosen = run._redis_port(None)

    said = capsys.readouterr().err
    assert chosen != taken
    assert f"port {taken} is taken by" in said
    assert f"(pid {os.getpid()}," in said
    assert f"listens on port {chosen} instead" in said


def test_a_procfile_process_may_not_take_a_name_the_run_uses(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: gunicorn app\nredis: redis-server\n")

    result = run_cli("--procfile", str(tmp_path / "Procfile"), "--var-dir", str(tmp_path / "v"))

    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "the name 'redis' is used by `svcflow run` itself" in result.stderr  # type: ignore[attr-defined]


def test_an_embedded_redis_on_a_taken_port_names_the_server_there(
    redis_server: str, tmp_path: Path
) -> None:
    """Another run's redis-server holds the port (it renames itself and pads the title)."""
    port = urlsplit(redis_server).port

    with pytest.raises(PortInUse) as caught:
        EmbeddedRedis(tmp_path / "redis", port=port).start()

    message = caught.value.message
    assert f"Port {port} on 127.0.0.1, wanted for the embedded Redis, is taken by" in message
    assert "redis-server (pid " in message
    assert f"redis-server 127.0.0.1:{port}." in message  # its title, blanks trimmed
    assert caught.value.fields["port"] == port
