"""The ``unpod-runs`` command: parse arguments, call the library, turn errors into one line and an exit code."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path

DEFAULT_DB = Path("data/unpod_runs.duckdb")
DEMO_DB = Path("build/demo/unpod_runs.duckdb")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
        return 0
    except KeyboardInterrupt:
        return _fail("interrupted; the next load completes what was pending", 130)
    except Exception as exc:  # never a bare traceback: one line, details with --verbose
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        return _fail(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for details)", 1)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The whole command line; the sandbox's own options (and its server's imports) only when it is the command."""
    parser = argparse.ArgumentParser(
        prog="unpod-runs",
        description="Load Unpod runs into DuckDB incrementally and model their durations and failure rates.",
    )
    _verbose_option(parser, default=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    load = _command(commands, "load", cmd_load, "the nightly job: extract, load, build the models, check, publish")
    if _command_name(argv) == "load":  # only its own --help shows the epilog
        from unpod_runs.pipeline.outcomes import exit_codes_help

        load.epilog = f"{exit_codes_help()} example: SOURCES__UNPOD__ORG_HANDLE=acme unpod-runs load --db data/unpod_runs.duckdb"
    load.add_argument("--space", action="append", metavar="TOKEN", help="load only this space (repeatable)")
    load.add_argument("--full-scan", action="store_true", help="re-read every page (weekly reconciliation)")
    load.add_argument("--report", type=Path, help="where to write the HTML report (default: beside --db)")
    load.add_argument("--allow-insecure-http", action="store_true", help="allow an http:// base URL that is not loopback")
    _destination_option(load)

    models = _command(commands, "models", cmd_models, "rebuild the models in sql/ and run the data checks")
    models.add_argument("--describe", action="store_true", help="print what each model and column means, build nothing")
    _destination_option(models)

    status = _command(commands, "status", cmd_status, "per space: last successful load, runs stored, open runs; freshness")
    _destination_option(status)

    export = _command(commands, "export", cmd_export, "write every analytics relation as Parquet into a folder")
    export.add_argument("--out", type=Path, default=Path("data/export"), help="target folder (default data/export)")
    _destination_option(export)

    sandbox = commands.add_parser("sandbox", help="serve the local Unpod simulator on 127.0.0.1")
    if _command_name(argv) == "sandbox":
        from .sandbox.cli import add_arguments, run as run_sandbox

        add_arguments(sandbox)
        _verbose_option(sandbox)
        sandbox.set_defaults(handler=run_sandbox)

    demo = commands.add_parser("demo", help="what `make demo` runs: two nights against the sandbox, then the report")
    _verbose_option(demo)
    demo.add_argument("--db", type=Path, default=DEMO_DB, help=f"the demo database, recreated (default {DEMO_DB})")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _command_name(argv: list[str]) -> str | None:
    """The command word: the first argument that is not an option (the main parser's options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _command(commands: argparse._SubParsersAction, name: str, handler, summary: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary)
    parser.add_argument("--db", type=Path, default=_default_db(),
                        help=f"the published database (default {DEFAULT_DB}, in DLT_PROJECT_DIR when set)")
    _verbose_option(parser)
    parser.set_defaults(handler=handler)
    return parser


def _default_db() -> Path:
    """A job started elsewhere with DLT_PROJECT_DIR finds its database where it finds its settings."""
    project = os.environ.get("DLT_PROJECT_DIR")
    return Path(project) / DEFAULT_DB if project else DEFAULT_DB


def _destination_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--destination", default="duckdb", choices=("duckdb", "ducklake", "postgres", "motherduck"),
        help="where the tables live (default duckdb, the --db file); the others are configured by dlt's "
             "DESTINATION__<NAME>__... keys, see the README's \"When one file is not enough\"",
    )


def _verbose_option(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """``--verbose`` before or after the command; a command's own default must not reset the main one."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log debug details")


def cmd_load(args: argparse.Namespace) -> int:
    """Run one load; its exit code follows ``outcomes.py``."""
    from unpod_runs.pipeline.engines import EngineConfigError, EngineUnreachable
    from unpod_runs.api.errors import AuthError, ConfigError
    from unpod_runs.pipeline.load import LoadFailed, run_load
    from unpod_runs.pipeline.outcomes import EXIT_CONFIG, EXIT_LOCKED, EXIT_SPACES_FAILED
    from unpod_runs.pipeline.workspace import LockBusy, PublishFailed, SeedFailed

    # The modules just imported (dlt, pyarrow, DuckDB) live until the process exits: frozen, they stay out of the
    # garbage collector's full passes during the night (measured at 400k runs: 0.15 s of collection a quiet night
    # against 0.31 to 0.36 s).
    gc.freeze()
    report = args.report or args.db.with_name("report.html")
    try:
        summary = run_load(args.db, args.space, args.full_scan, report, args.allow_insecure_http, args.destination)
    except EngineConfigError as exc:
        return _fail(f"{exc}; nothing was loaded", EXIT_CONFIG)
    except EngineUnreachable as exc:
        return _fail(f"{exc}; nothing was loaded, the next load retries", EXIT_SPACES_FAILED)
    except (ConfigError, AuthError) as exc:
        return _fail(f"{exc}; nothing was loaded", EXIT_CONFIG)
    except LockBusy as exc:
        return _fail(str(exc), EXIT_LOCKED)
    except LoadFailed as exc:
        return _fail(f"{exc}; nothing new was published, the next load retries", EXIT_SPACES_FAILED)
    except SeedFailed as exc:
        return _fail(f"{exc}; nothing was loaded, fix the cause and the next load retries", EXIT_SPACES_FAILED)
    except PublishFailed as exc:
        return _fail(str(exc), EXIT_SPACES_FAILED)
    print(summary.render())
    for token, error in sorted(summary.spaces_failed.items()):
        print(f"unpod-runs: space {token} failed: {error}", file=sys.stderr)
    if summary.runs_rejected:
        print(f"unpod-runs: {summary.runs_rejected} run items rejected (the rest of their pages loaded; the items "
              f"are in unpod.runs_rejected):", file=sys.stderr)
        for line in summary.rejected_detail:
            print(f"unpod-runs:   {line}", file=sys.stderr)
    if summary.check_problems:
        print(f"unpod-runs: data checks failed:\n{summary.check_problems}", file=sys.stderr)
    return summary.exit_code


def cmd_models(args: argparse.Namespace) -> int:
    """Rebuild the models on the working copy, then publish it, under the same lock as ``load``."""
    from unpod_runs.analytics.models import describe_models

    if args.describe:
        print(describe_models())
        return 0
    from unpod_runs.pipeline.engines import DuckDbFileEngine, EngineConfigError, EngineUnreachable, for_destination
    from unpod_runs.pipeline.load import build_analytics
    from unpod_runs.pipeline.outcomes import EXIT_CONFIG, EXIT_LOCKED, EXIT_SPACES_FAILED
    from unpod_runs.analytics.portable import DATABASE_ERRORS
    from unpod_runs.pipeline.workspace import LoadLock, LockBusy, PublishFailed, SeedFailed

    try:
        engine = for_destination(args.destination, args.db)
        with LoadLock(args.db, "models"), engine.load_lock("models"):
            exists = engine.workspace.prepare() != "new" if isinstance(engine, DuckDbFileEngine) else engine.has_data()
            if not exists:
                return _fail(f"no database at {engine.location()}: run `unpod-runs load` first", 1)
            with engine.writer() as con:
                problems = build_analytics(con, None, engine=engine)
            engine.publish()
    except EngineConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except DATABASE_ERRORS as exc:
        return _fail(str(engine.unreachable(exc)), 1)
    except EngineUnreachable as exc:
        return _fail(str(exc), 1)
    except LockBusy as exc:
        return _fail(str(exc), EXIT_LOCKED)
    except SeedFailed as exc:
        return _fail(f"{exc}; nothing was built", 1)
    except PublishFailed as exc:
        return _fail(str(exc), EXIT_SPACES_FAILED)
    if problems:
        return _fail(f"data checks failed:\n{problems}", EXIT_SPACES_FAILED)
    print(f"models built and checked in {args.db}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from unpod_runs.analytics.status import render_status

    engine = _loaded_engine(args)
    if isinstance(engine, int):
        return engine
    print(render_status(args.db, engine if args.destination != "duckdb" else None))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from unpod_runs.analytics.export import export_analytics

    engine = _loaded_engine(args)
    if isinstance(engine, int):
        return engine
    with engine.reader() as con:
        paths = export_analytics(con, args.out)
    for path in paths:
        print(path)
    return 0


def _loaded_engine(args: argparse.Namespace):
    """The engine the command reads, or the exit code when it cannot: not configured, or nothing loaded yet."""
    from unpod_runs.pipeline.engines import EngineConfigError, for_destination
    from unpod_runs.analytics.portable import DATABASE_ERRORS

    try:
        engine = for_destination(args.destination, args.db)
        if not engine.has_data():
            return _fail(f"no database at {engine.location()}: run `unpod-runs load` first", 1)
    except EngineConfigError as exc:
        return _fail(str(exc), 2)
    except DATABASE_ERRORS as exc:
        return _fail(str(engine.unreachable(exc)), 1)
    return engine


def cmd_demo(args: argparse.Namespace) -> int:
    from unpod_runs.demo import run_demo

    if not args.verbose:  # a person reads the demo: summaries, not the job's log lines
        logging.getLogger().setLevel(logging.WARNING)

    return run_demo(args.db)


def _fail(message: str, code: int) -> int:
    print(f"unpod-runs: {message}", file=sys.stderr)
    return code


def _configure_logging(verbose: bool) -> None:
    """key=value lines on stderr, easy to grep; dlt's own chatter only when it matters."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        stream=sys.stderr,
    )
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    for noisy in ("dlt", "urllib3", "sqlglot"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _WithoutPandas:
    """An import finder that refuses pandas, which no command uses: see ``run``."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not imported by the unpod-runs command (see cli.run)")
        return None


def run() -> None:
    """The console entry point: a normal exit, so buffered output, logging and atexit handlers all run.

    pyarrow and DuckDB import pandas (0.3 s) only to ask whether an array or a query parameter came from it; no
    command hands them one, so the command refuses pandas and both go on without it. (The library alone, in a
    notebook or someone's own pipeline, is untouched.) Freezing the heap before exiting spares the interpreter's
    last garbage collections over the modules dlt imports (about 0.4 s of CPU after a load); everything the command
    opened is closed by then.
    """
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _WithoutPandas())
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
