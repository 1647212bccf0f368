"""The Grafana dashboards, as code: ``python -m ops.grafana.generate`` writes
``ops/grafana/dashboards/*.json`` (what Grafana provisions; a test fails when they are stale).

Each panel is a title, a unit and its PromQL queries; the layout is automatic. Conventions:

- counters and histograms are per process: ``sum(rate(...[$__rate_interval]))``;
- the database gauges (``ordinaut_due_work_*``, ``ordinaut_tasks``,
  ``ordinaut_workers_live``) are exported identically by every scheduler: ``max()``;
- a ratio whose numerator may have no series yet is written ``(num or vector(0)) / den`` so
  the panel shows 0 rather than "no data".

Per-task tables read PostgreSQL directly (the provisioned data source ``ordinaut-postgres``)
with the queries of :mod:`store.stats`: task ids are never metric labels.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The SDK warns at import that the v2 dashboard schema exists; Grafana provisions the
# classic (v1) JSON from files, which is what we generate.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog import variants as cogvariants
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as dashboard_models

from store.stats import GRAFANA_TABLES

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
POSTGRES = common.DataSourceRef(type_val="grafana-postgresql-datasource", uid="ordinaut-postgres")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: Sequence[Query]
    unit: str = "short"
    description: str = ""
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 8
    # Stat panels: (lowest value, colour) steps, the first from minus infinity (None).
    thresholds: Sequence[tuple[float | None, str]] = ()


@dataclass(frozen=True)
class TablePanel:
    """A table filled by one SQL query against the Ordinaut database."""

    title: str
    sql: str
    width: int = 24


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Panel | TablePanel] = field(default_factory=tuple)


def _quantiles(metric: str, by: str = "", selector: str = "") -> list[Query]:
    """p50 and p99 of a histogram, summed over processes (``by``: extra grouping labels)."""
    group = f"{by}, le" if by else "le"
    legend = "".join(f"{{{{{label.strip()}}}}} " for label in by.split(",") if label.strip())
    return [
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{selector}[{RATE}])))",
            f"{legend}p{int(q * 100)}",
        )
        for q in (0.5, 0.99)
    ]


GOOD, WARN, BAD = "green", "orange", "red"

HEALTH = Row(
    "Health",
    (
        Panel(
            "Live workers",
            [Query("max(ordinaut_workers_live)", "live workers")],
            kind="stat",
            width=6,
            thresholds=((None, BAD), (1, GOOD)),
            description="Workers that heartbeated in the last 15 s (the registry). "
            "Red: none, so nothing runs.",
        ),
        Panel(
            "Scheduler tick age",
            [
                Query(
                    "time() - max(ordinaut_scheduler_last_tick_timestamp_seconds)",
                    "since the last tick",
                )
            ],
            unit="s",
            kind="stat",
            width=6,
            thresholds=((None, GOOD), (10, WARN), (30, BAD)),
            description="Seconds since any scheduler completed a tick (one a second when "
            "healthy). Red from 30 s: schedules are not being expanded.",
        ),
        Panel(
            "Dead-run rate",
            [
                Query(
                    f'(sum(rate(ordinaut_runs_total{{status="dead"}}[{RATE}])) or vector(0))'
                    f" / sum(rate(ordinaut_runs_total[{RATE}]))",
                    "dead / finished",
                )
            ],
            unit="percentunit",
            kind="stat",
            width=6,
            thresholds=((None, GOOD), (0.01, WARN), (0.1, BAD)),
            description="Share of finished runs that ended dead. Red from 10 % (the "
            "OrdinautRunFailureRateHigh alert).",
        ),
        Panel(
            "Oldest ready run",
            [Query("max(ordinaut_due_work_oldest_age_seconds)", "waiting")],
            unit="s",
            kind="stat",
            width=6,
            thresholds=((None, GOOD), (60, WARN), (300, BAD)),
            description="How long the oldest ready run has waited for a worker (0: none "
            "waits). Red from 5 min (the OrdinautDueWorkTooOld alert).",
        ),
    ),
)

OVERVIEW: Sequence[Row] = (
    HEALTH,
    Row(
        "Runs",
        (
            Panel(
                "Runs finished per second, by status",
                [Query(f"sum by (status) (rate(ordinaut_runs_total[{RATE}]))", "{{status}}")],
                unit="ops",
                description="Runs that reached a final status (succeeded, dead, canceled).",
            ),
            Panel(
                "Failure rate",
                [
                    Query(
                        f'sum(rate(ordinaut_runs_total{{status="dead"}}[{RATE}]))'
                        f" / sum(rate(ordinaut_runs_total[{RATE}]))",
                        "dead / finished",
                    ),
                    Query(
                        f"sum(rate(ordinaut_retries_total[{RATE}]))"
                        f" / (sum(rate(ordinaut_runs_total[{RATE}]))"
                        f" + sum(rate(ordinaut_retries_total[{RATE}])))",
                        "retried attempts / attempts",
                    ),
                ],
                unit="percentunit",
                description="Share of finished runs that ended dead (retries exhausted or "
                "not retryable), and share of attempts that failed and were retried.",
            ),
            Panel(
                "Start delay (started - scheduled)",
                _quantiles("ordinaut_run_start_delay_seconds"),
                unit="s",
                description="How late first attempts start. DESIGN target: p99 < 100 ms "
                "with idle workers.",
            ),
        ),
    ),
    Row(
        "Queue",
        (
            Panel(
                "Due work ready (not leased)",
                [Query("max(ordinaut_due_work_ready)", "ready runs")],
                description="Runs whose time has come and that no worker holds yet. "
                "max(): every scheduler exports the same database value.",
            ),
            Panel(
                "Oldest ready run's age",
                [Query("max(ordinaut_due_work_oldest_age_seconds)", "oldest age")],
                unit="s",
                description="How long the oldest ready run has waited for a worker.",
            ),
            Panel(
                "Occurrences materialised and leases reclaimed per second",
                [
                    Query(
                        f"sum(rate(ordinaut_scheduler_occurrences_total[{RATE}]))",
                        "occurrences",
                    ),
                    Query(f"sum(rate(ordinaut_leases_reclaimed_total[{RATE}]))", "reclaimed"),
                ],
                unit="ops",
                description="Reclaimed leases are runs of workers that died or stalled.",
            ),
        ),
    ),
    Row(
        "Scheduler and workers",
        (
            Panel(
                "Scheduler tick duration",
                _quantiles("ordinaut_scheduler_tick_duration_seconds"),
                unit="s",
                description="One tick expands every task due within the horizon.",
            ),
            Panel(
                "Worker saturation",
                [
                    Query(
                        "sum(ordinaut_worker_inflight) / sum(ordinaut_worker_concurrency)",
                        "in flight / slots",
                    )
                ],
                unit="percentunit",
                description="Near 100 % with a growing queue: add worker processes.",
            ),
            Panel(
                "Live workers and slots",
                [
                    Query("max(ordinaut_workers_live)", "live workers (registry)"),
                    Query("count(ordinaut_worker_concurrency)", "workers scraped"),
                    Query("sum(ordinaut_worker_concurrency)", "slots"),
                    Query("sum(ordinaut_worker_inflight)", "in flight"),
                ],
            ),
        ),
    ),
    Row(
        "API",
        (
            Panel(
                "Requests per second, by status",
                [
                    Query(
                        f"sum by (status) (rate(ordinaut_http_requests_total[{RATE}]))",
                        "{{status}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Latency (without /health and /metrics)",
                _quantiles(
                    "ordinaut_http_request_duration_seconds",
                    selector='{route!~"/health.*|/metrics"}',
                ),
                unit="s",
            ),
            Panel(
                "5xx ratio",
                [
                    Query(
                        f'(sum(rate(ordinaut_http_requests_total{{status=~"5.."}}[{RATE}]))'
                        f" or vector(0)) / sum(rate(ordinaut_http_requests_total[{RATE}]))",
                        "5xx / requests",
                    )
                ],
                unit="percentunit",
                description="A 5xx is always a bug (or the database is down).",
            ),
        ),
    ),
)

TASKS_AND_TOOLS: Sequence[Row] = (
    Row(
        "Tasks and runs",
        (
            Panel(
                "Tasks by status",
                [Query("max by (status) (ordinaut_tasks)", "{{status}}")],
                kind="stat",
                width=8,
            ),
            Panel(
                "Runs finished per second, by trigger and status",
                [
                    Query(
                        f"sum by (trigger, status) (rate(ordinaut_runs_total[{RATE}]))",
                        "{{trigger}} {{status}}",
                    )
                ],
                unit="ops",
                width=16,
            ),
            Panel(
                "Run duration, by status",
                _quantiles("ordinaut_run_duration_seconds", by="status"),
                unit="s",
                description="status=failed: attempts that failed and were retried.",
                width=12,
            ),
            Panel(
                "Start delay, by trigger",
                _quantiles("ordinaut_run_start_delay_seconds", by="trigger"),
                unit="s",
                width=12,
            ),
        ),
    ),
    Row(
        "Tools ($tool)",
        (
            Panel(
                "Step calls per second, by tool and status",
                [
                    Query(
                        "sum by (tool, status) (rate(ordinaut_step_duration_seconds_count"
                        f'{{tool=~"$tool"}}[{RATE}]))',
                        "{{tool}} {{status}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Step failure ratio, by tool",
                [
                    Query(
                        "(sum by (tool) (rate(ordinaut_step_duration_seconds_count"
                        f'{{tool=~"$tool", status="failed"}}[{RATE}]))'
                        " or 0 * sum by (tool) (rate(ordinaut_step_duration_seconds_count"
                        f'{{tool=~"$tool"}}[{RATE}])))'
                        " / sum by (tool) (rate(ordinaut_step_duration_seconds_count"
                        f'{{tool=~"$tool"}}[{RATE}]))',
                        "{{tool}}",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Step duration, by tool",
                _quantiles("ordinaut_step_duration_seconds", by="tool", selector='{tool=~"$tool"}'),
                unit="s",
            ),
        ),
    ),
    Row(
        "Per task (from PostgreSQL)",
        tuple(TablePanel(title, sql) for title, sql in GRAFANA_TABLES.items()),
    ),
)


class _SqlQuery(cogvariants.Dataquery):
    """A raw-SQL target of Grafana's PostgreSQL data source (the SDK has no builder)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": "table",
            "rawQuery": True,
            "rawSql": self.sql.strip(),
            "refId": "A",
        }


