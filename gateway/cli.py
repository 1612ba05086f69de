"""`coop`: the command line of the cooperative backend."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfoNotFoundError

import eventsourcing.persistence
import psycopg
import sqlalchemy.exc
import typer
import typer.core
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.auth import check_till_scope, check_username
from gateway.observability import MULTIPROCESS_DIR_VARIABLE, configure_logging
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.database import connection_shortfall
from services.common.errors import CoopError
from services.common.projections import projector_leadership
from services.common.settings import ConfigurationError, Settings, get_settings

if TYPE_CHECKING:
    from services.audit.replay import ReplayReport, RowDifference


class _CoopGroup(typer.core.TyperGroup):
    """The root command: a configuration fault, wherever a command meets it, is one
    line naming the variable, not a traceback (also under typer's CliRunner, which
    calls the command and not `main`)."""

    # `Any`: the context's class is typer's vendored click, which it does not export.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            typer.secho(f"Configuration refused: {exc}", err=True, fg="red")
            raise typer.Exit(2) from None
        except Exception as exc:
            if not _store_unreachable(exc):
                raise
            # A server down, a wrong port or password, a file that cannot be opened: the
            # driver's first line says which (it names host and port, never the password).
            typer.secho(
                f"The store could not be used ({_describe_store()}): {_first_line(exc)}",
                err=True,
                fg="red",
            )
            raise typer.Exit(1) from None


# What the drivers raise when the store is unreachable: SQLAlchemy's wrapper, the event
# store's, and psycopg's own (the event store's pool raises it unwrapped).
STORE_UNREACHABLE = (
    sqlalchemy.exc.OperationalError,
    eventsourcing.persistence.OperationalError,
    # The event store's, for a SQLite path it cannot open (a directory, say).
    eventsourcing.persistence.InterfaceError,
    psycopg.OperationalError,
)


def _store_unreachable(exc: BaseException) -> bool:
    # sqlite3 raises its bare DatabaseError for a file that is not a database (a path
    # to the wrong file); its subclasses are other failures, not this one.
    return isinstance(exc, STORE_UNREACHABLE) or type(exc) is sqlite3.DatabaseError


# The development admin key `coop demo` prints; one at a time.
DEMO_KEY_NAME = "demo-admin"


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


app = typer.Typer(
    help="Event-sourced backend of a social cooperative.", no_args_is_help=True, cls=_CoopGroup
)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models: follow, rebuild, inspect.", no_args_is_help=True)
users_app = typer.Typer(help="People: add, list, disable and enable users.", no_args_is_help=True)
keys_app = typer.Typer(help="Devices: issue, revoke and list API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(projections_app, name="projections")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(
    help="Audit: verify the hash chain, publish heads, replay, export.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
hotel_app = typer.Typer(help="Hotel: guests' data retention.", no_args_is_help=True)
app.add_typer(hotel_app, name="hotel")

# Bookings listed per query of a retention run.
ERASE_BATCH = 100
# `--older-than-days` at most a century: longer than any retention period a law sets,
# and far from the calendar's ends (date arithmetic overflows past year 1).
MAX_RETENTION_DAYS = 36_525

T = TypeVar("T")

console = Console()
projector_log = logging.getLogger("coop.projector")


def _setting_bounds(name: str) -> tuple[int, int]:
    """The range the settings allow for `name`: a flag that overrides a setting takes
    the same range, so the two cannot drift apart."""
    low: int | None = None
    high: int | None = None
    for constraint in Settings.model_fields[name].metadata:  # Field(ge=..., le=...)
        ge, le = getattr(constraint, "ge", None), getattr(constraint, "le", None)
        low = ge if isinstance(ge, int) else low
        high = le if isinstance(le, int) else high
    if low is None or high is None:
        raise TypeError(f"the setting {name} has no integer bounds (ge and le)")
    return low, high


PORT_MIN, PORT_MAX = _setting_bounds("port")
WORKERS_MIN, WORKERS_MAX = _setting_bounds("workers")
# Worker processes a rebuild or a replay may fork: as many as the settings allow
# gateway workers (COOP_WORKERS), the cap on processes one command starts. Past
# MAX_REBUILD_WORKERS they add nothing (the one writing process is the bottleneck),
# so the cap is there to refuse a typo such as 1000, not to tune.
REPLAY_WORKERS_MAX = WORKERS_MAX


def _setting_fault(error: ErrorDetails) -> str:
    """One pydantic error on the settings as `COOP_NAME: fault`, never the value."""
    field, *inner = error["loc"]
    variable = f"COOP_{str(field).upper()}"
    if field == "database_url":
        # Neither the value nor a parser's message about it: a URL can hold a password.
        return f"{variable}: must be a sqlite:///PATH or postgresql:// URL"
    where = f" ({'.'.join(str(part) for part in inner)})" if inner else ""
    return f"{variable}{where}: {error['msg'].removeprefix('Value error, ')}"


def _settings() -> Settings:
    """The settings, or a ConfigurationError that names the variable at fault in one
    line (turned into the CLI's answer by _CoopGroup)."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        faults = exc.errors(include_url=False, include_input=False, include_context=False)
        raise ConfigurationError("; ".join(_setting_fault(e) for e in faults)) from None
    except SettingsError as exc:  # a JSON value (e.g. COOP_WELFARE_PROGRAMS) that does not parse
        named = re.search(r'field "(\w+)"', str(exc))
        variable = f"COOP_{named.group(1).upper()}" if named else "a COOP_ variable"
        raise ConfigurationError(f"{variable}: not valid JSON") from None
    # Raised by parsers inside the settings' validators, which pydantic does not wrap.
    except ArgumentError:
        raise ConfigurationError(
            "COOP_DATABASE_URL: must be a sqlite:///PATH or postgresql:// URL"
        ) from None
    except (ZoneInfoNotFoundError, IsADirectoryError):
        raise ConfigurationError("COOP_TIMEZONE: no such time zone (e.g. Europe/Rome)") from None
    if not settings.is_postgres:
        try:
            settings.sqlite_path  # noqa: B018 (the property refuses a URL that names no file)
        except ValueError as exc:
            raise ConfigurationError(f"COOP_DATABASE_URL: {exc}") from None
    return settings


# Progress goes to stderr: stdout carries what a command answers, so that a script
# can take it (`H=$(coop audit head)` held the bar and then the head).
progress_console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
    )


