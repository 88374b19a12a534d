"""What the open-run cursor costs a night, at 250,000 open runs in one space (the Guarantees' worst case).

A quiet night handles the cursor three times: it reads `unpod.run_cursor` from the database in bulk and splits it
by space, builds each space's reader from it (sorted ranks, an id index), and at the end works out tomorrow's
cursor and the rows that changed. This times those three steps on a synthetic table, every open run found again
unchanged (the usual quiet night), as CPU seconds of the process (DuckDB's threads included), best of five.

    .venv/bin/python benchmarks/cursor.py [--open-runs 250000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pipelines"))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from unpod_runs.pipeline.incremental import SpaceCursor, SpaceReader  # noqa: E402
from unpod_runs.pipeline.records import TIMESTAMP  # noqa: E402
from unpod_runs.pipeline.source import split_by_space  # noqa: E402

TARGET_S = 0.2
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def cursor_table(open_runs: int) -> pa.Table:
    """Open runs spread over a history four times as long, all running, as a load would have stored them."""
    return pa.table({
        "run_id": pa.array([f"R{index:032x}" for index in range(open_runs)]),
        "space_token": pa.array(["S1"] * open_runs),
        "rank": pa.array(np.arange(open_runs) * 4, pa.int64()),
        "status": pa.array(["running"] * open_runs),
        "modified": pa.array([NOW] * open_runs, TIMESTAMP),
        "slack": pa.array(np.zeros(open_runs, np.int64)),
        "first_seen_at": pa.array([NOW] * open_runs, TIMESTAMP),
    })


def one_night(con: duckdb.DuckDBPyConnection, open_runs: int) -> dict[str, float]:
    started = time.process_time()
    previous = split_by_space(con.execute("select * from run_cursor order by space_token, rank").to_arrow_table())["S1"]
    read = time.process_time()
    cursor = SpaceCursor(count=open_runs * 4, top_ids=[], newest_created=NOW.isoformat(), loaded_at=NOW.isoformat(),
                         open_runs=open_runs)
    reader = SpaceReader(None, "S1", cursor, previous, 1000, False, emit=lambda batch: None, now=lambda: NOW)
    built = time.process_time()
    # Every run found again where it was, unchanged: what the responses of a quiet night record.
    reader.found.rank[:] = reader.previous_ranks
    reader.found.status = reader.previous["status"].to_pylist()
    reader.found.modified = pc.cast(reader.previous["modified"], pa.int64()).to_pylist()
    reader.counts, reader.dates = [open_runs * 4], [NOW]
    recorded = time.process_time()
    result = reader._result()
    finished = time.process_time()
    assert result.open_runs.num_rows == open_runs and result.cursor_changes.num_rows == 0
    return {"read and split": read - started, "reader": built - read, "tomorrow's cursor": finished - recorded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open-runs", type=int, default=250_000, help="open runs in the space (default %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="unpod-bench-cursor-") as folder:
        con = duckdb.connect(str(Path(folder) / "cursor.duckdb"))
        con.register("stored", cursor_table(args.open_runs))
        con.execute("create table run_cursor as select * from stored")
        best: dict[str, float] = {}
        for _ in range(5):
            for step, seconds in one_night(con, args.open_runs).items():
                best[step] = min(best.get(step, seconds), seconds)
        con.close()
    total = sum(best.values())
    for step, seconds in best.items():
        print(f"{step:>18}: {seconds:.3f} CPU s")
    verdict = "PASS" if total <= TARGET_S else "MISS"
    print(f"{'total':>18}: {total:.3f} CPU s at {args.open_runs:,} open runs (target <= {TARGET_S} s): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