class _SqlTarget(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, sql: str) -> None:
        self._query = _SqlQuery(sql)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _table(spec: TablePanel, panel_id: int) -> table.Panel:
    return (
        table.Panel()
        .id(panel_id)
        .title(spec.title)
        .datasource(POSTGRES)
        .height(8)
        .span(spec.width)
        .with_target(_SqlTarget(spec.sql))
    )


def _panel(spec: Panel, panel_id: int) -> timeseries.Panel | stat.Panel:
    built: timeseries.Panel | stat.Panel
    if spec.kind == "stat":
        built = stat.Panel().reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
        )
        if spec.thresholds:
            built = built.thresholds(_thresholds(spec.thresholds)).color_mode(
                common.BigValueColorMode.BACKGROUND
            )
    else:
        built = timeseries.Panel().legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
    built = built.id(panel_id).title(spec.title).unit(spec.unit).datasource(DATASOURCE)
    built = built.height(8).span(spec.width)
    if spec.description:
        built = built.description(spec.description)
    for index, query in enumerate(spec.queries):
        built = built.with_target(
            prometheus.Dataquery()
            .expr(query.expr)
            .legend_format(query.legend or "__auto")
            .ref_id(chr(ord("A") + index))
        )
    return built


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=value, color=color) for value, color in steps])
    )


