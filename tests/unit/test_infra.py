"""The deployment files only call commands the CLI has."""

from __future__ import annotations

import re
import shlex
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
