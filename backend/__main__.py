"""``python -m backend``: the development server with Socket.IO (used by ``make run``)."""

import argparse
import logging
import signal
import sys

from backend import create_app
from backend.extensions import socketio
from backend.lifecycle import InFlight, shutdown

GRACEFUL_SECONDS = 30.0  # as gunicorn's graceful_timeout in config/gunicorn.py


def _interrupt(_signum, _frame) -> None:
    # werkzeug's serve_forever ends on KeyboardInterrupt and closes the listening socket; requests
    # already being served keep their threads. A second SIGTERM must not cut the clean stop short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description="Trading platform development server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    app = create_app()
    log = logging.getLogger(__name__)
    inflight = InFlight(app.wsgi_app)
    app.wsgi_app = inflight  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, _interrupt)
    log.info(
        "serving", extra={"url": f"http://{args.host}:{args.port}/api/docs", "env": app.config["ENV_NAME"]}
    )
    try:
        socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        if not inflight.wait_idle(GRACEFUL_SECONDS):
            log.warning("stopping with requests still in flight", extra={"requests": inflight.count})
        shutdown(app)
        log.info("stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
