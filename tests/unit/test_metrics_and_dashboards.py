"""Static checks of the metric declarations, the dashboards and the ops/ files.

The end-to-end proof that every name is really exported is tests/e2e/test_prometheus.py;
these catch the same mistakes in milliseconds.
"""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from observability import metrics
from ops.grafana import generate
from store import stats
from tests.ops_files import (
    OPS,
    config_text,
    dashboard_panels,
    dashboard_sql_targets,
    names_used_in_ops,
    ops_config_files,
)

# DESIGN §9: at least these, renamed never.
DESIGN_NAMES = {
    "ordinaut_http_requests_total": ("counter", {"method", "route", "status"}),
    "ordinaut_http_request_duration_seconds": ("histogram", {"method", "route", "status"}),
    "ordinaut_runs_total": ("counter", {"status", "trigger"}),
    "ordinaut_run_duration_seconds": ("histogram", None),
    "ordinaut_run_start_delay_seconds": ("histogram", None),
    "ordinaut_step_duration_seconds": ("histogram", {"tool", "status"}),
    "ordinaut_retries_total": ("counter", None),
    "ordinaut_leases_reclaimed_total": ("counter", None),
    "ordinaut_due_work_ready": ("gauge", None),
    "ordinaut_due_work_oldest_age_seconds": ("gauge", None),
    "ordinaut_scheduler_tick_duration_seconds": ("histogram", None),
    "ordinaut_scheduler_occurrences_total": ("counter", None),
    "ordinaut_worker_inflight": ("gauge", None),
    "ordinaut_worker_concurrency": ("gauge", None),
    "ordinaut_tasks": ("gauge", {"status"}),
}
DATABASE_GAUGES = (
    "ordinaut_due_work_ready",
    "ordinaut_due_work_oldest_age_seconds",
    "ordinaut_tasks",
    "ordinaut_workers_live",
)


def declared() -> dict[str, tuple[str, set[str], str]]:
    """Exposed name → (type, labels, role), from the collectors themselves."""
    found: dict[str, tuple[str, set[str], str]] = {}
    for role, collectors in metrics.GROUPS.items():
        for collector in collectors:
            assert isinstance(collector, Counter | Gauge | Histogram)
            kind = collector._type
            name = collector._name + ("_total" if kind == "counter" else "")
            found[name] = (kind, set(collector._labelnames), role)
    return found


def series_names(name: str, kind: str) -> set[str]:
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return {name}


def test_every_design_metric_is_declared_with_its_type_and_labels():
    found = declared()
    for name, (kind, labels) in DESIGN_NAMES.items():
        assert name in found, name
        assert found[name][0] == kind, name
        if labels is not None:
            assert found[name][1] == labels, name


def test_the_docstring_table_matches_the_declarations():
    doc = metrics.__doc__ or ""
    rows = {}
    for line in doc.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("ordinaut_"):
            rows[parts[0]] = (parts[1], parts[-1], line)
    found = declared()
    assert set(rows) == set(found)
    for name, (kind, labels, role) in found.items():
        table_kind, table_role, line = rows[name]
        assert (table_kind, table_role) == (kind, role), line
        for label in labels:
            assert label in line, line


@pytest.mark.parametrize("role", ["api", "scheduler", "worker"])
def test_each_process_registers_only_its_own_metrics(role):
    registry = CollectorRegistry()
    metrics.register(role, registry)
    metrics.register(role, registry)  # idempotent
    exported = {metric.name for metric in registry.collect()}
    expected = {name.removesuffix("_total") for name, v in declared().items() if v[2] == role}
    assert exported == expected


def test_generated_dashboards_are_up_to_date():
    rendered = generate.render()
    on_disk = {path.name: path.read_text() for path in generate.DASHBOARDS_DIR.glob("*.json")}
    assert on_disk == rendered, "run: .venv/bin/python -m ops.grafana.generate"


def test_every_panel_has_queries_through_a_provisioned_datasource():
    panels = dashboard_panels()
    assert len(panels) >= 18
    prometheus = {"type": "prometheus", "uid": "${datasource}"}
    postgres = {"type": "grafana-postgresql-datasource", "uid": "ordinaut-postgres"}
    for name, panel in panels:
        assert panel["datasource"] in (prometheus, postgres), (name, panel["title"])
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            if "datasource" in target:
                assert target["datasource"] == panel["datasource"]
            assert (target.get("expr") or target.get("rawSql") or "").strip(), panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_per_task_tables_use_the_store_queries_and_the_provisioned_database():
    sql = {title: text for _, title, text in dashboard_sql_targets()}
    assert set(sql) == set(stats.GRAFANA_TABLES)
    for title, text in sql.items():
        assert text == stats.GRAFANA_TABLES[title].strip()
    datasources = (OPS / "grafana/provisioning/datasources/ordinaut.yaml").read_text()
    assert "uid: ordinaut-postgres" in datasources
    assert "type: grafana-postgresql-datasource" in datasources


