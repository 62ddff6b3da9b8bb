"""Prometheus collectors, defined once per process.

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (see docs/configuration.md).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
