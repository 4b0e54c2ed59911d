"""Labels: the English and Chinese text every titled element of a definition carries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    en: str
    zh: str
