"""The Procfile: the one description of svcflow's processes (``name: command`` per line).

``svcflow run`` runs what it lists locally, and docs/operations.md shows how to run the same
commands under systemd or supervisord in production. Commands are shell command lines (they
use ``${VAR:-default}``); they run under ``/bin/sh``, as with honcho and Heroku.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ProcfileInvalid

LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>\S.*)$")


@dataclass(frozen=True)
class Process:
    name: str
    command: str


def parse(text: str, source: str = "Procfile") -> list[Process]:
    """The processes in ``text``, in order. Blank lines and ``#`` comments are skipped; any
    other line must be ``name: command`` with a name of letters, digits, ``_`` or ``-``."""
    processes: list[Process] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            raise ProcfileInvalid(
                f"{source}:{number}: {line!r} is not a process line.",
                hint="Write `name: command`, the name made of letters, digits, _ or -.",
                path=source,
                line=number,
            )
        name, command = match["name"], match["command"].strip()
        if name in seen:
            raise ProcfileInvalid(
                f"{source}:{number}: process {name!r} is already defined on line {seen[name]}.",
                hint="Give each process its own name.",
                path=source,
                line=number,
            )
        seen[name] = number
        processes.append(Process(name, command))
    if not processes:
        raise ProcfileInvalid(
            f"{source} lists no process.",
            hint="Add lines such as `web: gunicorn ...`; see the Procfile in the repository.",
            path=source,
        )
    return processes


def load(path: Path) -> list[Process]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProcfileInvalid(
            f"Cannot read the Procfile {path}: {exc}.",
            hint="Run from the directory that holds it, or name it with --procfile.",
            path=str(path),
        ) from exc
    return parse(text, str(path))
