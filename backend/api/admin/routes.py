"""The admin namespace."""

from flask_restx import Namespace

ns = Namespace("admin", description="admin (built by its own issue)", validate=False)
