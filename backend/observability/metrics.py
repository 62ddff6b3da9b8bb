"""Prometheus collectors, defined once per process; docs/operations.md lists every metric.

Two kinds:

* event metrics (counters, histograms, the pool and Socket.IO gauges) are incremented where the event
  happens, one place each (the services and adapters call the ``record_*`` helpers below);
* state metrics (global kill switch, job queue depth) are read from the database at scrape time by
  :class:`StateCollector`: the database is shared by every worker, so any worker can answer for all.

Under gunicorn with several workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, before the
processes start): every process then writes its event metrics to files there and ``/metrics`` sums them
(:func:`exposition_registry`, prometheus_client's multiprocess mode). ``config/gunicorn.py`` empties the
directory at start and removes a dead worker's gauges. Gauges say how they aggregate (``livesum``: the
sum over live processes).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

# prometheus_client reads PROMETHEUS_MULTIPROC_DIR itself, at import, and opens its files there on the
# first write: a process started before gunicorn made the directory (`flask db upgrade`) must not crash.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.registry import REGISTRY  # noqa: E402
from sqlalchemy import event  # noqa: E402

from backend.domain import upstox_http  # noqa: E402

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# ----------------------------------------------------------------------------- HTTP and auth

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
AUTH_FAILURES = Counter("auth_failures_total", "Failed authentications", ["reason"])
RATE_LIMITED = Counter("rate_limited_total", "Requests refused by the rate limiter", ["endpoint"])
SLOW_QUERIES = Counter("db_slow_queries_total", "Queries slower than SLOW_QUERY_MS")
SOCKETIO_CONNECTIONS = Gauge(
    "socketio_connections",
    "Authenticated /live Socket.IO connections open on this process",
    multiprocess_mode="livesum",
)

# ----------------------------------------------------------------------------- trading

ORDERS_PLACED = Counter(
    "orders_placed_total", "Orders accepted (each slice and basket leg counts once)", ["mode"]
)
ORDERS_REJECTED = Counter(
    "orders_rejected_total", "Order placements refused by the service, by domain error code", ["reason"]
)
RISK_CHECK_FAILURES = Counter(
    "risk_check_failures_total", "Failed pre-trade risk checks of rejected orders, by check", ["check"]
)
FILLS = Counter("order_fills_total", "Fills recorded (paper engine or broker trades)", ["mode"])
RISK_TRIPS = Counter(
    "risk_trips_total",
    "Automatic circuit-breaker trips: REDUCING (consecutive losses) or HALTED (daily loss limit)",
    ["state"],
)
KILL_SWITCH_ACTIVATIONS = Counter(
    "kill_switch_activations_total", "Kill switches engaged (account or global)", ["scope"]
)

SIGNALS = Counter("signals_received_total", "Webhook signals by source and outcome", ["source", "status"])

# ----------------------------------------------------------------------------- live feed (realtime/feed.py)

FEED_LAG = Gauge("feed_lag_seconds", "Delay of the last tick cycle behind its schedule")
FEED_TICK_AGE = Gauge("feed_last_tick_age_seconds", "Seconds since the producer last ticked (leader only)")
FEED_LEADER = Gauge("feed_is_leader", "1 when this process produces the live feed")
FEED_TICKS = Counter("feed_ticks_total", "Ticks produced")
FEED_RESTARTS = Counter("feed_restarts_total", "Producer restarts by the watchdog", ["reason"])
FEED_BATCH_ERRORS = Counter("feed_batch_errors_total", "Failed cycle-batch publishes or fan-outs", ["stage"])

# ----------------------------------------------------------------------------- jobs

JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Run time of background jobs from claim to end, by kind and final status",
    ["kind", "status"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
)

# ----------------------------------------------------------------------------- upstream (broker, market data)

UPSTREAM_REQUESTS = Counter(
    "upstream_requests_total",
    "HTTP calls to the broker and market-data provider, by route template",
    ["upstream", "method", "endpoint"],
)
UPSTREAM_FAILURES = Counter(
    "upstream_request_failures_total",
    "Failed upstream calls (no answer or an error answer), by route template and domain error code",
    ["upstream", "method", "endpoint", "reason"],
)
UPSTREAM_LATENCY = Histogram(
    "upstream_request_duration_seconds",
    "Upstream call latency, answered or not",
    ["upstream", "endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# ----------------------------------------------------------------------------- database pool

DB_POOL_CHECKED_OUT = Gauge("db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum")
DB_POOL_OVERFLOW = Gauge("db_pool_overflow", "Connections open beyond pool_size", multiprocess_mode="livesum")
DB_POOL_SIZE = Gauge("db_pool_size", "Configured pool size (0: no pooling)", multiprocess_mode="livesum")
DB_POOL_MAX_OVERFLOW = Gauge(
    "db_pool_max_overflow", "Connections allowed beyond pool_size", multiprocess_mode="livesum"
)

# Codes are identifiers set in code (docs/errors.md), never user input; anything else is one bucket.
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
OTHER = "OTHER"


def bounded_code(code: Any) -> str:
    """The label for an error code: the code itself when it has the shape of one, else ``OTHER``."""
    return code if isinstance(code, str) and _CODE.match(code) else OTHER


def error_code(exc: BaseException) -> str:
    """A domain error's code; ``INTERNAL_ERROR`` for anything that is not one."""
    from backend.domain.errors import DomainError

    return bounded_code(exc.code) if isinstance(exc, DomainError) else "INTERNAL_ERROR"


