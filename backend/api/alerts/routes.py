"""The alerts namespace."""

from flask_restx import Namespace

ns = Namespace("alerts", description="alerts (built by its own issue)", validate=False)