def _catch_up(
    runtime: Runtime, description: str, *, rebuild: bool = False, workers: int | None = None
) -> int:
    with _progress() as progress:
        task = progress.add_task(description, total=max(runtime.projector.head(), 1))

        def report(position: int, head: int) -> None:
            progress.update(task, completed=position, total=max(head, 1))

        if rebuild:
            return runtime.projector.rebuild(progress=report, workers=workers)
        return runtime.projector.run_until_caught_up(report)


@db_app.command("init")
def db_init() -> None:
    """Create the event store, the read models and the default chart of accounts."""
    with _runtime() as runtime:
        _catch_up(runtime, "Projecting")
        console.print(f"Store ready: {_describe_store()}")


@app.command()
def demo(
    year: int = typer.Option(date.today().year - 1, help="The year to load."),
    serve_after: bool = typer.Option(False, "--serve", help="Serve the API afterwards."),
) -> None:
    """Load a realistic year of hotel, shop, grant, donation and contract money.

    Development stores only: the year is fictional money.
    """
    from gateway.demo import count_demo_steps, load_demo
    from services.hotel.domain.config import OPENING_DAY

    settings = _settings()
    if settings.is_production:
        raise ConfigurationError(
            "COOP_ENVIRONMENT is production: `coop demo` records a fictional year of money, "
            "so it runs on development stores only"
        )
    # A whole past year: the hotel's policies start on its opening day, and the
    # front desk refuses facts dated in the future. Checked before anything is stored
    # (a year the steps refuse half-way would leave its first months behind).
    first, last = OPENING_DAY.year, datetime.now(settings.zone).year - 1
    if not first <= year <= last:
        raise typer.BadParameter(
            f"a demo year is a whole past year, {first} to {last}", param_hint="--year"
        )
    with _runtime() as runtime:
        with _progress() as progress:
            task = progress.add_task(f"Demo year {year}", total=count_demo_steps(year))
            changed = load_demo(runtime, year, lambda n: progress.advance(task, n))
        console.print(f"Demo year {year}: {changed} new facts recorded ({_describe_store()}).")
        _catch_up(runtime, "Projecting")
        if not settings.is_production:
            # One demo key at a time: each run prints a new one (only its hash is
            # stored) and revokes those of earlier runs.
            for earlier in runtime.credentials.list_keys():
                if earlier["name"] == DEMO_KEY_NAME and earlier["revoked_at"] is None:
                    runtime.credentials.revoke_key(str(earlier["key_id"]))
            issued = runtime.credentials.issue_key(DEMO_KEY_NAME, Role.ADMIN)
            console.print(
                "Demo admin API key (in GraphiQL, add the header "
                f'{{"X-Api-Key": "{issued.key}"}}); revoke with `coop keys revoke {issued.key_id}`.'
            )
    if serve_after:
        serve(host=None, port=None, workers=None)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default COOP_HOST)."),
    port: int | None = typer.Option(
        None, min=PORT_MIN, max=PORT_MAX, help="Port (default COOP_PORT)."
    ),
    workers: int | None = typer.Option(
        None,
        min=WORKERS_MIN,
        max=WORKERS_MAX,
        help="Worker processes (default COOP_WORKERS).",
    ),
) -> None:
    """Serve GraphQL over HTTP with uvicorn."""
    import uvicorn

    settings = _settings()
    host = host or settings.host
    port = settings.port if port is None else port
    workers = settings.workers if workers is None else workers
    if workers > 1 and settings.run_projector_in_process:
        console.print(
            "[yellow]Several workers each follow the log in-process; that is safe "
            "(exactly-once) but wasteful. Set COOP_RUN_PROJECTOR_IN_PROCESS=false and run "
            "`coop projections run` once instead.[/yellow]"
        )
    # The workers, and the projector: in each worker, or one process of its own.
    processes = workers if settings.run_projector_in_process else workers + 1
    shortfall = connection_shortfall(settings, processes)
    if shortfall is not None:
        console.print(f"[yellow]{shortfall}[/yellow]")
    if not settings.is_production:
        console.print(f"GraphiQL: http://{host}:{port}/graphql  (store: {_describe_store()})")
    # The supervisor's own lines (started, a worker restarted, stopping) as the
    # workers' are: JSON unless COOP_LOG_JSON=false.
    configure_logging(json_logs=settings.log_json)
    if workers > 1:
        # A worker that cannot start stops uvicorn's supervisor, which then returns as
        # if all went well (exit 0: systemd would not restart it). What the workers
        # would refuse (a production setting, a store they cannot open) is refused
        # here first, in one line and with its exit code, by building one runtime.
        with _runtime():
            pass
    with _metrics_shared_by(workers):
        uvicorn.run(
            "gateway.asgi:create",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,  # our JSON logging (configured in gateway.asgi) for every worker
            # The body limit for WebSocket messages too (uvicorn's default is 16 MiB).
            ws_max_size=settings.max_body_bytes,
        )


