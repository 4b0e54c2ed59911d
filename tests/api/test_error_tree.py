"""Every engine error has an HTTP status someone chose, and the tree stays one tree.

api/problems.py maps the kinds of error (not found, forbidden, conflict, invalid,
unavailable), with an entry for a single error only where it must differ from its kind. There
is no default status, so an error outside every kind would go unanswered: these tests find
such an error before a client does. They look at every error class that exists once every
module of engine, api and workers is imported, not at a list kept by hand.
"""

from __future__ import annotations

import ast
import importlib
import logging
import pkgutil
from pathlib import Path

import pytest

from api import problems
from engine import errors

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "api", "workers")
# Raising these says nothing a caller can act on: raise a leaf, which has its own code.
NOT_RAISED = {errors.SvcflowError, *errors.KINDS}


def _import_everything() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            importlib.import_module(module.name)


def _subclasses(cls: type[errors.SvcflowError]) -> set[type[errors.SvcflowError]]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


def _svcflow_errors() -> list[type[errors.SvcflowError]]:
    """Every error class svcflow itself defines (not the ones a test defines)."""
    _import_everything()
    found = [c for c in _subclasses(errors.SvcflowError) if c.__module__.split(".")[0] in PACKAGES]
    return sorted(found, key=lambda c: c.__name__)


ERRORS = _svcflow_errors()
LEAVES = [c for c in ERRORS if c not in errors.KINDS]


def test_the_tree_is_found_and_lives_in_one_module() -> None:
    assert len(LEAVES) >= 30  # the walk really found the tree
    assert {c.__module__ for c in ERRORS} == {"engine.errors"}


def test_each_kind_is_a_direct_child_of_the_base_and_has_a_status() -> None:
    for kind in errors.KINDS:
        assert kind.__bases__ == (errors.SvcflowError,), kind
        assert kind in problems.STATUS, kind
    assert errors.SvcflowError not in problems.STATUS  # that would be a default in disguise


@pytest.mark.parametrize("error", LEAVES, ids=lambda c: c.__name__)
def test_every_error_is_of_exactly_one_kind_and_has_a_deliberate_status(
    error: type[errors.SvcflowError],
) -> None:
    kinds = [k for k in errors.KINDS if issubclass(error, k)]
    assert len(kinds) == 1, f"{error.__name__} is of kinds {kinds}: derive it from one"
    assert problems.status_of(error) is not None


def test_single_entries_only_refine_a_kind() -> None:
    for cls, status in problems.STATUS.items():
        if cls not in errors.KINDS:
            kind = next(k for k in errors.KINDS if issubclass(cls, k))
            assert status != problems.STATUS[kind], f"{cls.__name__} repeats its kind's status"


def test_errors_that_once_fell_back_to_400_have_a_chosen_status() -> None:
    chosen = {
        errors.FormError: 422,
        errors.DurationInvalid: 422,
        errors.ReplayError: 422,
        errors.CaseChainTooDeep: 422,
        errors.TimerPlanError: 422,
        errors.RedisUnavailable: 503,
        errors.VersionMismatch: 412,
        errors.DatabaseNotReady: 503,
    }
    assert {cls: problems.status_of(cls) for cls in chosen} == chosen


def test_every_error_has_its_own_code() -> None:
    codes = [c.code for c in LEAVES]
    assert all("code" in vars(c) for c in LEAVES), "a leaf inherits its parent's code"
    assert len(set(codes)) == len(codes), sorted(codes)


def test_an_error_without_a_status_is_a_logged_500_not_a_guess(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Stray(errors.SvcflowError):
        code = "stray"

    with caplog.at_level(logging.ERROR, logger="api.problems"):
        response = problems.from_engine(Stray("lost"))
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal-error"
    assert "Stray" in caplog.text


# --- nothing raises the base or a kind ------------------------------------------------------


def _raises_of_base_or_kind(source: str, filename: str) -> list[str]:
    """``raise`` statements whose class is the base or a kind, however engine.errors was
    imported (``from engine.errors import X [as Y]``, ``from engine import errors as e``)."""
    tree = ast.parse(source, filename)
    names: dict[str, str] = {}  # local name -> class name in engine.errors
    modules: set[str] = set()  # local names of the engine.errors module
    if filename.endswith("engine/errors.py"):
        names = {c.__name__: c.__name__ for c in NOT_RAISED}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "engine.errors":
            names.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module == "engine":
            modules.update(a.asname or a.name for a in node.names if a.name == "errors")
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "engine.errors")
    forbidden = {c.__name__ for c in NOT_RAISED}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        raised = None
        if isinstance(target, ast.Name):
            raised = names.get(target.id)
        elif isinstance(target, ast.Attribute) and ast.unparse(target.value) in modules:
            raised = target.attr
        if raised in forbidden:
            found.append(f"{filename}:{node.lineno}: raise {raised}")
    return found


def test_the_raise_check_sees_every_import_style() -> None:
    source = (
        "from engine import errors as e\n"
        "from engine.errors import Conflict as C, SvcflowError\n"
        "import engine.errors\n"
        "from werkzeug.exceptions import NotFound\n"
        "raise SvcflowError('a')\n"
        "raise e.Invalid('b')\n"
        "raise C\n"
        "raise engine.errors.Unavailable('c')\n"
        "raise NotFound()\n"  # werkzeug's, not ours
        "raise e.CaseNotFound('d')\n"  # a leaf
    )
    assert [f.split(": ")[1] for f in _raises_of_base_or_kind(source, "x.py")] == [
        "raise SvcflowError",
        "raise Invalid",
        "raise Conflict",
        "raise Unavailable",
    ]


def test_no_code_raises_the_base_or_a_kind() -> None:
    found = [
        finding
        for package in (*PACKAGES, "bench")
        for path in sorted((ROOT / package).rglob("*.py"))
        for finding in _raises_of_base_or_kind(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == []
