"""Where the product's tables live: one DuckDB file (the default), a DuckLake, PostgreSQL, or MotherDuck.

Every engine gets the same dlt source and state, and the same models and checks from ``sql/``. An engine gives
the load four things: its dlt destination, a connection for the work after dlt's load (bookkeeping, models,
checks), a DuckDB connection for readers (``status``, ``export``, the report, which speak DuckDB's SQL), and a
way to publish the night.

- ``duckdb``: a private working copy beside ``--db``, published by an atomic rename (see ``workspace.py``).
- ``motherduck``: the same code path against a hosted DuckDB (``md:<database>``); nothing to publish.
- ``ducklake``: a DuckLake, its catalog SQLite (``<db>.ducklake.sqlite`` beside ``--db`` unless configured) or
  PostgreSQL, its data a folder (``<db>.ducklake.files``) or a configured bucket. DuckLake commits each
  transaction as a snapshot, so a reader attached during a load sees the last committed one.
- ``postgres``: PostgreSQL. The models run there natively, translated from DuckDB's SQL (``portable.py``); a full
  build in one transaction, so a reader sees last night's models or tonight's. Readers of this product read it
  through DuckDB's ``postgres`` extension.

``--db`` stays the local anchor on every engine: the load lock, the report and the pipeline's name sit beside it.
On PostgreSQL (and a DuckLake with a PostgreSQL catalog) a load also holds an advisory lock in that database, so
loads from two hosts never run at once.
The DuckDB extensions come from the locked wheels (``duckdb-extension-*``): installed from the wheel's file into
DuckDB's extension folder, never downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import socket
from datetime import timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import dlt
import duckdb
import psycopg2
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from unpod_runs.analytics.portable import has_table
from unpod_runs.pipeline.workspace import FIRST_BUILD_CONFIG, WRITER_CONFIG, LockBusy, Workspace

log = logging.getLogger(__name__)

DESTINATIONS = ("duckdb", "ducklake", "postgres", "motherduck")
DATASET = "unpod"
# The name readers attach a shared engine under in DuckDB.
READER_CATALOG = "unpod_db"


class EngineConfigError(Exception):
    """The destination is not configured well enough to connect: names the key to set."""


class EngineUnreachable(Exception):
    """The destination is configured but does not answer: names where it is (never a secret)."""


class Engine:
    """One destination: what the load writes to, and how the commands after it connect."""

    name = "duckdb"
    # Arrow tables go to DuckDB engines as Parquet files (the fastest there); see PostgresEngine.
    loader_file_format = "parquet"
    # Only the DuckDB file refreshes the incremental marts; elsewhere every build is a full one, in one transaction.
    incremental_models = False

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path.resolve()

    @property
    def pipeline_name(self) -> str:
        """One dlt pipeline, and its state, per destination and ``--db``."""
        digest = hashlib.sha1(f"{self.name}:{self.db_path}".encode()).hexdigest()[:10]
        return f"unpod_runs_{self.name}_{digest}"

    def open_pipeline(self) -> dlt.Pipeline:
        from dlt.pipeline.exceptions import PipelineStepFailed

        pipeline = dlt.pipeline(pipeline_name=self.pipeline_name, destination=self.destination(), dataset_name=DATASET)
        if not pipeline.has_pending_data:
            # The destination holds the state that matches its runs: a lost or stale working folder is rebuilt from it.
            try:
                pipeline.sync_destination()
            except PipelineStepFailed as exc:
                raise self.unreachable(exc) from None
        return pipeline

    def unreachable(self, exc: BaseException) -> EngineUnreachable:
        root = exc
        while (root.__cause__ or root.__context__) is not None:
            root = root.__cause__ or root.__context__
        return EngineUnreachable(f"cannot reach {self.location()}: {type(root).__name__}: {str(root).splitlines()[0]}")

    def destination(self) -> Any:
        raise NotImplementedError

    def writer(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    def reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        raise NotImplementedError

    def load_lock(self, command: str = "load") -> contextlib.AbstractContextManager:
        """What excludes writers on other hosts, beside the ``flock`` that excludes this host's (``LoadLock``).
        ``command`` (``load`` or ``models``) names the holder to a command that finds the lock taken."""
        return contextlib.nullcontext()

    def publish(self) -> None:
        """Shared engines committed the night as they went: nothing left to publish."""

    def has_data(self) -> bool:
        with self.reader() as con:
            return has_table(con, DATASET, "load_history")

    def location(self) -> str:
        """Where the data is, without any secret."""
        raise NotImplementedError


class DuckDbFileEngine(Engine):
    """The default: one DuckDB file that readers open, written through a private working copy."""

    name = "duckdb"
    incremental_models = True
    writer_config = WRITER_CONFIG

    @property
    def workspace(self) -> Workspace:
        return Workspace.for_db(self.db_path)

    @property
    def pipeline_name(self) -> str:
        return self.workspace.pipeline_name

    def open_pipeline(self) -> dlt.Pipeline:
        workspace = self.workspace
        working_copy = workspace.prepare()
        if working_copy == "new":
            self.writer_config = FIRST_BUILD_CONFIG
        pipeline = dlt.pipeline(pipeline_name=workspace.pipeline_name, destination=self.destination(),
                                dataset_name=DATASET)
        if working_copy == "seeded" and _stores_local_state(pipeline):
            working_copy = "existing"  # the file this pipeline published last: its local state is the file's
        if working_copy != "existing":
            # dlt's local state may be ahead of a database rebuilt from an older published file (or from nothing):
            # drop it, and take the state stored in the database itself, which matches its runs. (`extract` alone
            # does not restore it: without this, the night after a lost working copy would read every page.)
            if working_copy == "seeded":
                log.info("event=dlt_state_restored from=%s note=%r", workspace.published,
                         "not the database this pipeline published last")
            pipeline = pipeline.drop()
        if working_copy == "new":
            workspace.create_work_db()
        elif working_copy == "seeded":
            pipeline.sync_destination()
        return pipeline

    def destination(self) -> Any:
        credentials = DuckDbCredentials(str(self.workspace.work_db), global_config=self.writer_config)
        return dlt.destinations.duckdb(credentials)

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with duckdb.connect(str(self.workspace.work_db), config=self.writer_config) as con:
            yield con

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            yield con

    def publish(self) -> None:
        self.workspace.publish()

    def has_data(self) -> bool:
        return self.db_path.exists()

    def location(self) -> str:
        return str(self.db_path)


def _stores_local_state(pipeline: dlt.Pipeline) -> bool:
    """Whether the state dlt would restore from the working copy is its local one: then the copy is the database
    this pipeline last published, and its local folder is current."""
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.pipeline.state_sync import load_pipeline_state_from_destination

    local = pipeline.state.get("_version_hash")
    if not local:
        return False
    try:
        with pipeline.destination_client() as client:
            stored = load_pipeline_state_from_destination(pipeline.pipeline_name, client)
    except DestinationUndefinedEntity:
        return False  # no state stored yet
    return stored is not None and stored.get("_version_hash") == local


class MotherDuckEngine(Engine):
    """A hosted DuckDB: dlt's ``motherduck`` destination, and the DuckDB code path with ``md:<database>``.

    ``DESTINATION__MOTHERDUCK__CREDENTIALS__DATABASE`` and ``..._PASSWORD`` (the token, a secret) configure it.
    """

    name = "motherduck"

    def credentials(self) -> Any:
        from dlt.common.configuration import resolve_configuration
        from dlt.common.configuration.exceptions import ConfigFieldMissingException
        from dlt.destinations.impl.motherduck.configuration import MotherDuckCredentials

        try:
            return resolve_configuration(MotherDuckCredentials(), sections=("destination", "motherduck", "credentials"))
        except ConfigFieldMissingException:
            raise EngineConfigError(
                "--destination motherduck needs the MotherDuck token: set DESTINATION__MOTHERDUCK__CREDENTIALS__PASSWORD "
                "(a secret, in the environment or .dlt/secrets.toml) and DESTINATION__MOTHERDUCK__CREDENTIALS__DATABASE"
            ) from None

    def destination(self) -> Any:
        install_extensions("motherduck")
        return dlt.destinations.motherduck(self.credentials())

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        credentials = self.credentials()
        install_extensions("motherduck")
        # The token goes in the configuration, not the path: DuckDB's errors name the path.
        with duckdb.connect(f"md:{credentials.database}", config={"motherduck_token": credentials.password}) as con:
            yield con

    def reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.writer()

    def location(self) -> str:
        return f"md:{self.credentials().database}"


class DuckLakeEngine(Engine):
    """A DuckLake: a catalog database and a folder (or bucket) of Parquet files, written and read through DuckDB."""

    name = "ducklake"
    LAKE = "unpod_lake"

    def _configured(self, key: str) -> str | None:
        return dlt.secrets.get(f"destination.ducklake.credentials.{key}")

    @property
    def catalog(self) -> str:
        return self._configured("catalog") or f"sqlite:///{self.db_path.with_name(self.db_path.stem + '.ducklake.sqlite')}"

    @property
    def data_path(self) -> str:
        return self._configured("storage.bucket_url") or str(self.db_path.with_name(self.db_path.stem + ".ducklake.files"))

    def destination(self) -> Any:
        from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

        install_extensions("ducklake", "sqlite", "postgres")
        self.attach_statement(read_only=True)  # a catalog readers cannot share is refused before anything is written
        return dlt.destinations.ducklake(DuckLakeCredentials(self.LAKE, catalog=self.catalog, storage=self.data_path))

    def attach_statement(self, read_only: bool) -> str:
        from dlt.common.configuration.specs.connection_string_credentials import ConnectionStringCredentials

        catalog = ConnectionStringCredentials(self.catalog)
        if catalog.drivername == "sqlite":
            target = catalog.database  # with META_TYPE 'sqlite' below, as dlt attaches it
        elif catalog.drivername in ("postgres", "postgresql"):
            target = f"postgres:{_libpq_dsn(catalog)}"
        else:
            # A DuckDB catalog file has one writer and no other reader: readers could not attach during a load.
            raise EngineConfigError(
                f"DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG must be sqlite:///PATH or postgres://..., "
                f"not {catalog.drivername}: readers attach the lake while a load writes it"
            )
        options = [f"DATA_PATH {_literal(self.data_path)}"]
        if catalog.drivername == "sqlite":
            options += ["META_TYPE 'sqlite'", "META_JOURNAL_MODE 'WAL'", "META_BUSY_TIMEOUT 1000"]
        elif catalog.drivername in ("postgres", "postgresql"):
            options.append(f"METADATA_SCHEMA {_literal(self.LAKE)}")
        if read_only:
            options.append("READ_ONLY")
        return f"ATTACH {_literal('ducklake:' + target)} AS {self.LAKE} ({', '.join(options)})"

    @contextlib.contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        install_extensions("ducklake", "sqlite", "postgres")
        with duckdb.connect(config=WRITER_CONFIG) as con:
            con.execute(self.attach_statement(read_only))
            con.execute(f"use {self.LAKE}")
            yield con

    def writer(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._connect(read_only=False)

    def reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._connect(read_only=True)

    def load_lock(self, command: str = "load") -> contextlib.AbstractContextManager:
        from dlt.common.configuration.specs.connection_string_credentials import ConnectionStringCredentials

        catalog = ConnectionStringCredentials(self.catalog)
        if catalog.drivername not in ("postgres", "postgresql"):
            return contextlib.nullcontext()
        return AdvisoryLoadLock(_libpq_dsn(catalog), f"{catalog.database}/{self.LAKE}", self.location(), self.unreachable,
                                command)

    def has_data(self) -> bool:
        catalog = self.catalog
        if catalog.startswith("sqlite:///") and not Path(catalog[len("sqlite:///"):]).exists():
            return False
        return super().has_data()

    def location(self) -> str:
        from dlt.common.configuration.specs.connection_string_credentials import ConnectionStringCredentials

        catalog = ConnectionStringCredentials(self.catalog)
        catalog.password = None
        return f"ducklake {catalog.to_url().render_as_string(hide_password=True)} data {self.data_path}"


class PostgresEngine(Engine):
    """PostgreSQL: dlt's ``postgres`` destination, configured by ``DESTINATION__POSTGRES__CREDENTIALS``."""

    name = "postgres"
    # dlt loads Parquet into PostgreSQL only through ADBC drivers; CSV goes in by COPY, with psycopg2 alone.
    loader_file_format = "csv"

    def credentials(self) -> Any:
        from dlt.common.configuration import resolve_configuration
        from dlt.common.configuration.exceptions import ConfigFieldMissingException
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        try:
            return resolve_configuration(PostgresCredentials(), sections=("destination", "postgres", "credentials"))
        except ConfigFieldMissingException:
            raise EngineConfigError(
                "--destination postgres needs DESTINATION__POSTGRES__CREDENTIALS, a connection string such as "
                "postgresql://loader:PASSWORD@db.example.com:5432/analytics (the password as a secret)"
            ) from None

    def destination(self) -> Any:
        return dlt.destinations.postgres(self.credentials())

    @contextlib.contextmanager
    def writer(self) -> Iterator["PostgresConnection"]:
        connection = PostgresConnection(psycopg2.connect(_libpq_dsn(self.credentials())))
        try:
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        dsn = _libpq_dsn(self.credentials())
        install_extensions("postgres")
        with duckdb.connect() as con:
            con.execute(f"ATTACH {_literal(dsn)} AS {READER_CATALOG} (TYPE postgres, READ_ONLY)")
            con.execute(f"use {READER_CATALOG}")
            yield con

    def load_lock(self, command: str = "load") -> "AdvisoryLoadLock":
        credentials = self.credentials()
        return AdvisoryLoadLock(_libpq_dsn(credentials), f"{credentials.database}/{DATASET}",
                                f"{self.location()} (schema {DATASET})", self.unreachable, command)

    def location(self) -> str:
        credentials = self.credentials()
        return f"postgres {credentials.username}@{credentials.host or 'localhost'}/{credentials.database}"


ENGINES = {engine.name: engine for engine in (DuckDbFileEngine, DuckLakeEngine, PostgresEngine, MotherDuckEngine)}


def for_destination(name: str, db_path: Path) -> Engine:
    if name not in ENGINES:
        raise EngineConfigError(f"unknown destination {name!r}: choose one of {', '.join(DESTINATIONS)}")
    return ENGINES[name](db_path)


class PostgresConnection:
    """A psycopg2 connection that answers like a DuckDB one, so bookkeeping, models and checks run on both.

    Autocommit, as DuckDB's default: a failed check does not abort the ones after it; ``begin`` opens the one
    transaction a model build needs. Parameters are written ``?`` as in DuckDB.
    """

    dialect = "postgres"

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._connection.autocommit = True
        self._cursor = connection.cursor()

    def execute(self, sql: str, parameters: list | tuple | None = None) -> "PostgresConnection":
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql.replace("%", "%%").replace("?", "%s"), list(parameters))
        return self

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def description(self) -> Any:
        return self._cursor.description

    def begin(self) -> None:
        self._cursor.execute("begin")

    def commit(self) -> None:
        self._cursor.execute("commit")

    def rollback(self) -> None:
        self._cursor.execute("rollback")

    def close(self) -> None:
        self._connection.close()


