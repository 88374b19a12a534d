"""`make notebooks` installs JupyterLab from the pinned `notebooks` extra and starts it on the notebooks; `make test`
never needs it. Checked through make's own dry run (what it would execute) and the lock files, without a browser."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

from conftest import REPO

NOTEBOOKS_LOCK = REPO / "requirements-notebooks.lock"


def dry_run(target: str, tmp_path: Path, *settings: str) -> list[str]:
    """The commands ``make target`` would run for a fresh checkout (its venv under tmp_path), without running them."""
    # As a top-level make, also when the suite runs under `make test` (a sub-make would print its directory).
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}", *settings],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def pins(lock: Path) -> dict[str, str]:
    """name (normalized) -> version of every requirement line of a lock file."""
    found = {}
    for line in lock.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, version = line.partition("==")
            assert separator and version, f"{lock.name}: {line!r} is not pinned with =="
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_make_notebooks_installs_the_extra_and_starts_jupyterlab_on_the_notebooks(tmp_path):
    commands = dry_run("notebooks", tmp_path, f"DEMO_DB={tmp_path / 'demo.duckdb'}")
    install = [command for command in commands if "requirements-notebooks.lock" in command]
    assert len(install) == 1 and "-r requirements.lock -r requirements-notebooks.lock" in install[0]
    # Without UNPOD_RUNS_DB the notebooks open the demo's database: it is made first when missing.
    assert any(command.endswith("unpod-runs demo") for command in commands)
    assert commands[-1].split() == [f"{tmp_path / 'venv'}/bin/jupyter", "lab", "--notebook-dir=notebooks"]

    commands = dry_run("notebooks", tmp_path, "UNPOD_RUNS_DB=/data/unpod_runs.duckdb",
                       "JUPYTER_ARGS=--no-browser --port 8890")
    assert not any(command.endswith("unpod-runs demo") for command in commands)
    assert commands[-1].endswith("jupyter lab --notebook-dir=notebooks --no-browser --port 8890")


def test_make_test_does_not_install_jupyterlab(tmp_path):
    commands = "\n".join(dry_run("test", tmp_path))
    assert "pytest" in commands
    assert "requirements-notebooks.lock" not in commands and "jupyter" not in commands


def test_the_notebooks_extra_is_pinned_in_its_lock_beside_the_product_lock():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (requirement,) = extras["notebooks"]
    name, _, version = requirement.partition("==")
    notebooks, product = pins(NOTEBOOKS_LOCK), pins(REPO / "requirements.lock")
    assert notebooks[name] == version
    # Installed together: a package in both would be two pins of one name, so the notebooks lock holds none.
    assert set(notebooks) & set(product) == set()
    assert "jupyter-server" in notebooks and "ipykernel" in product
