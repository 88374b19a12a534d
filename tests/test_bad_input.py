"""Bad input gets a clear error naming what and where, and nothing good is lost."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import duckdb
import pytest

from conftest import LoadEnv, as_utc, assert_matches_truth, stored_runs
from unpod_runs.api.client import SpaceError, UnpodClient, space_path_segment
from unpod_runs.pipeline.load import run_load
from unpod_runs.pipeline.records import parse_timestamp


def test_bad_items_are_rejected_with_reason_and_the_rest_of_the_page_loads(load_env: LoadEnv):
    world = load_env.world
    token = max(world.space_tokens(), key=lambda space: len(world.runs(space)))
    world.add_raw_run(token, {"collection_ref": "collection_data_X", "status": "completed", "created": "2026-11-20T10:00:00"})
    bad_created = world.add_raw_run(token, {"run_id": "R" + "a" * 32, "status": "failed", "created": "yesterday",
                                            "modified": "2026-11-20T10:00:00"})
    bad_modified = world.add_raw_run(token, {"run_id": "R" + "b" * 32, "status": "failed",
                                             "created": "2026-11-20T10:00:00", "modified": "2026-13-45T99:00:00"})
    world.add_runs(token, n=3)

    summary = run_load(load_env.db)

    assert summary.exit_code == 1
    assert summary.runs_rejected == 3
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        rejected = con.execute(
            "select space_token, page, reason, raw_item from unpod.runs_rejected order by reason"
        ).fetchall()
    assert {row[0] for row in rejected} == {token}
    assert all(row[1] == 1 for row in rejected)
    reasons = [row[2] for row in rejected]
    assert any("created 'yesterday' does not parse" in reason for reason in reasons)
    assert any("modified '2026-13-45T99:00:00' does not parse" in reason for reason in reasons)
    assert "no run_id" in reasons
    stored = stored_runs(load_env.db)
    assert bad_created not in stored and bad_modified not in stored
    good = {run_id for run_id in world.truth() if run_id not in (bad_created, bad_modified)}
    assert good <= set(stored)

    again = run_load(load_env.db)

    # Still bad, still on page 1: the load says so again, but the items are not stored twice.
    assert again.exit_code == 1 and again.runs_rejected == 3
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        assert con.execute("select count(*), count(distinct item_key) from unpod.runs_rejected").fetchone() == (3, 3)


def test_timestamp_variants_are_stored_as_utc(load_env: LoadEnv):
    world = load_env.world
    token = world.space_tokens()[0]
    variants = {
        "R" + "1" * 32: ("2026-11-20T10:00:00Z", "2026-11-20T10:30:00.250000Z"),
        "R" + "2" * 32: ("2026-11-20T12:00:00+02:00", "2026-11-20T13:00:00-01:00"),
        "R" + "3" * 32: ("2026-11-20T23:59:59", "2026-11-21T00:00:01"),
    }
    for run_id, (created, modified) in variants.items():
        world.add_raw_run(token, {"run_id": run_id, "status": "completed", "created": created, "modified": modified})

    run_load(load_env.db)

    stored = stored_runs(load_env.db)
    for run_id, (created, modified) in variants.items():
        assert stored[run_id]["created"] == as_utc(created)
        assert stored[run_id]["modified"] == as_utc(modified)
    assert stored["R" + "2" * 32]["created"] == datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        types = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'unpod' and table_name = 'runs'"
        ).fetchall())
    assert types["created"] == types["modified"] == "TIMESTAMP WITH TIME ZONE"
    assert types["batch_count"] == "BIGINT"
    assert types["space_id"] == types["user"] == types["thread_id"] == "VARCHAR"


def test_six_field_runs_load_with_the_missing_fields_null(load_env: LoadEnv):
    world = load_env.world
    token = world.add_space(runs=12, shape="six")

    summary = run_load(load_env.db)

    assert summary.exit_code == 0
    assert_matches_truth(load_env.db, world)
    rows = [row for row in stored_runs(load_env.db).values() if row["space_token"] == token]
    assert len(rows) == 12
    assert all(row["space_id"] is None and row["batch_count"] is None and row["user"] is None for row in rows)


@pytest.mark.parametrize("token", ["", ".", "..", "...", "a\nb", "tab\there", "a/b", "../x", "X/runs", "a\\b"])
def test_tokens_that_cannot_be_a_path_segment_are_refused_by_name(token):
    with pytest.raises(SpaceError, match="refused"):
        space_path_segment(token)


@pytest.mark.parametrize(
    ("token", "segment"),
    [("ABC123", "ABC123"), ("..x", "..x"), ("q?x#y", "q%3Fx%23y"), ("50%", "50%25"), ("%2e%2e", "%252e%252e")],
)
def test_other_tokens_are_percent_encoded_as_one_segment(token, segment):
    assert space_path_segment(token) == segment


def test_retry_after_is_honoured_and_errors_never_hold_the_token(server, world, monkeypatch):
    from unpod_runs.api import client as client_module
    from unpod_runs.sandbox.server import FaultPlan

    slept: list[float] = []
    monkeypatch.setattr(client_module, "time", SimpleNamespace(sleep=slept.append))
    server.faults = FaultPlan(seed=1, rate=1.0, kinds=("429",), retry_after_s=0.05)
    client = UnpodClient(server.base_url, world.api_token, org_handle=world.org_handle, max_attempts=3)
    with pytest.raises(Exception) as caught:
        client.list_spaces()
    assert "gave up after 3 attempts" in str(caught.value) and "HTTP 429" in str(caught.value)
    # The waits are the server's Retry-After, not the client's own backoff (0.5 s, then 1 s).
    assert slept == [0.05, 0.05]
    assert client.stats.requests == 3 and client.stats.retries == 2
    assert world.api_token not in str(caught.value) and world.api_token not in repr(client)


def test_unparseable_timestamp_message_names_the_value():
    with pytest.raises(ValueError, match=r"'2026-02-30T00:00:00' is not a timestamp"):
        parse_timestamp("2026-02-30T00:00:00")
    with pytest.raises(ValueError, match=r"not a timestamp string: 1767225600"):
        parse_timestamp(1767225600)
    assert parse_timestamp(None) is None


def test_impossible_dates_are_rejected_not_rolled_over():
    from unpod_runs.pipeline.records import parse_page

    items = [
        {"run_id": "R" + "c" * 32, "created": "2026-02-30T00:00:00", "modified": "2026-03-01T00:00:00"},
        {"run_id": "R" + "d" * 32, "created": "2026-02-28T23:59:59", "modified": "2026-03-01T00:00:00"},
    ]
    parsed = parse_page("SPACE", 3, items, datetime.now(timezone.utc))
    assert parsed.table["run_id"].to_pylist() == ["R" + "d" * 32]
    assert parsed.positions.to_pylist() == [1]
    assert [(row["page"], row["position"], row["reason"]) for row in parsed.rejected] == [
        (3, 0, "created '2026-02-30T00:00:00' does not parse")
    ]
