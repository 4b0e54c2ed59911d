"""What the safety limits allow at worst: the measurements behind engine/core/limits.py.

Each line evaluates one CEL expression the expression budget accepts on the largest values
the value limits accept (or refuses it, where the issue measured the harm), and prints the
time of one evaluation; then the YAML alias bomb and the catastrophic pattern. Run:
``python bench/limits.py``. docs/definitions.md (Limits) quotes the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cel

from engine.core import limits
from engine.core.definition import parse_source
from engine.core.expression_budget import check_budget
from engine.core.schemas import SchemaCheck
from engine.errors import SvcflowError

N = limits.VALUE_MAX_ITEMS
DATA = {"xs": list(range(N)), "ys": list(range(N)), "s": "a" * limits.VALUE_MAX_CHARS}
LITERAL = "[" + ",".join(["0"] * limits.EXPRESSION_MAX_LITERAL_ITEMS) + "]"
ALL_ALL = "data.xs.all(x, data.ys.all(y, x + y >= 0))"
CASES = {
    f"two nested all over {N}": ALL_ALL,
    "two such pairs (four comprehensions, the most allowed)": " && ".join([ALL_ALL] * 2),
    f"map over {N}": "data.xs.map(x, x + 1).size() > 0",
    f"map over {N} with an exists inside": "data.xs.map(x, data.ys.exists(y, y == x)).size() > 0",
    f"all with `in` over {N}": "data.xs.all(x, x in data.ys)",
    "two nested all concatenating the longest strings": (
        "data.xs.all(x, data.ys.all(y, size(data.s + data.s) > 0))"
    ),
    "two nested all over the longest literal lists": (
        f"{LITERAL}.all(x, {LITERAL}.all(y, x == y))"
    ),
    "an all over a 1,000-element literal": "[" + ",".join(["0"] * 1000) + "].all(x, true)",
    "seven nested all (issue 12)": "data.xs"
    + "".join(f".all(x{i}, data.xs" for i in range(7))
    + ".size() > 0"
    + ")" * 7,
}


def _timed(run: Callable[[], Any]) -> str:
    start = time.perf_counter()
    try:
        run()
    except SvcflowError as exc:
        return f"refused in {(time.perf_counter() - start) * 1e3:.1f} ms ({exc.code})"
    return f"{(time.perf_counter() - start) * 1e3:.1f} ms"


def _expression(source: str) -> None:
    check_budget(source, "bench")
    cel.compile(source).execute({"data": DATA})


def _bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def main() -> None:
    for name, source in CASES.items():
        print(f"{name:55} {_timed(lambda source=source: _expression(source))}")
    bomb = _bomb()
    print(f"{f'YAML alias bomb ({len(bomb)} bytes)':55} {_timed(lambda: parse_source(bomb))}")
    check = SchemaCheck({"type": "string", "pattern": "^(a+)+$"})
    text = "a" * 100_000 + "!"
    print(f"{'^(a+)+$ on 100,000 characters (RE2)':55} {_timed(lambda: check.errors(text))}")


if __name__ == "__main__":
    main()
