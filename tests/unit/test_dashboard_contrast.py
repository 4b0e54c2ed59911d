"""The dashboard's text colours against its backgrounds meet WCAG 2.1 AA (4.5:1 for body
text), computed from the stylesheet itself, so a colour change that breaks it fails here."""

from __future__ import annotations

import re
from pathlib import Path

CSS = Path(__file__).resolve().parents[2] / "api" / "dashboard" / "static" / "dashboard.css"


def _colours() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", CSS.read_text("utf-8"), re.S)
    assert root is not None
    found = re.findall(r"--([a-z]+):\s*#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", root.group(1))
    return {name: "#" + (v if len(v) == 6 else "".join(c * 2 for c in v)) for name, v in found}


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_formula_matches_wcags_reference_values() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#607d8b", "#f4f6f8"), 2) == 4.04  # the muted text issue 17 measured


def test_text_colours_meet_aa_on_every_background() -> None:
    colours = _colours()
    for text in ("ink", "muted", "accent"):
        for background in ("bg", "card"):
            ratio = contrast(colours[text], colours[background])
            assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f}:1"
