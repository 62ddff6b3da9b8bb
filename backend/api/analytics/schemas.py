"""Marshmallow schemas for the analytics namespace."""
