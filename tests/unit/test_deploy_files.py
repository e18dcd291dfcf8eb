"""The deployment files and the docs agree with the code.

- Every metric named in the Grafana dashboard, the Prometheus rules and the docs is one
  the controller exports (`fleetscale.metrics.METRICS`, and a live `PrometheusRecorder`:
  counters gain `_total`), and docs/operations.md lists every exported metric.
- The alert rules select only reasons and quantiles the controller exports, read the
  fleet-wide gauges from the leader, and pass `promtool check rules` and behave as meant
  on NaN gaps, a new leader, capacity limits and fixed-size fleets (`promtool test
  rules`) where `promtool` is installed: Debian's `prometheus` package, which `.ci/run`
  installs (under CI a missing promtool fails the run).
- `docker-compose.yml` parses: `docker compose config` where that client exists, and
  always a structural check of our own on the YAML (keys, types, references between
  services); every file it mounts or builds from exists, and so does every file its
  Dockerfiles copy. PyYAML is a dev dependency: without it these tests skip locally and
  fail under `CI`.
- The Prometheus and Grafana files point at the compose services; the ACL file defines
  the users and passwords the compose URLs use; every CLI flag that the compose file,
  the systemd unit and the env example name exists; docs/operations.md lists every flag
  of every command with the default its `--help` shows; the example policy is valid.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest

from fleetscale.cli import main
from fleetscale.controller.policy import Policy, Reason
from fleetscale.exitcode import ExitCode
from fleetscale.metrics import METRICS, WAIT_QUANTILES, PrometheusRecorder

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DASHBOARD = REPO / "controller" / "grafana-dashboard.json"
ALERTS = REPO / "controller" / "prometheus-alerts.yml"
PROMETHEUS = REPO / "controller" / "prometheus.yml"
PROVISIONING = REPO / "controller" / "grafana" / "provisioning"
ACL = REPO / "controller" / "redis-acl.conf"
OPERATIONS = REPO / "docs" / "operations.md"
METRIC_NAME = re.compile(r"\bfleetscale_[a-z0-9_]*[a-z0-9]\b")
DOCS = (
    REPO / "README.md",
    REPO / "workers" / "README.md",
    REPO / "controller" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
)
DEMO_SERVICES = {"redis", "controller-a", "controller-b", "producer", "prometheus", "grafana"}


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        message = "PyYAML is missing: install the dev group (pip install -e . --group dev)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (under CI a missing tool fails the run)", pytrace=False)
        pytest.skip(message)
    return yaml


def load_yaml(path: Path) -> Any:
    """Parse a YAML file (merge keys `<<` resolved)."""
    return _yaml().safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    parsed = load_yaml(COMPOSE)
    assert isinstance(parsed, dict), "docker-compose.yml is not a mapping"
    return parsed


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose file's services by name."""
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


# -- metrics ----------------------------------------------------------------------------


def exported_metrics() -> set[str]:
    """Names a controller's registry exposes (a counter `x` is exposed as `x_total`)."""
    registry = PrometheusRecorder("host-a").registry
    return {
        family.name + ("_total" if family.type == "counter" else "")
        for family in registry.collect()
    }


