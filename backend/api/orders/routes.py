"""The orders namespace."""

from flask_restx import Namespace

ns = Namespace("orders", description="orders (built by its own issue)", validate=False)
