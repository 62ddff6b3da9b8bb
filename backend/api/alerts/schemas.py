"""Marshmallow schemas for the alerts namespace."""