# prometheus_client's files in a multiprocess directory: <type>_<pid>.db.
METRICS_FILE_PATTERNS = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def _metrics_files(directory: Path) -> list[Path]:
    """Only the metrics' own files: the directory may be shared with other files (a
    SQLite store named coop.db was deleted along with them)."""
    return [path for pattern in METRICS_FILE_PATTERNS for path in directory.glob(pattern)]


@contextmanager
def _metrics_shared_by(workers: int) -> Iterator[None]:
    """With several workers, each writes its metrics to files in one directory and a
    scrape (answered by any of them) sums them all (gateway/observability.py): scraped
    from one worker at a time, counters went up and down. The workers inherit the
    directory through the environment. An operator's PROMETHEUS_MULTIPROC_DIR is used
    and emptied first (values of an earlier run would be added in); else a temporary
    one, removed at exit."""
    if workers == 1:
        yield
        return
    previous = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    directory = Path(previous) if previous else Path(tempfile.mkdtemp(prefix="coop-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_files(directory):
        stale.unlink()
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)
    try:
        yield
    finally:
        if not previous:
            shutil.rmtree(directory, ignore_errors=True)
        # Left set, it named a directory that is gone: a later app in this process (a
        # test's) answered /metrics with nothing.
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_DIR_VARIABLE] = previous


@app.command("schema")
def print_schema() -> None:
    """Print the GraphQL schema (the checked-in gateway/schema.graphql is this output)."""
    from gateway.schema import printed_schema

    typer.echo(printed_schema(), nl=False)


@contextmanager
def _runtime() -> Iterator[Runtime]:
    """A runtime for one command, closed afterwards; expected errors become usage errors."""
    runtime = Runtime(_settings())
    try:
        yield runtime
    except CoopError as exc:
        raise typer.BadParameter(exc.message) from None
    finally:
        runtime.close_sync()


def _roles(values: list[str]) -> frozenset[Role]:
    try:
        return frozenset(Role(v) for v in values)
    except ValueError:
        raise typer.BadParameter(f"roles are {', '.join(r.value for r in Role)}") from None


def _checked_username(username: str) -> str:
    try:
        check_username(username)
    except CoopError as exc:
        raise typer.BadParameter(exc.message) from None
    return username


def _check_till_scope(roles: list[str], till: str | None) -> None:
    try:
        check_till_scope(_roles(roles), till)
    except CoopError as exc:
        raise typer.BadParameter(exc.message, param_hint="--till") from None


# Click parses the options given in the order given, then the rest in declaration
# order, the password (prompted) last: whichever of --role and --till comes second
# checks the pair, so a typo is refused before anyone types a password twice.
def _checked_roles(context: typer.Context, roles: list[str]) -> list[str]:
    _roles(roles)
    if "till" in context.params:
        _check_till_scope(roles, context.params["till"])
    return roles