def dashboard_expressions() -> Iterator[str]:
    """Every query of the dashboard: panel targets and template variables."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        yield json.dumps(variable.get("query", "")) + str(variable.get("definition", ""))


def alert_expressions() -> Iterator[str]:
    """Every expression of the Prometheus rule file."""
    for group in load_yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def names_in(texts: Iterator[str]) -> set[str]:
    """The fleetscale metric names that appear in `texts`."""
    return {name for text in texts for name in METRIC_NAME.findall(text)}


def test_metrics_lists_exactly_what_the_controller_exports() -> None:
    assert exported_metrics() == set(METRICS), "METRICS and PrometheusRecorder disagree"


def test_every_metric_the_dashboard_queries_is_exported_by_the_controller() -> None:
    named = names_in(dashboard_expressions())
    assert named, "the dashboard names no fleetscale metric"
    unknown = named - exported_metrics()
    assert not unknown, f"the dashboard queries metrics no controller exports: {unknown}"


def test_the_dashboard_shows_load_workers_quotas_waits_head_of_line_decisions_dead_letters() -> (
    None
):
    wanted = {
        "fleetscale_queue_arrival_rate_jobs_per_second",
        "fleetscale_workers_running",
        "fleetscale_host_quota_workers",
        "fleetscale_queue_wait_seconds",
        "fleetscale_policy_target_p99_seconds",
        "fleetscale_queue_head_of_line_age_seconds",
        "fleetscale_controller_decisions_total",
        "fleetscale_dead_letters_jobs",
    }
    named = names_in(dashboard_expressions())
    assert wanted <= named, f"no panel shows {wanted - named}"


def test_every_metric_the_alert_rules_use_is_exported_by_the_controller() -> None:
    unknown = names_in(alert_expressions()) - exported_metrics()
    assert not unknown, f"the alert rules use metrics no controller exports: {unknown}"


@pytest.mark.parametrize("doc", [d.relative_to(REPO).as_posix() for d in DOCS if d.exists()])
def test_every_metric_a_doc_names_is_exported_by_the_controller(doc: str) -> None:
    unknown = names_in(iter([(REPO / doc).read_text(encoding="utf-8")])) - exported_metrics()
    assert not unknown, f"{doc} names metrics no controller exports: {unknown}"


def test_the_operations_doc_lists_every_exported_metric() -> None:
    missing = exported_metrics() - names_in(iter([OPERATIONS.read_text(encoding="utf-8")]))
    assert not missing, f"docs/operations.md does not list {missing}"


# -- the alert rules --------------------------------------------------------------------

LEADER_ONLY = re.compile(r"\bfleetscale_(queue_\w+|recommended_workers|dead_letters_jobs)\b")
"""The fleet-wide gauges: NaN on a follower, and on a leader whose last reading failed."""


def test_the_alert_rules_watch_waits_head_of_line_decisions_and_dead_letters() -> None:
    wanted = {
        "fleetscale_queue_wait_seconds",
        "fleetscale_queue_head_of_line_age_seconds",
        "fleetscale_policy_target_p99_seconds",
        "fleetscale_controller_decisions_total",
        "fleetscale_policy_min_workers",
        "fleetscale_policy_max_workers",
        "fleetscale_dead_letters_jobs",
        "fleetscale_controller_leader",
        "fleetscale_supervisor_spawn_failures_total",
    }
    named = names_in(alert_expressions())
    assert wanted <= named, f"no alert rule reads {wanted - named}"


def test_the_alert_rules_select_only_reasons_and_quantiles_the_controller_exports() -> None:
    text = "\n".join(alert_expressions())
    selected = re.findall(r'reason=~?"([^"]*)"', text)
    reasons = {reason for value in selected for reason in value.split("|")}
    assert {"clamped_max", "host_capacity"} <= reasons, "the at-max alert counts these"
    unknown = reasons - {reason.value for reason in Reason}
    assert not unknown, f"the alert rules select reasons no decision has: {unknown}"
    quantiles = set(re.findall(r'quantile="([^"]*)"', text))
    assert quantiles <= set(WAIT_QUANTILES), f"no wait quantile {quantiles}"


def test_the_alert_rules_read_the_fleet_wide_gauges_from_the_leader() -> None:
    for expr in alert_expressions():
        if LEADER_ONLY.search(expr):
            assert "and on(instance) (fleetscale_controller_leader == 1)" in expr, expr


def promtool() -> str:
    """The `promtool` command; without one the test fails under CI (`.ci/run` installs
    it) and skips elsewhere."""
    found = shutil.which("promtool")
    if found is None:
        missing = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return found


def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], check=False,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _series(name: str, values: str, instance: str = "a", **labels: str) -> dict[str, str]:
    """An input series of a promtool rule test, scraped from `instance` by job `f`."""
    tags = ",".join(f'{k}="{v}"' for k, v in {"job": "f", "instance": instance, **labels}.items())
    return {"series": f"{name}{{{tags}}}", "values": values}


def _times(value: str, count: int) -> str:
    """`count` samples of `value` (promtool's `1x9` notation does not repeat a NaN)."""
    return " ".join([value] * count)


def _leader(values: str, instance: str = "a") -> dict[str, str]:
    return _series("fleetscale_controller_leader", values, instance)


def _decisions(reason: str, values: str) -> dict[str, str]:
    return _series("fleetscale_controller_decisions_total", values, reason=reason)


def _bounds(low: int, high: int) -> list[dict[str, str]]:
    return [
        _series("fleetscale_policy_min_workers", f"{low}x80"),
        _series("fleetscale_policy_max_workers", f"{high}x80"),
    ]


WAIT, HEAD = "fleetscale_queue_wait_seconds", "fleetscale_queue_head_of_line_age_seconds"
TARGET, DEAD = "fleetscale_policy_target_p99_seconds", "fleetscale_dead_letters_jobs"
ALERT_CASES: dict[str, tuple[str, str, list[dict[str, str]], dict[str, bool]]] = {
    # name: (alert, sample interval, input series, {evaluation time: firing?})
    "a stuck queue (nothing starts: p99 NaN) fires on its head-of-line age": (
        "FleetscaleWaitOverTarget", "15s",
        [_series(WAIT, _times("NaN", 61), quantile="0.99"), _series(HEAD, "0+15x60"),
         _series(TARGET, "0.5x60"), _leader("1x60"),
         _series(WAIT, _times("NaN", 61), "b", quantile="0.99"),
         _series(HEAD, _times("NaN", 61), "b"), _series(TARGET, "0.5x60", "b"),
         _leader("0x60", "b")],
        {"4m": False, "6m": True},
    ),
    "one slow job a minute, NaN between, does not reset the `for:` timer": (
        "FleetscaleWaitOverTarget", "15s",
        [_series(WAIT, _times("2 NaN NaN NaN", 10), quantile="0.99"), _series(HEAD, "0x40"),
         _series(TARGET, "0.5x40"), _leader("1x40")],
        {"4m": False, "6m": True},
    ),
    "waits within the target, with failed readings, are quiet": (
        "FleetscaleWaitOverTarget", "15s",
        [_series(WAIT, "0.3 NaN 0.4 NaN NaN 0.2x35", quantile="0.99"),
         _series(HEAD, "0.1 NaN 0.2x38"), _series(TARGET, "0.5x40"), _leader("1x40")],
        {"8m": False},
    ),
    "a follower's waits are not read": (
        "FleetscaleWaitOverTarget", "15s",
        [_series(WAIT, "2x40", quantile="0.99"), _series(HEAD, "3x40"),
         _series(TARGET, "0.5x40"), _leader("0x40")],
        {"8m": False},
    ),
    "every decision cut to the hosts' capacity fires": (
        "FleetscaleAtMaxWorkers", "15s",
        [_decisions("host_capacity", "0+3x80"), _decisions("at_target", "5x80"),
         *_bounds(0, 64), _leader("1x80")],
        {"4m": False, "6m": True},
    ),
    "a fleet with min == max cut to max is quiet": (
        "FleetscaleAtMaxWorkers", "15s",
        [_decisions("clamped_max", "0+3x80"), *_bounds(8, 8), _leader("1x80")],
        {"10m": False},
    ),
    "a fleet with min == max the hosts cannot hold fires": (
        "FleetscaleAtMaxWorkers", "15s",
        [_decisions("host_capacity", "0+3x80"), *_bounds(8, 8), _leader("1x80")],
        {"10m": True},
    ),
    "a third of the decisions at max is quiet": (
        "FleetscaleAtMaxWorkers", "15s",
        [_decisions("clamped_max", "0+1x80"), _decisions("at_target", "0+2x80"),
         *_bounds(0, 16), _leader("1x80")],
        {"15m": False},
    ),
    "a new leader's dead letters fire, and a failed reading does not resolve them": (
        "FleetscaleDeadLetters", "1m",
        [_series(DEAD, _times("NaN", 5) + " 10 10 10 12 NaN" + _times(" 12", 12), "b"),
         _leader("0x4 1x17", "b"), _series(DEAD, "10x4 " + _times("NaN", 17)), _leader("1x4 0x17")],
        {"7m": False, "8m": True, "9m": True, "9m30s": True, "17m": True, "21m": False},
    ),
    "a purge is no new dead letter": (
        "FleetscaleDeadLetters", "1m",
        [_series(DEAD, "5 5 5 0 0 0 0 0"), _leader("1x8")],
        {"2m": False, "4m": False},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ALERT_CASES))
def test_the_alert_rules_fire_when_meant_to(case: str, tmp_path: Path) -> None:
    alert, interval, series, fires = ALERT_CASES[case]
    rules = [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]
    severity = next(rule["labels"]["severity"] for rule in rules if rule.get("alert") == alert)
    firing = f'ALERTS{{alertname="{alert}",alertstate="firing",job="f",severity="{severity}"}}'
    checks = [
        {
            "expr": f'ALERTS{{alertname="{alert}",alertstate="firing"}}',
            "eval_time": at,
            "exp_samples": [{"labels": firing, "value": 1}] if on else [],
        }
        for at, on in fires.items()
    ]
    test = {"interval": interval, "input_series": series, "promql_expr_test": checks}
    assert_alert_test_passes(test, tmp_path)


def assert_alert_test_passes(test: dict[str, object], tmp_path: Path) -> None:
    """Run one promtool rule test of the shipped alert rules; fail with its output."""
    spec = {"rule_files": [str(ALERTS)], "evaluation_interval": "15s", "tests": [test]}
    path = tmp_path / "alerts-test.yml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    result = subprocess.run([promtool(), "test", "rules", str(path)], check=False,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# -- the compose file -------------------------------------------------------------------


def docker_compose_config_errors() -> list[str]:
    """What `docker compose config` says is wrong, with and without the profiles; an
    empty list where no `docker compose` client is installed (the YAML checks remain)."""
    docker = shutil.which("docker")
    if docker is None:
        return []
    probe = subprocess.run([docker, "compose", "version"], check=False, capture_output=True)
    if probe.returncode != 0:
        return []
    errors = []
    for profiles in ([], ["--profile", "cli", "--profile", "recommend"]):
        result = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), *profiles, "config", "--quiet"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
        )
        if result.returncode != 0:
            errors.append(f"docker compose {' '.join(profiles)} config: {result.stderr}")
    return errors


SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "depends_on",
    "volumes", "ports", "expose", "healthcheck", "restart", "profiles", "hostname", "init",
    "stop_grace_period", "stop_signal", "deploy", "labels", "networks", "user",
    "working_dir", "container_name", "ulimits", "logging", "read_only", "tmpfs",
    "cap_add", "cap_drop", "security_opt", "extra_hosts", "pull_policy",
}  # fmt: skip
TOP_KEYS = {"services", "volumes", "networks", "configs", "secrets", "name"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "disable"}
DURATION = re.compile(r"^\d+(\.\d+)?(us|ms|s|m|h)$")
PORT = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}:)?(\d+|\$\{[A-Z_]+(:-\d+)?\}):\d+(/(tcp|udp))?$")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def service_problems(name: str, service: dict[str, Any], all_names: set[str]) -> list[str]:
    """What is wrong with one service, by the rules of the Compose specification."""
    problems = [f"{name}: unknown key {key!r}" for key in service if key not in SERVICE_KEYS]
    if "image" not in service and "build" not in service:
        problems.append(f"{name}: needs image or build")
    for key in ("command", "entrypoint"):
        if key in service and not (isinstance(service[key], str) or _strings(service[key])):
            problems.append(f"{name}: {key} must be a string or a list of strings")
    environment = service.get("environment", {})
    if isinstance(environment, dict):
        bad = [k for k, v in environment.items() if isinstance(v, dict | list)]
        problems += [f"{name}: environment {k} must be a scalar" for k in bad]
    elif not _strings(environment):
        problems.append(f"{name}: environment must be a mapping or a list of strings")
    bad_ports = [p for p in service.get("ports", []) if not PORT.match(str(p))]
    problems += [f"{name}: bad port {p!r}" for p in bad_ports]
    problems += _dependency_problems(name, service.get("depends_on", []), all_names)
    problems += _healthcheck_problems(name, service.get("healthcheck"))
    if not DURATION.match(str(service.get("stop_grace_period", "10s"))):
        problems.append(f"{name}: stop_grace_period is not a duration")
    if service.get("restart", "no") not in RESTART:
        problems.append(f"{name}: bad restart {service['restart']!r}")
    if "profiles" in service and not _strings(service["profiles"]):
        problems.append(f"{name}: profiles must be a list of strings")
    replicas = service.get("deploy", {}).get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        problems.append(f"{name}: deploy.replicas must be a count")
    return problems


