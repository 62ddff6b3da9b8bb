"""One ``api`` blueprint, one restx ``Api``, one Swagger document with a namespace per domain.

To add a domain: create ``backend/api/<domain>/`` with ``schemas.py`` and ``routes.py`` (defining
``ns = Namespace(...)``), then add it to ``DOMAINS`` below. See docs/architecture.md.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask

from backend.extensions import api

# (package under backend.api, URL segment under /api/v1)
DOMAINS: list[tuple[str, str]] = [
    ("auth", "auth"),
    ("portfolio", "portfolio"),
    ("orders", "orders"),
    ("market_data", "market-data"),
    ("alerts", "alerts"),
    ("strategies", "strategies"),
    ("backtest", "backtest"),
    ("analytics", "analytics"),
    ("admin", "admin"),
    ("broker", "broker"),
    ("signals", "signals"),
]

blueprint = Blueprint("api", __name__, url_prefix="/api")
api.init_app(blueprint)
_namespaces_added = False


def _add_namespaces() -> None:
    global _namespaces_added
    if _namespaces_added:
        return
    for package, segment in DOMAINS:
        module = importlib.import_module(f"backend.api.{package}.routes")
        api.add_namespace(module.ns, path=f"/v1/{segment}")
    _namespaces_added = True


def register_api(app: Flask) -> None:
    _add_namespaces()
    app.register_blueprint(blueprint)
