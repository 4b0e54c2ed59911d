"""What a definition, an expression and a case's values may hold: the safety limits.

A definition is written by a process owner and runs inside the server: while a trigger is
fired its guards and actions are evaluated inside the write transaction (on SQLite the
whole database is locked from ``BEGIN IMMEDIATE`` to the commit). Nothing it says may make
the server spend unbounded memory or time, so each cost that grows with what is written has
a limit here, and each limit has its number in docs/definitions.md ("Limits").

Where a number comes from (measured on CPython 3.11, common-expression-language 0.10; the
commands are in docs/definitions.md):

- The YAML limits are far above the bundled workflows (the largest, repair_ticket.yaml, has
  3,874 values nested 11 deep) and far below what hurts: a 990-byte alias bomb expands to
  387 million values, and PyYAML composes nesting by recursion.
- A JSON Schema 100 levels deep exhausts Python's recursion limit in jsonschema's own check;
  32 levels leave room for the caller's frames (a web request uses ~100).
- CEL: the evaluator parses and evaluates by recursion in Rust; a chain of 12,000 ``+`` or
  ``.field`` overflows an 8 MiB stack (a segmentation fault, not an exception), 4,096
  characters allow at most 2,048. A comprehension costs ~0.6 µs per element visited;
  ``map`` and ``filter`` copy their result on every element, so one over n elements costs
  ~65 ns x n² (1,000 elements: 65 ms; 8,000: 2.6 s). Two nested ``all`` over 256 elements
  visit 65,536 (~40 ms); seven nested over 10 elements visit 10 million (11.9 s, issue 12).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- definition source (engine.core.definition) ------------------------------------------------

#: Characters of definition source text (YAML or JSON); the API takes no larger source.
SOURCE_MAX_CHARS = 512 * 1024
#: Mappings and sequences inside one another.
YAML_MAX_DEPTH = 64
#: Values (scalars, mappings, sequences) in a document once its aliases are expanded.
YAML_MAX_VALUES = 100_000
#: Uses of aliases (``*name``) in one document.
YAML_MAX_ALIASES = 1_000

# --- JSON Schemas in a definition (data_schema, payload_schema) --------------------------------

#: Mappings and lists inside one another within one schema.
SCHEMA_MAX_DEPTH = 32

# --- CEL expressions (engine.core.expression_budget) -------------------------------------------

#: Characters of one expression.
EXPRESSION_MAX_CHARS = 4_096
#: Items of one list or map written in an expression (``[1, 2, 3]``), as in case data.
EXPRESSION_MAX_LITERAL_ITEMS = 256
#: Comprehension macros (all, exists, exists_one, map, filter) in one expression.
EXPRESSION_MAX_COMPREHENSIONS = 4
#: How deep comprehensions may run inside one another, ``all``/``exists``/``exists_one``
#: weighing 1 and ``map``/``filter`` 2 (their cost is quadratic in the evaluator); a
#: comprehension over the result of another counts as inside it.
EXPRESSION_MAX_NESTING = 2

# --- values a case holds or receives (payloads, case data) -------------------------------------

#: Mappings and lists inside one another.
VALUE_MAX_DEPTH = 32
#: Items of one list, or entries of one mapping.
VALUE_MAX_ITEMS = 256
#: Values in all (scalars, mappings, lists, counted at every depth).
VALUE_MAX_VALUES = 10_000
#: Characters of one string.
VALUE_MAX_CHARS = 16_384


@dataclass(frozen=True)
class Excess:
    """Which limit a value exceeds, and where in it (a JSON-pointer-like path)."""

    limit: str
    number: int
    where: str

    def describe(self, what: str) -> str:
        place = f" at {self.where}" if self.where else ""
        texts = {
            "depth": f"nests mappings and lists more than {self.number} deep{place}",
            "items": f"has a list or mapping of more than {self.number} items{place}",
            "values": f"holds more than {self.number} values in all",
            "chars": f"has a string longer than {self.number} characters{place}",
        }
        return f"{what} {texts[self.limit]}"


# Input combinations of one decision table checked for gaps (engine/core/decision_checks.py):
# the check enumerates them, so its time grows with their number. The bundled tables have 8.
DECISION_COMBINATIONS_MAX = 20_000


def value_excess(value: Any) -> Excess | None:
    """The first limit ``value`` (JSON-like: dict, list, scalars) exceeds, or None.

    Iterative, and stops at the first excess: checking costs no more than the limits allow,
    whatever the value holds."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    count = 0
    while stack:
        item, depth, where = stack.pop()
        count += 1
        if count > VALUE_MAX_VALUES:
            return Excess("values", VALUE_MAX_VALUES, "")
        if isinstance(item, str):
            if len(item) > VALUE_MAX_CHARS:
                return Excess("chars", VALUE_MAX_CHARS, where)
            continue
        if isinstance(item, dict | list | tuple):
            if depth >= VALUE_MAX_DEPTH:
                return Excess("depth", VALUE_MAX_DEPTH, where)
            if len(item) > VALUE_MAX_ITEMS:
                return Excess("items", VALUE_MAX_ITEMS, where)
            if isinstance(item, dict):
                stack.extend((v, depth + 1, f"{where}/{k}") for k, v in item.items())
            else:
                stack.extend((v, depth + 1, f"{where}/{i}") for i, v in enumerate(item))
    return None


def nesting_depth(value: Any, limit: int) -> tuple[int, list[Any]] | None:
    """Where ``value`` nests mappings and lists deeper than ``limit``: the depth reached and
    the path to it (keys and indexes), or None. Iterative: a value nested thousands of levels
    deep is measured without recursion."""
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if len(path) >= limit:
            return len(path) + 1, path
        children = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend((v, [*path, k]) for k, v in children)
    return None
