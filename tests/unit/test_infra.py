"""The deployment files only call commands the CLI has, and the compose file's
PostgreSQL starts with the production settings."""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from gateway.cli import app

ROOT = Path(__file__).resolve().parents[2]


def cli_paths() -> set[tuple[str, ...]]:
    root = get_command(app)
    paths: set[tuple[str, ...]] = set()

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        # Typer may ship its own click: recognise groups by shape, not by class.
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*prefix, name))
        else:
            paths.add(prefix)

    walk(root, ())
    return paths


def coop_invocations() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for path in [
        ROOT / "infra" / "compose.yaml",
        *sorted((ROOT / "infra" / "systemd").glob("*.service")),
    ]:
        text = path.read_text()
        for match in re.finditer(r'\["coop", ([^\]]*)\]', text):
            found.append((path.name, [a.strip().strip('"') for a in match.group(1).split(",")]))
        for match in re.finditer(r"^Exec\w*=\S*/coop (.*)$", text, re.MULTILINE):
            found.append((path.name, shlex.split(match.group(1))))
    return found


def test_deployment_files_call_coop() -> None:
    files = {name for name, _ in coop_invocations()}
    assert files == {
        "compose.yaml",
        "coop-gateway.service",
        "coop-projector.service",
        "coop-guest-retention.service",
    }


@pytest.mark.parametrize(("source", "argv"), coop_invocations())
def test_each_deployment_command_exists_in_the_cli(source: str, argv: list[str]) -> None:
    words = tuple(a for a in argv if not a.startswith("-"))
    known = cli_paths()
    assert any(words[: len(p)] == p for p in known), f"{source}: coop {' '.join(argv)}"
    from typer.testing import CliRunner

    # The options parse: --help after the command path exercises the parser.
    command_path = next(p for p in known if words[: len(p)] == p)
    result = CliRunner().invoke(app, [*command_path, "--help"])
    assert result.exit_code == 0
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert option in result.output, f"{source}: unknown option {option}"


# --- The compose file's PostgreSQL -------------------------------------------------
# Its command once passed `-c include_if_exists=...`: include is a directive of
# configuration files, not a parameter, so the server refused to start and nothing in
# the compose file ever ran. The tests below check the command's parameters against
# a real server's and run the real binary with the same arguments.

COMPOSE = ROOT / "infra" / "compose.yaml"
PRODUCTION_CONF = ROOT / "infra" / "postgresql" / "production.conf"


def compose_postgres() -> tuple[list[str], dict[str, Path]]:
    """The postgres service's command, and its bind mounts (path in the container ->
    path in the repository)."""
    text = COMPOSE.read_text()
    service = re.search(r"^  postgres:\n((?:    .*\n|\s*\n)*)", text, re.MULTILINE)
    assert service, "no postgres service in infra/compose.yaml"
    command = re.search(r"^    command: (\[.*\])", service.group(1), re.MULTILINE)
    assert command, "the postgres service has no command as a flow sequence"
    argv: list[str] = json.loads(command.group(1))
    mounts = {
        target: (COMPOSE.parent / source).resolve()
        for source, target in re.findall(
            r"^      - (\.{1,2}/[^:\s]+):([^:\s]+)(?::ro)?\s*$", service.group(1), re.MULTILINE
        )
    }
    return argv, mounts


def server_parameters(argv: list[str]) -> dict[str, str]:
    """The `-c name=value` and `--name=value` settings of a postgres command line."""
    settings: dict[str, str] = {}
    words = iter(argv[1:])
    for word in words:
        if word == "-c":
            name, _, value = next(words).partition("=")
        elif word.startswith(("-c", "--")):  # -cname=value, --name=value
            name, _, value = word[2:].partition("=")
        else:
            continue
        settings[name.replace("-", "_")] = value
    return settings


def production_settings() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in PRODUCTION_CONF.read_text().splitlines():
        match = re.match(r"\s*(\w+)\s*=?\s*('[^']*'|[^\s#]+)", line)
        if match and not line.lstrip().startswith("#"):
            found[match.group(1)] = match.group(2).strip("'")
    return found


def test_the_compose_postgres_command_reads_the_production_settings() -> None:
    argv, mounts = compose_postgres()
    assert argv[0] == "postgres"
    assert production_settings(), "no settings found in production.conf"
    assert any(PRODUCTION_CONF.is_relative_to(host) for host in mounts.values()), (
        "production.conf is not mounted into the postgres container"
    )


