"""gunicorn settings for ``make serve`` (``gunicorn -c config/gunicorn.py wsgi:app``).

Command-line flags still win (workers, threads and bind come from the Makefile's environment).
"""

# gthread, with gunicorn's own errors (over-long request line, oversized headers) in the JSON
# envelope instead of an HTML page (backend/serving.py).
worker_class = "backend.serving.EnvelopeThreadWorker"
# gunicorn's maximum (default 4,094): 500 symbols still do not fit, so long lists go to POST /quotes.
limit_request_line = 8190
# No access log: gunicorn's prints raw query strings (OAuth codes); the app logs a redacted line.
accesslog = None
# SIGTERM: stop accepting, finish in-flight requests for up to this many seconds, then exit.
graceful_timeout = 30


def worker_exit(server, worker) -> None:
    """In the worker, after its in-flight requests finished: stop the background services (feed,
    alerts, deployments, job pool, schedulers) so their threads end and the worker exits 0."""
    from backend.lifecycle import shutdown_all

    shutdown_all()
