"""The nightly job: extract, load, model, check, publish — and the exit code that says how it went."""

from __future__ import annotations

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
from dlt.pipeline.exceptions import PipelineStepFailed

from . import history
from .client import AuthError, ConfigError, RequestStats, UnpodClient, UnpodError, check_base_url
from .config import UnpodSettings, load_settings
from .engines import Engine, for_destination
from .portable import has_table
from .source import ExtractReport, SpaceTarget, unpod
from .workspace import LoadLock

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SPACES_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3
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

    @property
    def outcome(self) -> str:
        """How the load ended, for ``load_history``; "ok" exactly when it exits 0 (``exit_code`` derives from it)."""
        if not (self.spaces_failed or self.runs_rejected or self.check_problems):
            return "ok"
        return "failed" if self.spaces_failed and not self.spaces_ok else "partial"

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.outcome == "ok" else EXIT_SPACES_FAILED

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
    base_url = check_base_url(settings.base_url, settings.allow_insecure_http or allow_insecure_http)
    stats = RequestStats()
    client = UnpodClient(
        base_url,
        settings.api_token,
        org_handle=settings.org_handle,
        timeout=settings.request_timeout,
        max_attempts=settings.request_max_attempts,
        backoff_factor=settings.request_backoff_factor,
        max_retry_delay=settings.request_max_retry_delay,
        stats=stats,
    )
    with LoadLock(db_path):
        pipeline = _open_pipeline(engine)
        _finish_interrupted_load(pipeline)
        targets = _discover(client, settings)
        with engine.writer() as con:
            stored_before = _runs_per_space(con)
        report = ExtractReport()
        source = unpod(
            client, targets, page_size=settings.page_size, workers=settings.workers, full_scan=full_scan,
            report=report, request_cost=settings.request_cost_runs,
        )
        load_id = _extract_and_load(pipeline, source, engine.loader_file_format)
        _remove_loaded_packages(pipeline)
        summary.spaces_ok = sorted(report.results)
        summary.spaces_failed = dict(report.failures)
        summary.spaces_read_in_full = sum(result.full_pass for result in report.results.values())
        summary.runs_rejected = report.rejected
        summary.rejected_detail = report.rejections.lines()
        summary.runs_updated = sum(result.changed_runs for result in report.results.values())
        summary.requests, summary.retries = stats.requests, stats.retries
        with engine.writer() as con:
            _prune_pipeline_state(con)
            history.ensure_tables(con)
            if full_scan:
                _mark_deleted(con, load_id, [token for token, result in report.results.items() if result.full_pass])
            stored_after = _runs_per_space(con)
            summary.runs_new = sum(max(0, stored_after.get(token, 0) - stored_before.get(token, 0)) for token in report.results)
            summary.runs_stored = sum(stored_after.values())
            _record_spaces(con, report, summary.started_at)
            summary.seconds = time.monotonic() - clock
            history.append_load(con, _load_record(load_id, summary))
            _enter_phase("models")

            def record_checks(problems: str) -> None:
                summary.check_problems = problems
                if problems:
                    history.set_outcome(con, load_id, summary.outcome)

            build_analytics(con, pending_report(report_path), full=full_scan, checked=record_checks, engine=engine)
            summary.report_path = report_path
        _enter_phase("publish")
        _publish_with_report(engine, report_path)
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
    from .checks import blocking_failures, format_check_failures, run_checks
    from .models import ModelBuildError, build_models, build_state, mark_checked

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
    _enter_phase("report")
    if report_path is not None:
        from .report import write_report

        try:
            if engine is None or isinstance(con, duckdb.DuckDBPyConnection):
                write_report(con, report_path)
            else:
                with engine.reader() as reader:
                    write_report(reader, report_path)
        except Exception as exc:  # the report is a view of the data: it must never cost the night's load
            log.error("event=report_failed path=%s error=%r", report_path, f"{type(exc).__name__}: {exc}")
    return problems


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


def _discover(client: UnpodClient, settings: UnpodSettings) -> list[SpaceTarget]:
    if settings.space_tokens:
        return [SpaceTarget(token) for token in dict.fromkeys(settings.space_tokens)]
    try:
        spaces = client.list_spaces()
    except (AuthError, ConfigError):
        raise
    except UnpodError as exc:
        raise LoadFailed(f"could not list the spaces of organization {settings.org_handle!r}: {exc}") from None
    targets = []
    for space in spaces:
        token = space.get("token") if isinstance(space, dict) else None
        if isinstance(token, str) and token:
            targets.append(SpaceTarget(token, space))
        else:
            log.warning("event=space_without_token item=%r", str(space)[:200])
    log.info("event=spaces_discovered org=%s spaces=%d", settings.org_handle, len(targets))
    return targets


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


def _record_spaces(con: duckdb.DuckDBPyConnection, report: ExtractReport, at: datetime) -> None:
    history.record_space_successes(
        con,
        at,
        [
            (token, result.cursor.count, result.cursor.open_runs, "full" if result.full_pass else "incremental",
             result.pages_read)
            for token, result in report.results.items()
        ],
    )
    for token, error in report.failures.items():
        history.record_space_failure(con, token, at, error)


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
