"""Run the fault suite (tests/faults) and print its table.

Each row starts its own private Redis and real fleetscale processes, injects its fault
with a nemesis seeded by `--seed`, and is judged from the independent ledger. A normal
row passes when green; a negative control passes when the checker flags it red.

Usage: `python -m bench.faults [--all] [--seed S] [--row NAME ...] [--out FILE]`
(default: the CI subset; `--all`: every row). Needs root, `ip` and `iptables` for the
network rows, `openssl` for TLS and `cc` for the clock-skew shim; rows whose tools are
missing are skipped and listed. Exits 1 if any row did not pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.catalog import all_rows, ci_rows
from tests.faults.checker import check
from tests.faults.rows import Outcome, Row, RowEnv, RowResult, run_row
from tests.faults.table import table
from tests.support.procs import Processes


def run_one(fault: Row, seed: int, keep: Path | None) -> RowResult:
    """Run one row in a fresh directory (removed afterwards unless under `keep`); a row
    that raises is a red result."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return run_in(fault, seed, Path(tempfile.mkdtemp(prefix=f"{fault.name}-", dir=keep)))
    with tempfile.TemporaryDirectory(prefix=f"faults-{fault.name}-") as directory:
        return run_in(fault, seed, Path(directory))


def run_in(fault: Row, seed: int, directory: Path) -> RowResult:
    """Run one row in `directory`."""
    env = RowEnv(directory, Processes(directory / "logs"), seed)
    started = time.monotonic()
    try:
        return run_row(fault, env)
    except Exception as exc:  # a row that cannot finish is a finding, not a crash
        outcome = Outcome(check({}, set()), "row failed", [f"{type(exc).__name__}: {exc}"])
        return RowResult(fault, outcome, time.monotonic() - started)


def select(args: argparse.Namespace) -> list[Row]:
    """The rows asked for."""
    rows = all_rows() if args.all or args.row else ci_rows()
    if args.row:
        names = {r.name for r in rows}
        unknown = set(args.row) - names
        if unknown:
            sys.exit(f"unknown rows {sorted(unknown)}; rows: {', '.join(sorted(names))}")
        rows = [r for r in rows if r.name in args.row]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every row, not the CI subset")
    parser.add_argument("--seed", type=int, default=1, help="the nemesis seed")
    parser.add_argument("--row", action="append", help="run this row (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--keep", type=Path, help="keep row directories (logs, ledger) here")
    args = parser.parse_args()
    results, skipped = [], []
    started = time.monotonic()
    for fault in select(args):
        missing = fault.missing()
        if missing:
            skipped.append(f"{fault.name} (needs {', '.join(missing)})")
            continue
        print(f"… {fault.name}", file=sys.stderr, flush=True)
        result = run_one(fault, args.seed, args.keep)
        print(f"  {'pass' if result.passed else 'FAIL'} in {result.seconds:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
        results.append(result)
    passed = sum(r.passed for r in results)
    summary = (
        f"\n{passed} of {len(results)} rows pass (seed {args.seed}, "
        f"{time.monotonic() - started:.0f} s)"
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    )
    text = table(results) + "\n" + summary
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
