#!/usr/bin/env python3
"""Quick start with nothing but Python 3.11+.

    python3 dev.py demo    # install, load a demo year into SQLite, serve GraphiQL
    python3 dev.py test    # install, run the whole test suite (pytest arguments pass through;
                           # one process per CPU, at most four: -n 0 for one)

The first run creates .venv/ and installs the project into it; later runs reinstall
only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-pyproject-sha256"


def ensure_environment() -> None:
    # dev.py runs under whatever python3 the user has; the check is the point.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not (BIN / "python").exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("Installing the project and its dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def test_workers(passed: list[str]) -> list[str]:
    """Run the tests in one process per CPU, at most four (pytest-xdist; every test has
    its own store, so they run side by side): most of a test's time is waiting for its
    store. `-n 0` (or any -n) passed through chooses otherwise."""
    chosen = any(arg.startswith(("-n", "--numprocesses")) for arg in passed)
    disabled = any(arg.endswith("no:xdist") for arg in passed)  # -p no:xdist, -pno:xdist
    debugging = any(arg in ("--pdb", "--trace") for arg in passed)  # one process only
    if chosen or disabled or debugging:
        return []
    return ["-n", str(min(os.cpu_count() or 1, 4))]


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("demo", "test"):
        print(__doc__)
        return 2
    ensure_environment()
    os.chdir(ROOT)
    if command == "demo":
        args = [str(BIN / "coop"), "demo", "--serve", *sys.argv[2:]]
    else:
        args = [str(BIN / "python"), "-m", "pytest", *test_workers(sys.argv[2:]), *sys.argv[2:]]
    if os.name == "posix":
        # Become the server (or pytest): a stop signal sent to this process (a service
        # manager, `timeout`, `kill`) reaches it instead of leaving it orphaned.
        os.execv(args[0], args)
    return subprocess.call(args)


if __name__ == "__main__":
    raise SystemExit(main())
