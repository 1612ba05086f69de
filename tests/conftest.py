"""Shared fixtures: a store per test, on SQLite and on a real PostgreSQL.

PostgreSQL is found in this order: COOP_TEST_DATABASE_URL; a server on 127.0.0.1:5432
(user postgres); a throwaway cluster started with initdb/pg_ctl (infra/pg-throwaway.sh)
and stopped afterwards. Failing all three, PostgreSQL tests are skipped with one line
saying how to enable them, unless COOP_REQUIRE_POSTGRES=1 (CI), which fails the run.
Each run (each pytest-xdist worker) gets its own database, and each test its own
schema inside it. Under xdist the controller finds or starts the server, creates no
database, and hands the server to its workers (COOP_TEST_DATABASE_URL), so a throwaway
cluster is started once, not once per worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from gateway.runtime import Runtime
from services.common.database import ensure_schema
from services.common.settings import Settings
from services.ledger.application import LedgerApplication

ROOT = Path(__file__).resolve().parents[1]
ENABLE_HINT = (
    "PostgreSQL tests skipped: no server found. Enable them with "
    "COOP_TEST_DATABASE_URL=postgresql://user@host:port/db, a server on 127.0.0.1:5432, "
    "or initdb/pg_ctl on PATH."
)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


class _PostgresServer:
    """Finds or starts a server; creates one database for this run."""

    def __init__(self) -> None:
        self.admin_url: str | None = None
        self.run_url: str | None = None
        self.throwaway_dir: str | None = None
        self.how = ""

    def start(self, *, create_database: bool = True) -> None:
        explicit = os.environ.get("COOP_TEST_DATABASE_URL")
        if explicit:
            candidates = [(explicit, "COOP_TEST_DATABASE_URL")]
        else:
            candidates = [
                ("postgresql://postgres@127.0.0.1:5432/test", "server on 127.0.0.1:5432"),
                ("postgresql://postgres@127.0.0.1:5432/postgres", "server on 127.0.0.1:5432"),
            ]
        for url, how in candidates:
            if _reachable(url):
                self.admin_url, self.how = url, how
                break
        if self.admin_url is None and not explicit:
            self._start_throwaway()
        if self.admin_url is None or not create_database:
            return
        name = f"coop_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.run_url = (
            make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        )

    def _start_throwaway(self) -> None:
        script = ROOT / "infra" / "pg-throwaway.sh"
        directory = tempfile.mkdtemp(prefix="coop-pg-")
        try:
            result = subprocess.run(
                ["bash", str(script), "start", directory],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            shutil.rmtree(directory, ignore_errors=True)
            return
        if result.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            return
        self.throwaway_dir = directory
        self.admin_url = result.stdout.strip().splitlines()[-1]
        self.how = "throwaway cluster (initdb/pg_ctl)"

    def stop(self) -> None:
        if self.admin_url and self.run_url:
            name = make_url(self.run_url).database
            try:
                with psycopg.connect(self.admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error:
                pass
        if self.throwaway_dir:
            subprocess.run(
                ["bash", str(ROOT / "infra" / "pg-throwaway.sh"), "stop", self.throwaway_dir],
                capture_output=True,
                check=False,
            )


_server = _PostgresServer()


# Set by the xdist controller when it hands its server to the workers.
HANDED_OUT = "COOP_TEST_SERVER_HANDED_OUT"


def _hands_out_to_workers(config: pytest.Config) -> bool:
    """The xdist controller of a run with workers: it runs no test itself."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    controller = _hands_out_to_workers(config)
    _server.start(create_database=not controller)
    if controller and _server.admin_url is not None:
        os.environ["COOP_TEST_DATABASE_URL"] = _server.admin_url  # the workers' server
        os.environ[HANDED_OUT] = "1"
    if not controller and _server.admin_url is None and os.environ.get(HANDED_OUT) == "1":
        # Skipped here, the controller would still report the server it found.
        raise pytest.UsageError(
            f"this test worker cannot reach the PostgreSQL server the run found "
            f"({os.environ['COOP_TEST_DATABASE_URL']}); run with -n 0 to see why"
        )
    if _server.admin_url is None and os.environ.get("COOP_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(
            "COOP_REQUIRE_POSTGRES=1 but no PostgreSQL could be found or started. "
            + ENABLE_HINT.removeprefix("PostgreSQL tests skipped: no server found. ")
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    _server.stop()


def pytest_report_header(config: pytest.Config) -> str:
    if _server.admin_url is None:
        return ENABLE_HINT
    if _server.run_url is None:
        return f"PostgreSQL: {_server.how}, a database per worker"
    return f"PostgreSQL: {_server.how}, database {make_url(_server.run_url).database}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _server.run_url is not None:
        return
    skip = pytest.mark.skip(reason=ENABLE_HINT)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _server.admin_url is None:
        terminalreporter.write_line(ENABLE_HINT)


def postgres_url() -> str:
    assert _server.run_url is not None
    return _server.run_url


def make_settings(backend: str, tmp_path: Path, **overrides: object) -> Settings:
    if backend == "postgres":
        schema = f"t_{uuid.uuid4().hex[:12]}"
        settings = Settings(database_url=postgres_url(), database_schema=schema, **overrides)  # type: ignore[arg-type]
        ensure_schema(settings)
        return settings
    return Settings(database_url=f"sqlite:///{tmp_path / 'coop.db'}", **overrides)  # type: ignore[arg-type]


def drop_schema(settings: Settings) -> None:
    if settings.is_postgres and settings.database_schema:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE')


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(backend, tmp_path)
    yield s
    drop_schema(s)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[LedgerApplication]:
    """The ledger application on a fresh store with the default chart."""
    app = LedgerApplication(settings)
    app.ensure_chart()
    yield app
    app.close()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close_sync()


@pytest.fixture
async def async_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    await rt.aclose()
