"""Laying state diagrams out as SVG: DOT (engine/core/diagram.py) handed to graphviz-pure,
a pip-installed port of Graphviz, so no system package is needed. Shared by the API, the
dashboard and the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.errors import DiagramUnavailable

RENDER_TIMEOUT = 20  # seconds for graphviz-pure to lay out one diagram
PX_PER_PT = 96 / 72  # graphviz sizes an SVG in points; a browser draws 96 px per 72 pt
SHRINK_OK = 0.8  # a diagram scaled to 80% of its size reads well (edge words at 10.7 px)
_WIDTH = re.compile(r'<svg\s[^>]*?width="([\d.]+)pt"')


def render_svg(dot: str) -> str:
    """The SVG document for ``dot``, or DiagramUnavailable saying why not."""
    binary = shutil.which("graphviz-pure", path=str(Path(sys.executable).parent)) or "graphviz-pure"
    try:
        done = subprocess.run(
            [binary, "-Tsvg"],
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=RENDER_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DiagramUnavailable(
            f"The diagram could not be rendered: {exc}.",
            hint="Ask for the DOT text (format=dot, --format dot) and render it yourself.",
        ) from exc
    return done.stdout.decode("utf-8")


def svg_width_px(svg: str) -> float:
    """The width a browser gives ``svg`` (as graphviz sized it) in CSS pixels."""
    found = _WIDTH.search(svg)
    if found is None:
        raise ValueError("not an SVG document sized by graphviz")
    return float(found.group(1)) * PX_PER_PT


def fitting_svg(
    dot_for: Callable[[str], str],
    render: Callable[[str], str],
    width: float,
    shrink: float = SHRINK_OK,
) -> str:
    """The diagram left to right if scaled to ``width`` px it keeps ``shrink`` of its size at
    least (it stays legible, and short: a page shows several), else the narrower of that and
    top to bottom. Measured, not guessed from the number of states: a small workflow with long
    titles is wide too. ``dot_for(direction)`` writes the DOT, ``render`` lays it out."""
    across = render(dot_for("LR"))
    if svg_width_px(across) * shrink <= width:
        return across
    down = render(dot_for("TB"))
    return down if svg_width_px(down) < svg_width_px(across) else across
