"""Where the benchmarks keep their data: a SQLite file or a PostgreSQL schema.

Each benchmark gets a store of its own (a file under --sqlite-dir, or a schema
`bench_<name>` in the --postgres-url database), so it never touches real data.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from services.common.database import ensure_schema
from services.common.settings import Settings

Backend = Literal["sqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")

DEFAULT_POSTGRES_URL = os.environ.get(
    "COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DEFAULT_SQLITE_DIR = Path(tempfile.gettempdir()) / "coop-bench"
CONNECT_TIMEOUT_S = 3


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="which event store to measure (default: both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL database; a schema bench_* is created in it and dropped after "
        "(default: $COOP_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument(
        "--sqlite-dir",
        type=Path,
        default=DEFAULT_SQLITE_DIR,
        help="directory for the SQLite files (default: %(default)s)",
    )


def selected_backends(choice: str) -> list[Backend]:
    return list(BACKENDS) if choice == "both" else [b for b in BACKENDS if b == choice]


@dataclass(frozen=True)
class Store:
    backend: Backend
    settings: Settings

    @property
    def label(self) -> str:
        if self.backend == "sqlite":
            return str(self.settings.sqlite_path)
        return f"schema {self.settings.database_schema}"

    def exists(self) -> bool:
        if self.backend == "sqlite":
            return self.settings.sqlite_path.exists()
        engine = create_engine(self.settings.sync_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
                    {"name": self.settings.database_schema},
                ).first()
        finally:
            engine.dispose()
        return found is not None

    def create(self) -> None:
        if self.backend == "sqlite":
            self.settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            ensure_schema(self.settings)

    def destroy(self) -> None:
        """Delete the store. Close every application and engine on it first."""
        if self.backend == "sqlite":
            path = self.settings.sqlite_path
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        engine = create_engine(self.settings.sync_url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(f'DROP SCHEMA IF EXISTS "{self.settings.database_schema}" CASCADE')
                )
        finally:
            engine.dispose()


def open_store(backend: Backend, name: str, *, postgres_url: str, sqlite_dir: Path) -> Store:
    """A store named `name` (a file name or a schema suffix: [a-z0-9_])."""
    if backend == "sqlite":
        path = sqlite_dir.resolve() / f"{name}.db"
        return Store(backend, Settings(database_url=f"sqlite:///{path}"))
    return Store(backend, Settings(database_url=postgres_url, database_schema=f"bench_{name}"))


def postgres_problem(postgres_url: str) -> str | None:
    """Why PostgreSQL cannot be used, or None if it answers."""
    try:
        url: URL = Settings(database_url=postgres_url).sync_url
        engine = create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
        )
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure means "skip", with the reason shown
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first_line}"
    return None


def fresh_stores(args: argparse.Namespace, name: str) -> Iterator[Store]:
    """For each store `args` selects (see `add_store_arguments`), a new empty one named
    `name`, deleted once the caller's loop moves on or stops. A PostgreSQL that does not
    answer is skipped, with a line saying why. Close every application and engine on a
    store before the loop moves on."""
    for backend in selected_backends(args.backend):
        if backend == "postgres" and (problem := postgres_problem(args.postgres_url)):
            print(f"PostgreSQL skipped: {problem}")
            continue
        store = open_store(
            backend, name, postgres_url=args.postgres_url, sqlite_dir=args.sqlite_dir
        )
        store.destroy()
        store.create()
        try:
            yield store
        finally:
            store.destroy()


def describe_machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )


def describe_postgres(postgres_url: str, names: Sequence[str] = ()) -> str:
    """Server version and the settings that decide commit cost."""
    names = names or ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
    engine = create_engine(Settings(database_url=postgres_url).sync_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar())
            values = [f"{n}={conn.execute(text(f'SHOW {n}')).scalar()}" for n in names]
    finally:
        engine.dispose()
    return f"PostgreSQL {version} ({', '.join(values)})"


def describe_sqlite() -> str:
    """Library version and the default synchronous level (the library leaves it as is)."""
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    with closing(sqlite3.connect(":memory:")) as conn:
        level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous={levels.get(level, level)})"