def _dependency_problems(name: str, depends: Any, all_names: set[str]) -> list[str]:
    targets = depends if isinstance(depends, list) else list(depends)
    problems = [f"{name}: depends on unknown {t!r}" for t in targets if t not in all_names]
    if isinstance(depends, dict):
        for target, spec in depends.items():
            if spec.get("condition", "service_started") not in CONDITIONS:
                problems.append(f"{name}: bad condition for {target}: {spec}")
    return problems


def _healthcheck_problems(name: str, check: dict[str, Any] | None) -> list[str]:
    if check is None:
        return []
    problems = [f"{name}: healthcheck key {k!r}?" for k in check if k not in HEALTHCHECK_KEYS]
    test = check.get("test")
    if not (_strings(test) and test[0] in ("CMD", "CMD-SHELL", "NONE")):
        problems.append(f"{name}: healthcheck test must be a list starting with CMD")
    for key in ("interval", "timeout", "start_period"):
        if key in check and not DURATION.match(str(check[key])):
            problems.append(f"{name}: healthcheck {key} {check[key]!r} is not a duration")
    return problems


def test_the_compose_file_parses_and_follows_the_compose_schema(compose: dict[str, Any]) -> None:
    errors = docker_compose_config_errors()
    assert not errors, "\n".join(errors)
    unknown = [k for k in compose if k not in TOP_KEYS and not k.startswith("x-")]
    assert not unknown, f"unknown top-level keys {unknown}"
    names = set(services(compose))
    problems = [p for n, s in services(compose).items() for p in service_problems(n, s, names)]
    assert not problems, "\n".join(problems)