def _checked_till_scope(context: typer.Context, till: str | None) -> str | None:
    if "role" in context.params:
        _check_till_scope(context.params["role"], till)
    return till


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(callback=_checked_username)],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help="frontDesk, volunteer, fundOfficer, auditor, admin",
            callback=_checked_roles,
        ),
    ],
    till: Annotated[
        str | None,
        typer.Option(help="Scope a volunteer to one till.", callback=_checked_till_scope),
    ] = None,
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
    ),
) -> None:
    """Add a person who signs in with a password (POST /auth/token)."""
    with _runtime() as runtime:
        runtime.credentials.add_user(username, password, _roles(role), till)
        console.print(f"User {username} added.")


@users_app.command("list")
def users_list() -> None:
    """Every user with their roles, till, state and creation time (never a hash)."""
    with _runtime() as runtime:
        table = Table("username", "roles", "till", "state", "created")
        for user in runtime.credentials.list_users():
            table.add_row(
                user.username,
                ", ".join(sorted(r.value for r in user.roles)),
                user.till_id or "",
                "disabled" if user.disabled else "active",
                str(user.created_at)[:19],
            )
        console.print(table)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: their tokens are revoked at once. Disabling a disabled user
    changes nothing and says so (exit 0)."""
    with _runtime() as runtime:
        if runtime.credentials.disable_user(username):
            console.print(f"User {username} disabled; their tokens are revoked.")
        else:
            console.print(f"User {username} was already disabled.")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again: they sign in anew (tokens from before stay revoked)."""
    with _runtime() as runtime:
        if runtime.credentials.enable_user(username):
            console.print(f"User {username} enabled; they sign in again for a new token.")
        else:
            console.print(f"User {username} was not disabled.")


@keys_app.command("issue")
def keys_issue(
    name: str,
    # A list only to see a repeated --role: click would otherwise keep the last one,
    # and a key given two roles would silently get one of them.
    role: Annotated[
        list[str],
        typer.Option("--role", help="The device's one role, e.g. volunteer or frontDesk."),
    ],
    till: str | None = typer.Option(None, help="The till a volunteer key is scoped to."),
) -> None:
    """Issue an API key; it is shown once and stored only as a hash."""
    if len(role) != 1:
        raise typer.BadParameter(
            "a key has exactly one role: give --role once", param_hint="--role"
        )
    with _runtime() as runtime:
        issued = runtime.credentials.issue_key(name, next(iter(_roles(role))), till)
        console.print(f"Key id {issued.key_id}. Send it as X-Api-Key (shown once):")
        typer.echo(issued.key)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key at once."""
    with _runtime() as runtime:
        runtime.credentials.revoke_key(key_id)
        console.print(f"Key {key_id} revoked.")


@keys_app.command("list")
def keys_list() -> None:
    """Every key with its role, till and state (never the secret)."""
    with _runtime() as runtime:
        table = Table("name", "role", "till", "created", "state", "key id")
        # Whole, never cut to fit: it is what `coop keys revoke` takes.
        table.columns[-1].no_wrap = True
        table.columns[-1].overflow = "ignore"
        for key in runtime.credentials.list_keys():
            state = "revoked" if key["revoked_at"] else "active"
            table.add_row(
                str(key["name"]),
                str(key["role"]),
                str(key["till_id"] or ""),
                str(key["created_at"])[:19],
                state,
                str(key["key_id"]),
            )
        _print_evidence(table)


@projections_app.command("run")
def projections_run() -> None:
    """Catch up, then follow the log until interrupted (one per deployment).

    A service, not a conversation: it logs as the gateway does (JSON lines unless
    COOP_LOG_JSON=false), with no progress bars, so a journal or a log shipper reads
    it like the workers' logs."""
    settings = _settings()
    configure_logging(json_logs=settings.log_json)
    runtime = Runtime(settings)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        runtime.projector.wake.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        projector_log.info("waiting for projector leadership (one per store)")
        with projector_leadership(runtime.sync_engine, stop) as leader:
            if not leader:
                projector_log.info("stopped before becoming the leader")
                return
            projector_log.info("leader; catching up to position %d", runtime.projector.head())
            applied = runtime.projector.run_until_caught_up()
            projector_log.info("caught up (%d notifications applied); following the log", applied)
            runtime.projector.follow(stop, settings.projector_poll_interval_s, listen=True)
            projector_log.info("stopped")
    finally:
        runtime.close_sync()


@projections_app.command("rebuild")
def projections_rebuild(
    workers: int | None = typer.Option(
        None,
        min=0,
        max=REPLAY_WORKERS_MAX,
        help="Processes that read and prepare pages while this one writes (Linux); "
        "0 for a serial replay. Default: one per CPU, at most four, none on one CPU.",
    ),
) -> None:
    """Empty every read model and replay it from event 0."""
    with _runtime() as runtime:
        count = _catch_up(runtime, "Rebuilding", rebuild=True, workers=workers)
        console.print(f"Rebuilt from {count} notifications.")


@projections_app.command("status")
def projections_status() -> None:
    """Each read model's position, the log's head and the lag."""
    with _runtime() as runtime:
        table = Table("projection", "position", "head", "lag")
        for status in runtime.projector.status():
            table.add_row(status.name, str(status.position), str(status.head), str(status.lag))
        console.print(table)