@pytest.mark.postgres
def test_every_compose_postgres_parameter_is_a_server_parameter() -> None:
    import psycopg

    from tests.conftest import postgres_url

    with psycopg.connect(postgres_url()) as conn:
        known = {row[0] for row in conn.execute("SELECT name FROM pg_settings")}
    argv, _mounts = compose_postgres()
    unknown = set(server_parameters(argv)) - known
    assert not unknown, f"infra/compose.yaml: not PostgreSQL parameters: {sorted(unknown)}"


def postgres_binary() -> str | None:
    """The `postgres` server binary of this machine, if it has one."""
    found = shutil.which("postgres")
    if found:
        return found
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        bindir = ""
    candidates = [f"{bindir}/postgres"] if bindir else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: int(re.sub(r"\D", "", Path(path).parents[1].name) or 0),
        reverse=True,
    )
    return next((c for c in candidates if Path(c).is_file()), None)


def test_the_compose_postgres_starts_with_the_production_settings(tmp_path: Path) -> None:
    """`postgres -C name` reads the configuration as the server would at start (files
    and command line, a bad parameter is fatal) and prints one setting: no cluster,
    no server, no root check. The image's entrypoint runs it so itself."""
    binary = postgres_binary()
    if binary is None:
        pytest.skip("no postgres server binary on this machine")
    argv, mounts = compose_postgres()

    def on_this_machine(word: str) -> str:
        for target, host in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if word.partition("=")[2].startswith(target):
                return word.replace(target, str(host), 1)
        return word

    args = [on_this_machine(word) for word in argv[1:]]
    data = tmp_path / "data"  # PGDATA: -C needs only the directory
    data.mkdir()
    empty = tmp_path / "empty.conf"
    empty.write_text("")

    def shown(name: str, *arguments: str) -> str:
        result = subprocess.run(
            [binary, "-C", name, "-D", str(data), *arguments],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"postgres {' '.join(arguments)}: {result.stderr}"
        return result.stdout.strip()

    assert shown("listen_addresses", *args) == "*"  # other containers connect
    for name, value in production_settings().items():
        expected = shown(name, "-c", f"config_file={empty}", "-c", f"{name}={value}")
        assert shown(name, *args) == expected, f"{name} is not production.conf's {value}"


# --- The environment file's example ----------------------------------------------
ENV_EXAMPLE = ROOT / "infra" / "systemd" / "coop.env.example"


def env_example() -> tuple[dict[str, str], set[str]]:
    """The example's settings as systemd reads them (single quotes taken literally,
    then removed), and the names of those left commented out."""
    values: dict[str, str] = {}
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#?)(COOP_[A-Z0-9_]+)=(.*)", line)
        if match is None:
            continue
        hashed, name, value = match.groups()
        if hashed:
            commented.add(name)
        else:
            values[name] = value[1:-1] if value[:1] == value[-1:] == "'" else value
    return values, commented


def test_the_env_example_names_only_real_settings() -> None:
    """A misspelt name (COOP_BOOKS_OPEN_ON) is ignored by the settings, silently: the
    cooperative would run on the default and never know."""
    from services.common.settings import Settings

    values, commented = env_example()
    known = {f"COOP_{name.upper()}" for name in Settings.model_fields}
    assert set(values) | commented <= known, (set(values) | commented) - known
    # What a cooperative must decide before going live is in it.
    assert {"COOP_BOOKS_OPENED_ON", "COOP_TIMEZONE", "COOP_WELFARE_PROGRAMS"} <= set(values)
    assert "COOP_DATABASE_SCHEMA" in commented


def test_the_env_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    from services.common.settings import Settings

    values, _ = env_example()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.books_opened_on == date(2026, 1, 1)
    assert settings.welfare_programs == {"INTERNSHIP": "STIPEND", "HOUSING": "HOUSING"}
    assert not settings.run_projector_in_process


def test_the_deployment_leaves_the_number_of_workers_to_the_settings() -> None:
    """Review ops #4: both files passed `--workers 2`, which overrides COOP_WORKERS, so
    the environment file's COOP_WORKERS=4 started two."""
    serves = [argv for _, argv in coop_invocations() if argv[:1] == ["serve"]]
    assert len(serves) == 2
    assert all("--workers" not in argv for argv in serves), serves
