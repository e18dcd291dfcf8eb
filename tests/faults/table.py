"""The fault suite's results as a Markdown table, one line per row."""

from __future__ import annotations

from collections.abc import Sequence

from tests.faults.rows import RowResult

HEADER = (
    "| row | group | pass rule | result | lost | duplicated | unexpected | recovered "
    "| dead-lettered | figure | p99 wait ledger / merged | s |\n"
    "|---|---|---|---|--:|--:|--:|--:|--:|---|---|--:|"
)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} s"


def result_cell(result: RowResult) -> str:
    """`green`, `red`, or for a negative control `red (expected)` / `green (missed!)`."""
    colour = "red" if result.outcome.red else "green"
    if result.row.negative:
        return f"{colour} ({'expected' if result.passed else 'MISSED'})"
    return colour if result.passed else f"**{colour}**"


def line(result: RowResult) -> str:
    """One table line."""
    v = result.outcome.verdict
    waits = f"{_seconds(v.wait_p99_s)} / {_seconds(result.outcome.merged_p99_s)}"
    cells = [
        result.row.name,
        result.row.group,
        result.row.rule,
        result_cell(result),
        str(v.lost),
        str(v.duplicated),
        str(v.unexpected),
        str(v.recovered),
        str(v.dead_lettered),
        result.outcome.figure,
        waits,
        f"{result.seconds:.0f}",
    ]
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def table(results: Sequence[RowResult]) -> str:
    """The Markdown table of `results`, violations listed under it."""
    lines = [HEADER, *(line(r) for r in results)]
    for r in results:
        for violation in r.outcome.violations:
            lines.append(f"\n- {r.row.name}: {violation}")
        for note in r.outcome.notes:
            lines.append(f"\n- {r.row.name} (note): {note}")
    return "\n".join(lines)
