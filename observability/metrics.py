"""Every Prometheus metric of Ordinaut, declared once.

=========================================  =========  ===========================  ==========
name                                       type       labels                       exported by
=========================================  =========  ===========================  ==========
ordinaut_http_requests_total               counter    method, route, status        api
ordinaut_http_request_duration_seconds     histogram  method, route, status        api
ordinaut_runs_total                        counter    status (final), trigger      worker
ordinaut_run_duration_seconds              histogram  status                       worker
ordinaut_run_start_delay_seconds           histogram  trigger                      worker
ordinaut_step_duration_seconds             histogram  tool, status                 worker
ordinaut_retries_total                     counter    —                            worker
ordinaut_leases_reclaimed_total            counter    —                            worker, scheduler
ordinaut_due_work_ready                    gauge      —                            scheduler
ordinaut_due_work_oldest_age_seconds       gauge      —                            scheduler
ordinaut_scheduler_tick_duration_seconds   histogram  —                            scheduler
ordinaut_scheduler_occurrences_total       counter    —                            scheduler
ordinaut_worker_inflight                   gauge      —                            worker
ordinaut_worker_concurrency                gauge      —                            worker
ordinaut_tasks                             gauge      status                       scheduler
=========================================  =========  ===========================  ==========

Counters are declared without the ``_total`` suffix; the client library adds it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets from 1 ms to 1 min: run starts and API calls are expected in milliseconds.
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RUN_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)

HTTP_REQUESTS = Counter(
    "ordinaut_http_requests", "HTTP requests answered by the API.", ["method", "route", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "ordinaut_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
    buckets=_FAST_BUCKETS,
)
RUNS = Counter("ordinaut_runs", "Runs that reached a final status.", ["status", "trigger"])
RUN_DURATION = Histogram(
    "ordinaut_run_duration_seconds",
    "Duration of a run attempt, from lease to end.",
    ["status"],
    buckets=_RUN_BUCKETS,
)
RUN_START_DELAY = Histogram(
    "ordinaut_run_start_delay_seconds",
    "How late a run attempt started: started_at - scheduled_for (retries: - retry time).",
    ["trigger"],
    buckets=_FAST_BUCKETS,
)
STEP_DURATION = Histogram(
    "ordinaut_step_duration_seconds",
    "Duration of a pipeline step.",
    ["tool", "status"],
    buckets=_RUN_BUCKETS,
)
RETRIES = Counter("ordinaut_retries", "Failed run attempts that were scheduled for a retry.")
LEASES_RECLAIMED = Counter(
    "ordinaut_leases_reclaimed", "Expired leases returned to the queue (crashed workers)."
)
DUE_WORK_READY = Gauge("ordinaut_due_work_ready", "Runs ready to start and not yet leased.")
DUE_WORK_OLDEST_AGE = Gauge(
    "ordinaut_due_work_oldest_age_seconds",
    "Age of the oldest ready, unleased run (0 when none is waiting).",
)
SCHEDULER_TICK_DURATION = Histogram(
    "ordinaut_scheduler_tick_duration_seconds",
    "Duration of one scheduler tick.",
    buckets=_FAST_BUCKETS,
)
SCHEDULER_OCCURRENCES = Counter(
    "ordinaut_scheduler_occurrences", "Occurrences materialised into due_work."
)
WORKER_INFLIGHT = Gauge("ordinaut_worker_inflight", "Runs this worker is executing now.")
WORKER_CONCURRENCY = Gauge("ordinaut_worker_concurrency", "Runs this worker may execute at once.")
TASKS = Gauge("ordinaut_tasks", "Tasks by status (not deleted).", ["status"])
