"""Production refuses to run on a PostgreSQL that can lose acknowledged writes.

Measured here: with synchronous_commit=off, killed servers lost writes that clients
had been told were committed. fsync and full_page_writes off risk corruption.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from services.common.settings import ConfigurationError, Settings

REQUIRED_ON = ("fsync", "synchronous_commit", "full_page_writes")


class UnsafeDatabaseSettings(ConfigurationError):
    pass


def durability_problems(settings: Settings) -> list[str]:
    if not settings.is_postgres:
        return []
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            values = {
                name: str(conn.execute(text(f"SHOW {name}")).scalar()) for name in REQUIRED_ON
            }
    finally:
        engine.dispose()
    return [f"{name} is {value}" for name, value in values.items() if value.lower() == "off"]


def check_durability(settings: Settings) -> None:
    problems = durability_problems(settings)
    if problems:
        raise UnsafeDatabaseSettings(
            "refusing to start in production: PostgreSQL "
            + ", ".join(problems)
            + ". Acknowledged writes could be lost. Turn them on (see infra/postgresql/"
            "production.conf) or run with COOP_ENVIRONMENT=development."
        )
