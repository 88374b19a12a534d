"""`export_analytics`: one Parquet file per analytics relation, equal to the relation, replaced atomically."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest_analytics import create_runs_db, run

from unpod_runs.analytics.export import analytics_relations, export_analytics
from unpod_runs.analytics.models import build_models

RUNS = [
    run("R1", "completed", "2025-03-01T23:59:00", "2025-03-02T00:01:00"),
    run("R2", "failed", "2025-03-02T10:00:00", "2025-03-02T10:00:07", collection_ref=None),
    run("R3", "pending", "2025-03-02T11:00:00"),
]


@pytest.fixture
def con(tmp_path):
    connection = create_runs_db(tmp_path / "db.duckdb", RUNS)
    build_models(connection)
    yield connection
    connection.close()


def test_every_analytics_relation_becomes_one_parquet_file(con, tmp_path):
    out = tmp_path / "export"
    written = export_analytics(con, out)
    relations = analytics_relations(con)
    assert {"run_durations", "collection_stats", "daily_run_stats", "stg_runs"} <= set(relations)
    assert sorted(path.name for path in written) == sorted(f"{name}.parquet" for name in relations)
    assert sorted(path.name for path in out.iterdir()) == sorted(path.name for path in written)
    for name in relations:
        exported = con.sql(f"select * from read_parquet('{out / (name + '.parquet')}')").fetchall()
        assert sorted(exported, key=repr) == sorted(con.sql(f"select * from analytics.{name}").fetchall(), key=repr)


def test_timestamps_and_days_survive_as_utc(con, tmp_path):
    export_analytics(con, tmp_path)
    table = pq.read_table(tmp_path / "run_durations.parquet")
    assert str(table.schema.field("created").type) == "timestamp[us, tz=UTC]"
    rows = {row["run_id"]: row for row in table.to_pylist()}
    assert rows["R1"]["day"].isoformat() == "2025-03-01"
    assert rows["R1"]["duration_seconds"] == 120.0
    assert rows["R3"]["finished_at"] is None


def test_a_new_export_replaces_the_old_files_and_leaves_no_temporary_file(con, tmp_path):
    export_analytics(con, tmp_path)
    con.execute("update unpod.runs set deleted_at = now() where run_id = 'R3'")
    build_models(con)
    export_analytics(con, tmp_path)
    assert pq.read_table(tmp_path / "run_durations.parquet").num_rows == 2
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".") or path.suffix == ".tmp"]


def test_exporting_before_any_model_is_built_is_a_clear_error(tmp_path):
    with duckdb.connect(str(tmp_path / "empty.duckdb")) as con:
        with pytest.raises(LookupError, match="build the models first"):
            export_analytics(con, tmp_path / "out")


def test_export_works_on_a_read_only_connection(con, tmp_path):
    """`unpod-runs export` opens the published file read-only, as any other reader does."""
    con.close()
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as reader:
        written = export_analytics(reader, tmp_path / "out")
    assert (tmp_path / "out" / "collection_stats.parquet") in written
