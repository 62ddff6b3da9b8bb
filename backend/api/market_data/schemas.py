"""Marshmallow schemas for the market-data namespace."""
