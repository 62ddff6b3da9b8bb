"""Optional OpenTelemetry tracing.

Active only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set *and* the packages of requirements-otel.txt are
installed; otherwise nothing from ``opentelemetry`` is imported. When active, Flask, SQLAlchemy,
Redis and ``requests`` are instrumented, spans go to the OTLP/HTTP endpoint, and every log record
gets ``trace_id`` / ``span_id`` next to the request_id.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from flask import Flask

log = logging.getLogger(__name__)
REQUIRED = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.flask",
    "opentelemetry.instrumentation.sqlalchemy",
)


class TraceContextFilter(logging.Filter):
    """Adds the current span's ids to log records (only installed when tracing is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        return True


def tracing_available() -> bool:
    try:
        return all(importlib.util.find_spec(name) is not None for name in REQUIRED)
    except ModuleNotFoundError:
        return False


def init_tracing(app: Flask) -> bool:
    """Instrument the app when configured; returns True when tracing is active."""
    endpoint = app.config.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return False
    if not tracing_available():
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but requirements-otel.txt is not installed; tracing off"
        )
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from backend.extensions import db

    provider = TracerProvider(resource=Resource.create({"service.name": app.config.get("OTEL_SERVICE_NAME")}))
    url = endpoint.rstrip("/")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    trace.set_tracer_provider(provider)
    FlaskInstrumentor().instrument_app(app)
    with app.app_context():
        SQLAlchemyInstrumentor().instrument(engine=db.engine)
    for module, cls in (
        ("opentelemetry.instrumentation.redis", "RedisInstrumentor"),
        ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    ):
        if importlib.util.find_spec(module) is not None:
            instrumentor = getattr(importlib.import_module(module), cls)()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, TraceContextFilter) for f in handler.filters):
            handler.filters.insert(0, TraceContextFilter())
    app.extensions["tracing"] = provider
    log.info("tracing enabled", extra={"endpoint": url})
    return True
