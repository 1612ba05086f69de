"""`coop`: the command line of the cooperative backend."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.observability import configure_logging
from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.errors import CoopError
from services.common.projections import projector_leadership
from services.common.settings import get_settings

app = typer.Typer(help="Event-sourced backend of a social cooperative.", no_args_is_help=True)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models: follow, rebuild, inspect.", no_args_is_help=True)
users_app = typer.Typer(help="People: add and disable users.", no_args_is_help=True)
keys_app = typer.Typer(help="Devices: issue, revoke and list API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(projections_app, name="projections")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")

console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _catch_up(runtime: Runtime, description: str, *, rebuild: bool = False) -> int:
    with _progress() as progress:
        task = progress.add_task(description, total=max(runtime.projector.head(), 1))

        def report(position: int, head: int) -> None:
            progress.update(task, completed=position, total=max(head, 1))

        if rebuild:
            return runtime.projector.rebuild(progress=report)
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
    """Load a realistic year of hotel, shop, grant, donation and contract money."""
    from gateway.demo import count_demo_steps, load_demo

    settings = get_settings()
    with _runtime() as runtime:
        with _progress() as progress:
            task = progress.add_task(f"Demo year {year}", total=count_demo_steps(year))
            changed = load_demo(runtime, year, lambda n: progress.advance(task, n))
        console.print(f"Demo year {year}: {changed} new facts recorded ({_describe_store()}).")
        _catch_up(runtime, "Projecting")
        if not settings.is_production:
            issued = runtime.credentials.issue_key("demo-admin", Role.ADMIN)
            console.print(
                "Demo admin API key (in GraphiQL, add the header "
                f'{{"X-Api-Key": "{issued.key}"}}); revoke with `coop keys revoke {issued.key_id}`.'
            )
    if serve_after:
        serve(host=None, port=None, workers=None)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default COOP_HOST)."),
    port: int | None = typer.Option(None, help="Port (default COOP_PORT)."),
    workers: int | None = typer.Option(None, help="Worker processes (default COOP_WORKERS)."),
) -> None:
    """Serve GraphQL over HTTP with uvicorn."""
    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if workers > 1 and settings.run_projector_in_process:
        console.print(
            "[yellow]Several workers each follow the log in-process; that is safe "
            "(exactly-once) but wasteful. Set COOP_RUN_PROJECTOR_IN_PROCESS=false and run "
            "`coop projections run` once instead.[/yellow]"
        )
    if not settings.is_production:
        console.print(f"GraphiQL: http://{host}:{port}/graphql  (store: {_describe_store()})")
    uvicorn.run(
        "gateway.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # our JSON logging (configured in gateway.asgi) for every worker
    )


@app.command("schema")
def print_schema() -> None:
    """Print the GraphQL schema (the checked-in gateway/schema.graphql is this output)."""
    from gateway.schema import printed_schema

    typer.echo(printed_schema(), nl=False)


@contextmanager
def _runtime() -> Iterator[Runtime]:
    """A runtime for one command, closed afterwards; expected errors become usage errors."""
    runtime = Runtime(get_settings())
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


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[
        list[str],
        typer.Option("--role", help="frontDesk, volunteer, fundOfficer, auditor, admin"),
    ],
    till: str | None = typer.Option(None, help="Scope a volunteer to one till."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
    ),
) -> None:
    """Add a person who signs in with a password (POST /auth/token)."""
    with _runtime() as runtime:
        runtime.credentials.add_user(username, password, _roles(role), till)
        console.print(f"User {username} added.")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: their tokens stop working at once."""
    with _runtime() as runtime:
        runtime.credentials.disable_user(username)
        console.print(f"User {username} disabled.")


@keys_app.command("issue")
def keys_issue(
    name: str,
    role: str = typer.Option(..., help="The device's role, e.g. volunteer or frontDesk."),
    till: str | None = typer.Option(None, help="The till a volunteer key is scoped to."),
) -> None:
    """Issue an API key; it is shown once and stored only as a hash."""
    with _runtime() as runtime:
        issued = runtime.credentials.issue_key(name, next(iter(_roles([role]))), till)
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
        table = Table("key id", "name", "role", "till", "created", "state")
        for key in runtime.credentials.list_keys():
            state = "revoked" if key["revoked_at"] else "active"
            table.add_row(
                str(key["key_id"]),
                str(key["name"]),
                str(key["role"]),
                str(key["till_id"] or ""),
                str(key["created_at"])[:19],
                state,
            )
        console.print(table)


@projections_app.command("run")
def projections_run() -> None:
    """Catch up, then follow the log until interrupted (one per deployment)."""
    settings = get_settings()
    runtime = Runtime(settings)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        runtime.projector.wake.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        console.print("Waiting for projector leadership (one per store) ...")
        with projector_leadership(runtime.sync_engine, stop) as leader:
            if not leader:
                return
            _catch_up(runtime, "Catching up")
            console.print("Following the event log; Ctrl-C stops.")
            runtime.projector.follow(stop, settings.projector_poll_interval_s)
    finally:
        runtime.close_sync()


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Empty every read model and replay it from event 0."""
    with _runtime() as runtime:
        count = _catch_up(runtime, "Rebuilding", rebuild=True)
        console.print(f"Rebuilt from {count} notifications.")


@projections_app.command("status")
def projections_status() -> None:
    """Each read model's position, the log's head and the lag."""
    with _runtime() as runtime:
        table = Table("projection", "position", "head", "lag")
        for status in runtime.projector.status():
            table.add_row(status.name, str(status.position), str(status.head), str(status.lag))
        console.print(table)


def _describe_store() -> str:
    settings = get_settings()
    if settings.is_postgres:
        url = settings.url
        return f"PostgreSQL {url.host}:{url.port or 5432}/{url.database}"
    return f"SQLite {settings.sqlite_path}"


def main() -> None:
    configure_logging(json_logs=False)  # the CLI talks to a person; the server logs JSON
    app()
