"""The command's surface: every command has help and is documented in the README."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, assert_matches_truth

COMMANDS = ["load", "models", "status", "export", "sandbox", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_documented(command):
    result = subprocess.run(
        [sys.executable, "-m", "unpod_runs.cli", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: unpod-runs {command}" in result.stdout
    assert f"| `{command}` |" in (REPO / "README.md").read_text()


def test_load_help_states_the_exit_codes():
    result = subprocess.run(
        [sys.executable, "-m", "unpod_runs.cli", "load", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "exit codes: 0" in " ".join(result.stdout.split())
    assert "--db" in result.stdout and "--full-scan" in result.stdout and "--space" in result.stdout


def test_status_without_a_database_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "unpod_runs.cli", "status", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"unpod-runs: no database at {tmp_path / 'none.duckdb'}: run `unpod-runs load` first"]


def test_the_command_exits_normally_so_a_profiler_writes_its_file(tmp_path):
    profile = tmp_path / "help.prof"
    result = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "unpod_runs.cli", "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: unpod-runs" in result.stdout
    assert profile.stat().st_size > 0


def test_help_does_not_import_the_pipeline_or_the_sandbox():
    code = ("import runpy, sys; sys.argv = ['unpod-runs', '--help']\n"
            "try:\n    runpy.run_module('unpod_runs.cli', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    print(exit.code, sorted(name for name in sys.modules if name.split('.')[0] in ('dlt', 'duckdb') "
            "or name.startswith('unpod_runs.')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "0 []", result.stderr


def test_a_load_never_imports_pandas_and_is_exact(load_env):
    """pyarrow and DuckDB would import pandas (0.3 s of every command) only to ask whether data came from it."""
    result = load_env.cli("load", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "duckdb" in imported and "pyarrow" in imported  # the import record covers the whole command
    # (an import refused is listed too, under its bare name: pandas' own modules show that it really loaded)
    assert not {name for name in imported if name.startswith("pandas.")}
    assert_matches_truth(load_env.db, load_env.world)
