"""What the simulator and `fleetscale simulate` accept: bad input is one line and exit 2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fleetscale.cli import main
from fleetscale.errors import ConfigurationError
from fleetscale.exitcode import ExitCode
from fleetscale.sim.engine import SimConfig, simulate
from fleetscale.sim.report import summarise
from fleetscale.sim.scaler import StaticScaler
from fleetscale.sim.scenario import sim_policy, trace_service
from fleetscale.sim.service import empirical, service_time
from fleetscale.sim.trace import Trace, load_trace, parse_trace


@dataclass(frozen=True, slots=True)
class BadTrace:
    """A trace text the parser must refuse, and what the error must say."""

    id: str
    text: str
    says: str


RATE = "t_s,rate_per_s\n"
BAD_TRACES = [
    BadTrace("a nan rate", RATE + "0,nan\n120,0\n", "line 2: nan must be a finite number ≥ 0"),
    BadTrace("an infinite rate", RATE + "0,inf\n120,0\n", "line 2: inf must be a finite"),
    BadTrace("an infinite end", RATE + "0,10\ninf,0\n", "line 3: inf must be a finite"),
    BadTrace("a nan time", RATE + "nan,10\n0,5\n120,0\n", "line 2: nan must be a finite"),
    BadTrace("a negative time", RATE + "-100,10\n120,0\n", "line 2: -100 must be a finite"),
    BadTrace("a first row after 0", RATE + "30,10\n120,0\n", "first row must be at t_s 0"),
    BadTrace("rows out of order", RATE + "0,10\n90,5\n60,0\n", "line 4: t_s 60 must be later"),
    BadTrace("a zero-length trace", RATE + "0,10\n0,0\n", "line 3: t_s 0 must be later"),
    BadTrace("a row of three values", RATE + "0,10,3\n120,0\n", "line 2: need 2 values"),
    BadTrace("a nan arrival", "arrival_s\nnan\n", "line 2: nan must be a finite"),
    BadTrace("an infinite arrival", "arrival_s\ninf\n", "line 2: inf must be a finite"),
    BadTrace("a negative arrival", "arrival_s\n1\n-2.5\n3\n", "line 3: -2.5 must be a finite"),
    BadTrace("a week and more", RATE + "0,0.001\n1e9,0\n", "lasts 1e+09 s: at most 604800 s"),
    BadTrace("an arrival a week out", "arrival_s\n1e10\n", "lasts 1e+10 s"),
    BadTrace("too many jobs", RATE + "0,1e8\n3600,0\n", "brings 3.6e+11 jobs: at most 10,000,000"),
    BadTrace("a word for a number", "arrival_s\n1\nsoon\n", "line 3: 'soon' is not a number"),
]


@pytest.mark.parametrize("case", BAD_TRACES, ids=[c.id for c in BAD_TRACES])
def test_a_trace_with_a_bad_value_is_refused_naming_the_line(case: BadTrace) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_trace(case.text, "bad")
    assert case.says in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_lines_of_only_spaces_are_skipped() -> None:
    trace = parse_trace("t_s,rate_per_s\n0,10\n   \n120,0\n  \t\n", "spaced")
    assert (trace.steps, trace.duration_s) == (((0.0, 10.0),), 120.0)


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["simulate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_trace_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("t_s,rate_per_s\n0,10\n120,0\n", encoding="utf-8-sig")
    assert load_trace(str(path)).duration_s == 120.0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("t_s,rate_per_s\n0,10\n120,0\n".encode("utf-16"), "is not UTF-8 text"),
        (b"\xff\xfe garbage\n", "is not UTF-8 text"),
    ],
    ids=["utf-16", "latin-1"],
)
def test_a_trace_file_that_is_not_utf8_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    code, _, err = cli("--trace", str(path))
    assert code == ExitCode.USAGE
    assert says in err and "odd.csv" in err, err
    assert err.count("\n") == 1, err


def test_an_unreadable_trace_file_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "locked.csv"
    path.write_text("t_s,rate_per_s\n0,10\n120,0\n", encoding="utf-8")

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refuse)
    code, _, err = cli("--trace", str(path))
    assert code == ExitCode.USAGE
    assert "cannot read trace file" in err and "Permission denied" in err, err


def test_a_trace_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    code, _, err = cli("--trace", str(tmp_path))
    assert code == ExitCode.USAGE
    assert "is not a regular file" in err, err


@pytest.mark.parametrize(
    ("comment", "says"),
    [
        ("service_s=0", "service time 0 s must be finite and > 0"),
        ("service_s=inf", "service time inf s must be finite and > 0"),
        ("service_s=-0.2", "service time -0.2 s"),
        ("service_cv=nan", "service cv nan must be from 0 to 1000"),
        ("service_cv=1e200", "service cv 1e+200 must be from 0 to 1000"),
        ("service_cv=-1", "service cv -1"),
        ("service_s=fast", "not a number"),
    ],
)
def test_service_settings_in_a_trace_comment_get_the_checks_of_the_flags(
    comment: str, says: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_trace(f"# {comment}\nt_s,rate_per_s\n0,10\n120,0\n", "svc")
    assert f"trace 'svc' comment `{comment}`: {says}" in str(caught.value), str(caught.value)


def test_a_trace_service_time_of_zero_is_refused_not_replaced_by_the_default() -> None:
    trace = Trace("built", ((0.0, 10.0),), 120.0, service_s=0.0)
    with pytest.raises(ConfigurationError, match="service time 0 s"):
        trace_service(trace)
    assert trace_service(trace, mean_s=0.3).mean_s == 0.3


@pytest.mark.parametrize(
    ("samples", "says"),
    [
        ([], "at least one sample"),
        ([float("nan"), 0.2], "sample nan must be finite and ≥ 0"),
        ([float("inf")], "sample inf must be finite"),
        ([0.1, -0.3], "sample -0.3 must be finite"),
        ([0.0, 0.0], "average 0 s: need a finite mean > 0"),
    ],
    ids=["none", "nan", "inf", "negative", "all zero"],
)
def test_empirical_run_times_refuse_samples_that_are_not_finite_and_a_zero_mean(
    samples: list[float], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        empirical(samples)


def test_empirical_run_times_keep_their_mean_and_cv() -> None:
    service = empirical([0.1, 0.3])
    assert (service.mean_s, service.cv) == (pytest.approx(0.2), pytest.approx(0.5))


@pytest.mark.parametrize(
    "text",
    ["t_s,rate_per_s\n0,50\n45,0\n", "t_s,rate_per_s\n0,50\n60,0\n", "arrival_s\n1\n"],
    ids=["45 s", "exactly the warm-up", "one arrival"],
)
def test_a_trace_no_longer_than_the_warm_up_is_refused_not_scored_perfect(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "short.csv"
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("--trace", str(path), "--json")
    assert code == ExitCode.USAGE, out
    assert "must last longer than the 60 s warm-up" in err, err


def test_a_trace_with_no_load_after_the_warm_up_is_refused_not_scored_perfect(
    tmp_path: Path,
) -> None:
    path = tmp_path / "idle.csv"
    path.write_text("t_s,rate_per_s\n0,50\n55,0\n300,0\n", encoding="utf-8")
    code, out, err = cli("--trace", str(path), "--json")
    assert code == ExitCode.USAGE, out
    assert "no arrivals after the 60 s warm-up" in err, err


def test_summarising_a_run_in_which_no_job_arrived_after_the_warm_up_is_refused() -> None:
    # About 1 job in 10 days: the trace has load after the first minute, this run no arrival.
    trace = parse_trace("t_s,rate_per_s\n0,0.000001\n120,0\n", "sparse")
    service = service_time(0.1, 0)
    run = simulate(trace, StaticScaler(1), service, SimConfig(seed=1))
    assert not [a for a in run.arrivals_s if a >= 60]
    with pytest.raises(ConfigurationError, match="no arrivals after the 60 s warm-up"):
        summarise(run, service, 0.5)


def test_summarising_a_run_shorter_than_the_warm_up_is_refused() -> None:
    trace = parse_trace("arrival_s\n0.5\n30\n", "short")
    run = simulate(trace, StaticScaler(1), service_time(0.1, 0), SimConfig())
    with pytest.raises(ConfigurationError, match="lasts 31 s"):
        summarise(run, service_time(0.1, 0), 0.5)


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.svg"])
def test_a_plot_name_not_ending_in_png_is_refused_before_the_run(tmp_path: Path, name: str) -> None:
    code, out, err = cli("--trace", "step", "--policy", "static", "--plot", str(tmp_path / name))
    assert code == ExitCode.USAGE
    assert "give a name ending in .png" in err and out == "", err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flag", "says"),
    [("--min", "'--min': 600 is above"), ("--max", "'--max': 1000 is above")],
)
def test_min_or_max_above_the_simulated_hosts_capacity_is_refused(flag: str, says: str) -> None:
    value = "600" if flag == "--min" else "1000"
    code, out, err = cli("--trace", "step", "--policy", "static", flag, value)
    assert code == ExitCode.USAGE, out
    assert f"{says} the simulated hosts' capacity, 512 workers" in err, err


def test_min_and_max_up_to_the_simulated_hosts_capacity_are_kept() -> None:
    policy = sim_policy(min="512", max="512")
    assert (policy.min, policy.max) == (512, 512)
    assert sim_policy().max == 512


def test_simulate_help_describes_every_option_and_names_durations() -> None:
    command = main.get_command(click.Context(main), "simulate")
    assert command is not None
    options = [p for p in command.params if isinstance(p, click.Option)]
    assert [o.name for o in options if not o.help] == []
    durations = {"target_p99", "service_time", "startup", "period"}
    assert {o.name for o in options if o.metavar == "DURATION"} == durations


def test_the_text_summary_prints_large_figures_whole_not_in_e_notation() -> None:
    code, out, _ = cli("--trace", "steady", "--policy", "static", "--min", "8", "--max", "8")
    assert code == 0, out
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    seconds = fields["        worker_seconds"]
    assert "e+" not in out and "None" not in out, out
    assert seconds.replace(",", "").isdigit(), seconds


@pytest.mark.parametrize("period", ["20m", "2h"])
def test_a_decision_period_not_shorter_than_the_trace_is_refused(period: str) -> None:
    # The step trace lasts 20 minutes: its only decision was the one at 0 (no workers),
    # scored as 0 attainment and 0 worker-seconds, exit 0.
    code, out, err = cli("--trace", "step", "--period", period)
    assert code == ExitCode.USAGE, (code, out, err)
    assert "--period" in err and "shorter than the trace" in err and out == "", err
