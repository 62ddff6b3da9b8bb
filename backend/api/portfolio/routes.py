"""The portfolio namespace."""

from flask_restx import Namespace

ns = Namespace("portfolio", description="portfolio (built by its own issue)", validate=False)
