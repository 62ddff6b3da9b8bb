"""``/`` on a fresh server: send a person to the interactive API docs.

A separate blueprint so the dashboard (when it exists) replaces it by registering its own ``/``
and dropping this one from ``register_ops``.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect

bp = Blueprint("welcome", __name__)


@bp.get("/")
def index() -> Response:
    return redirect("/api/docs", code=302)


index.public = True  # type: ignore[attr-defined]  # for backend.api.security.enforce_authentication
