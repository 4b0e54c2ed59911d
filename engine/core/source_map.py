"""Where each element of a definition is written in its YAML text: line and column.

The validator addresses problems by element path (``transitions[4].guard``), which is what
the document means; a process owner's editor wants the line. :func:`locate` composes the text
once more (YAML's node tree keeps the marks that plain values lose) and maps every element
path to where it starts: a mapping entry at its key, a list item at its value. A path that
is not written (a missing key) is found at its nearest written ancestor, so every problem gets
a line.

Only text that :func:`engine.core.definition.parse_source` has already read is located, so
its size and alias limits hold; the walk still visits an aliased node once, as it is written
once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from engine.core.definition import format_path

_STEP = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


@dataclass(frozen=True)
class Position:
    line: int  # 1-based, as editors count
    column: int  # 1-based


@dataclass(frozen=True)
class SourceMap:
    positions: dict[str, Position] = field(default_factory=dict)

    def find(self, path: str) -> Position | None:
        """Where ``path`` is written, or its nearest written ancestor; None for an empty map
        (a document given as data, not text)."""
        parts = _parts(path)
        while True:
            found = self.positions.get(format_path(parts))
            if found is not None or not parts:
                return found
            parts = parts[:-1]


def locate(text: str) -> SourceMap:
    """Every element path of the YAML ``text`` with its position (empty when the text does not
    compose: its reader reports that, with its own line)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return SourceMap()
    positions: dict[str, Position] = {}
    if root is not None:
        _walk(root, [], positions, set())
    return SourceMap(positions)


def _walk(
    node: yaml.Node, parts: list[str | int], out: dict[str, Position], seen: set[int]
) -> None:
    if id(node) in seen:  # an alias: the node is written (and walked) once
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                child = [*parts, key.value]
                out.setdefault(format_path(child), _position(key))
                _walk(value, child, out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = [*parts, index]
            out.setdefault(format_path(child), _position(item))
            _walk(item, child, out, seen)


def _position(node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(mark.line + 1, mark.column + 1)


def _parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for index, name in _STEP.findall(path):
        parts.append(int(index) if index else name)
    return parts
