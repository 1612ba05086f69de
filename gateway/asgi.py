"""Entry point for ASGI servers: `uvicorn gateway.asgi:create --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.app import create_app
from gateway.observability import configure_logging
from services.common.settings import get_settings


def create() -> FastAPI:
    settings = get_settings()
    configure_logging(json_logs=settings.log_json)
    return create_app(settings, freeze_heap_after_start=True)
