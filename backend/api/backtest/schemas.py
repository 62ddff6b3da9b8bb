"""Marshmallow schemas for the backtest namespace."""