def test_panel_ids_are_unique_per_dashboard():
    for path in generate.DASHBOARDS_DIR.glob("*.json"):
        ids = [panel["id"] for panel in json.loads(path.read_text())["panels"]]
        assert len(ids) == len(set(ids)), path.name


def test_the_overview_covers_what_the_issue_asks_for():
    overview = json.loads((generate.DASHBOARDS_DIR / "ordinaut-overview.json").read_text())
    exprs = " ".join(t["expr"] for p in overview["panels"] for t in p.get("targets", []))
    for needle in (
        "ordinaut_runs_total",  # runs/s by status, failure rate
        'status="dead"',
        "ordinaut_run_start_delay_seconds_bucket",
        "ordinaut_due_work_ready",
        "ordinaut_due_work_oldest_age_seconds",
        "ordinaut_scheduler_tick_duration_seconds_bucket",
        "ordinaut_worker_inflight",
        "ordinaut_worker_concurrency",
        "ordinaut_http_request_duration_seconds_bucket",
        'status=~"5.."',
    ):
        assert needle in exprs, needle
    assert "histogram_quantile(0.99" in exprs and "histogram_quantile(0.5" in exprs


def test_the_overview_opens_with_a_health_row_of_stat_panels_with_thresholds():
    overview = json.loads((generate.DASHBOARDS_DIR / "ordinaut-overview.json").read_text())
    panels = overview["panels"]
    assert panels[0]["type"] == "row" and panels[0]["title"] == "Health"
    health = panels[1:5]
    assert [p["title"] for p in health] == [
        "Live workers",
        "Scheduler tick age",
        "Dead-run rate",
        "Oldest ready run",
    ]
    for panel in health:
        assert panel["type"] == "stat", panel["title"]
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0]["value"] is None and len(steps) >= 2, panel["title"]
        assert {s["color"] for s in steps} >= {"green", "red"}, panel["title"]
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), panel["title"]
    exprs = [p["targets"][0]["expr"] for p in health]
    assert exprs[0] == "max(ordinaut_workers_live)"
    assert "ordinaut_scheduler_last_tick_timestamp_seconds" in exprs[1]


def test_every_name_used_in_ops_is_declared():
    known = set()
    for name, (kind, _, _) in declared().items():
        known |= series_names(name, kind)
    used = names_used_in_ops()
    assert used, "no metric names found under ops/"
    unknown = {name: files for name, files in used.items() if name not in known}
    assert not unknown, f"names not declared in observability/metrics.py: {unknown}"


def test_database_gauges_are_aggregated_with_max():
    """Every scheduler exports the same database values: sum() would multiply them."""
    pattern = re.compile(
        r"(\w+)\s*(?:by\s*\([^)]*\)\s*)?\(\s*(" + "|".join(DATABASE_GAUGES) + r")\b"
    )
    queries = [p for p in ops_config_files() if "tests" not in p.relative_to(OPS).parts]
    for path in queries:  # not the rule tests: their input series are raw samples
        text = config_text(path)
        for match in re.finditer(r"\b(" + "|".join(DATABASE_GAUGES) + r")\b", text):
            wrapped = [m for m in pattern.finditer(text) if m.start(2) == match.start()]
            assert wrapped and wrapped[0].group(1) == "max", (
                f"{path.name}: {match.group(1)} must be wrapped in max(): "
                f"{text[max(0, match.start() - 40) : match.end() + 10]!r}"
            )


def test_provisioning_points_at_the_mounted_dashboards():
    provider = (OPS / "grafana/provisioning/dashboards/ordinaut.yaml").read_text()
    compose = (OPS / "compose.yaml").read_text()
    path = re.search(r"path:\s*(\S+)", provider)
    assert path is not None
    assert f"./grafana/dashboards:{path.group(1)}:ro" in compose
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in compose
    datasource = (OPS / "grafana/provisioning/datasources/ordinaut.yaml").read_text()
    assert "type: prometheus" in datasource and "url: http://prometheus:9090" in datasource


def test_scrape_config_names_the_jobs_the_rules_use():
    config = (OPS / "prometheus/prometheus.yml").read_text()
    jobs = set(re.findall(r"job_name:\s*(\S+)", config))
    assert jobs == {"ordinaut-api", "ordinaut-scheduler", "ordinaut-worker"}
    rules = (OPS / "prometheus/rules/ordinaut.yml").read_text()
    for job in re.findall(r'job=~?"([^"]+)"', rules):
        assert any(re.fullmatch(job, name) for name in jobs), job