@audit_app.command("verify")
def audit_verify(
    from_head: bool = typer.Option(
        False, "--from-head", help="Start at the latest published head instead of event 0."
    ),
    expect: str | None = typer.Option(
        None, help="A head you kept elsewhere, POSITION:HASH; the chain must pass through it."
    ),
) -> None:
    """Recompute the hash chain and compare it with the stored chain and published heads."""
    from services.audit.application import AuditApplication, parse_head

    # Only the audit application: verification must work on a store whose events no
    # longer decode (the runtime would load the chart of accounts first).
    audit = AuditApplication(_existing_store(), create_table=False)
    try:
        held = parse_head(expect) if expect else None
        with _progress() as progress:
            task = progress.add_task(
                "Verifying", total=max(audit.recorder.max_notification_id() or 0, 1)
            )
            result = audit.verify(
                from_published_head=from_head,
                expect=held,
                progress=lambda position, head: progress.update(
                    task, completed=position, total=max(head, 1)
                ),
            )
    except CoopError as exc:
        raise typer.BadParameter(exc.message) from None
    finally:
        audit.close()
    if result.ok:
        since = f" from position {result.start_position}" if result.start_position else ""
        console.print(
            f"OK: {result.events_checked} events checked{since}; head "
            f"{result.head_position}:{result.head_hash.hex()}; "
            f"{result.snapshots_checked} snapshots match their events"
        )
        if result.log_head_position > result.head_position:
            console.print(
                f"[yellow]Events {result.head_position + 1} to {result.log_head_position} "
                "are not chained yet (is `coop projections run` behind?): not checked.[/yellow]"
            )
        return
    if result.first_bad_position is not None:
        console.print(
            f"[red]FAILED at position {result.first_bad_position}: {result.reason}[/red] "
            f"({result.events_checked} events matched before it)"
        )
    if result.snapshots_failed:
        console.print(
            f"[red]FAILED: {result.snapshots_failed} of {result.snapshots_checked} stored "
            "snapshots do not match their events[/red] (the applications load them: see "
            'docs/audit.md, "Snapshots")'
        )
        for finding in result.snapshot_findings:
            named = f" ({', '.join(finding.attributes)})" if finding.attributes else ""
            console.print(
                f"  {finding.aggregate_type} {finding.aggregate_id or finding.withheld} "
                f"version {finding.version}: {finding.reason}{named}",
                markup=False,
                highlight=False,
            )
        if len(result.snapshot_findings) < result.snapshots_failed:
            console.print(f"  … and {result.snapshots_failed - len(result.snapshot_findings)} more")
    raise typer.Exit(1)


@audit_app.command("head")
def audit_head(
    publish: bool = typer.Option(False, "--publish", help="Record the head as published."),
    key: str | None = typer.Option(None, help="Idempotency key (default: one per head)."),
) -> None:
    """Print the chain's head (after catching up); with --publish, publish it."""
    from services.audit.store import chain_head

    runtime = Runtime(_existing_store())
    try:
        _catch_up(runtime, "Chaining")
        if publish:
            outcome = runtime.audit.publish_head(
                key=key or f"cli-publish:{uuid.uuid4()}", actor="cli:audit"
            )
            _catch_up(runtime, "Projecting")
            head = outcome.result
            console.print("Published head (keep a copy outside this system, e.g. print it):")
            typer.echo(f"{head.position}:{head.head_hash}")
            return
        with runtime.audit.read_engine.connect() as conn:
            current = chain_head(conn)
        if current is None:
            console.print("The chain is empty.")
            return
        typer.echo(f"{current.position}:{current.hash.hex()}")
    except CoopError as exc:
        raise typer.BadParameter(exc.message) from None
    finally:
        runtime.close_sync()


