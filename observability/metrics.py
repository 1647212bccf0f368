"""Every Prometheus metric of Ordinaut, declared once.

=========================================  =========  ===========================  ==========
name                                       type       labels                       exported by
=========================================  =========  ===========================  ==========
ordinaut_http_requests_total               counter    method, route, status        api
ordinaut_http_request_duration_seconds     histogram  method, route, status        api
ordinaut_run_waiters                       gauge      —                            api
ordinaut_run_stream_subscribers            gauge      —                            api
ordinaut_runs_total                        counter    status (final), trigger      worker
ordinaut_run_duration_seconds              histogram  status                       worker
ordinaut_run_start_delay_seconds           histogram  trigger                      worker
ordinaut_run_late_start_seconds            histogram  trigger                      worker
ordinaut_step_duration_seconds             histogram  tool, status                 worker
ordinaut_retries_total                     counter    —                            worker
ordinaut_leases_reclaimed_total            counter    —                            worker
ordinaut_worker_inflight                   gauge      —                            worker
ordinaut_worker_concurrency                gauge      —                            worker
ordinaut_webhook_deliveries_total          counter    outcome                      worker
ordinaut_scheduler_tick_duration_seconds   histogram  —                            scheduler
ordinaut_scheduler_occurrences_total       counter    —                            scheduler
ordinaut_scheduler_last_tick_timestamp_seconds  gauge  —                          scheduler
ordinaut_due_work_ready                    gauge      —                            scheduler
ordinaut_due_work_oldest_age_seconds       gauge      —                            scheduler
ordinaut_tasks                             gauge      status                       scheduler
ordinaut_workers_live                      gauge      —                            scheduler
=========================================  =========  ===========================  ==========

Label values: ``runs_total.status`` is ``succeeded|dead|canceled``;
``run_duration_seconds.status`` adds ``failed`` (an attempt that will be retried);
``trigger`` is ``schedule|manual|event|retry``; ``step_duration_seconds.tool`` is the
tool's address and its ``status`` ``succeeded|failed|skipped``; ``route`` is the route
template (``/tasks/{task_id}``), or ``unmatched``; ``webhook_deliveries_total.outcome`` is
``delivered|retrying|failed`` (one per try: ``failed`` means given up).

Counters are declared without the ``_total`` suffix; the client library adds it.

**Who exports what.** Metrics are declared unregistered and each process registers only
its own group (:func:`register`), so an API process never shows a worker gauge stuck at 0
(which would make ``count(ordinaut_worker_concurrency)`` count API processes as workers).

**Database gauges.** The last four describe the shared database, not the process: every
scheduler refreshes them (:mod:`scheduler.gauges`), so with several schedulers each exports
the same value. Dashboards and alerts aggregate them with ``max()``, never ``sum()``.
Counters and histograms are per process: aggregate them with ``sum(rate(...))``.

Nothing here may be declared without a code path that updates it: the end-to-end test
scrapes real processes and fails on any name used in ``ops/`` that none of them exports.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

Role = Literal["api", "scheduler", "worker"]

# Latency buckets from 1 ms to 1 min: run starts and API calls are expected in milliseconds.
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RUN_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)

RUN_STATUSES = ("succeeded", "dead", "canceled")
ATTEMPT_STATUSES = (*RUN_STATUSES, "failed")
TRIGGERS = ("schedule", "manual", "event", "retry")

HTTP_REQUESTS = Counter(
    "ordinaut_http_requests",
    "HTTP requests answered by the API.",
    ["method", "route", "status"],
    registry=None,
)
HTTP_REQUEST_DURATION = Histogram(
    "ordinaut_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
    buckets=_FAST_BUCKETS,
    registry=None,
)
RUNS = Counter(
    "ordinaut_runs", "Runs that reached a final status.", ["status", "trigger"], registry=None
)
RUN_DURATION = Histogram(
    "ordinaut_run_duration_seconds",
    "Duration of a run attempt, from lease to end.",
    ["status"],
    buckets=_RUN_BUCKETS,
    registry=None,
)
RUN_START_DELAY = Histogram(
    "ordinaut_run_start_delay_seconds",
    "How late a run started: started_at - scheduled_for (first attempts of runs queued "
    "before they were late).",
    ["trigger"],
    buckets=_FAST_BUCKETS,
    registry=None,
)
# Runs queued when their time had long passed (a `once` task created with a past time, an
# occurrence caught up after downtime) start late by design: their delay goes here, so the
# start-delay quantiles and alert keep measuring how fast the system starts runs.
RUN_LATE_START = Histogram(
    "ordinaut_run_late_start_seconds",
    "started_at - scheduled_for of runs queued more than ORDINAUT_CATCH_UP_GRACE_SECONDS "
    "after their time (backdated or caught-up occurrences; first attempts).",
    ["trigger"],
    buckets=(1, 60, 600, 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400),
    registry=None,
)
STEP_DURATION = Histogram(
    "ordinaut_step_duration_seconds",
    "Duration of a pipeline step.",
    ["tool", "status"],
    buckets=_RUN_BUCKETS,
    registry=None,
)
RETRIES = Counter(
    "ordinaut_retries", "Failed run attempts that were scheduled for a retry.", registry=None
)
LEASES_RECLAIMED = Counter(
    "ordinaut_leases_reclaimed",
    "Expired leases returned to the queue or ended (crashed workers).",
    registry=None,
)
WORKER_INFLIGHT = Gauge(
    "ordinaut_worker_inflight", "Runs this worker is executing now.", registry=None
)
WORKER_CONCURRENCY = Gauge(
    "ordinaut_worker_concurrency", "Runs this worker may execute at once.", registry=None
)
SCHEDULER_TICK_DURATION = Histogram(
    "ordinaut_scheduler_tick_duration_seconds",
    "Duration of one scheduler tick.",
    buckets=_FAST_BUCKETS,
    registry=None,
)
SCHEDULER_OCCURRENCES = Counter(
    "ordinaut_scheduler_occurrences", "Occurrences materialised into due_work.", registry=None
)
SCHEDULER_LAST_TICK = Gauge(
    "ordinaut_scheduler_last_tick_timestamp_seconds",
    "Unix time of this scheduler's last successful tick (the tick age is time() minus it).",
    registry=None,
)
DUE_WORK_READY = Gauge(
    "ordinaut_due_work_ready", "Runs ready to start and not yet leased.", registry=None
)
DUE_WORK_OLDEST_AGE = Gauge(
    "ordinaut_due_work_oldest_age_seconds",
    "Age of the oldest ready, unleased run (0 when none is waiting).",
    registry=None,
)
TASKS = Gauge("ordinaut_tasks", "Tasks by status (not deleted).", ["status"], registry=None)
RUN_WAITERS = Gauge(
    "ordinaut_run_waiters",
    "Requests of this API process waiting for a run to end (?wait=N).",
    registry=None,
)
RUN_STREAM_SUBSCRIBERS = Gauge(
    "ordinaut_run_stream_subscribers",
    "Open GET /runs/stream connections of this API process.",
    registry=None,
)
WEBHOOK_DELIVERIES = Counter(
    "ordinaut_webhook_deliveries",
    "Tries of completion webhooks by outcome (failed: given up after 24 hours).",
    ["outcome"],
    registry=None,
)
WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
WORKERS_LIVE = Gauge(
    "ordinaut_workers_live",
    "Workers whose registry heartbeat is recent (from the database).",
    registry=None,
)

GROUPS: dict[Role, tuple[Collector, ...]] = {
    "api": (HTTP_REQUESTS, HTTP_REQUEST_DURATION, RUN_WAITERS, RUN_STREAM_SUBSCRIBERS),
    "worker": (
        RUNS,
        RUN_DURATION,
        RUN_START_DELAY,
        RUN_LATE_START,
        STEP_DURATION,
        RETRIES,
        LEASES_RECLAIMED,
        WORKER_INFLIGHT,
        WORKER_CONCURRENCY,
        WEBHOOK_DELIVERIES,
    ),
    "scheduler": (
        SCHEDULER_TICK_DURATION,
        SCHEDULER_OCCURRENCES,
        SCHEDULER_LAST_TICK,
        DUE_WORK_READY,
        DUE_WORK_OLDEST_AGE,
        TASKS,
        WORKERS_LIVE,
    ),
}

_registered: set[tuple[int, Role]] = set()


def register(role: Role, registry: CollectorRegistry = REGISTRY) -> None:
    """Export ``role``'s metrics from ``registry`` (idempotent: tests build many apps)."""
    if (id(registry), role) in _registered:
        return
    for collector in GROUPS[role]:
        registry.register(collector)
    _registered.add((id(registry), role))
    if role == "worker":
        _initialise_worker_series()


def _initialise_worker_series() -> None:
    """Create the known label combinations at 0, so ``rate()`` sees a run's first failure
    (a series born at 1 has no increase) and panels show 0 rather than "no data"."""
    for trigger in TRIGGERS:
        RUN_START_DELAY.labels(trigger)
        RUN_LATE_START.labels(trigger)
        for status in RUN_STATUSES:
            RUNS.labels(status, trigger)
    for status in ATTEMPT_STATUSES:
        RUN_DURATION.labels(status)
    for outcome in WEBHOOK_OUTCOMES:
        WEBHOOK_DELIVERIES.labels(outcome)


@functools.cache
def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, cached: the hot path labels every run and step, and the
    client's own lookup (validation, a lock, a dict) costs more than this cache."""
    return metric.labels(*labels)
