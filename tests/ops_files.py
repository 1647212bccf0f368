"""What the ops/ configuration files (dashboards, Prometheus config and rules, compose)
say about metrics: shared by the static and the real-Prometheus tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support import REPO

OPS = REPO / "ops"
DASHBOARDS = OPS / "grafana" / "dashboards"
RULES = OPS / "prometheus" / "rules"
METRIC_NAME = re.compile(r"\bordinaut_[a-z0-9_]+\b")


def ops_config_files() -> list[Path]:
    """Everything under ops/ that is configuration rather than Python."""
    return sorted(
        path
        for path in OPS.rglob("*")
        if path.is_file()
        and path.suffix in (".json", ".yml", ".yaml", "")
        and "__pycache__" not in path.parts
    )


def config_text(path: Path) -> str:
    """The file's text without YAML/Dockerfile comments (they may name metric families)."""
    text = path.read_text()
    if path.suffix == ".json":
        return text
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


def names_used_in_ops() -> dict[str, set[str]]:
    """Metric name → the ops/ files that use it."""
    used: dict[str, set[str]] = {}
    for path in ops_config_files():
        for name in METRIC_NAME.findall(config_text(path)):
            used.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return used


def dashboard_panels() -> list[tuple[str, dict[str, Any]]]:
    """(dashboard file, panel) of every panel that is not a row."""
    return [
        (path.name, panel)
        for path in sorted(DASHBOARDS.glob("*.json"))
        for panel in json.loads(path.read_text())["panels"]
        if panel["type"] != "row"
    ]


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL expression) of every Prometheus panel query."""
    return [
        (name, panel["title"], target["expr"])
        for name, panel in dashboard_panels()
        if panel["datasource"]["type"] == "prometheus"
        for target in panel["targets"]
    ]


def dashboard_sql_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, SQL) of every PostgreSQL panel query."""
    return [
        (name, panel["title"], target["rawSql"])
        for name, panel in dashboard_panels()
        if panel["datasource"]["type"] == "grafana-postgresql-datasource"
        for target in panel["targets"]
    ]


def dashboard_variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, variable name, query) of every Prometheus query variable."""
    return [
        (path.name, variable["name"], variable["query"])
        for path in sorted(DASHBOARDS.glob("*.json"))
        for variable in json.loads(path.read_text())["templating"]["list"]
        if variable["type"] == "query"
    ]


def alert_names() -> list[str]:
    return [
        name
        for path in sorted(RULES.glob("*.yml"))
        for name in re.findall(r"^\s*- alert:\s*(\S+)", path.read_text(), re.M)
    ]
