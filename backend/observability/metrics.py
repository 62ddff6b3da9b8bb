"""Prometheus collectors, defined once per process.

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (see docs/configuration.md).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

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


class DbPoolCollector:
    """The SQLAlchemy pool at scrape time: connections in use, overflow beyond pool_size, size."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def collect(self):
        pool = self.engine.pool
        for name, doc, attr in (
            ("db_pool_checked_out", "Database connections in use", "checkedout"),
            ("db_pool_overflow", "Connections open beyond pool_size (negative: unused capacity)", "overflow"),
            ("db_pool_size", "Configured pool size", "size"),
        ):
            fn = getattr(pool, attr, None)
            if fn is not None:
                yield GaugeMetricFamily(name, doc, value=float(fn()))


_pool_collector: DbPoolCollector | None = None


def register_pool_collector(engine) -> None:
    """Point the pool gauges at ``engine`` (the latest app's; tests build several)."""
    global _pool_collector
    if _pool_collector is None:
        _pool_collector = DbPoolCollector(engine)
        REGISTRY.register(_pool_collector)
    else:
        _pool_collector.engine = engine
