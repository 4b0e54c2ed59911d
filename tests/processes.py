"""Finding and ending every process a test started, by session rather than by name: a test
starts a command with ``start_new_session=True``, and everything that command starts stays
in that session (supervisord only makes process groups), however deep, while nothing else on
the machine is in it."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def session_members(session_id: int) -> dict[int, str]:
    """Every live process of session ``session_id``: pid -> command line (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # exited meanwhile
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == session_id and state != "Z":
            found[int(entry.name)] = command or stat.split()[1]
    return found


def kill_session(session_id: int) -> None:
    """SIGKILL whatever is left of the session (a failed test's leftovers)."""
    for pid in session_members(session_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
