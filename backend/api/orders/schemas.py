"""Marshmallow schemas for the orders namespace."""
