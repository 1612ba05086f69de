"""What an admin meets at the `coop` command line when a value is wrong: a clear
refusal (exit code, one line) and nothing stored; and managing users."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from typer.testing import CliRunner, Result

from gateway.auth import AuthenticationFailed, auth_api_keys, auth_users, principal_for_token
from gateway.cli import app as cli
from gateway.runtime import Runtime
from services.common.auth import Principal
from services.common.database import create_sync_engine
from services.common.settings import Settings, get_settings

PASSWORD = "a long enough password"
runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("COOP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COOP_DATABASE_SCHEMA", settings.database_schema)
    get_settings.cache_clear()
    Runtime(settings).close_sync()  # an existing store: a refusal must leave it as it was
    yield settings
    get_settings.cache_clear()


def said(result: Result) -> str:
    """The output as one line of words: typer draws errors in a box."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def invoke(*args: str) -> Result:
    # Wide enough that typer's error box does not break a long path in two.
    return runner.invoke(cli, list(args), env={"COLUMNS": "400"})


def invoke_with_settings_read_afresh(*args: str) -> Result:
    """`invoke`, the settings read from the environment a test has just changed."""
    get_settings.cache_clear()
    try:
        return invoke(*args)
    finally:
        get_settings.cache_clear()


def log_head(settings: Settings) -> int:
    """The event log's head (creating the store on first use, as any command does)."""
    runtime = Runtime(settings)
    try:
        return runtime.projector.head()
    finally:
        runtime.close_sync()


def column(settings: Settings, selected: Any) -> list[str]:
    engine = create_sync_engine(settings)
    try:
        with engine.connect() as conn:
            return [str(value) for value in conn.execute(select(selected)).scalars()]
    finally:
        engine.dispose()


def add_user(name: str, *roles: str) -> Result:
    role_args = [arg for role in roles or ("admin",) for arg in ("--role", role)]
    return invoke("users", "add", name, *role_args, "--password", PASSWORD)


# -- 1. a key has one role ------------------------------------------------------------


def test_a_key_given_two_roles_is_refused_and_not_issued(cli_env: Settings) -> None:
    result = invoke("keys", "issue", "fd", "--role", "admin", "--role", "auditor")
    assert result.exit_code == 2, result.output
    assert "a key has exactly one role: give --role once" in said(result)
    assert "coop_" not in result.output  # no key printed
    assert column(cli_env, auth_api_keys.c.name) == []

    issued = invoke("keys", "issue", "fd", "--role", "auditor")
    assert issued.exit_code == 0, issued.output
    assert column(cli_env, auth_api_keys.c.role) == ["auditor"]


def test_a_key_name_is_one_device_its_new_keys_share_its_role_and_till(
    cli_env: Settings,
) -> None:
    """A retry is matched by the key's name (a till's retry after its key was rotated
    is answered), so a name may not be shared by two tills: the other till could have
    been answered with this one's sales. A second key under the name with the same role
    and till is the rotation, and is issued."""
    first = invoke("keys", "issue", "shop-front", "--role", "volunteer", "--till", "till-1")
    assert first.exit_code == 0, first.output
    for other in (["--role", "volunteer", "--till", "till-2"], ["--role", "auditor"]):
        refused = invoke("keys", "issue", "shop-front", *other)
        assert refused.exit_code == 2, refused.output
        assert "'shop-front' are another device's" in said(refused)
        assert "coop_" not in refused.output
    assert column(cli_env, auth_api_keys.c.till_id) == ["till-1"]

    rotated = invoke("keys", "issue", "shop-front", "--role", "volunteer", "--till", "till-1")
    assert rotated.exit_code == 0, rotated.output
    assert column(cli_env, auth_api_keys.c.till_id) == ["till-1", "till-1"]


# -- 2. and 3. process counts and ports within the settings' bounds -------------------


