"""``python -m backend``: the development server with Socket.IO (used by ``make run``)."""

import argparse
import logging

from backend import create_app
from backend.extensions import socketio


def main() -> None:
    parser = argparse.ArgumentParser(description="Trading platform development server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    app = create_app()
    logging.getLogger(__name__).info(
        "serving", extra={"url": f"http://{args.host}:{args.port}/api/docs", "env": app.config["ENV_NAME"]}
    )
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, use_reloader=False)


if __name__ == "__main__":
    main()
