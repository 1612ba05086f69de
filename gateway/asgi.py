"""Entry point for ASGI servers: `uvicorn gateway.asgi:create --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.app import create_app


def create() -> FastAPI:
    return create_app()