class AdvisoryLoadLock:
    """A PostgreSQL session advisory lock on a key of the database and dataset, held for the whole load.

    The ``flock`` beside ``--db`` excludes the loads of one host; this one excludes every host loading into the same
    database. It is held on a connection of its own, named after the load (its pid and host), so a load that finds
    it taken can say who holds it; the server drops it when that connection ends, so a killed load never leaves it.
    ``unpod-runs models`` takes the same lock, under its own name.
    """

    def __init__(self, dsn: str, scope: str, where: str,
                 unreachable: Callable[[BaseException], Exception], command: str = "load") -> None:
        self._dsn, self._where, self._unreachable, self._command = dsn, where, unreachable, command
        digest = hashlib.sha256(f"unpod-runs load {scope}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._connection: Any = None

    def __enter__(self) -> "AdvisoryLoadLock":
        name = f"unpod-runs {self._command} pid {os.getpid()} on {socket.gethostname()}"[:63]  # PostgreSQL keeps 63 bytes
        try:
            connection = psycopg2.connect(self._dsn, application_name=name)
        except psycopg2.Error as exc:
            raise self._unreachable(exc) from None
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("select pg_try_advisory_lock(%s)", [self._key])
            (taken,) = cursor.fetchone()
            holder = None if taken else self._holder(cursor)
        if holder is not None:
            connection.close()
            raise LockBusy(f"{self._where} is being written by another command ({holder}); it holds a PostgreSQL "
                           f"advisory lock that the server drops when that command ends: nothing to do, or check "
                           f"that it is not stuck")
        self._connection = connection
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            self._connection.close()  # the server drops a session's advisory locks with it
            self._connection = None

    def _holder(self, cursor: Any) -> str:
        """Who holds the lock, as its connection is named (another role's sessions may be hidden from this one)."""
        cursor.execute(
            "select activity.application_name, activity.backend_start from pg_locks as locks "
            "join pg_stat_activity as activity on activity.pid = locks.pid "
            "where locks.locktype = 'advisory' and locks.granted and locks.objsubid = 1 "
            "and locks.database = (select oid from pg_database where datname = current_database()) "
            "and locks.classid = %s and locks.objid = %s",
            [(self._key >> 32) & 0xFFFFFFFF, self._key & 0xFFFFFFFF],
        )
        row = cursor.fetchone()
        if row is None or not row[0]:
            return "a session this role cannot see"
        name, since = row
        return f"{name} since {since.astimezone(timezone.utc).isoformat(timespec='seconds')}" if since else name


def install_extensions(*names: str) -> None:
    """Install each DuckDB extension from its locked wheel (a local file copy) unless DuckDB has it already."""
    with duckdb.connect() as con:
        installed = set()
        for name, aliases in con.execute("select extension_name, aliases from duckdb_extensions() where installed").fetchall():
            installed.update([name, *aliases])  # postgres is installed as postgres_scanner
        for name in names:
            if name in installed:
                continue
            try:
                from duckdb_extensions import import_extension

                importlib.import_module(f"duckdb_extension_{name}")
            except ImportError:
                raise EngineConfigError(
                    f"the DuckDB extension {name!r} is not installed: install the locked requirements "
                    f"(requirements.lock holds duckdb-extension-{name})"
                ) from None
            import_extension(name, con=con)
            log.info("event=duckdb_extension_installed name=%s", name)


def _libpq_dsn(credentials: Any) -> str:
    """A libpq connection string (``key=value`` words) from dlt's connection credentials; a socket is a host."""
    words = {
        "dbname": credentials.database,
        "user": credentials.username,
        "password": credentials.password,
        "host": (credentials.query or {}).get("host") or credentials.host,
        "port": credentials.port,
    }
    return " ".join(f"{key}={_dsn_value(value)}" for key, value in words.items() if value)


def _dsn_value(value: object) -> str:
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
