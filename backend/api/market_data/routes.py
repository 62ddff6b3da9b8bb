"""The market-data namespace."""

from flask_restx import Namespace

ns = Namespace("market-data", description="market-data (built by its own issue)", validate=False)
