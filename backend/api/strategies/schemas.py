"""Marshmallow schemas for the strategies namespace."""
