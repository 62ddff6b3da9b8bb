"""The strategies namespace."""

from flask_restx import Namespace

ns = Namespace("strategies", description="strategies (built by its own issue)", validate=False)
