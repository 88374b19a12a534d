"""``--destination motherduck``: what can be proven without the network (MotherDuck cannot be reached from here).

The configuration resolves from dlt's own keys, a missing token is named before anything is written, and the
token is never printed, not even when the service cannot be reached. The extension itself comes from the locked
wheel: the failure offline is the service's address, not a download of the extension.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from unpod_runs.pipeline.engines import EngineConfigError, MotherDuckEngine

TOKEN = "mdtoken-do-not-print-4f1c9e"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unpod_runs.cli", *args, "--db", str(tmp_path / "unpod_runs.duckdb"),
         "--destination", "motherduck"],
        env={"PYTHONPATH": str(REPO / "pipelines"), "PATH": "/usr/bin:/bin", "HOME": str(Path.home()),
             "DLT_DATA_DIR": str(tmp_path / "dlt"), "SOURCES__UNPOD__API_TOKEN": "unused",
             "SOURCES__UNPOD__BASE_URL": "http://127.0.0.1:9/", "SOURCES__UNPOD__ORG_HANDLE": "acme", **env},
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )


@pytest.mark.parametrize("keys", [
    {"DESTINATION__MOTHERDUCK__CREDENTIALS__DATABASE": "analytics", "DESTINATION__MOTHERDUCK__CREDENTIALS__PASSWORD": TOKEN},
    {"DESTINATION__MOTHERDUCK__CREDENTIALS": f"md:analytics?motherduck_token={TOKEN}"},
], ids=["keys", "connection-string"])
def test_the_database_and_token_resolve_from_dlts_keys(keys: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key, value in keys.items():
        monkeypatch.setenv(key, value)
    engine = MotherDuckEngine(tmp_path / "unpod_runs.duckdb")

    credentials = engine.credentials()

    assert (credentials.database, credentials.password) == ("analytics", TOKEN)
    assert engine.location() == "md:analytics"
    assert TOKEN not in repr(credentials)


def test_without_a_token_it_names_the_key_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("motherduck_token", raising=False)
    with pytest.raises(EngineConfigError, match="DESTINATION__MOTHERDUCK__CREDENTIALS__PASSWORD"):
        MotherDuckEngine(tmp_path / "unpod_runs.duckdb").credentials()

    result = run(tmp_path, "load", DESTINATION__MOTHERDUCK__CREDENTIALS__DATABASE="analytics")

    assert result.returncode == 2, result.stderr
    assert "DESTINATION__MOTHERDUCK__CREDENTIALS__PASSWORD" in result.stderr
    assert "nothing was loaded" in result.stderr
    assert not (tmp_path / "dlt").exists() or not list((tmp_path / "dlt").rglob("*.parquet"))


@pytest.mark.parametrize("command", ["status", "load"])
def test_an_unreachable_service_is_named_and_the_token_is_never_printed(command: str, tmp_path: Path):
    result = run(tmp_path, command, DESTINATION__MOTHERDUCK__CREDENTIALS__DATABASE="analytics",
                 DESTINATION__MOTHERDUCK__CREDENTIALS__PASSWORD=TOKEN)

    assert result.returncode == 1, result.stderr
    assert "cannot reach md:analytics" in result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr
