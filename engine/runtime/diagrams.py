"""Laying state diagrams out as SVG: DOT (engine/core/diagram.py) handed to graphviz-pure,
a pip-installed port of Graphviz, so no system package is needed. Shared by the API, the
dashboard and the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from engine.errors import DiagramUnavailable

RENDER_TIMEOUT = 20  # seconds for graphviz-pure to lay out one diagram


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
