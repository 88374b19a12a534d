"""The nightly job: extract, load, model, check, publish — and the exit code that says how it went."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import dlt
import duckdb
import pyarrow as pa
from dlt.pipeline.exceptions import PipelineStepFailed

from unpod_runs.pipeline import history
from unpod_runs.api.client import RequestStats
from unpod_runs.pipeline.config import load_settings
from unpod_runs.pipeline.engines import DuckDbFileEngine, Engine, for_destination
from unpod_runs.api.errors import AuthError, ConfigError, SpacesUnavailable
from unpod_runs.pipeline.outcomes import load_exit_code, load_outcome
from unpod_runs.analytics.portable import has_table
from unpod_runs.pipeline.rejections import Rejections
from unpod_runs.pipeline.source import OUTCOMES_TABLE, unpod
from unpod_runs.pipeline.workspace import WRITER_MEMORY_LIMIT, LoadLock, PublishFailed

log = logging.getLogger(__name__)

# dlt restores the newest state; the ones before it are kept only to look back a little.
STATE_ROWS_KEPT = 3
# Test-only: names a phase at whose start the process SIGKILLs itself, so a test of a load killed in that phase
# kills it exactly there instead of racing the load. Never set in production.
KILL_AT_PHASE_ENV = "UNPOD_RUNS_TEST_KILL_AT_PHASE"


def _enter_phase(name: str) -> None:
    log.info("event=phase name=%s", name)
    if os.environ.get(KILL_AT_PHASE_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class LoadFailed(Exception):
    """The load as a whole failed after configuration was accepted: nothing new was published."""


@dataclass
class LoadSummary:
    started_at: datetime
    full_scan: bool
    spaces_ok: list[str] = field(default_factory=list)
    spaces_failed: dict[str, str] = field(default_factory=dict)
    spaces_read_in_full: int = 0
    runs_new: int = 0
    runs_updated: int = 0
    runs_rejected: int = 0
    runs_stored: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    check_problems: str = ""
    report_path: Path | None = None
    rejected_detail: list[str] = field(default_factory=list)
    published: bool = True

    @property
    def exit_code(self) -> int:
        return load_exit_code(bool(self.spaces_failed), bool(self.runs_rejected), bool(self.check_problems),
                              self.published)

    @property
    def outcome(self) -> str:
        """How the load ended, for ``load_history``: by the same rule as its exit code."""
        return load_outcome(self.exit_code, len(self.spaces_ok))

    def render(self) -> str:
        lines = [
            f"unpod-runs load: {'full scan' if self.full_scan else 'nightly'}, {self.seconds:.1f} s",
            f"  spaces   {len(self.spaces_ok)} loaded ({self.spaces_read_in_full} read in full), "
            f"{len(self.spaces_failed)} failed",
            f"  runs     {self.runs_new} new, {self.runs_updated} updated, {self.runs_rejected} rejected, "
            f"{self.runs_stored} stored",
            f"  requests {self.requests} ({self.retries} retries)",
        ]
        for token, error in sorted(self.spaces_failed.items()):
            lines.append(f"  FAILED   {error if token in error else f'space {token}: {error}'}")
        if self.runs_rejected:
            lines.append("  WARNING  rejected run items are in unpod.runs_rejected")
        if self.report_path:
            lines.append(f"  report   {self.report_path}")
        return "\n".join(lines)


def run_load(
    db_path: Path,
    space_tokens: list[str] | None = None,
    full_scan: bool = False,
    report_path: Path | None = None,
    allow_insecure_http: bool = False,
    destination: str = "duckdb",
) -> LoadSummary:
    """Run one load. Raises ConfigError/AuthError/EngineConfigError (exit 2), LockBusy (exit 3) or LoadFailed (exit 1)."""
    engine = for_destination(destination, db_path)
    summary = LoadSummary(started_at=datetime.now(timezone.utc), full_scan=full_scan)
    clock = time.monotonic()
    settings = load_settings(space_tokens)
    stats = RequestStats()
    source = unpod(
        api_token=settings.api_token,
        base_url=settings.base_url,
        org_handle=settings.org_handle,
        space_tokens=settings.space_tokens,
        page_size=settings.page_size,
        workers=settings.workers,
        request_cost_runs=settings.request_cost_runs,
        full_scan=full_scan,
        allow_insecure_http=settings.allow_insecure_http or allow_insecure_http,
        request_timeout=settings.request_timeout,
        request_max_attempts=settings.request_max_attempts,
        request_backoff_factor=settings.request_backoff_factor,
        request_max_retry_delay=settings.request_max_retry_delay,
        request_stats=stats,
    )
    with LoadLock(db_path), engine.load_lock():
        pipeline = _open_pipeline(engine)
        _finish_interrupted_load(pipeline)
        with engine.writer() as con:
            stored_before = _runs_per_space(con)
        load_id = _extract_and_load(pipeline, source, engine.loader_file_format)
        _remove_loaded_packages(pipeline)
        summary.requests, summary.retries = stats.requests, stats.retries
        with engine.writer() as con:
            _prune_pipeline_state(con)
            history.ensure_tables(con)
            outcomes = _space_outcomes(con, load_id)
            loaded = [row for row in outcomes if row["outcome"] == "ok"]
            summary.spaces_ok = sorted(row["space_token"] for row in loaded)
            summary.spaces_failed = {row["space_token"]: row["error"] for row in outcomes if row["outcome"] != "ok"}
            summary.spaces_read_in_full = sum(row["mode"] == "full" for row in loaded)
            summary.runs_rejected = sum(row["runs_rejected"] for row in loaded)
            summary.runs_updated = sum(row["runs_changed"] for row in loaded)
            summary.rejected_detail = _rejections(con, load_id).lines()
            if full_scan:
                _mark_deleted(con, load_id, [row["space_token"] for row in loaded if row["mode"] == "full"])
            stored_after = _runs_per_space(con)
            summary.runs_new = sum(max(0, stored_after.get(token, 0) - stored_before.get(token, 0))
                                   for token in summary.spaces_ok)
            summary.runs_stored = sum(stored_after.values())
            _record_spaces(con, outcomes, summary.started_at)
            summary.seconds = time.monotonic() - clock
            history.append_load(con, _load_record(load_id, summary))
            release_memory(con, engine)
            _enter_phase("models")

            def record_checks(problems: str) -> None:
                summary.check_problems = problems
                if problems:
                    history.set_outcome(con, load_id, summary.outcome)

            build_analytics(con, pending_report(report_path), full=full_scan, checked=record_checks, engine=engine)
            summary.report_path = report_path
        _enter_phase("publish")
        try:
            _publish_with_report(engine, report_path)
        except PublishFailed:
            # The next load publishes this night with its history: the history must say it exited 1.
            summary.published = False
            with engine.writer() as con:
                history.set_outcome(con, load_id, summary.outcome)
            raise
    summary.seconds = time.monotonic() - clock
    return summary


def build_analytics(
    con: duckdb.DuckDBPyConnection,
    report_path: Path | None,
    full: bool = True,
    checked: Callable[[str], None] | None = None,
    engine: Engine | None = None,
) -> str:
    """Build the models, run the data checks and write the report; return what went wrong, if anything.

    Unless ``full`` (or the last checks failed), the models are refreshed for the runs loaded since the last
    build and the per-run checks look at those runs only: a quiet night costs what it changed.
    A model that fails to build leaves the previous models in place (they are built in one transaction), so
    the loaded runs are still published; the problem is reported and the exit code says so. ``checked`` hears
    the checks' verdict before the report is written, so the report shows the load's final outcome.
    ``engine`` is where ``con`` writes (the DuckDB file when not given): only there are the marts refreshed
    incrementally, and the report reads through the engine's DuckDB reader.
    """
    from unpod_runs.analytics.checks import blocking_failures, format_check_failures, run_checks
    from unpod_runs.analytics.models import ModelBuildError, build_models, build_state, mark_checked

    history.ensure_tables(con)
    if not has_table(con, "unpod", "runs"):
        log.info("event=models_skipped reason=%r", "no run loaded yet: the models are built once a space has runs")
        return ""
    before = build_state(con)
    # After checks that failed, whatever broke them, a full build and full checks say where things stand.
    refresh = (not full and before is not None and before.checked_through == before.built_through
               and (engine is None or engine.incremental_models))
    try:
        build_models(con, incremental=refresh)
    except (ModelBuildError, ValueError) as exc:
        return _checked(f"the models did not build: {exc}", checked)
    _enter_phase("checks")
    state = build_state(con)
    results = run_checks(con, since_load_id=state.checked_through if state and state.kind == "incremental" else None)
    if state and state.kind == "incremental" and blocking_failures(results):
        # A refresh trusts that the checked rows are sound; they are not: build and check everything tonight.
        log.warning("event=models_rebuilt reason=%r", "a data check failed after a refresh")
        try:
            build_models(con)
        except (ModelBuildError, ValueError) as exc:
            return _checked(f"the models did not build: {exc}", checked)
        results = run_checks(con)
    for result in results:
        if not result.passed and result.severity != "error":
            log.warning("event=check_warning check=%s rows=%d %s", result.name, result.row_count, result.description)
    failed = blocking_failures(results)
    if not failed:
        mark_checked(con)
    problems = _checked(format_check_failures(failed) if failed else "", checked)
    release_memory(con, engine)
    _enter_phase("report")
    if report_path is not None:
        from unpod_runs.analytics.report import write_report

        try:
            if engine is None or isinstance(con, duckdb.DuckDBPyConnection):
                write_report(con, report_path)
            else:
                with engine.reader() as reader:
                    write_report(reader, report_path)
        except Exception as exc:  # the report is a view of the data: it must never cost the night's load
            log.error("event=report_failed path=%s error=%r", report_path, f"{type(exc).__name__}: {exc}")
    return problems


def _glibc() -> ctypes.CDLL | None:
    """The C library, where it can return freed memory to the system (glibc's ``malloc_trim``)."""
    try:
        libc = ctypes.CDLL(None)  # the symbols this process already has, the C library's among them
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def release_memory(con: duckdb.DuckDBPyConnection, engine: Engine | None = None) -> None:
    """Give back what one step held before the next takes its own, so a night peaks at its largest step, not at their
    sum: DuckDB's cached blocks (a lower memory limit evicts them; they are read again if needed) and the heap that
    extraction left (the C allocator keeps freed memory unless asked to return it).
    Best effort: it never fails a night. A quiet night at 5 million runs peaked at 1.16 to 1.2 GiB without this, 1.07
    to 1.12 GiB with it (and DuckDB in 384 MB, not 512); pyarrow's allocator kept another 120 MiB of freed pages
    until told to return them (0.99 GiB then). ``engine`` is where ``con`` writes (the DuckDB file when not given): a
    shared engine keeps its own memory and snapshots."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    if engine is None or isinstance(engine, DuckDbFileEngine):
        try:
            con.execute("set memory_limit = '64MB'")
        except duckdb.OutOfMemoryException:
            pass  # more than that is pinned (changes not yet written stay in memory): what could go, went
        finally:
            con.execute(f"set memory_limit = '{WRITER_MEMORY_LIMIT}'")


def _checked(problems: str, checked: Callable[[str], None] | None) -> str:
    """Tell ``checked`` the verdict (before the report is written, so it shows the final outcome), and return it."""
    if checked is not None:
        checked(problems)
    return problems


def pending_report(report_path: Path | None) -> Path | None:
    """Where a load writes its report until the database it describes is published."""
    return report_path.with_name(f".{report_path.name}.pending") if report_path is not None else None


def _publish_with_report(engine: Engine, report_path: Path | None) -> None:
    """The report describes the published data: it replaces the last one only once the database did."""
    pending = pending_report(report_path)
    try:
        engine.publish()
    except BaseException:
        if pending is not None:
            pending.unlink(missing_ok=True)
        raise
    if pending is not None and pending.exists():
        os.replace(pending, report_path)
        log.info("event=report_published path=%s", report_path)


def _open_pipeline(engine: Engine) -> dlt.Pipeline:
    # Arrow tables get no _dlt_load_id unless asked: the full scan needs it to tell listed runs from unlisted,
    # and the models need it to know which runs a load wrote.
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    # Nothing may grow with the number of loads: a completed package is not needed once it is loaded, and the
    # staging copy of the merged rows is not needed once they are merged (it would be published with the file).
    dlt.config["load.delete_completed_jobs"] = True
    dlt.config["load.truncate_staging_dataset"] = True
    return engine.open_pipeline()


def _finish_interrupted_load(pipeline: dlt.Pipeline) -> None:
    """A killed load leaves a package behind; load it now so tonight's extraction still happens after it."""
    if not pipeline.has_pending_data:
        return
    log.warning("event=resume_interrupted_load pipeline=%s", pipeline.pipeline_name)
    try:
        pipeline.normalize()
        pipeline.load().raise_on_failed_jobs()
    except PipelineStepFailed as exc:
        raise LoadFailed(f"could not complete the interrupted load: {_root_message(exc)}") from None


def _extract_and_load(pipeline: dlt.Pipeline, source: object, loader_file_format: str) -> str:
    try:
        _enter_phase("extract")
        pipeline.extract(source, loader_file_format=loader_file_format)
        _enter_phase("normalize")
        pipeline.normalize()
        _enter_phase("load")
        info = pipeline.load()
        info.raise_on_failed_jobs()
    except PipelineStepFailed as exc:
        auth = _find_cause(exc, (AuthError, ConfigError))
        if auth is not None:
            # dlt commits an extracted package only when extraction completes, so nothing was kept.
            raise auth from None
        unlisted = _find_cause(exc, SpacesUnavailable)
        if unlisted is not None:
            raise LoadFailed(str(unlisted)) from None
        raise LoadFailed(f"{exc.step} failed: {_root_message(exc)}") from None
    return info.loads_ids[-1] if info.loads_ids else ""


def _remove_loaded_packages(pipeline: dlt.Pipeline) -> None:
    """A loaded package is in the database now; dlt would keep its folder, and its copy of the state, forever."""
    storage = pipeline._get_load_storage()
    for load_id in storage.list_loaded_packages():
        storage.delete_loaded_package(load_id)


def _prune_pipeline_state(con: duckdb.DuckDBPyConnection) -> None:
    """dlt stores its whole state with every load and reads only the newest: keep a few, not one per night."""
    if has_table(con, "unpod", "_dlt_pipeline_state"):
        con.execute(
            """
            delete from unpod._dlt_pipeline_state
            where _dlt_load_id not in (
                select _dlt_load_id from unpod._dlt_pipeline_state order by _dlt_load_id desc limit ?
            )
            """,
            [STATE_ROWS_KEPT],
        )


def _runs_per_space(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    if not has_table(con, "unpod", "runs"):
        return {}
    return dict(con.execute("select space_token, count(*) from unpod.runs group by space_token").fetchall())


def _mark_deleted(con: duckdb.DuckDBPyConnection, load_id: str, tokens: list[str]) -> None:
    """After a full scan, a run of a fully read space that this load did not write is no longer listed."""
    if not tokens:
        return
    con.execute(
        """
        update unpod.runs set deleted_at = now()
        where space_token in (select unnest(?)) and _dlt_load_id <> ? and deleted_at is null
        """,
        [tokens, load_id],
    )


def _space_outcomes(con: duckdb.DuckDBPyConnection, load_id: str) -> list[dict]:
    """How each space's read ended in this load, as the source committed it with the data."""
    if not has_table(con, "unpod", OUTCOMES_TABLE):
        return []  # no space was read yet: an organization without spaces
    cursor = con.execute(f"select * from unpod.{OUTCOMES_TABLE} where _dlt_load_id = ? order by space_token",
                         [load_id])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _rejections(con: duckdb.DuckDBPyConnection, load_id: str) -> Rejections:
    """The run items this load set aside, told by space, page and field."""
    rejections = Rejections()
    if not has_table(con, "unpod", "runs_rejected"):
        return rejections  # no item was ever rejected
    cursor = con.execute("select space_token, page, reason from unpod.runs_rejected where _dlt_load_id = ?",
                         [load_id])
    rejections.add([{"space_token": token, "page": page, "reason": reason} for token, page, reason in cursor.fetchall()])
    return rejections


def _record_spaces(con: duckdb.DuckDBPyConnection, outcomes: list[dict], at: datetime) -> None:
    history.record_space_successes(
        con,
        at,
        [
            (row["space_token"], row["runs_listed"], row["open_runs"], row["mode"], row["requests"])
            for row in outcomes if row["outcome"] == "ok"
        ],
    )
    for row in outcomes:
        if row["outcome"] != "ok":
            history.record_space_failure(con, row["space_token"], at, row["error"])


def _load_record(load_id: str, summary: LoadSummary) -> history.LoadRecord:
    return history.LoadRecord(
        load_id=load_id,
        started_at=summary.started_at,
        finished_at=datetime.now(timezone.utc),
        outcome=summary.outcome,
        full_scan=summary.full_scan,
        spaces_ok=len(summary.spaces_ok),
        spaces_failed=len(summary.spaces_failed),
        failed_spaces=",".join(sorted(summary.spaces_failed)),
        runs_new=summary.runs_new,
        runs_updated=summary.runs_updated,
        runs_rejected=summary.runs_rejected,
        requests=summary.requests,
        retries=summary.retries,
    )


def _find_cause(exc: BaseException, kind: type) -> BaseException | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _root_message(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return f"{type(root).__name__}: {root}"
