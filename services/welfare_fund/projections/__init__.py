"""Welfare fund read models."""
