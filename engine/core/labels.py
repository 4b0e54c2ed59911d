"""Labels: the English and Chinese text every titled element of a definition carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Label:
    en: str
    zh: str


@dataclass(frozen=True)
class FieldLabel:
    """One entry of a definition's ``fields`` glossary: a payload or data field's label, and
    the labels of its enum values (docs/definitions.md, "Field labels")."""

    title: Label
    values: Mapping[str, Label] = field(default_factory=dict)