@pytest.mark.parametrize(
    ("flag", "value", "bound"),
    [
        ("--workers", "-1", "greater than or equal to 1"),
        ("--workers", "0", "greater than or equal to 1"),
        ("--workers", "100", "less than or equal to 64"),
        ("--port", "0", "greater than or equal to 1"),
        ("--port", "70000", "less than or equal to 65535"),
    ],
)
def test_serve_refuses_workers_and_ports_the_settings_refuse(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, flag: str, value: str, bound: str
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **kw: started.append(kw))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    result = invoke("serve", flag, value)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}': Input should be {bound}" in said(result)
    assert started == []  # refused before uvicorn starts anything

    # The bounds themselves are accepted, and reach uvicorn as given.
    accepted = invoke("serve", "--port", "65535", "--workers", "64")
    assert accepted.exit_code == 0, accepted.output
    assert [(kw["port"], kw["workers"]) for kw in started] == [(65535, 64)]
    # The workers' shared metrics directory was temporary: gone, and no longer named
    # in this process's environment (a later app here answered /metrics empty).
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_serve_warns_when_its_processes_may_exhaust_postgresql_connections(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A burst once ran the server out of connections with the default pool: requests
    # failed as masked internal errors while the docs said two workers and a
    # projector fit. The test servers allow 100 or 200 connections.
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **kw: started.append(kw))
    monkeypatch.setenv("COOP_RUN_PROJECTOR_IN_PROCESS", "false")
    monkeypatch.setenv("COOP_DATABASE_POOL_SIZE", "10")
    crowded = invoke_with_settings_read_afresh("serve", "--workers", "2")
    assert crowded.exit_code == 0, crowded.output
    if cli_env.is_postgres:
        assert "3 processes at COOP_DATABASE_POOL_SIZE=10 may open up to 213" in said(crowded)
    else:
        assert "PostgreSQL connections" not in crowded.output  # SQLite has no such limit

    monkeypatch.setenv("COOP_DATABASE_POOL_SIZE", "3")
    fitting = invoke_with_settings_read_afresh("serve", "--workers", "2")
    assert fitting.exit_code == 0, fitting.output
    assert "PostgreSQL connections" not in fitting.output
    assert len(started) == 2  # a warning, not a refusal


@pytest.mark.parametrize("command", [["projections", "rebuild"], ["audit", "replay"]])
def test_rebuild_and_replay_refuse_a_thousand_workers(
    cli_env: Settings, command: list[str]
) -> None:
    head = log_head(cli_env)
    result = invoke(*command, "--workers", "1000")
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--workers': Input should be less than or equal to 64" in said(result)
    assert "Rebuilt" not in result.output
    assert "OK:" not in result.output
    assert log_head(cli_env) == head


# -- 4. a bad setting is one line naming the variable ----------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "fault"),
    [
        ("COOP_ENVIRONMENT", "prod", "Input should be 'development' or 'production'"),
        ("COOP_DATABASE_URL", "mysql://coop:s3cret-pw@db/coop", "must be a sqlite:///PATH"),
        ("COOP_DATABASE_URL", "postgresql://coop:s3cret-pw@db:port/coop", "must be a sqlite"),
        ("COOP_DATABASE_URL", "not a URL s3cret-pw", "must be a sqlite:///PATH"),
        ("COOP_DATABASE_URL", "sqlite://", "an in-memory SQLite database cannot be shared"),
        ("COOP_DATABASE_SCHEMA", "Bad", "String should match pattern"),
        ("COOP_TIMEZONE", "Mars/Olympus", "no such time zone"),
        ("COOP_WELFARE_PROGRAMS", "{not json", "not valid JSON"),
        ("COOP_WORKERS", "100", "Input should be less than or equal to 64"),
    ],
)
@pytest.mark.parametrize(
    "command", [["projections", "status"], ["users", "list"], ["audit", "verify"], ["db", "init"]]
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    fault: str,
    command: list[str],
) -> None:
    for name in list(os.environ):
        if name.startswith("COOP_") and not name.startswith(("COOP_TEST_", "COOP_REQUIRE_")):
            monkeypatch.delenv(name)  # only the variable under test is set
    monkeypatch.chdir(tmp_path)  # the default SQLite store would be ./var/coop.db
    monkeypatch.setenv(variable, value)
    result = invoke_with_settings_read_afresh(*command)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Configuration refused: {variable}: "), lines[0]
    assert fault in lines[0]
    assert "s3cret" not in result.output
    assert list(tmp_path.iterdir()) == []  # no store created


def _a_port_nothing_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command", [["projections", "status"], ["users", "list"], ["audit", "verify"], ["db", "init"]]
)
def test_an_unreachable_store_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    port = _a_port_nothing_listens_on()
    monkeypatch.setenv("COOP_DATABASE_URL", f"postgresql://coop:s3cret@127.0.0.1:{port}/coop")
    monkeypatch.setenv("COOP_DATABASE_SCHEMA", "")
    result = invoke_with_settings_read_afresh(*command)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"The store could not be used (PostgreSQL 127.0.0.1:{port}/coop, schema public): "
        f'connection failed: connection to server at "127.0.0.1", port {port} failed: '
        "Connection refused"
    ]
    assert "s3cret" not in result.output


def test_a_sqlite_file_whose_directory_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_the_way = tmp_path / "var"
    in_the_way.write_text("a file where the store's directory should be")
    monkeypatch.setenv("COOP_DATABASE_URL", f"sqlite:///{in_the_way}/coop.db")
    result = invoke_with_settings_read_afresh("projections", "status")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Configuration refused: COOP_DATABASE_URL: the SQLite file's directory {in_the_way} "
        "cannot be made (File exists)"
    ]


