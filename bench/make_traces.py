"""Write the shipped synthetic traces to `fleetscale/sim/traces/` (deterministic).

Run from the repository root: `python bench/make_traces.py`. Every trace is a rate
trace (`t_s,rate_per_s`, the last row marks the end) of at most an hour; the rates are
chosen so the fleet spans roughly 10 to 150 workers at the default 200 ms run time.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fleetscale" / "sim" / "traces"


def steady() -> list[tuple[float, float]]:
    """A stationary 100 jobs/s for an hour."""
    return [(0.0, 100.0), (3600.0, 0.0)]


def step() -> list[tuple[float, float]]:
    """60/s, a ×4 step up to 240/s at 5 min, back down at 15 min; 20 minutes."""
    return [(0.0, 60.0), (300.0, 240.0), (900.0, 60.0), (1200.0, 0.0)]


def spike() -> list[tuple[float, float]]:
    """60/s with a 10× spike (600/s) for 30 s at 10 min; 20 minutes."""
    return [(0.0, 60.0), (600.0, 600.0), (630.0, 60.0), (1200.0, 0.0)]


def ramp() -> list[tuple[float, float]]:
    """A slow linear ramp from 30/s to 240/s over an hour, in 10 s steps."""
    rows = [(float(t), round(30.0 + 210.0 * t / 3600.0, 3)) for t in range(0, 3600, 10)]
    return [*rows, (3600.0, 0.0)]


def diurnal() -> list[tuple[float, float]]:
    """One day compressed into an hour: 30/s at night to 190/s at noon, 10 s steps."""
    rows = [
        (float(t), round(110.0 - 80.0 * math.cos(2 * math.pi * (t + 5) / 3600.0), 3))
        for t in range(0, 3600, 10)
    ]
    return [*rows, (3600.0, 0.0)]


def bursty(seed: int = 7) -> list[tuple[float, float]]:
    """Markov-modulated on-off: 40/s quiet, 120/s bursts; mean sojourns 120 s and 40 s.

    Sojourns are exponential (a two-state MMPP), rounded to whole seconds; an hour.
    """
    rng = random.Random(seed)
    rows, t, on = [], 0.0, False
    while t < 3600.0:
        rows.append((t, 120.0 if on else 40.0))
        t += max(1.0, round(rng.expovariate(1 / (40.0 if on else 120.0))))
        on = not on
    return [*rows, (3600.0, 0.0)]


def heavy_tail() -> list[tuple[float, float]]:
    """A steady 60/s for an hour; the file sets lognormal run times with cv = 3."""
    return [(0.0, 60.0), (3600.0, 0.0)]


def write(name: str, rows: list[tuple[float, float]], comment: str = "") -> None:
    lines = [f"# {comment}"] if comment else []
    lines.append("t_s,rate_per_s")
    lines += [f"{t:g},{rate:g}" for t, rate in rows]
    (OUT / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in [
        ("steady", steady),
        ("step", step),
        ("spike", spike),
        ("ramp", ramp),
        ("diurnal", diurnal),
        ("bursty", bursty),
    ]:
        write(name, build())
    write("heavy_tail", heavy_tail(), "service_s=0.2 service_cv=3")


if __name__ == "__main__":
    main()
