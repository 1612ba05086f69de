"""One typed settings class, read from the environment with the COOP_ prefix.

Obtained through `get_settings()` (cached) so tests and the CLI can build their own.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEFAULT_SQLITE_URL = "sqlite:///./var/coop.db"
ProgramSupport = Literal["STIPEND", "HOUSING", "ALLOWANCE"]
DEFAULT_WELFARE_PROGRAMS: dict[str, ProgramSupport] = {
    "INTERNSHIP": "STIPEND",
    "HOUSING": "HOUSING",
}


class ConfigurationError(RuntimeError):
    """The configuration cannot run against this store (e.g. unsafe durability
    settings, a welfare program dropped that the fund's history uses)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COOP_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    # PostgreSQL only: the schema that holds this cooperative's tables (one per tenant).
    database_schema: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$")
    # Per process: commands' and reads' pools on PostgreSQL, the read pool on SQLite.
    database_pool_size: int = Field(default=10, ge=1, le=200)
    timezone: str = "Europe/Rome"
    # No money fact before it: a year typed wrong (1902 for 2025) was accepted and
    # then sat in no report (reports start at 2000) and could not be moved. Set it
    # to the day the cooperative's books open.
    books_opened_on: date = Field(default=date(2000, 1, 1), ge=date(1900, 1, 1))

    # Limits: every input and every page has one (see docs/limits.md).
    amount_ceiling_cents: int = Field(default=1_000_000_000, ge=1)  # EUR 10,000,000.00
    max_description_length: int = Field(default=500, ge=1, le=10_000)
    max_entry_lines: int = Field(default=100, ge=2, le=10_000)
    max_idempotency_key_length: int = Field(default=255, ge=8, le=255)
    max_page_size: int = Field(default=500, ge=1, le=10_000)
    max_account_code_length: int = Field(default=16, ge=1, le=64)

    # Stamp duty (imposta di bollo) on contract invoices: an invoice whose amounts
    # outside VAT (Natura N1) exceed the threshold owes the duty (DPR 642/1972, Tariffa
    # art. 13: EUR 77.47 and EUR 2.00 since 2013). Settings, not constants: the law
    # changes them. A duty of 0 turns it off. See docs/funding.md.
    stamp_duty_threshold_cents: int = Field(default=7_747, ge=0, le=100_000_000)
    stamp_duty_cents: int = Field(default=200, ge=0, le=100_000)  # at most EUR 1,000.00

    # Projections.
    projection_page_size: int = Field(default=1000, ge=1, le=100_000)
    projector_poll_interval_s: float = Field(default=0.2, gt=0, le=60)
    run_projector_in_process: bool = True
    read_your_writes_timeout_s: float = Field(default=5.0, gt=0, le=120)

    # GraphQL hardening (see docs/limits.md).
    max_query_depth: int = Field(default=10, ge=2, le=50)
    max_aliases: int = Field(default=15, ge=1, le=1000)
    max_query_tokens: int = Field(default=2000, ge=100, le=100_000)
    # Distinct query texts kept parsed and validated (gateway/document_cache.py).
    max_cached_documents: int = Field(default=500, ge=1, le=100_000)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Operations open at once on one WebSocket: a till or a fund screen needs two or
    # three; each open one holds a task and wakes at every projector step.
    max_operations_per_socket: int = Field(default=20, ge=1, le=1_000)
    mutations_per_minute: int = Field(default=600, ge=1, le=1_000_000)  # per key or user
    # Per user name: each attempt costs a scrypt hash, and guessing needs many.
    sign_ins_per_minute: int = Field(default=10, ge=1, le=10_000)
    readyz_max_lag_events: int = Field(default=10_000, ge=0)
    # /readyz also answers 503 when the read models are behind and have not moved for
    # this long: a projector failing on one event is not far behind, but stuck.
    readyz_max_stall_s: float = Field(default=60.0, gt=0, le=86_400)
    log_json: bool = True

    # Welfare fund programs and what each pays (STIPEND, HOUSING or ALLOWANCE); JSON in
    # the environment, e.g. COOP_WELFARE_PROGRAMS='{"INTERNSHIP": "STIPEND",
    # "HOUSING": "HOUSING", "TRAINING": "ALLOWANCE"}'. See docs/welfare_fund.md.
    welfare_programs: dict[str, ProgramSupport] = Field(
        default_factory=lambda: dict(DEFAULT_WELFARE_PROGRAMS),
        min_length=1,
        max_length=20,
    )

    # Authentication.
    token_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 86400)

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        backend = make_url(value).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def url(self) -> URL:
        return make_url(self.database_url)

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @property
    def sqlite_path(self) -> Path:
        database = self.url.database
        if not database or database == ":memory:":
            raise ValueError("an in-memory SQLite database cannot be shared; use a file")
        return Path(database)

    def prepared_sqlite_path(self) -> Path:
        """`sqlite_path`, its directory made if missing: the default store lives under
        ./var/, which a fresh checkout does not have."""
        path = self.sqlite_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"COOP_DATABASE_URL: the SQLite file's directory {path.parent} cannot be "
                f"made ({exc.strerror or exc})"
            ) from exc
        return path

    @property
    def sync_url(self) -> URL:
        driver = "postgresql+psycopg" if self.is_postgres else "sqlite+pysqlite"
        return self.url.set(drivername=driver)

    @property
    def async_url(self) -> URL:
        driver = "postgresql+asyncpg" if self.is_postgres else "sqlite+aiosqlite"
        return self.url.set(drivername=driver)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