@pytest.mark.parametrize("what", ["a directory", "not a database"])
def test_a_sqlite_store_that_cannot_be_opened_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """Review ops #3: a path to a directory (the file name forgotten) or to another
    file printed some 250 lines of traceback."""
    if what == "a directory":
        path = tmp_path
    else:
        path = tmp_path / "notes.txt"
        path.write_text("not a database, but long enough to have a header" * 10)
    monkeypatch.setenv("COOP_DATABASE_URL", f"sqlite:///{path}")
    result = invoke_with_settings_read_afresh("users", "list")
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"The store could not be used (SQLite {path}"), line


def test_serve_with_workers_refuses_what_its_workers_would_refuse_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review ops #1: with several workers, a worker that could not start stopped
    uvicorn's supervisor, which returned as if all went well: exit 0, and systemd's
    Restart=on-failure took it for a clean stop."""
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but long enough to have a header" * 10)
    monkeypatch.setenv("COOP_DATABASE_URL", f"sqlite:///{path}")
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    result = invoke_with_settings_read_afresh(
        "serve", "--workers", "2", "--port", str(_a_port_nothing_listens_on())
    )
    assert result.exit_code == 1, result.output
    assert "The store could not be used" in result.output
    assert started == []


def test_serve_empties_only_the_metrics_files_of_a_shared_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review ops #2: PROMETHEUS_MULTIPROC_DIR was emptied of every *.db file; pointed
    at the store's directory, it deleted the books and the workers began a new store."""
    store = tmp_path / "coop.db"
    store.write_bytes(b"the books")
    stale = [tmp_path / "counter_41.db", tmp_path / "gauge_livesum_41.db"]
    for path in stale:
        path.write_bytes(b"an earlier run's metrics")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("COOP_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    result = invoke_with_settings_read_afresh(
        "serve", "--workers", "2", "--port", str(_a_port_nothing_listens_on())
    )
    assert result.exit_code == 0, result.output
    assert store.read_bytes() == b"the books"
    assert not any(path.exists() for path in stale)


# -- 5. and 6. refused at the edge, nothing stored -------------------------------------


@pytest.mark.parametrize("year", ["-5", "0", "1", "2012", str(date.today().year + 1), "9999"])
def test_demo_refuses_a_year_it_cannot_load_whole(cli_env: Settings, year: str) -> None:
    head = log_head(cli_env)
    result = invoke("demo", "--year", year)
    assert result.exit_code == 2, result.output
    refusal = r"Invalid value for --year: a demo year is a whole past year, 2013 to \d{4}"
    assert re.search(refusal, said(result)), result.output
    assert log_head(cli_env) == head


def test_demo_is_refused_in_production(cli_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    head = log_head(cli_env)
    monkeypatch.setenv("COOP_ENVIRONMENT", "production")
    result = invoke_with_settings_read_afresh("demo", "--year", "2025")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Configuration refused: COOP_ENVIRONMENT is production: `coop demo` records a "
        "fictional year of money, so it runs on development stores only"
    )
    assert log_head(cli_env) == head
    assert column(cli_env, auth_api_keys.c.name) == []  # no demo admin key either


def test_erase_guests_refuses_a_period_past_the_calendar(cli_env: Settings) -> None:
    result = invoke("hotel", "erase-guests", "--older-than-days", "99999999")
    assert result.exit_code == 2, result.output
    assert (
        "Invalid value for '--older-than-days': Input should be less than or equal to 36525"
        in said(result)
    )


def test_audit_export_refuses_a_file_or_a_path_through_one(
    cli_env: Settings, tmp_path: Path
) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = invoke("audit", "export", str(existing))
    assert result.exit_code == 2, result.output
    assert f"Invalid value for 'directory': dir '{existing}' is a file." in said(result)
    through = invoke("audit", "export", str(existing / "exports"))
    assert through.exit_code == 2, through.output
    assert f"cannot create {existing / 'exports'}: Not a directory" in said(through)
    assert existing.read_text() == "keep me"


# -- 7. users: list, disable twice, enable without old tokens -----------------------------


def test_users_list_shows_people_never_hashes(cli_env: Settings) -> None:
    assert add_user("maria", "admin", "auditor").exit_code == 0
    volunteer = ["vol", "--role", "volunteer", "--till", "till-1", "--password", PASSWORD]
    assert invoke("users", "add", *volunteer).exit_code == 0
    assert invoke("users", "disable", "vol").exit_code == 0
    result = invoke("users", "list")
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[1:-1] for line in result.output.splitlines() if "│" in line]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert [row[:4] for row in cells] == [
        ["maria", "admin, auditor", "", "active"],
        ["vol", "volunteer", "till-1", "disabled"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[4]) for row in cells)
    assert "scrypt" not in result.output


