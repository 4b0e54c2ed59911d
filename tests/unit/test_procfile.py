"""The Procfile as `svcflow run` reads it, and the listener that prints each process's output
with its name: plain values in, plain values out."""

from __future__ import annotations

import io

import pytest

from engine.errors import ProcfileInvalid
from engine.runtime import procfile, supervisord
from engine.runtime.supervisor_output import Printer, serve


def test_the_repository_procfile_names_each_process_once() -> None:
    from tests.conftest import ROOT

    processes = procfile.load(ROOT / "Procfile")

    names = [p.name for p in processes]
    assert {"web", "worker"} <= set(names)
    assert len(names) == len(set(names))


def test_comments_and_blank_lines_are_skipped_and_order_is_kept() -> None:
    text = "# the processes\n\nweb: gunicorn app\n  worker:   rq worker q  \n"

    assert procfile.parse(text) == [
        procfile.Process("web", "gunicorn app"),
        procfile.Process("worker", "rq worker q"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web: gunicorn\nthis is not a process\n", "Procfile:2: 'this is not a process'"),
        ("web gunicorn\n", "Procfile:1:"),
        ("web:\n", "Procfile:1:"),
        ("we b: gunicorn\n", "Procfile:1:"),
        ("web: a\nweb: b\n", "Procfile:2: process 'web' is already defined on line 1"),
        ("# nothing\n\n", "Procfile lists no process"),
    ],
)
def test_a_bad_procfile_is_refused_with_the_line_at_fault(text: str, message: str) -> None:
    with pytest.raises(ProcfileInvalid) as caught:
        procfile.parse(text)

    assert message in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize(
    ("command", "shell_line"),
    [
        ("gunicorn --bind ${SVCFLOW_BIND:-0.0.0.0:$PORT} app", "exec gunicorn --bind"),
        ("rq worker --url $URL 'a;b'", "exec rq worker"),  # a quoted ; is an argument
        ("cd x && rq worker", "cd x && rq worker"),
        ("a | b", "a | b"),
        ("a; b", "a; b"),
    ],
)
def test_a_simple_command_replaces_its_shell_and_a_compound_one_keeps_it(
    command: str, shell_line: str
) -> None:
    program = supervisord.from_procfile(procfile.Process("p", command))

    assert program.argv[:2] == ("/bin/sh", "-c")
    assert program.argv[2].startswith(shell_line)


def _event(name: str, data: bytes) -> bytes:
    payload = f"processname:{name} groupname:{name} pid:1 channel:stdout\n".encode() + data
    header = "ver:3.0 server:svcflow serial:1 pool:output poolserial:1 "
    header += f"eventname:PROCESS_LOG_STDOUT len:{len(payload)}\n"
    return header.encode() + payload


def test_each_line_is_printed_once_with_its_process_name_whatever_the_chunks() -> None:
    """supervisord's chunks end anywhere, lengths count bytes, and the output is Chinese."""
    events = (
        _event("web", "启动 gunicorn\nListening at: http://127.0.0.1:8000\nBoo".encode())
        + _event("worker", b"*** Listening on svcflow...\n")
        + _event("web", "ting worker 2\n定时器已触发 case 7\n".encode())
    )
    protocol, out = io.BytesIO(), io.BytesIO()

    serve(io.BytesIO(events), protocol, Printer(out, width=6))

    assert out.getvalue().decode().splitlines() == [
        "web    | 启动 gunicorn",
        "web    | Listening at: http://127.0.0.1:8000",
        "worker | *** Listening on svcflow...",
        "web    | Booting worker 2",
        "web    | 定时器已触发 case 7",
    ]
    # Every event acknowledged, and READY said before each one and once more at the end.
    assert protocol.getvalue().count(b"RESULT 2\nOK") == 3
    assert protocol.getvalue().count(b"READY\n") == 4


def test_an_unfinished_last_line_is_printed_when_the_listener_stops() -> None:
    out = io.BytesIO()
    printer = Printer(out, width=3)
    printer.feed(b"web", b"no newline yet")

    printer.flush()

    assert out.getvalue() == b"web | no newline yet\n"
