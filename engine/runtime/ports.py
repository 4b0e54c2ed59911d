"""Loopback ports for the local run: is one free, and if not, what holds it.

``svcflow run`` wants fixed ports (the web port, 6379 for the embedded Redis) so that URLs in
the README and in a developer's tools keep working. When one is taken, the person running it
is told what holds it (program, pid, command line) instead of finding a server on some other
port, or a process that died at start, without knowing why.
"""

from __future__ import annotations

import socket

import psutil

from engine.errors import RedisUnavailable

LOOPBACK = "127.0.0.1"


def is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could listen on ``host:port`` now. SO_REUSEADDR is set, as gunicorn
    and redis-server set it, so a port whose last connections linger in TIME_WAIT counts as
    free; a listener on the wildcard address makes the loopback port taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (the kernel's choice)."""
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, 0))
        except OSError as exc:
            raise RedisUnavailable(f"No free port on {LOOPBACK}: {exc}.") from exc
        chosen: int = sock.getsockname()[1]
        return chosen


def occupant(port: int) -> str:
    """Who listens on ``port``, for a person: ``redis-server (pid 4711, user ann):
    /usr/bin/redis-server 127.0.0.1:6379``, or what can be said when the process is not
    visible to this user."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return "a process this user is not allowed to see"
    pids = {
        c.pid
        for c in connections
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
    }
    if not pids:
        return "a socket that is not listening (closing, or bound by another network namespace)"
    described = [_describe(pid) for pid in sorted(pids, key=lambda p: p or 0)]
    return "; ".join(described)


def _describe(pid: int | None) -> str:
    if pid is None:
        return "a process of another user or container (run as that user to see which)"
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            name = process.name()
            user = process.username()
            # Servers that rename themselves (redis-server) pad their title with blanks.
            command = " ".join(" ".join(process.cmdline()).split()) or name
    except psutil.NoSuchProcess:
        return f"process {pid}, which has just exited"
    except psutil.AccessDenied:
        return f"process {pid} (details hidden from this user)"
    return f"{name} (pid {pid}, user {user}): {command}"