def test_disabling_twice_says_already_disabled(cli_env: Settings) -> None:
    assert add_user("maria").exit_code == 0
    first = invoke("users", "disable", "maria")
    assert first.exit_code == 0, first.output
    assert "User maria disabled" in first.output
    second = invoke("users", "disable", "maria")
    assert second.exit_code == 0, second.output
    assert second.output.strip() == "User maria was already disabled."
    unknown = invoke("users", "enable", "nobody")
    assert unknown.exit_code == 2
    assert "user 'nobody' does not exist" in said(unknown)


def test_enabling_a_user_again_leaves_old_tokens_dead(cli_env: Settings) -> None:
    assert add_user("maria").exit_code == 0
    runtime = Runtime(cli_env)
    try:
        old = runtime.credentials.issue_token("maria", PASSWORD).token
        assert invoke("users", "disable", "maria").exit_code == 0
        with pytest.raises(AuthenticationFailed):  # disabled: no new sign-in
            runtime.credentials.issue_token("maria", PASSWORD)
        enabled = invoke("users", "enable", "maria")
        assert enabled.exit_code == 0, enabled.output
        assert "User maria enabled" in enabled.output
        new = runtime.credentials.issue_token("maria", PASSWORD).token
        # Enabling an active user changes nothing: their live token keeps working.
        again = invoke("users", "enable", "maria")
        assert again.exit_code == 0, again.output
        assert again.output.strip() == "User maria was not disabled."

        async def check() -> tuple[bool, Principal]:
            try:
                try:
                    await principal_for_token(runtime.lone_reads, old)
                    old_works = True
                except AuthenticationFailed:
                    old_works = False
                return old_works, await principal_for_token(runtime.lone_reads, new)
            finally:
                await runtime.aclose()

        old_works, principal = asyncio.run(check())
    finally:
        runtime.close_sync()
    assert old_works is False
    assert principal.subject == "maria"


# -- 8. usernames ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [" maria", "maria ", "ma ria", "ma\tria", "maria\n"])
def test_a_username_with_whitespace_is_refused(cli_env: Settings, name: str) -> None:
    result = add_user(name)
    assert result.exit_code == 2, result.output
    assert "a username has no spaces or other whitespace in it" in said(result)
    assert column(cli_env, auth_users.c.username) == []


def test_a_username_differing_only_in_case_is_a_conflict(cli_env: Settings) -> None:
    assert add_user("maria").exit_code == 0
    for name in ("Maria", "MARIA", "maria"):
        result = add_user(name)
        assert result.exit_code == 2, (name, result.output)
        assert "user 'maria' already exists" in said(result)
    assert column(cli_env, auth_users.c.username) == ["maria"]
    runtime = Runtime(cli_env)
    try:
        assert runtime.credentials.issue_token("maria", PASSWORD).token
        with pytest.raises(AuthenticationFailed):
            runtime.credentials.issue_token("Maria", PASSWORD)
    finally:
        runtime.close_sync()


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["ma ria", "--role", "admin"], "a username has no spaces"),
        (["maria", "--role", "admni"], "roles are frontDesk"),
        (["vol", "--role", "volunteer"], "a volunteer is scoped to one till"),
        (["adm", "--till", "till-1", "--role", "admin"], "only a volunteer is scoped"),
        (["adm", "--role", "admin", "--till", "till-1"], "only a volunteer is scoped"),
    ],
)
def test_users_add_refuses_a_typo_before_asking_for_the_password(
    cli_env: Settings, args: list[str], refusal: str
) -> None:
    """The admin typed the password twice, then learnt the role was misspelt, and
    typed it twice again: the name, the roles and the till are checked first."""
    result = runner.invoke(cli, ["users", "add", *args], input="", env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert refusal in said(result)
    assert "Password" not in result.output
    assert column(cli_env, auth_users.c.username) == []


def test_users_add_prompts_for_the_password_once_the_rest_is_right(cli_env: Settings) -> None:
    """--till before --role is as good as after it."""
    typed = f"{PASSWORD}\n{PASSWORD}\n"
    args = ["users", "add", "vol", "--till", "till-1", "--role", "volunteer"]
    result = runner.invoke(cli, args, input=typed)
    assert result.exit_code == 0, result.output
    assert "Password" in result.output
    assert column(cli_env, auth_users.c.username) == ["vol"]
