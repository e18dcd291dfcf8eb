"""The status view fitted to a terminal, and JSON output without NaN tokens."""

from __future__ import annotations

import json
import math

import pytest

from fleetscale.cli.explain import render as render_decision
from fleetscale.cli.status import fit, json_line


def test_a_view_wider_than_the_terminal_has_its_long_lines_cut_with_an_ellipsis() -> None:
    fitted = fit("short\n" + "x" * 100, columns=40, lines=24)
    assert fitted.splitlines() == ["short", "x" * 39 + "…"]


def test_a_view_taller_than_the_terminal_keeps_its_head_and_says_what_it_left_out() -> None:
    text = "\n".join(f"line {i}" for i in range(50))
    rows = fit(text, columns=80, lines=10).splitlines()
    assert len(rows) == 9, "one row free, so the redraw does not scroll"
    assert rows[0] == "line 0" and rows[-1] == "… 42 more lines (status --json has all)"


def test_a_view_that_fits_is_left_as_it_is() -> None:
    assert fit("a\nb", columns=80, lines=24) == "a\nb"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_output_shows_a_number_that_is_not_finite_as_null(bad: float) -> None:
    line = json_line({"a": bad, "b": [1.5, bad], "c": {"d": bad}})

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is no JSON")

    assert json.loads(line, parse_constant=refuse) == {
        "a": None,
        "b": [1.5, None],
        "c": {"d": None},
    }


def test_explain_shows_a_record_of_another_version_with_what_it_lacks_as_unknown() -> None:
    text = render_decision({"at_s": 1_700_000_000.0, "desired": 2, "inputs": {}})
    assert "unknown → 2 workers  reason unknown" in text, text
    assert "backlog unknown" in text and "capacity model unknown" in text, text


def test_explain_names_the_first_decision_of_a_fleet_as_from_no_plan() -> None:
    record = {"at_s": 1_700_000_000.0, "previous": None, "desired": 2, "reason": "clamped_min"}
    assert "no plan → 2 workers" in render_decision(record)