@audit_app.command("replay")
def audit_replay(
    until: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Build the state as of this date (recorded time)."),
    ] = None,
    keep: bool = typer.Option(False, help="Keep the scratch schema or file afterwards."),
    max_differences: int = typer.Option(50, min=1, max=100_000, help="Differences to list."),
    workers: int | None = typer.Option(
        None,
        min=0,
        max=REPLAY_WORKERS_MAX,
        help="Processes that read and prepare pages while this one writes (PostgreSQL on "
        "Linux); 0 for a serial replay. Default: one per CPU, at most four, none on one CPU.",
    ),
) -> None:
    """Rebuild every read model into scratch storage from event 0 and diff it with live."""
    from services.audit.replay import UnreadableEvent, replay

    runtime = Runtime(_existing_store())
    try:
        with _progress() as progress:
            task = progress.add_task("Replaying", total=max(runtime.projector.head(), 1))
            report = replay(
                settings=runtime.settings,
                snapshot_engine=runtime.audit.read_engine,
                mapper=runtime.audit.mapper,
                projections=runtime.projector.projections,
                until=until.date() if until else None,
                keep=keep,
                max_differences=max_differences,
                progress=lambda position, head: progress.update(
                    task, completed=position, total=max(head, 1)
                ),
                workers=workers,
            )
    except UnreadableEvent as exc:
        console.print(f"[red]FAILED: {exc.message}[/red]")
        raise typer.Exit(1) from None
    except CoopError as exc:
        raise typer.BadParameter(exc.message) from None
    finally:
        runtime.close_sync()
    counts = Table("table", "rows replayed")
    for name, count in report.row_counts.items():
        counts.add_row(name, str(count))
    _print_evidence(counts)
    if report.kept:
        console.print(f"Scratch kept: {report.scratch}")
    if until is not None:
        day = until.date()
        by_then = (
            f"{report.events_recorded_by_until:,} of {report.events_read:,} events were "
            f"recorded by the end of {day}"
        )
        if report.first_left_out_at is not None:
            first_out = report.first_left_out_at.astimezone(runtime.settings.zone)
            by_then += f" (the first left out was recorded on {first_out.date()})"
        # One line each, unwrapped: a log is searched for them.
        console.print(
            f"State as of {day} (recorded time) built; no diff. {by_then}.", soft_wrap=True
        )
        if report.events_recorded_by_until < report.events_read:
            # A store loaded or migrated after the fact has nothing recorded by a
            # date in the year it describes: an empty state there is no finding.
            console.print(
                "[yellow]--until is recorded time: for balances by effective date use "
                "trialBalance(asOf) or `coop audit export --as-of`.[/yellow]",
                soft_wrap=True,
            )
        return
    if report.ok:
        console.print(
            f"OK: {report.events_read} events replayed, {report.rows_compared} rows "
            "compared, no difference."
        )
        return
    from rich.markup import escape
    from rich.text import Text

    diff = Table("table", "key", "difference", "columns", "live", "replay")
    for d in report.differences:
        columns = d.columns or ()
        cells = (
            d.table,
            _difference_key(d),
            d.kind if d.rows == 1 else f"{d.kind}, {d.rows:,} rows from here on",
            ", ".join(columns),
            ", ".join(f"{c}={_cell(d.live[c])}" for c in columns) if d.live and columns else "",
            ", ".join(f"{c}={_cell(d.replay[c])}" for c in columns) if d.replay and columns else "",
        )
        # Text, not markup: a stored value such as "[red]" is evidence, shown as it is.
        diff.add_row(*(Text(cell) for cell in cells))
    _print_evidence(diff)
    for line in _difference_summary(report):
        console.print(f"[red]{escape(line)}[/red]", soft_wrap=True)
    raise typer.Exit(1)


