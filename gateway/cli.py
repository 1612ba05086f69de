"""`coop`: the command line of the cooperative backend."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date
from types import FrameType

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.runtime import Runtime
from services.common.settings import get_settings

app = typer.Typer(help="Event-sourced backend of a social cooperative.", no_args_is_help=True)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models: follow, rebuild, inspect.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(projections_app, name="projections")

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
    runtime = Runtime(get_settings())
    try:
        _catch_up(runtime, "Projecting")
        console.print(f"Store ready: {_describe_store()}")
    finally:
        runtime.close_sync()


@app.command()
def demo(
    year: int = typer.Option(date.today().year - 1, help="The year to load."),
    serve_after: bool = typer.Option(False, "--serve", help="Serve the API afterwards."),
) -> None:
    """Load a realistic year of hotel, shop, grant, donation and contract money."""
    from gateway.demo import count_demo_entries, load_demo

    settings = get_settings()
    runtime = Runtime(settings)
    try:
        with _progress() as progress:
            task = progress.add_task(f"Posting demo year {year}", total=count_demo_entries(year))
            posted = load_demo(runtime.ledger, year, lambda n: progress.advance(task, n))
        console.print(f"Posted {posted} new journal entries ({_describe_store()}).")
        _catch_up(runtime, "Projecting")
    finally:
        runtime.close_sync()
    if serve_after:
        serve()


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
        log_level="info",
    )


@app.command("schema")
def print_schema() -> None:
    """Print the GraphQL schema (the checked-in gateway/schema.graphql is this output)."""
    from gateway.schema import printed_schema

    typer.echo(printed_schema(), nl=False)


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
        _catch_up(runtime, "Catching up")
        console.print("Following the event log; Ctrl-C stops.")
        runtime.projector.follow(stop, settings.projector_poll_interval_s)
    finally:
        runtime.close_sync()


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Empty every read model and replay it from event 0."""
    runtime = Runtime(get_settings())
    try:
        count = _catch_up(runtime, "Rebuilding", rebuild=True)
        console.print(f"Rebuilt from {count} notifications.")
    finally:
        runtime.close_sync()


@projections_app.command("status")
def projections_status() -> None:
    """Each read model's position, the log's head and the lag."""
    runtime = Runtime(get_settings())
    try:
        table = Table("projection", "position", "head", "lag")
        for status in runtime.projector.status():
            table.add_row(status.name, str(status.position), str(status.head), str(status.lag))
        console.print(table)
    finally:
        runtime.close_sync()


def _describe_store() -> str:
    settings = get_settings()
    if settings.is_postgres:
        url = settings.url
        return f"PostgreSQL {url.host}:{url.port or 5432}/{url.database}"
    return f"SQLite {settings.sqlite_path}"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()
