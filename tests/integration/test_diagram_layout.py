"""Choosing a diagram's layout by measuring it (engine/runtime/diagrams.py), with the real
graphviz-pure: a workflow that fits a page left to right stays so, a wide one is laid out top
to bottom when that is narrower."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.diagram import to_dot
from engine.core.validation import load_definition
from engine.runtime.diagrams import fitting_svg, render_svg, svg_width_px
from tests.workflows import TICKET

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
PAGE = 1260.0  # px: the dashboard's diagram box at 1366 px (api/dashboard/pages.py)


def _bundled(name: str) -> WorkflowDefinition:
    return load_definition(parse_source((WORKFLOWS / f"{name}.yaml").read_text("utf-8")), version=1)


def _fit(definition: WorkflowDefinition, lang: str) -> tuple[str, list[str]]:
    asked: list[str] = []

    def dot_for(direction: str) -> str:
        asked.append(direction)
        return to_dot(definition, lang=lang, direction=direction)

    return fitting_svg(dot_for, render_svg, PAGE), asked


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_small_workflow_stays_left_to_right(lang: str) -> None:
    ticket = load_definition(parse_source(TICKET), version=1)

    svg, asked = _fit(ticket, lang)

    assert asked == ["LR"]
    assert svg == render_svg(to_dot(ticket, lang=lang, direction="LR"))
    assert svg_width_px(svg) * 0.8 <= PAGE


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_repair_ticket_is_laid_out_top_to_bottom_to_fit(lang: str) -> None:
    repair = _bundled("repair_ticket")
    across = render_svg(to_dot(repair, lang=lang, direction="LR"))

    svg, asked = _fit(repair, lang)

    assert asked == ["LR", "TB"]
    assert svg == render_svg(to_dot(repair, lang=lang, direction="TB"))
    assert svg_width_px(svg) < svg_width_px(across) / 2  # the browser test checks it reads


def test_the_width_is_read_from_the_svg_in_css_pixels() -> None:
    assert svg_width_px('<svg width="72pt" height="10pt" viewBox="0 0 72 10">') == 96.0
    with pytest.raises(ValueError, match="not an SVG document"):
        svg_width_px("<html></html>")