def _dashboard(
    uid: str, title: str, rows: Sequence[Row], variables: Sequence[dashboard.QueryVariable] = ()
) -> dashboard.Dashboard:
    built = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["ordinaut"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
    )
    for variable in variables:
        built = built.with_variable(variable)
    panel_id = 0
    for row in rows:
        panel_id += 1
        built = built.with_row(dashboard.Row(row.title).id(panel_id))
        for spec in row.panels:
            panel_id += 1
            built = built.with_panel(
                _table(spec, panel_id) if isinstance(spec, TablePanel) else _panel(spec, panel_id)
            )
    return built


def _tool_variable() -> dashboard.QueryVariable:
    query = "label_values(ordinaut_step_duration_seconds_count, tool)"
    return (
        dashboard.QueryVariable("tool")
        .label("Tool")
        .datasource(DATASOURCE)
        .query(query)
        .definition(query)
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def dashboards() -> dict[str, dashboard.Dashboard]:
    """File name → dashboard builder."""
    return {
        "ordinaut-overview.json": _dashboard("ordinaut-overview", "Ordinaut overview", OVERVIEW),
        "ordinaut-tasks-and-tools.json": _dashboard(
            "ordinaut-tasks-tools", "Ordinaut tasks and tools", TASKS_AND_TOOLS, [_tool_variable()]
        ),
    }


def render() -> dict[str, str]:
    """File name → the JSON text Grafana provisions."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {name: encoder.encode(built.build()) + "\n" for name, built in dashboards().items()}


def main() -> int:
    DASHBOARDS_DIR.mkdir(exist_ok=True)
    for name, text in render().items():
        (DASHBOARDS_DIR / name).write_text(text)
        print(f"wrote {DASHBOARDS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
