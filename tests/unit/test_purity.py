"""The core is pure: it imports no database, queue or web package and never reads the wall clock.

Imports are checked in a fresh interpreter with those packages blocked, so that nothing the test
run itself imported (tests/conftest.py loads SQLAlchemy) can hide a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
PURE_MODULES = [
    "engine.definition",
    "engine.validation",
    "engine.expressions",
    "engine.machine",
    "engine.durations",
    "engine.replay",
    "engine.errors",
    "engine.records",
    "engine.clock",
    # core modules written in parallel with these tests: checked as soon as they exist
    *(
        f"engine.{name}"
        for name in ("calendar", "timers", "sla")
        if (ENGINE / f"{name}.py").exists()
    ),
]
BLOCKED = ["sqlalchemy", "alembic", "psycopg", "redis", "rq", "flask", "flask_smorest"]
# Adapters of the engine itself: a pure module must not reach them either.
BLOCKED_ENGINE = ["engine.db", "engine.services", "engine.cli", "api", "workers"]

_IMPORT_WITH_BLOCKS = textwrap.dedent(
    """
    import importlib
    import importlib.abc
    import sys

    BLOCKED = set({blocked!r})
    BLOCKED_PREFIXES = {blocked_engine!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED or any(
                name == p or name.startswith(p + ".") for p in BLOCKED_PREFIXES
            ):
                raise ImportError(f"the pure core imported {{name}}")
            return None

    sys.meta_path.insert(0, Blocker())
    for module in {modules!r}:
        importlib.import_module(module)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("imported", len({modules!r}))
    """
)


def _import_blocked(modules: list[str]) -> subprocess.CompletedProcess[str]:
    code = _IMPORT_WITH_BLOCKS.format(
        blocked=BLOCKED, blocked_engine=BLOCKED_ENGINE, modules=modules
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # the exit status is what the tests assert on
    )


def test_pure_modules_import_with_database_queue_and_web_packages_blocked() -> None:
    result = _import_blocked(PURE_MODULES)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(PURE_MODULES)}"


def test_the_blocker_does_catch_an_adapter() -> None:
    result = _import_blocked(["engine.db.models"])

    assert result.returncode != 0
    assert "the pure core imported" in result.stderr


# --- no wall clock ----------------------------------------------------------------------------

_WALL_CLOCK = {
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "time.time",
    "time.time_ns",
    "time.localtime",
    "time.gmtime",
}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _wall_clock_calls(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if any(name == c or name.endswith("." + c) for c in _WALL_CLOCK):
                calls.append(f"{path.name}:{node.lineno}: {name}()")
    return calls


@pytest.mark.parametrize(
    "module", [m for m in PURE_MODULES if m != "engine.clock"], ids=lambda m: m.split(".")[-1]
)
def test_pure_module_never_reads_the_wall_clock(module: str) -> None:
    path = ENGINE / f"{module.rpartition('.')[2]}.py"

    assert _wall_clock_calls(path) == []


def test_the_clock_adapter_is_where_the_wall_clock_is_read() -> None:
    # Also proves the detector above finds such a call when there is one.
    assert [c.split(": ", 1)[1] for c in _wall_clock_calls(ENGINE / "clock.py")] == [
        "datetime.now()"
    ]
