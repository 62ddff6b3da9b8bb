"""The backtest namespace."""

from flask_restx import Namespace

ns = Namespace("backtest", description="backtest (built by its own issue)", validate=False)
