"""The core is pure: it imports no database, queue or web package and never reads the wall
clock; and nothing else in svcflow reads the wall clock except through the runtime's clock.

The pure modules are found by package, not listed: every module under ``engine/core`` (and the
error tree, ``engine/errors.py``) is imported in a fresh interpreter with the I/O packages and
svcflow's own outer layers blocked, so that nothing the test run itself imported
(tests/conftest.py loads SQLAlchemy) can hide a dependency, and a new or renamed core module
cannot drop out of the check.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "engine" / "core"
WALL_CLOCK_HOME = ROOT / "engine" / "runtime" / "clock.py"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PURE_FILES = [*sorted(CORE.rglob("*.py")), ROOT / "engine" / "errors.py"]
PURE_MODULES = [_module_name(p) for p in PURE_FILES]
BLOCKED = ["sqlalchemy", "alembic", "psycopg", "redis", "rq", "flask", "flask_smorest"]
# svcflow's own layers above the core: a pure module must not reach them either.
BLOCKED_ENGINE = [
    "engine.store",
    "engine.services",
    "engine.runtime",
    "engine.simulation",
    "engine.cli",
    "api",
    "workers",
]

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


def test_the_core_package_holds_the_modules_that_decide() -> None:
    # A guard on the discovery itself: an empty or misplaced glob would check nothing.
    names = {m.rpartition(".")[2] for m in PURE_MODULES}
    assert {"definition", "validation", "machine", "calendar", "sla", "errors"} <= names


def test_pure_modules_import_with_database_queue_and_web_packages_blocked() -> None:
    result = _import_blocked(PURE_MODULES)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(PURE_MODULES)}"


@pytest.mark.parametrize(
    "adapter", ["engine.store.models", "engine.services.cases", "engine.runtime.clock"]
)
def test_the_blocker_does_catch_an_outer_layer(adapter: str) -> None:
    result = _import_blocked([adapter])

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
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}()")
    return calls


SHIPPED = sorted(
    p
    for package in ("engine", "api", "workers")
    for p in (ROOT / package).rglob("*.py")
    if p != WALL_CLOCK_HOME and "migrations" not in p.parts
)


def test_nothing_shipped_reads_the_wall_clock_but_the_runtime_clock() -> None:
    """The core gets ``now`` as an argument; adapters (HTTP views, RQ jobs, CLI commands) ask
    their runtime's clock, which tests and the simulator replace with virtual time."""
    assert len(SHIPPED) > 50  # the glob found the code base
    leaks = [call for path in SHIPPED for call in _wall_clock_calls(path)]

    assert leaks == []


def test_the_clock_adapter_is_where_the_wall_clock_is_read() -> None:
    # Also proves the detector above finds such a call when there is one.
    assert [c.split(": ", 1)[1] for c in _wall_clock_calls(WALL_CLOCK_HOME)] == ["datetime.now()"]
