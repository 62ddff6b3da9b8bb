"""Marshmallow schemas for the portfolio namespace."""
