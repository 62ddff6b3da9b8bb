"""One ``api`` blueprint, one restx ``Api``, one Swagger document with a namespace per domain.

To add a domain: create ``backend/api/<domain>/`` with ``schemas.py`` and ``routes.py`` (defining
``ns = Namespace(...)``), then add it to ``DOMAINS`` below. See docs/architecture.md.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask
from werkzeug.routing import IntegerConverter

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
    ("watchlists", "watchlists"),
    ("signals", "signals"),
    ("indices", "indices"),
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


class ColumnIntConverter(IntegerConverter):
    """``<int:id>`` that only matches ids an INTEGER column can hold: beyond it is a 404, not a 500."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False) -> None:  # noqa: A002
        from backend.api.common import INT32_MAX

        super().__init__(map, fixed_digits, min, INT32_MAX if max is None else max, signed)


def register_api(app: Flask) -> None:
    _add_namespaces()
    app.url_map.converters["int"] = ColumnIntConverter  # before the blueprint's rules are bound
    app.register_blueprint(blueprint)
