"""Audit read models: the hash chain and the published heads."""
