"""Write every ``analytics`` relation as a Parquet file, for BI tools that read Parquet rather than DuckDB.

Each file is written under a hidden temporary name in the same folder and then renamed over the old one, so a
tool reading the folder sees either the previous export of a relation or the new one, never half a file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from unpod_runs.analytics.models import SCHEMA

logger = logging.getLogger(__name__)


def analytics_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the tables and views in schema ``analytics``, sorted."""
    rows = con.execute(
        """
        select table_name
        from information_schema.tables
        where table_catalog = current_database() and table_schema = ?
        order by table_name
        """,
        [SCHEMA],
    ).fetchall()
    return [name for (name,) in rows]


def export_analytics(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[Path]:
    """Write ``<relation>.parquet`` into ``out_dir`` for every analytics relation; returns the files written."""
    relations = analytics_relations(con)
    if not relations:
        raise LookupError(f"schema {SCHEMA} holds no relation: build the models first")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in relations:
        target = out_dir / f"{name}.parquet"
        temporary = out_dir / f".{name}.parquet.{os.getpid()}.tmp"
        try:
            # con.table() misses a view outside schema main on DuckDB 1.5, and stg_spaces is one.
            con.sql(f'select * from {SCHEMA}."{name}"').write_parquet(str(temporary))
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        written.append(target)
        logger.debug("exported %s.%s to %s", SCHEMA, name, target)
    logger.info("exported %d analytics relations to %s", len(written), out_dir)
    return written
