"""Marshmallow schemas for the admin namespace."""
