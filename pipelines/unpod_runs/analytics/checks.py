"""Data checks that run after every model build: SQL files in ``sql/checks/`` that return the offending rows.

Zero rows means the check passed. Each file opens with a comment line saying what must hold, and a
``-- severity: error`` or ``-- severity: warn`` line: a failed error check makes ``models`` and ``load`` exit
non-zero, a failed warning is reported and lets them succeed (an unknown status is news, not breakage).

A check about single runs reads ``checked_runs``: the rows of ``unpod.runs`` it must look at. That is every row,
unless the caller names the last load whose rows passed; then only the rows loaded since. After a failed error
check, ``load`` builds and checks everything again, so a row that broke a rule fails every night until it is fixed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from unpod_runs.analytics.models import SQL_DIR, split_header
from unpod_runs.analytics.portable import DATABASE_ERRORS, native_sql

logger = logging.getLogger(__name__)

CHECKS_DIR = SQL_DIR / "checks"
SEVERITIES = ("error", "warn")
SAMPLE_SIZE = 5
# The rows of unpod.runs that the checks of single runs look at (a temporary view).
CHECKED_RUNS = "checked_runs"
_OFFENDING = "check_offending_rows"


@dataclass(frozen=True)
class Check:
    """One check file: what it asserts, how bad a failure is, and the query returning offending rows."""

    name: str
    severity: str
    description: str
    query: str


@dataclass
class CheckResult:
    name: str
    severity: str
    passed: bool
    row_count: int
    sample_rows: list[dict]
    description: str


def load_checks(checks_dir: Path = CHECKS_DIR) -> list[Check]:
    """Read every check, by file name."""
    return [_parse_check(path) for path in sorted(checks_dir.glob("*.sql"))]


def run_checks(
    con: duckdb.DuckDBPyConnection, checks_dir: Path = CHECKS_DIR, since_load_id: str | None = None
) -> list[CheckResult]:
    """Run every check; a check whose query cannot run is reported as a failed error, not raised.

    With ``since_load_id``, the checks of single runs look only at the rows loaded after that load.
    """
    scope = "" if since_load_id is None else f" where _dlt_load_id > {_literal(since_load_id)}"
    try:
        con.execute(f"create or replace temp view {CHECKED_RUNS} as select * from unpod.runs{scope}")
    except DATABASE_ERRORS as error:
        logger.warning("cannot define %s: %s", CHECKED_RUNS, error)  # the checks that read it say so
    results = [_run_check(con, check) for check in load_checks(checks_dir)]
    failed = [result.name for result in results if not result.passed]
    logger.info("ran %d data checks, %d failed%s", len(results), len(failed), f": {', '.join(failed)}" if failed else "")
    return results


def blocking_failures(results: list[CheckResult]) -> list[CheckResult]:
    """The failed error checks: any of them means the command must exit non-zero."""
    return [result for result in results if not result.passed and result.severity == "error"]


def format_check_failures(results: list[CheckResult]) -> str:
    """Describe every failed check, errors first: its name, what it asserts, and up to five example rows."""
    failed = sorted(
        (result for result in results if not result.passed),
        key=lambda result: (SEVERITIES.index(result.severity), result.name),
    )
    blocks = []
    for result in failed:
        label = "ERROR" if result.severity == "error" else "WARNING"
        if result.row_count == 0:
            # A failed check without offending rows is one whose query could not run; its sample holds the error.
            lines = [f"{label} {result.name}: {result.sample_rows[0]['error']}", f"  {result.description}"]
        else:
            noun = "row" if result.row_count == 1 else "rows"
            lines = [f"{label} {result.name}: {result.row_count} offending {noun}", f"  {result.description}"]
            lines.append(f"  example rows ({len(result.sample_rows)} of {result.row_count}):")
            lines.extend(f"    {_format_row(row)}" for row in result.sample_rows)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _parse_check(path: Path) -> Check:
    header, query = split_header(path.read_text(encoding="utf-8"))
    severities = [line.split(":", 1)[1].strip() for line in header if line.startswith("severity:")]
    description = " ".join(line for line in header if line and not line.startswith("severity:"))
    if len(severities) != 1 or severities[0] not in SEVERITIES:
        raise ValueError(f"{path}: needs exactly one '-- severity: error' or '-- severity: warn' line")
    if not description:
        raise ValueError(f"{path}: needs a leading comment saying what the check asserts")
    return Check(name=path.stem, severity=severities[0], description=description, query=query)


def _run_check(con: duckdb.DuckDBPyConnection, check: Check) -> CheckResult:
    try:
        # Run the query once: the offending rows are few, and a check may scan a lot to find them.
        # (A temporary table outlives a check that failed half way: drop it first. Every engine's temporary
        # tables come first in its search path, so the bare name is the temporary one.)
        con.execute(f"drop table if exists {_OFFENDING}")
        con.execute(f"create temp table {_OFFENDING} as\n{native_sql(con, check.query)}")
        (row_count,) = con.execute(f"select count(*) from {_OFFENDING}").fetchone()
        cursor = con.execute(f"select * from {_OFFENDING} limit {SAMPLE_SIZE}")
        names = [column[0] for column in cursor.description]
        sample_rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        con.execute(f"drop table {_OFFENDING}")
    except DATABASE_ERRORS as error:
        return CheckResult(
            name=check.name,
            severity="error",
            passed=False,
            row_count=0,
            sample_rows=[{"error": f"the check could not run: {error}"}],
            description=check.description,
        )
    return CheckResult(
        name=check.name,
        severity=check.severity,
        passed=row_count == 0,
        row_count=row_count,
        sample_rows=sample_rows,
        description=check.description,
    )


def _format_row(row: dict) -> str:
    return ", ".join(f"{key}={_format_value(value)}" for key, value in row.items())


def _format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
