"""The obvious dlt implementation that unpod-runs is compared with (see benchmarks/README.md).

dlt's declarative ``rest_api_source``: the spaces as parent, the runs of each space as child, dlt's
``PageNumberPaginator(base_page=1, page_param="page", total_path="count")``, 50 runs a page, incremental on
``modified``, merge on ``run_id``, dlt's default file format for DuckDB. Written as a user following dlt's
documentation would write it, traps included, and kept that way on purpose:

* ``total_path`` means *pages* to dlt, while the API's ``count`` is *runs*: the paginator never stops on it and
  reads one empty page past the end of every space.
* One incremental cursor for the whole child resource; a ``rest_api`` child reads every page every night
  (the incremental only filters rows after they are fetched).

Configuration comes from the environment, like the product's:
``SOURCES__UNPOD__API_TOKEN``, ``SOURCES__UNPOD__BASE_URL``, ``SOURCES__UNPOD__ORG_HANDLE`` (and ``DLT_DATA_DIR``).

    python benchmarks/baseline.py --db /tmp/baseline.duckdb
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import dlt
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from dlt.sources.rest_api import rest_api_source

PIPELINE_NAME = "unpod_baseline"


def baseline_source(base_url: str, api_token: str, org_handle: str, page_size: int = 50):
    return rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {
                    "type": "api_key",
                    "name": "Authorization",
                    "api_key": f"Token {api_token}",
                    "location": "header",
                },
            },
            "resources": [
                {
                    "name": "spaces",
                    "primary_key": "token",
                    "write_disposition": "merge",
                    "endpoint": {
                        "path": "spaces/",
                        "headers": {"Org-Handle": org_handle},
                        "data_selector": "data",
                        "paginator": "single_page",
                    },
                },
                {
                    "name": "runs",
                    "primary_key": "run_id",
                    "write_disposition": "merge",
                    "endpoint": {
                        "path": "spaces/{resources.spaces.token}/runs/",
                        "data_selector": "data",
                        "params": {"page_size": page_size},
                        "paginator": PageNumberPaginator(base_page=1, page_param="page", total_path="count"),
                        "incremental": {"cursor_path": "modified", "initial_value": "1970-01-01T00:00:00"},
                    },
                },
            ],
        },
        name="unpod_baseline",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="the baseline's own DuckDB file")
    parser.add_argument("--page-size", type=int, default=50, help="runs per request (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        base_url = os.environ["SOURCES__UNPOD__BASE_URL"]
        api_token = os.environ["SOURCES__UNPOD__API_TOKEN"]
        org_handle = os.environ["SOURCES__UNPOD__ORG_HANDLE"]
    except KeyError as missing:
        print(f"baseline: set {missing.args[0]}", file=sys.stderr)
        return 2
    started = time.monotonic()
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(str(args.db)),
        dataset_name="unpod",
    )
    info = pipeline.run(baseline_source(base_url, api_token, org_handle, args.page_size))
    info.raise_on_failed_jobs()
    # Where the time went, from dlt's own trace (for the benchmark's table; nothing here changes the load).
    for step in pipeline.last_trace.steps:
        if step.step in ("extract", "normalize", "load") and step.started_at and step.finished_at:
            seconds = (step.finished_at - step.started_at).total_seconds()
            print(f"baseline step={step.step} seconds={seconds:.3f}")
    print(f"baseline load: {time.monotonic() - started:.1f} s, load ids {list(info.loads_ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
