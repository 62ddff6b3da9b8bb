"""The trader's dashboard at ``/``: one HTML shell plus ES modules, built on the public REST API and
Socket.IO alone (no server-side data in the page, no build step).

The shell and its static files are public: they hold no data, and every call the page makes carries
the in-memory access token like any other API client. The page's only script is an ES module from
our own origin loaded with the request's CSP nonce (``script-src 'self' 'nonce-…'``), and the
vendored libraries (lightweight-charts, socket.io-client) are served from ``/app/static/vendor``.
See docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, render_template, send_from_directory

bp = Blueprint("dashboard", __name__, template_folder="templates")
STATIC_DIR = Path(__file__).parent / "static"
# Python < 3.12 has no mapping for .mjs; browsers refuse a module served with another type.
_JS = {".mjs": "text/javascript", ".js": "text/javascript"}


def _public(view):
    view.public = True  # for backend.api.security.enforce_authentication: the shell holds no data
    return view


@bp.route("/")
@_public
def index():
    return render_template("dashboard/index.html")


@bp.route("/app/static/<path:filename>")
@_public
def static_files(filename: str):
    mimetype = _JS.get(Path(filename).suffix)
    # Not content-hashed: revalidate every time (ETag / Last-Modified make that a 304).
    return send_from_directory(STATIC_DIR, filename, mimetype=mimetype, max_age=0)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
