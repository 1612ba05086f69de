"""Shared kernel: money, errors, settings, the event store and the projection runner.

Everything here is used by more than one bounded context. Domain code may import
`money` and `errors` (pure Python); the rest is infrastructure.
"""
