"""Audit: tamper-evident history, verification, replay, point-in-time views and exports."""
