"""The layout holds: the import-linter contracts in pyproject.toml are kept (layers, a pure
core, no cycles between sibling modules), and no first-party import needs an alias.

``make lint`` runs the same contracts; here they fail the test suite too, so a change that
breaks the architecture cannot land on a green run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
FIRST_PARTY = ("engine", "api", "workers")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_contracts_declare_the_layers_the_purity_and_no_cycles() -> None:
    kinds = {str(c["id"]): str(c["type"]) for c in _contracts()}

    assert kinds == {"layers": "layers", "pure-core": "forbidden", "acyclic": "acyclic_siblings"}


def test_every_import_linter_contract_is_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the exit status and the report are what is asserted
    )
    report = result.stdout + result.stderr

    assert result.returncode == 0, report
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in report


def _aliased_first_party_imports(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            names = node.names
        elif isinstance(node, ast.Import):
            module, names = "", node.names
        else:
            continue
        for alias in names:
            full = f"{module}.{alias.name}" if module else alias.name
            if alias.asname and full.split(".")[0] in FIRST_PARTY:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {full} as {alias.asname}")
    return found


def test_no_first_party_import_needs_an_alias() -> None:
    """Module names say what they own and are unique enough to be imported as they are."""
    files = [p for d in (*FIRST_PARTY, "tests", "bench") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 100

    assert [hit for path in files for hit in _aliased_first_party_imports(path)] == []


def test_the_alias_check_finds_an_alias(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from engine.services import cases as case_service\n")

    assert _aliased_first_party_imports(probe, tmp_path) == [
        "probe.py:1: engine.services.cases as case_service"
    ]