def _cell(value: object) -> str:
    """A value as the evidence shows it: bytes (the chain's hashes) in hex, as `verify`
    and the export print them, not as Python's b'\\x9a...'."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_cell(v)}" for k, v in key.items())


def _difference_key(d: RowDifference) -> str:
    if d.withheld:
        return f"(withheld: {d.withheld})"
    if d.rows == 1 or not d.last_key:
        return _key_text(d.key)
    return f"{_key_text(d.key)} to {_key_text(d.last_key)}"


def _difference_summary(report: ReplayReport) -> list[str]:
    """How many rows differ, and what the list shows of them: a run of chain rows is
    listed once but counted row by row."""
    lines = [f"{report.difference_count:,} rows differ."]
    runs = [d for d in report.differences if d.rows > 1]
    for d in runs:
        lines.append(
            f"{d.table}: {', '.join(d.columns) or 'rows'} {d.kind} from {_key_text(d.key)} "
            f"on, {d.rows:,} rows, listed once (one changed event changes the chain hash "
            "of every event after it)."
        )
    listed_rows = sum(d.rows for d in report.differences)
    if listed_rows < report.difference_count:
        lines.append(
            f"Listed: {len(report.differences):,} differences covering {listed_rows:,} rows; "
            "raise --max-differences to list more."
        )
    return lines


# Widest line a table of evidence is printed in when stdout is not a terminal: no
# real row comes near it, and rich needs a bound to measure against.
EVIDENCE_MAX_WIDTH = 1_000_000


def _print_evidence(table: Table) -> None:
    """Print a table whole. Cells fold rather than end in an ellipsis; and where
    stdout is not a terminal (a file, a pipe, a CI log) the table takes the width it
    needs, not the 80 columns rich assumes there: replay output is evidence and was
    cut to `ledger_en… │ position=…`."""
    from rich.measure import Measurement

    for column in table.columns:
        if not column.no_wrap:  # one left whole on purpose (a key id to copy)
            column.overflow = "fold"
    if console.is_terminal:
        console.print(table)
        return
    unlimited = Console(file=console.file, width=EVIDENCE_MAX_WIDTH)
    needed = Measurement.get(unlimited, unlimited.options, table).maximum
    Console(file=console.file, width=max(needed, console.width)).print(table)


@audit_app.command("export")
def audit_export(
    directory: Annotated[
        Path, typer.Argument(file_okay=False, help="Where to write the files (a directory).")
    ],
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The day the journal and the trial balance run to (default: today).",
        ),
    ] = None,
) -> None:
    """Events (JSON Lines + chain hashes) to the chain's head, their chain verified;
    journal (Beancount, CSV) and trial balance (CSV) up to --as-of; manifest.json."""
    from services.audit.exports import ExportRefused, earlier_export, write_all
    from services.audit.store import chain_head

    settings = _existing_store()
    today = datetime.now(settings.zone).date()
    day = as_of.date() if as_of else today
    if day > today:
        # A trial balance "as of" a day that has not happened is no fact; nothing is
        # written (not even the directory).
        _refuse_export(
            f"--as-of {day} is after today ({today} in {settings.timezone}): "
            "an export runs to today at the latest"
        )
    # Checked before the store is opened: a directory that cannot be made (a file on
    # the way, no permission), or one holding other files than an earlier export
    # (they would be mixed with the new ones), is the caller's mistake, not a
    # failure half-way.
    try:
        earlier_export(directory)
        directory.mkdir(parents=True, exist_ok=True)
    except ExportRefused as exc:
        _refuse_export(exc.message)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create {directory}: {exc.strerror}", param_hint="DIRECTORY"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot write into {directory}", param_hint="DIRECTORY")
    runtime = Runtime(settings)
    try:
        # As `audit head` does: events saved while no projector ran (its process
        # down) are chained and projected first, or every file would stop short of
        # the log with nothing to say so. An event the projectors cannot take (its
        # bytes damaged) stops them: the export is then of what was chained, and
        # says so, for a broken store's files are evidence too.
        not_chained = None
        try:
            _catch_up(runtime, "Chaining")
        except Exception as exc:
            not_chained = f"the projectors stopped on an event: {type(exc).__name__}"
            typer.secho(
                f"Could not chain the log to its head ({runtime.projector.head()}): "
                f"{not_chained}. The files stop where the chain does.",
                err=True,
                fg="yellow",
            )
        with runtime.audit.read_engine.connect() as conn, _progress() as progress:
            head = chain_head(conn)
            last = head.position if head else 0
            task = progress.add_task("Exporting events", total=max(last, 1))
            result = write_all(
                conn,
                settings,
                directory,
                as_of=day,
                head=last,
                progress=lambda position, total: progress.update(
                    task, completed=position, total=max(total, 1)
                ),
                not_chained=not_chained,
            )
    except ExportRefused as exc:  # the directory changed since it was checked
        _refuse_export(exc.message)
    except OSError as exc:  # a full disk, say: write_all leaves nothing half-written
        typer.secho(
            f"Export failed, nothing written to {directory}: {exc.strerror or exc}",
            err=True,
            fg="red",
        )
        raise typer.Exit(1) from None
    finally:
        runtime.close_sync()
    for kind, path in result.files.items():
        console.print(f"{kind}: {path}", soft_wrap=True)
    chain = result.chain
    if chain.ok and not_chained is not None and result.short_of_log:
        # The chain verified, but not all of the log: the files are evidence of what
        # they hold, and must not pass for the whole store.
        console.print(
            f"[red]INCOMPLETE: the files stop at position {chain.head_position}, and the "
            f"log holds events to {result.log_head} that could not be chained "
            f"({result.files['manifest'].name} says so); run `coop audit verify`.[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if chain.ok:
        console.print(
            f"Chain verified: {chain.events_checked} events; head "
            f"{chain.head_position}:{chain.head_hash.hex()}",
            soft_wrap=True,
        )
        return
    # The files are what the store holds (an auditor may want them as evidence), but
    # an export of a broken store must not pass for a good one: a clear line, exit 1.
    console.print(
        f"[red]FAILED: the exported chain fails at position {chain.first_bad_position}: "
        f"{chain.reason} ({chain.events_checked} events matched before it). The files "
        f"were written and {result.files['manifest'].name} says so; run "
        "`coop audit verify`.[/red]",
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _refuse_export(message: str) -> NoReturn:
    typer.secho(f"Export refused, nothing written: {message}", err=True, fg="red")
    raise typer.Exit(2)


# How old a guest key of a booking that does not exist must be before it is taken for
# one a refused createBooking left (a booking being saved has its key a moment first).
UNUSED_KEY_AGE = timedelta(hours=1)


@hotel_app.command("erase-guests")
def hotel_erase_guests(
    ended_before: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Erase stays that ended before this day."),
    ] = None,
    older_than_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_RETENTION_DAYS,
            help="Erase stays that ended more than this many days ago (for a timer).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="List the bookings, erase nothing.")] = False,
) -> None:
    """Erase the guest identities of closed bookings whose stay ended before a day.

    The hotel's retention policy, run by hand or from a timer. The same rules as
    `eraseGuestData`: only after check-out, cancellation or no-show, and after the
    police report for guests who arrived. Accounts, tourist tax and ISTAT stay.
    """
    import asyncio

    from services.hotel.projections import queries

    if (ended_before is None) == (older_than_days is None):
        raise typer.BadParameter("give exactly one of --ended-before and --older-than-days")
    if ended_before is not None:
        before = ended_before.date()
    else:
        assert older_than_days is not None
        before = datetime.now(_settings().zone).date() - timedelta(days=older_than_days)

    async def read(query: Callable[[AsyncConnection], Awaitable[T]], runtime: Runtime) -> T:
        try:
            async with runtime.read_engine.connect() as conn:
                return await query(conn)
        finally:
            await runtime.read_engine.dispose()

    with _runtime() as runtime:
        runtime.projector.run_until_caught_up()
        # Keys an interrupted erasure left behind go first: their bookings are no
        # longer listed as erasable.
        leftover = asyncio.run(read(queries.erased_with_keys, runtime))
        # And keys of bookings never stored (refused after their guests were sealed):
        # an hour old at least, so that no booking still being saved loses its key.
        cutoff = datetime.now(UTC) - UNUSED_KEY_AGE

        async def without_booking(conn: AsyncConnection) -> list[uuid.UUID]:
            return await queries.keys_without_booking(conn, cutoff)

        unused = [
            booking_id
            for booking_id in asyncio.run(read(without_booking, runtime))
            if booking_id not in runtime.hotel.repository
        ]
        if not dry_run:
            for booking_id in leftover:
                runtime.hotel.guest_keys.delete(booking_id)
            for booking_id in unused:
                # Only if still unused since the cutoff: a retried createBooking may
                # have taken the key (an old refusal's) into use meanwhile.
                runtime.hotel.guest_keys.delete(booking_id, created_before=cutoff)
        listed, erased, refused = 0, 0, 0
        cursor: tuple[date, int] | None = None
        while True:

            async def page(conn: AsyncConnection, after: tuple[date, int] | None = cursor) -> Any:
                return await queries.erasable(conn, before, ERASE_BATCH, after)

            batch: list[queries.ErasableBooking] = asyncio.run(read(page, runtime))
            if not batch:
                break
            cursor = (batch[-1].ended_on, batch[-1].position)
            for booking in batch:
                listed += 1
                if dry_run:
                    console.print(f"{booking.booking_id}  {booking.status}  {booking.ended_on}")
                    continue
                try:
                    runtime.hotel.erase_guest_data(
                        key=f"retention:{booking.booking_id}",
                        actor="cli:erase-guests",
                        booking_id=booking.booking_id,
                    )
                    erased += 1
                except CoopError as exc:
                    refused += 1
                    console.print(f"[yellow]{booking.booking_id}: {exc.message}[/yellow]")
        if dry_run:
            console.print(f"{listed} booking(s) would be erased.")
            if leftover:
                console.print(f"{len(leftover)} erased booking(s) still have a key to delete.")
            if unused:
                console.print(f"{len(unused)} key(s) of bookings never stored to delete.")
        else:
            console.print(f"Erased the guest data of {erased} booking(s); {refused} refused.")
            if leftover:
                console.print(f"Deleted the leftover keys of {len(leftover)} erased booking(s).")
            if unused:
                console.print(f"Deleted {len(unused)} key(s) of bookings never stored.")


def _existing_store() -> Settings:
    """The settings of a store that already exists, for the audit commands: they read
    what is there, and the runtime's set-up would make a fresh store at a mistyped
    address (and then verify it, replay it, export it as if it were the real one).
    `coop db init` and `coop serve` create the store; an auditor's command never does."""
    from services.audit.store import store_exists

    settings = _settings()
    if not store_exists(settings):
        typer.secho(
            f"No store at {_describe_store()} (mistyped COOP_DATABASE_URL or "
            "COOP_DATABASE_SCHEMA? `coop db init` creates one)",
            err=True,
            fg="red",
        )
        raise typer.Exit(2)
    return settings


def _describe_store() -> str:
    settings = _settings()
    if settings.is_postgres:
        url = settings.url
        # The schema too: one database holds one schema per cooperative.
        return (
            f"PostgreSQL {url.host}:{url.port or 5432}/{url.database}, "
            f"schema {settings.database_schema or 'public'}"
        )
    return f"SQLite {settings.sqlite_path}"


def main() -> None:
    configure_logging(json_logs=False)  # the CLI talks to a person; the server logs JSON
    app()  # configuration faults become one line in _CoopGroup
