"""The analytics namespace."""

from flask_restx import Namespace

ns = Namespace("analytics", description="analytics (built by its own issue)", validate=False)
