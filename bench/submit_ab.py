"""`Producer.submit_many` of this checkout against an older commit, in interleaved pairs.

Each run is a fresh process that imports fleetscale from one tree (this checkout, or
a commit checked out in a temporary git worktree, removed at the end) and
submits `--jobs` small jobs with `submit_many` (chunks of 1000) to one private Redis
(AOF everysec, rewritten between runs, never during one). It reports the producer
process's CPU time (`time.process_time`) and wall-clock time of the call; the CPU time
hardly moves with what else a shared machine runs, the wall clock does. The two trees
take turns going first. Usage: `python -m bench.submit_ab [--base f2224dc] [--head REV]
[--jobs 100000] [--pairs 7] [--args]` (`--args`: jobs with two arguments instead of
none; `--head`: a commit instead of this checkout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from fleetscale.embedded import EmbeddedRedis

HERE = Path(__file__).resolve().parent.parent
CHUNK = 1000
WARMUP = 2000


def child(url: str, jobs: int, with_args: bool) -> None:
    """Run in a fresh process: submit `jobs` jobs, print `{cpu_s, wall_s, module}`.
    Every fleetscale module comes from the tree on PYTHONPATH (checked by the parent)."""
    import fleetscale
    from fleetscale.producer import Producer

    spec = ("resize", ("img-1", 640), {}) if with_args else ("noop", (), {})
    producer = Producer("ab", url)
    producer.submit_many([spec] * WARMUP, chunk=CHUNK)  # connect, load code paths
    specs = [spec] * jobs
    cpu, wall = time.process_time(), time.perf_counter()
    producer.submit_many(specs, chunk=CHUNK)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    producer.close()
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "module": fleetscale.__file__}))


def one_run(tree: Path, url: str, jobs: int, with_args: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, __file__, "--child", url, "--jobs", str(jobs)]
    out = subprocess.run(
        [*argv, *(["--args"] if with_args else [])],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    ).stdout
    result = json.loads(out)
    assert Path(result["module"]).resolve().is_relative_to(tree.resolve()), result
    return result  # type: ignore[no-any-return]


def fresh_stream(client: redis.Redis, pattern: str) -> None:
    """Delete the keys matching `pattern` and rewrite the AOF now, not during a run."""
    for key in client.scan_iter(match=pattern):
        client.delete(key)
    client.bgrewriteaof()
    while True:
        persistence = client.info("persistence")
        if not persistence["aof_rewrite_in_progress"] and not persistence["aof_rewrite_scheduled"]:
            return
        time.sleep(0.01)


@contextlib.contextmanager
def checkout(rev: str | None, path: Path) -> Iterator[Path]:
    """This checkout's tree for None, else `rev` in a git worktree at `path`, removed
    afterwards."""
    if rev is None:
        yield HERE
        return
    git = ["git", "-C", str(HERE), "worktree"]
    subprocess.run([*git, "add", "--detach", str(path), rev], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="f2224dc")
    parser.add_argument("--head", help="a commit to run instead of this checkout")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--args", action="store_true")
    parser.add_argument("--child", metavar="URL")
    opts = parser.parse_args()
    if opts.child:
        child(opts.child, opts.jobs, opts.args)
        return

    results: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    no_rewrite = ("--auto-aof-rewrite-percentage", "0")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        trees = {
            "base": stack.enter_context(checkout(opts.base, Path(tmp) / "base")),
            "head": stack.enter_context(checkout(opts.head, Path(tmp) / "head")),
        }
        server = stack.enter_context(EmbeddedRedis(Path(tmp) / "redis", extra_args=no_rewrite))
        client = redis.Redis.from_url(server.url)
        for pair in range(opts.pairs):
            for name in ["base", "head"] if pair % 2 == 0 else ["head", "base"]:
                fresh_stream(client, "*")
                r = one_run(trees[name], server.url, opts.jobs, opts.args)
                results[name].append(r)
                cpu_us, rate = r["cpu_s"] / opts.jobs * 1e6, opts.jobs / r["wall_s"]
                print(
                    f"pair {pair + 1} {name}: {cpu_us:.2f} µs CPU/job, {rate:,.0f}/s",
                    file=sys.stderr,
                )
        client.close()
    print(report(results, opts))


def report(results: dict[str, list[dict[str, float]]], opts: argparse.Namespace) -> str:
    jobs = opts.jobs
    lines = [
        f"{jobs} {'two-argument' if opts.args else 'no-argument'} jobs per run, "
        f"{opts.pairs} interleaved pairs, base = {opts.base}, "
        f"head = {opts.head or 'this checkout'}",
        "",
        "| tree | CPU µs/job, median (min–max) | jobs/s, median (min–max) |",
        "| --- | ---: | ---: |",
    ]
    for name in ("base", "head"):
        cpu = [r["cpu_s"] / jobs * 1e6 for r in results[name]]
        rate = [jobs / r["wall_s"] for r in results[name]]
        lines.append(
            f"| {name} | {statistics.median(cpu):.2f} ({min(cpu):.2f}–{max(cpu):.2f}) | "
            f"{statistics.median(rate):,.0f} ({min(rate):,.0f}–{max(rate):,.0f}) |"
        )
    pairs = list(zip(results["head"], results["base"], strict=True))
    cpu_ratio = sorted(h["cpu_s"] / b["cpu_s"] for h, b in pairs)
    wall_ratio = sorted(h["wall_s"] / b["wall_s"] for h, b in pairs)
    lines.append("")
    lines.append(
        "head ÷ base within each pair: CPU "
        + ", ".join(f"{x:.3f}" for x in cpu_ratio)
        + f" (median {statistics.median(cpu_ratio):.3f}); wall "
        + ", ".join(f"{x:.3f}" for x in wall_ratio)
        + f" (median {statistics.median(wall_ratio):.3f})"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
