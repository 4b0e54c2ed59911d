"""The supervisord configuration of a local run (``svcflow run``), made from the Procfile.

Why supervisord rather than honcho or a loop of our own: honcho stops every process when one
exits, so one crash ended the whole run; supervisord restarts a process that exits (with
backoff while it fails to start: ``startsecs``/``startretries``, then it says the process
gave up), logs each start and exit with its status, and stops each process together with its
children (``stopasgroup``/``killasgroup``: gunicorn's workers, the RQ scheduler process), so
Ctrl-C leaves nothing behind. It is also what many hospitals' operators already run, and
docs/operations.md shows the production configuration beside this one.

Each program's output goes to its own log file under the var directory and, through an event
listener (:mod:`engine.runtime.supervisor_output`), to the terminal with the program's name
in front of each line.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.runtime.procfile import Process

START_SECONDS = 2  # a program must stay up this long to count as started
START_RETRIES = 5  # then supervisord gives up on it (FATAL), after waits of 1, 2, ... 5 s
STOP_SECONDS = 10  # SIGTERM to the program's process group, then SIGKILL to the group
LOG_MAX_BYTES = "10MB"
LOG_BACKUPS = 2
# Started first and stopped last, so Redis is up before the workers and the output listener
# prints the last words of every other program.
LISTENER_PRIORITY = 1
REDIS_PRIORITY = 10
PROCESS_PRIORITY = 100
LISTENER = "output"
SHELL_OPERATORS = frozenset(";&|<>()")


@dataclass(frozen=True)
class Program:
    """One supervised program: its name, its command line, and when it starts and stops."""

    name: str
    argv: tuple[str, ...]
    priority: int = PROCESS_PRIORITY


def from_procfile(process: Process) -> Program:
    """The Procfile line as a program run by ``/bin/sh -c``, as honcho and Heroku run it (the
    lines use ``${VAR:-default}``). A simple command is ``exec``-ed, so supervisord signals the
    program itself rather than a shell waiting for it; a compound one (``a && b``) keeps its
    shell, and stopping its process group still reaches every part."""
    return Program(process.name, ("/bin/sh", "-c", _exec_if_simple(process.command)))


def _exec_if_simple(command: str) -> str:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: leave it for the shell to report
        return command
    compound = any(token and set(token) <= SHELL_OPERATORS for token in tokens)
    return command if compound else f"exec {command}"


def _value(text: str) -> str:
    # supervisord expands %(name)s in values: a literal % is written %%.
    return text.replace("%", "%%")


def _section(title: str, options: dict[str, object]) -> str:
    lines = [f"[{title}]"]
    for key, value in options.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines.append(f"{key}={_value(text)}")
    return "\n".join(lines)


def render(
    programs: Sequence[Program],
    *,
    directory: Path,
    run_dir: Path,
    log_dir: Path,
    listener: Sequence[str],
) -> str:
    """The configuration text: supervisord in the foreground, each program supervised, and
    the output listener ``listener`` (a command line) printing their output."""
    supervisord: dict[str, object] = {
        "nodaemon": True,  # in the foreground: Ctrl-C (SIGINT) or SIGTERM stops everything
        "silent": False,  # its own log (spawned, exited, gave up) on the terminal too
        "logfile": run_dir / "supervisord.log",
        "logfile_maxbytes": LOG_MAX_BYTES,
        "logfile_backups": LOG_BACKUPS,
        "pidfile": run_dir / "supervisord.pid",
        "childlogdir": log_dir,
        "loglevel": "info",
        "identifier": "svcflow",
    }
    if os.geteuid() == 0:
        # Said explicitly, supervisord does not warn that it keeps root's privileges.
        supervisord["user"] = "root"
    sections = [_section("supervisord", supervisord)]
    width = max(len(p.name) for p in programs)
    sections.append(
        _section(
            f"eventlistener:{LISTENER}",
            {
                "command": shlex.join([*listener, "--width", str(width)]),
                "directory": directory,
                "events": "PROCESS_LOG",
                # Output is held here while the listener prints; a burst larger than this is
                # dropped from the terminal (never from the log files), and supervisord says so.
                "buffer_size": 10000,
                "priority": LISTENER_PRIORITY,
                "autorestart": True,
                "stderr_logfile": "/dev/stdout",  # what the listener prints, to the terminal
                "stderr_logfile_maxbytes": 0,
            },
        )
    )
    for program in programs:
        sections.append(
            _section(
                f"program:{program.name}",
                {
                    "command": shlex.join(program.argv),
                    "directory": directory,
                    "priority": program.priority,
                    "autostart": True,
                    "autorestart": True,  # whatever the exit status: a local run keeps all
                    "startsecs": START_SECONDS,
                    "startretries": START_RETRIES,
                    "stopsignal": "TERM",
                    "stopwaitsecs": STOP_SECONDS,
                    "stopasgroup": True,
                    "killasgroup": True,
                    "redirect_stderr": True,
                    "stdout_logfile": log_dir / f"{program.name}.log",
                    "stdout_logfile_maxbytes": LOG_MAX_BYTES,
                    "stdout_logfile_backups": LOG_BACKUPS,
                    "stdout_events_enabled": True,
                },
            )
        )
    return "\n\n".join(sections) + "\n"
