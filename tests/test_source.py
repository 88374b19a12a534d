"""The dlt source on its own, as any dlt user runs it: its tables and hints, and two nights in a plain pipeline."""

from __future__ import annotations

import inspect
from pathlib import Path

import dlt
import duckdb
import pytest

from conftest import as_utc
from unpod_runs.pipeline.config import UnpodSettings
from unpod_runs.api.errors import ConfigError
from unpod_runs.pipeline.incremental import OPEN_RUNS_SCHEMA
from unpod_runs.pipeline.records import RUNS_SCHEMA
from unpod_runs.sandbox.server import SandboxServer
from unpod_runs.sandbox.world import World
from unpod_runs.pipeline.source import unpod

TABLES = {
    # table: (primary key, write disposition)
    "runs": ("run_id", "merge"),
    "runs_rejected": ("item_key", "merge"),
    "spaces": ("token", "merge"),
    "run_cursor": ("run_id", "merge"),
    "run_status_history": ("history_key", "merge"),
    "space_outcomes": ("space_token", "merge"),
}


def test_the_source_declares_its_tables_keys_and_dispositions_without_a_request():
    source = unpod(api_token="not-used", base_url="http://127.0.0.1:9/", org_handle="acme")

    assert source.name == "unpod"
    assert set(source.selected_resources) == set(TABLES)
    for name, (key, disposition) in TABLES.items():
        table = source.selected_resources[name].compute_table_schema()
        assert table["name"] == name
        assert [column for column, hints in table["columns"].items() if hints.get("primary_key")] == [key], name
        assert (table["write_disposition"], table.get("x-merge-strategy")) == (disposition, "delete-insert"), name
    runs = source.selected_resources["runs"].compute_table_schema()["columns"]
    assert list(runs) == RUNS_SCHEMA.names, "the run columns are the run schema's, in its order"
    assert runs["modified"]["dedup_sort"] == "desc", "a run served twice in one load keeps its latest version"
    cursor = source.selected_resources["run_cursor"].compute_table_schema()["columns"]
    assert list(cursor) == ["run_id", "space_token", *OPEN_RUNS_SCHEMA.names[1:], "closed"]
    assert cursor["closed"]["hard_delete"], "a run that is no longer open leaves the cursor"


def test_the_source_defaults_are_the_configured_defaults():
    """A dlt user's source and the nightly job behave alike when nothing is configured."""
    settings = UnpodSettings()
    parameters = inspect.signature(unpod).parameters
    for name in ("base_url", "page_size", "workers", "request_cost_runs", "allow_insecure_http", "request_timeout",
                 "request_max_attempts", "request_backoff_factor", "request_max_retry_delay"):
        assert parameters[name].default == getattr(settings, name), name


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "set SOURCES__UNPOD__ORG_HANDLE (discover spaces) or SOURCES__UNPOD__SPACE_TOKENS"),
        ({"org_handle": "acme", "base_url": "http://unpod.example/"}, "the token would travel in clear"),
        ({"org_handle": "acme", "workers": 0}, "workers must be at least 1, got 0"),
        ({"space_tokens": "['A', 'B'"}, "is not a list of space tokens"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_the_source_is_made(arguments, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        unpod(**{"api_token": "not-used", "base_url": "http://127.0.0.1:9/", **arguments})


def stored(db: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


def test_two_nights_in_a_pipeline_of_ones_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Configured only through dlt's providers, run by ``pipeline.run(unpod())``: the second night is incremental."""
    world = World(seed=5, spaces=3, runs=[0, 12, 140])
    db = tmp_path / "analytics_of_mine.duckdb"
    with SandboxServer(world) as server:
        for key in ("SOURCES__UNPOD__SPACE_TOKENS", "DLT_DATA_DIR"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("SOURCES__UNPOD__API_TOKEN", world.api_token)
        monkeypatch.setenv("SOURCES__UNPOD__BASE_URL", server.base_url)
        monkeypatch.setenv("SOURCES__UNPOD__ORG_HANDLE", world.org_handle)
        pipeline = dlt.pipeline(
            pipeline_name="my_unpod", destination=dlt.destinations.duckdb(str(db)), dataset_name="unpod_data",
            pipelines_dir=str(tmp_path / "pipelines"),
        )

        pipeline.run(unpod()).raise_on_failed_jobs()

        assert_holds_the_truth(db, world)
        first_counts = pipeline.last_trace.last_normalize_info.row_counts
        assert first_counts["runs"] == len(world.truth())
        assert stored(db, "select space_token, outcome, mode from unpod_data.space_outcomes order by 1") == [
            (token, "ok", "full") for token in sorted(world.space_tokens())]
        assert {row[0] for row in stored(db, "select token from unpod_data.spaces")} == set(world.space_tokens())
        night = world.advance(hours=24, seed=6)
        server.reset_counts()

        pipeline.run(unpod()).raise_on_failed_jobs()

        assert_holds_the_truth(db, world)
        second_counts = pipeline.last_trace.last_normalize_info.row_counts
        assert second_counts["runs"] == len(set(night["new"]) | set(night["changed"])), "only what changed is loaded"
        assert stored(db, "select space_token, outcome, mode from unpod_data.space_outcomes order by 1") == [
            (token, "ok", "incremental") for token in sorted(world.space_tokens())]
        biggest = max(world.space_tokens(), key=lambda token: len(world.runs(token)))
        served = sum(int(record.page_size) for record in server.requests
                     if record.kind == "runs" and record.space_token == biggest)
        assert served < len(world.runs(biggest)) / 2, "a night reads the top and the open runs, not the history"


def assert_holds_the_truth(db: Path, world: World) -> None:
    rows = stored(db, "select run_id, space_token, status, created, modified from unpod_data.runs")
    assert len(rows) == len({row[0] for row in rows}), "every run once"
    assert {row[0]: row[1:] for row in rows} == {
        run_id: (run["space_token"], run.get("status"), as_utc(run.get("created")), as_utc(run.get("modified")))
        for run_id, run in world.truth().items()
    }