# ----------------------------------------------------------------------------- record_* helpers


def record_orders_placed(mode: str, n: int = 1) -> None:
    ORDERS_PLACED.labels(mode="live" if mode == "live" else "paper").inc(n)


def record_order_rejected(exc: BaseException) -> None:
    ORDERS_REJECTED.labels(reason=error_code(exc)).inc()


def counts_rejections(fn: F) -> F:
    """Wrap an order-placement use case: every domain error it raises is one refused placement,
    labelled by its code (RISK_REJECTED, VALIDATION_ERROR, UNKNOWN_SYMBOL, BROKER_REJECTED...)."""
    from backend.domain.errors import DomainError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            record_order_rejected(exc)
            raise

    return wrapper  # type: ignore[return-value]


def record_risk_checks(failed: Iterable[dict[str, Any]]) -> None:
    """The failed checks of a rejected order (their names are the coordinator's fixed set)."""
    for check in failed:
        name = str(check.get("name", ""))
        RISK_CHECK_FAILURES.labels(check=name if re.fullmatch(r"[a-z_]{1,40}", name) else "other").inc()


def record_fill(mode: str, n: int = 1) -> None:
    FILLS.labels(mode="live" if mode == "live" else "paper").inc(n)


def record_breaker_change(before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """Count what a breaker-state write changed: a new automatic trip, a kill switch engaged."""
    before = before or {}
    severity = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
    old, new = str(before.get("tripped", "ACTIVE")), str(after.get("tripped", "ACTIVE"))
    if before.get("trading_day") != after.get("trading_day"):
        old = "ACTIVE"  # a new day cleared yesterday's trip: a trip today is a new one
    if severity.get(new, 0) > severity.get(old, 0):
        RISK_TRIPS.labels(state=new).inc()
    if after.get("kill_switch") and not before.get("kill_switch"):
        KILL_SWITCH_ACTIVATIONS.labels(scope="account").inc()


def record_global_kill(was_on: bool, on: bool) -> None:
    if on and not was_on:
        KILL_SWITCH_ACTIVATIONS.labels(scope="global").inc()


def record_job(job: Any) -> None:
    """A finished job (its row): duration from its claim to its end, by kind and final status."""
    from backend.services import jobs

    started, finished = job.started_at, job.finished_at
    if started is None or finished is None:
        return
    if started.tzinfo is None:  # SQLite hands back naive UTC
        started, finished = started.replace(tzinfo=UTC), finished.replace(tzinfo=UTC)
    kind = job.kind if job.kind in jobs.handled_kinds() else "other"
    JOB_DURATION.labels(kind=kind, status=str(job.status)).observe(
        max(0.0, (finished - started).total_seconds())
    )


def _observe_upstream(
    upstream: str, method: str, path: str, seconds: float, error: BaseException | None
) -> None:
    endpoint = upstox_http.endpoint_template(path)
    UPSTREAM_REQUESTS.labels(upstream=upstream, method=method, endpoint=endpoint).inc()
    UPSTREAM_LATENCY.labels(upstream=upstream, endpoint=endpoint).observe(seconds)
    if error is not None:
        UPSTREAM_FAILURES.labels(
            upstream=upstream, method=method, endpoint=endpoint, reason=error_code(error)
        ).inc()


upstox_http.set_call_observer(_observe_upstream)


# ----------------------------------------------------------------------------- pool gauges


class _PoolState:
    """Connections of one engine, counted from its pool events (exact in every process, unlike a
    scrape-time read, which would only see the scraping worker's pool)."""

    def __init__(self, pool: Any) -> None:
        self.lock = threading.Lock()
        self.size = int(pool.size()) if callable(getattr(pool, "size", None)) else 0
        self.max_overflow = int(getattr(pool, "_max_overflow", 0) or 0) if self.size else 0
        self.in_use = 0
        self.open = 0


_pools: weakref.WeakKeyDictionary[Any, _PoolState] = weakref.WeakKeyDictionary()
_current: list[Any] = []  # the engine the gauges show (the latest app's; tests build several)


def _publish(st: _PoolState) -> None:
    DB_POOL_CHECKED_OUT.set(st.in_use)
    DB_POOL_OVERFLOW.set(max(0, st.open - st.size) if st.size else 0)
    DB_POOL_SIZE.set(st.size)
    DB_POOL_MAX_OVERFLOW.set(st.max_overflow)


def watch_pool(engine: Any) -> None:
    """Count ``engine``'s connections in the pool gauges (idempotent per engine)."""
    _current[:] = [engine]
    st = _pools.get(engine)
    if st is None:
        st = _pools[engine] = _PoolState(engine.pool)
        ref = weakref.ref(engine)

        def in_use(delta: int) -> Any:
            def listener(*_args: Any) -> None:
                with st.lock:
                    st.in_use += delta
                    if _current and _current[0] is ref():
                        DB_POOL_CHECKED_OUT.set(st.in_use)

            return listener

        def opened(delta: int) -> Any:
            def listener(*_args: Any) -> None:
                with st.lock:
                    st.open += delta
                    if _current and _current[0] is ref():
                        DB_POOL_OVERFLOW.set(max(0, st.open - st.size) if st.size else 0)

            return listener

        event.listen(engine, "checkout", in_use(1))
        event.listen(engine, "checkin", in_use(-1))
        event.listen(engine, "connect", opened(1))
        event.listen(engine, "close", opened(-1))
        event.listen(engine, "close_detached", opened(-1))
    _publish(st)


# ----------------------------------------------------------------------------- scrape-time state


class StateCollector:
    """State kept in the database, read when Prometheus scrapes (inside the /metrics request)."""

    def describe(self) -> Iterator[Metric]:
        # Names only: registering must not query a database (there is no app yet).
        yield GaugeMetricFamily("trading_global_kill_switch", "")
        yield GaugeMetricFamily("jobs_queued", "", labels=["kind"])
        yield GaugeMetricFamily("jobs_running", "", labels=["kind"])
        yield GaugeMetricFamily("jobs_oldest_queued_age_seconds", "")

    def collect(self) -> Iterator[Metric]:
        from flask import has_app_context

        if not has_app_context():
            return
        try:
            families = list(self._read())
        except Exception:  # noqa: BLE001 - a scrape must still answer (readiness reports the database)
            log.warning("metrics: database state unavailable", exc_info=True)
            from backend.extensions import db

            db.session.rollback()
            return
        yield from families

    @staticmethod
    def _read() -> Iterator[Metric]:
        from sqlalchemy import func, select

        from backend.extensions import db
        from backend.models import BacktestJob
        from backend.services import jobs
        from backend.services.trading import risk

        kill = GaugeMetricFamily(
            "trading_global_kill_switch", "1 while the platform-wide kill switch halts new risk"
        )
        kill.add_metric([], 1.0 if risk.get_global_kill_switch() else 0.0)
        rows = db.session.execute(
            select(BacktestJob.kind, BacktestJob.status, func.count(), func.min(BacktestJob.created_at))
            .where(BacktestJob.status.in_(("queued", "running")))
            .group_by(BacktestJob.kind, BacktestJob.status)
        ).all()
        db.session.commit()  # end the read at once: on SQLite every transaction holds the write lock
        known = jobs.handled_kinds()
        queued = GaugeMetricFamily("jobs_queued", "Jobs waiting for a worker, by kind", labels=["kind"])
        running = GaugeMetricFamily("jobs_running", "Jobs being run, by kind", labels=["kind"])
        counts: dict[tuple[str, str], float] = {(k, s): 0.0 for k in known for s in ("queued", "running")}
        oldest: datetime | None = None
        for kind, status, n, created in rows:
            key = (kind if kind in known else "other", status)
            counts[key] = counts.get(key, 0.0) + n
            if status == "queued" and created is not None:
                created = created if created.tzinfo else created.replace(tzinfo=UTC)
                oldest = created if oldest is None else min(oldest, created)
        for (kind, status), n in sorted(counts.items()):
            (queued if status == "queued" else running).add_metric([kind], n)
        age = GaugeMetricFamily(
            "jobs_oldest_queued_age_seconds", "Age of the oldest queued job (0: none waiting)"
        )
        age.add_metric([], (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)
        yield from (kill, queued, running, age)


_state_collector = StateCollector()
REGISTRY.register(_state_collector)


def exposition_registry(multiproc_dir: str | None) -> CollectorRegistry:
    """What /metrics serves: this process's registry, or (multiprocess mode) every process's event
    metrics summed from ``multiproc_dir`` plus the database state."""
    if not multiproc_dir:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    registry.register(_state_collector)
    return registry