def test_plain_docker_compose_up_starts_the_whole_demo(compose: dict[str, Any]) -> None:
    default = {name for name, s in services(compose).items() if not s.get("profiles")}
    assert default >= DEMO_SERVICES, f"`docker compose up` misses {DEMO_SERVICES - default}"
    for name in default:
        behind = {d for d in services(compose)[name].get("depends_on", []) if d not in default}
        assert not behind, f"{name} depends on {behind}, which only a profile starts"


def bind_mounts(compose: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(service, source, target) of every bind mount given as a relative path."""
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                yield name, source, target


def test_every_file_the_compose_file_mounts_exists(compose: dict[str, Any]) -> None:
    missing = [src for _, src, _ in bind_mounts(compose) if not (REPO / src).exists()]
    assert not missing, f"mounted but missing: {missing}"
    mounted = {(REPO / src).resolve() for _, src, _ in bind_mounts(compose)}
    for wanted in (ACL, DASHBOARD, PROMETHEUS, ALERTS, PROVISIONING):
        assert wanted.resolve() in mounted, f"{wanted.relative_to(REPO)} is not mounted"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source!r} is not declared"


def dockerfiles(compose: dict[str, Any]) -> set[tuple[Path, Path]]:
    """(context, Dockerfile) of every service that builds."""
    found = set()
    for service in services(compose).values():
        build = service.get("build")
        if build is None:
            continue
        context = REPO / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "")
        found.add((context, context / (dockerfile or "Dockerfile")))
    return found


def test_both_dockerfiles_are_built_and_copy_only_files_that_exist(
    compose: dict[str, Any],
) -> None:
    built = dockerfiles(compose)
    assert {d.relative_to(REPO).as_posix() for _, d in built} == {
        "workers/Dockerfile",
        "controller/Dockerfile",
    }
    for context, dockerfile in built:
        assert dockerfile.is_file(), f"missing {dockerfile.relative_to(REPO)}"
        ignored = dockerignored(context)
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
                for source in words[1:-1]:
                    assert (context / source).exists(), f"{dockerfile.name}: COPY {source}?"
                    parts = Path(source).parts  # a pattern that names a folder hides it all
                    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
                    hidden = [p for p in ignored for x in prefixes if fnmatch.fnmatch(x, p)]
                    assert not hidden, f"{dockerfile.name}: COPY {source} is in .dockerignore"


def dockerignored(context: Path) -> list[str]:
    """The patterns of the build context's .dockerignore (none without one)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip().lstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def test_redis_runs_with_aof_noeviction_and_the_acl_file(compose: dict[str, Any]) -> None:
    command = " ".join(services(compose)["redis"]["command"])
    assert "--appendonly yes" in command
    assert re.search(r"--appendfsync (everysec|always)", command)
    assert "--maxmemory-policy noeviction" in command
    acl_target = re.search(r"--aclfile (\S+)", command)
    assert acl_target, "redis has no --aclfile"
    mounts = {tgt: src for name, src, tgt in bind_mounts(compose) if name == "redis"}
    assert (REPO / mounts[acl_target.group(1)]).resolve() == ACL.resolve()


def acl_users() -> dict[str, list[str]]:
    """user → its rules, from the ACL file (which Redis reads without comments)."""
    users = {}
    for line in ACL.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words:
            continue
        assert words[0] == "user", f"Redis refuses an ACL file line not `user …`: {line!r}"
        users[words[1]] = words[2:]
    return users


def compose_urls(compose: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(service, Redis URL) of every URL in an environment."""
    for name, service in services(compose).items():
        for value in (service.get("environment") or {}).values():
            if str(value).startswith(("redis://", "rediss://")):
                yield name, str(value)


def test_every_redis_user_in_the_compose_file_is_in_the_acl_file_with_its_password(
    compose: dict[str, Any],
) -> None:
    users = acl_users()
    assert "off" in users.get("default", ["off"]), "the default user should be off"
    checked = 0
    for name, url in compose_urls(compose):
        parts = urlsplit(url)
        rules = users.get(parts.username or "")
        assert rules is not None, f"{name}: ACL user {parts.username!r} is not defined"
        password = parts.password or ""
        digest = hashlib.sha256(password.encode()).hexdigest()
        assert f">{password}" in rules or f"#{digest}" in rules, f"{name}: wrong password"
        assert "on" in rules, f"{name}: user {parts.username} is off"
        checked += 1
    assert checked >= 3, "the producer, controllers and workers should use ACL users"


def test_prometheus_scrapes_both_controllers_on_their_metrics_port(
    compose: dict[str, Any],
) -> None:
    config = load_yaml(PROMETHEUS)
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert {t.split(":")[0] for t in targets} >= {"controller-a", "controller-b"}
    for target in targets:
        host, port = target.split(":")
        command = services(compose)[host]["command"]
        assert command[command.index("--metrics-port") + 1] == port, target
    mounts = {tgt for name, _, tgt in bind_mounts(compose) if name == "prometheus"}
    assert set(config["rule_files"]) <= mounts, "a rule file is not mounted"


def test_grafana_provisioning_points_at_prometheus_and_the_mounted_dashboard(
    compose: dict[str, Any],
) -> None:
    (source,) = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert urlsplit(source["url"]).hostname in services(compose)
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "fleetscale.yml")["providers"]
    mounts = {tgt: src for name, src, tgt in bind_mounts(compose) if name == "grafana"}
    dashboards = [t for t, s in mounts.items() if (REPO / s).resolve() == DASHBOARD.resolve()]
    assert dashboards, "the dashboard is not mounted into grafana"
    assert Path(dashboards[0]).parent == Path(provider["options"]["path"])


# -- flags and the configuration table ----------------------------------------------------


def commands(group: click.Group = main, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """(`name sub`, command) of every command and subcommand, groups included."""
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path + " ")


def flags_of(command: click.Command) -> set[str]:
    """Every option flag of a command."""
    return {flag for p in command.params for flag in getattr(p, "opts", []) if flag[:1] == "-"}


def assert_flags_exist(words: list[str], command: str, where: str) -> None:
    known = flags_of(dict(commands())[command]) | {"-h", "--help"}
    unknown = {w for w in words if w.startswith("--") and w not in known}
    assert not unknown, f"{where}: `fleetscale {command}` has no {unknown}"


def test_every_flag_in_the_compose_commands_exists(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in services(compose).items():
        # Our images' entrypoint is `fleetscale`; other images and overrides run other things.
        command, entry = service.get("command", []), service.get("entrypoint", ["fleetscale"])
        if "build" in service and command and entry[-1] == "fleetscale":
            assert_flags_exist(command[1:], command[0], f"compose service {name}")
            checked += 1
    assert checked >= 2


def test_every_flag_in_the_kubernetes_manifests_exists() -> None:
    text = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    checked = 0
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        for manifest in _yaml().safe_load_all(block):
            spec = (manifest or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                args = [str(arg).split("=", 1)[0] for arg in container.get("args", [])]
                assert_flags_exist(args[1:], args[0], f"docs/kubernetes.md {container['name']}")
                checked += 1
    assert checked == 2, "the worker and the controller Deployment"


def test_the_systemd_unit_and_the_env_example_use_real_controller_flags() -> None:
    unit = (REPO / "controller" / "fleetscale-controller.service").read_text(encoding="utf-8")
    assert re.search(r"^ExecStart=\S+/fleetscale controller ", unit, re.MULTILINE)
    assert "KillMode=mixed" in unit, "systemd must signal only the controller, which drains"
    env = (REPO / "controller" / "controller.env.example").read_text(encoding="utf-8")
    args = re.search(r"^FLEETSCALE_CONTROLLER_ARGS=(.*)$", env, re.MULTILINE)
    assert args, "controller.env.example sets no FLEETSCALE_CONTROLLER_ARGS"
    assert_flags_exist(args.group(1).split(), "controller", "controller.env.example")
    for var in re.findall(r"\$\{?(\w+)", unit):
        assert re.search(rf"^{var}=", env, re.MULTILINE), f"{var} is not in the env example"


def table_rows(text: str) -> dict[str, list[str]]:
    """First cell (without backticks) → the cells, for every Markdown table row."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            cells = [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def shown_default(option: click.Option, command: click.Command) -> str | None:
    """The default as the command's `--help` shows it; `off` for an unset flag."""
    record = option.get_help_record(click.Context(command))
    found = re.search(r"\[default: ([^;\]]+)", record[1]) if record else None
    if found:
        return found.group(1).strip()
    return "off" if option.is_flag else None


def _same(default: str, cell: str) -> bool:
    try:
        return float(default) == float(cell)
    except ValueError:
        return default == cell


def test_the_operations_doc_lists_every_flag_of_every_command_with_its_default() -> None:
    rows = table_rows(OPERATIONS.read_text(encoding="utf-8"))
    problems = []
    for path, command in commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "help" or param.hidden:
                continue
            flag = max(param.opts, key=len)
            row = rows.get(f"{path} {flag}") or rows.get(flag)
            if row is None:
                problems.append(f"no row `{path} {flag}` (or `{flag}`)")
                continue
            env = param.envvar if isinstance(param.envvar, str) else ""
            if env and env not in row[1]:
                problems.append(f"`{path} {flag}`: env {env} missing")
            default = shown_default(param, command)
            if default is not None and not _same(default, row[2]):
                problems.append(f"`{path} {flag}`: --help says {default!r}, the doc {row[2]!r}")
    assert not problems, "docs/operations.md is out of date:\n" + "\n".join(problems)


def test_the_example_policy_sets_every_policy_key_validly() -> None:
    text = (REPO / "controller" / "policy.example").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    settings = dict(line.split("=", 1) for line in lines)
    policy = Policy.from_settings(settings)
    assert len(settings) == len(Policy().to_dict()), "policy.example should set every key"
    assert policy.validate() is policy


def test_the_example_policy_holds_every_default_but_target_min_and_max() -> None:
    text = (REPO / "controller" / "policy.example").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    example = Policy.from_settings(dict(line.split("=", 1) for line in lines)).to_dict()
    defaults = Policy().to_dict()
    differs = {k for k in defaults if example[k] != defaults[k]}
    assert differs <= {"target_p99_s", "min", "max"}, (
        f"policy.example is not at the default: {differs}"
    )


def documented_policy_defaults() -> dict[str, str]:
    """The policy table of docs/operations.md as {key: default}, keys and defaults
    paired in order where a row holds several (`a`, `b` | `1`, `2`)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    table = text.split("| key | default | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = {}
    for row in table.splitlines()[2:]:
        keys, defaults = (re.findall(r"`([^`]+)`", cell) for cell in row.split("|")[1:3])
        assert len(keys) == len(defaults), row
        documented.update(zip(keys, defaults, strict=True))
    return documented


def test_the_operations_doc_lists_every_policy_key_with_its_default() -> None:
    documented = documented_policy_defaults()
    defaults = Policy().to_dict()
    parsed = Policy.from_settings(documented).to_dict()
    assert len(documented) == len(defaults), f"keys: {sorted(documented)} vs {sorted(defaults)}"
    wrong = {k: (parsed[k], v) for k, v in defaults.items() if parsed[k] != v}
    assert not wrong, f"docs/operations.md defaults (doc, code): {wrong}"


# -- shell completion -------------------------------------------------------------------

COMPLETE = "from fleetscale.cli import main; main(prog_name='fleetscale')"


def test_the_shell_completion_lines_in_the_operations_doc_print_a_script() -> None:
    sources = re.findall(r"_FLEETSCALE_COMPLETE=(\w+_source)", OPERATIONS.read_text("utf-8"))
    assert {"bash_source", "zsh_source", "fish_source"} <= set(sources)
    for source in sorted(set(sources)):
        env = {**os.environ, "_FLEETSCALE_COMPLETE": source}
        result = subprocess.run(
            [sys.executable, "-c", COMPLETE], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and "_fleetscale_completion" in result.stdout, source


def test_completion_completes_a_command_name() -> None:
    env = {
        **os.environ,
        "_FLEETSCALE_COMPLETE": "bash_complete",
        "COMP_WORDS": "fleetscale contr",
        "COMP_CWORD": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", COMPLETE], env=env, capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == ["plain,controller"], result.stdout + result.stderr


# -- the README's tables ----------------------------------------------------------------

README = REPO / "README.md"


def readme_section(title: str) -> str:
    """The text of the README section `## title`, up to the next `## `."""
    return README.read_text(encoding="utf-8").split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_configuration_table_names_real_flags_with_their_defaults() -> None:
    """Each `command --flag` (or shared `--flag`) of the README's table exists, with its
    env variable and, where the cell is a value, the default its `--help` shows."""
    by_path = dict(commands())
    problems, checked = [], 0
    for first, row in table_rows(readme_section("Configuration")).items():
        parts, defaults = first.split("` / `"), row[2].split("` / `")
        path = ""
        for index, part in enumerate(parts):
            found = re.fullmatch(r"(?:(\w+) )?(--[\w-]+)", part)
            if not found:
                continue  # an API argument: Producer(max_backlog=), @app.task(timeout_s=)
            path, flag = found.group(1) or path, found.group(2)
            options = [
                (param, command)
                for name, command in by_path.items()
                if not path or name == path
                for param in command.params
                if isinstance(param, click.Option) and flag in param.opts
            ]
            if not options:
                problems.append(f"`{part}`: no such flag")
                continue
            checked += 1
            param, command = options[0]
            env = param.envvar if isinstance(param.envvar, str) else ""
            if env != row[1]:
                problems.append(f"`{part}`: env {env!r}, the README {row[1]!r}")
            default = shown_default(param, command)
            cell = defaults[index] if len(defaults) == len(parts) else row[2]
            if default is not None and re.fullmatch(r"[\w.]+", cell) and not _same(default, cell):
                problems.append(f"`{part}`: --help says {default!r}, the README {cell!r}")
    assert checked >= 20, "the README's configuration table was not found"
    assert not problems, "README.md's configuration table is out of date:\n" + "\n".join(problems)


def test_the_readme_exit_codes_are_the_named_exit_codes() -> None:
    rows = table_rows(readme_section("Exit codes"))
    documented = {(int(code), row[1]) for code, row in rows.items() if code.isdigit()}
    assert documented == {(int(code), code.name) for code in ExitCode}
