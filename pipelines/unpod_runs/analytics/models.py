"""Build the SQL models of ``sql/`` into the DuckDB schema ``analytics``, and describe them.

A model is one SQL file holding one query, named after the relation it builds. Each model is built after the models
its query reads, as sqlglot parses it (the ``analytics.*`` tables it names); otherwise staging comes first, then
intermediate, then marts, each layer by file name. A model reads no model of a later layer, and only staging reads
the loader's tables: staging renames and types them, intermediate says what they mean (``int_runs``: terminal,
failed, finish, duration, day), marts count. ``run_durations``, one row per run with its finish evidence, is the
mart the others may read (the marts that count runs by group read it, a table). Each file opens with a comment block
that documents it::

    -- <the grain, one sentence>
    -- <what the model is for, any number of lines>
    -- materialized: table                  (optional: view, table or ephemeral; marts default to table,
                                            the others to view)
    -- optional source: unpod.spaces        (optional; a table the loader may not have created yet)
    -- incremental key: day, collection_ref  (optional, tables only; see below)
    -- columns:
    --   <column>: <what it holds>

The builder copies that documentation into DuckDB comments, so any client that opens the file shows it. A model
``materialized: ephemeral`` builds no relation: its query is put, as a subquery, into each model that reads it, and
those inherit its optional sources (``stg_status_history`` types the status history once, with no copy of it).

The models are DuckDB SQL. On PostgreSQL the builder runs them translated (``portable.py``), always as a full
build in one transaction; the incremental refresh below is the DuckDB file's. There it keeps its tables, refilled
every night and reshaped in place after a model file changed: PostgreSQL's DDL is not MVCC-safe (``_refill_model``).

A night's load changes a few runs of millions, so a mart with an ``incremental key`` is refreshed, not rebuilt: only
its rows that a changed run falls into are computed again. A run changed if a load wrote it, or a version of it in
the status history, since the last build (its ``_dlt_load_id`` is newer). An intermediate table keyed by ``run_id``
(``int_run_finishes``, ``int_status_spells``) is refreshed first, from its sources' rows of the changed runs.
``run_durations`` (key ``run_id``) comes next, from the staging and intermediate queries run over the changed runs'
rows: its rows for them, before and after, say which groups of the other marts they leave and join; a run whose row
came out the same (an open run seen again, still open) moves none. Any other keyed mart (``run_stats``) reads
``run_durations`` and groups by ``grouping sets`` of its key columns, naming each row's set in a column ``grain``;
set by set, the groups a moved run left or joined are computed again by its query narrowed to that set, over their
runs only: a group's figures depend only on its own runs, so the result is the full build's, row for row. A first
build, a changed model file, or a night that changed a large share of the runs builds everything; a set whose
changed groups hold a large share of the runs is computed whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import duckdb

from unpod_runs.analytics.portable import (
    DATABASE_ERRORS,
    column_types,
    comments_on_view_columns,
    native_sql,
    refills_models,
    table_columns,
)

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[3] / "sql"
SCHEMA = "analytics"
# Layers in build order, each with its default materialization. A model reads no model of a later layer: staging
# renames and types the loader's tables, intermediate says what they mean, marts count.
LAYERS = {"staging": "view", "intermediate": "view", "marts": "table"}
MATERIALIZATIONS = ("view", "table", "ephemeral")
# The mart with one row per run: it is refreshed first, and tells which groups of the other marts a run is in.
RUN_INDEX = "run_durations"
# What the run index reads its runs from, and what that reads them from: a refresh runs both queries over the changed
# runs' rows only.
RUN_INPUT = f"{SCHEMA}.int_runs"
RUN_STAGING = f"{SCHEMA}.stg_runs"
# What every other incremental mart reads its runs from; a refresh runs it over the runs of the changed groups.
MART_INPUT = f"{SCHEMA}.{RUN_INDEX}"
# One row: which loads the models include, and which of those the data checks have passed.
BUILD_STATE = f"{SCHEMA}.model_build_state"
# The loader's history of each run's versions: the finish evidence of the runs in int_run_finishes.
HISTORY = "run_status_history"
# What earlier releases built and no model builds now: a full build drops them, so no stale copy stays readable.
RETIRED = ("stg_api_clock", "stg_run_finishes", "stg_status_spells")
# When more than this share of the stored runs changed, one full build is cheaper than replacing them.
FULL_BUILD_SHARE = 0.2

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SOURCE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_DIRECTIVE = re.compile(r"^(materialized|optional source|incremental key):\s*(.+)$")
_COLUMN = re.compile(r"^([a-z_][a-z0-9_]*):\s*(.+)$")
# A stand-in for a missing optional source: the models' union-by-name contracts supply the real columns.
_STAND_IN_COLUMN = "_stand_in boolean"
# A temporary table of no rows with a changed query's columns, while a table is reshaped (PostgreSQL).
_NEW_SHAPE = "model_new_shape"
_WRAP = 110


class ModelBuildError(Exception):
    """A model could not be built; the previous models are left as they were."""


@dataclass(frozen=True)
class GroupingSet:
    """One set of an incremental mart's ``group by grouping sets``: its rows are those whose ``grain`` names it."""

    columns: tuple[str, ...]  # the key columns it groups by, in the key's order; none for the row over every run
    sql: str  # as the query writes it

    @property
    def grain(self) -> str:
        return ", ".join(self.columns)


@dataclass(frozen=True)
class Model:
    """One model file: its query and the documentation from its leading comment block."""

    name: str
    layer: str
    path: Path
    query: str
    grain: str
    description: str
    materialized: str
    optional_sources: tuple[str, ...]
    columns: dict[str, str]
    # The grain columns of a mart that is refreshed incrementally; empty for a model that is always built whole.
    key: tuple[str, ...] = ()
    # The grouping sets of an incremental mart other than the run index, in the query's order.
    grouping_sets: tuple[GroupingSet, ...] = ()

    @property
    def relation(self) -> str:
        return f"{SCHEMA}.{self.name}"


@dataclass(frozen=True)
class BuildState:
    """What the last build included: loads up to ``built_through``, checked clean up to ``checked_through``."""

    kind: str
    built_through: str | None
    checked_through: str | None


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Read every model, in build order (see the module's docstring)."""
    models = []
    for layer, default_materialization in LAYERS.items():
        for path in sorted((sql_dir / layer).glob("*.sql")):
            models.append(_parse_model(path, layer, default_materialization))
    names = [model.name for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"more than one model file builds {', '.join(duplicates)}")
    for model in models:
        loader_tables = sorted(name for name in _relations_read(model) if name.startswith("unpod."))
        if loader_tables and model.layer != "staging":
            raise ValueError(f"{model.path}: only staging/ reads the loader's tables, and this {model.layer} model "
                             f"reads {', '.join(loader_tables)}")
    models = _inline_ephemerals(models)
    incremental = [model for model in models if model.key and model.layer == "marts"]
    if incremental:
        index = next((model for model in models if model.name == RUN_INDEX and model.layer == "marts"), None)
        if index is None or index.key != ("run_id",):
            raise ValueError(f"incremental marts need sql/marts/{RUN_INDEX}.sql with '-- incremental key: run_id'")
        for model in incremental:
            missing = [column for column in model.key if column not in index.columns]
            if missing:
                raise ValueError(f"{model.path}: incremental key column {', '.join(missing)} is not a column of "
                                 f"{index.relation}, which tells the builder where each run is")
    return _in_build_order(models)


def _inline_ephemerals(models: list[Model]) -> list[Model]:
    """The models that build a relation, each ephemeral model's query put in place of every read of it (as a
    subquery under the name or alias it was read by), with the ephemeral's optional sources added to the
    reader's."""
    ephemerals = {model.relation: model for model in models if model.materialized == "ephemeral"}
    if not ephemerals:
        return models
    from sqlglot import exp

    built = []
    for model in models:
        inlined = _relations_read(model) & ephemerals.keys()
        if model.materialized == "ephemeral":
            if inlined:
                raise ValueError(f"{model.path}: an ephemeral model reads no other ephemeral model")
            continue
        if not inlined:
            built.append(model)
            continue
        tree = _parse_query(model.path, model.query).copy()
        for table in list(tree.find_all(exp.Table)):
            ephemeral = ephemerals.get(f"{table.db}.{table.name}".lower())
            if ephemeral is not None:
                query = _parse_query(ephemeral.path, ephemeral.query).copy()
                alias = exp.TableAlias(this=exp.to_identifier(table.alias_or_name))
                table.replace(exp.Subquery(this=query, alias=alias))
        sources = model.optional_sources + tuple(
            source for name in sorted(inlined) for source in ephemerals[name].optional_sources
            if source not in model.optional_sources)
        if sources and model.materialized != "table":
            raise ValueError(f"{model.path}: a model over an optional source must be materialized as a table "
                             f"({', '.join(sorted(inlined))} reads {', '.join(sources)})")
        built.append(dataclasses.replace(model, query=tree.sql(dialect="duckdb", comments=False),
                                         optional_sources=sources))
    return built


def _in_build_order(models: list[Model]) -> list[Model]:
    """Each model after every model its SQL reads; staging first and by file name where nothing says otherwise."""
    read_by = {model.relation: _relations_read(model) for model in models}
    reads = {model.relation: [other for other in models if other is not model
                              and other.relation in read_by[model.relation]] for model in models}
    layers = list(LAYERS)
    for model in models:
        later = [other for other in reads[model.relation] if layers.index(other.layer) > layers.index(model.layer)]
        if later:
            names = ", ".join(other.relation for other in later)
            forbidden = " or ".join(f"{layer}/" for layer in layers[layers.index(model.layer) + 1:])
            raise ValueError(f"{model.path}: a model in {model.layer}/ reads none in {forbidden}, "
                             f"and this one reads {names}")
    ordered: list[Model] = []
    placing: list[str] = []

    def place(model: Model) -> None:
        if model in ordered:
            return
        if model.relation in placing:
            cycle = " -> ".join(placing[placing.index(model.relation):] + [model.relation])
            raise ValueError(f"{model.path}: models read each other in a cycle: {cycle}")
        placing.append(model.relation)
        for other in reads[model.relation]:
            place(other)
        placing.pop()
        ordered.append(model)

    for model in models:  # already in layer order, each layer by file name
        place(model)
    return ordered


# The relations each query reads, by its text: a process loads the same files many times, and parses each once.
_RELATIONS_READ: dict[str, frozenset[str]] = {}


def _relations_read(model: Model) -> frozenset[str]:
    """The relations the model's query reads (``schema.name``, lowercase as DuckDB matches names), as sqlglot parses
    it: a name in a comment or a string is no read, and neither is one of the query's own CTEs."""
    if model.query not in _RELATIONS_READ:
        from sqlglot import exp

        tree = _parse_query(model.path, model.query)
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        _RELATIONS_READ[model.query] = frozenset(
            f"{table.db}.{table.name}".lower() if table.db else table.name.lower()
            for table in tree.find_all(exp.Table)
            if table.db or table.name.lower() not in ctes
        )
    return _RELATIONS_READ[model.query]


# Each query's syntax tree, by its text; shared, so whoever changes one changes a copy.
_TREES: dict[str, object] = {}


def _parse_query(path: Path, query: str):
    """The query's syntax tree, as sqlglot parses DuckDB SQL; a query that does not parse fails by file name."""
    import sqlglot
    from sqlglot.errors import ParseError

    if query in _TREES:
        return _TREES[query]
    try:
        _TREES[query] = sqlglot.parse_one(query, read="duckdb")
        return _TREES[query]
    except ParseError as error:
        where = error.errors[0] if error.errors else {}
        raise ValueError(
            f"{path}: cannot tell which models it reads, its query does not parse: "
            f"{where.get('description', error)} (line {where.get('line')}, column {where.get('col')})"
        ) from error


def _grouping_sets(path: Path, query: str, key: tuple[str, ...], columns: dict[str, str]) -> tuple[GroupingSet, ...]:
    """The sets of an incremental mart's ``group by grouping sets (...)``, each grouping by key columns only."""
    from sqlglot import exp

    nodes = list(_parse_query(path, query).find_all(exp.GroupingSets))
    if len(nodes) != 1 or "grain" not in columns:
        raise ValueError(f"{path}: an incremental mart groups its rows by one 'group by grouping sets (...)', and "
                         f"names each row's set in a column grain")
    sets = []
    for element in nodes[0].expressions:
        parts = element.expressions if isinstance(element, exp.Tuple) else [element.unnest()]
        names = {part.name for part in parts if isinstance(part, exp.Column)}
        if len(names) != len(parts) or not names <= set(key):
            raise ValueError(f"{path}: the grouping set {element.sql(dialect='duckdb')} groups by a column that is "
                             f"not of its incremental key ({', '.join(key)})")
        sets.append(GroupingSet(tuple(name for name in key if name in names), element.sql(dialect="duckdb")))
    return tuple(sets)


def build_models(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR, incremental: bool = False) -> list[str]:
    """Build every model in one transaction, so a failing model leaves the previous build readable and intact.

    With ``incremental``, the incremental models are refreshed for the runs loaded since the last build,
    where that is possible and worth it (see the module's docstring); otherwise everything is built.
    The connection must not be inside a transaction already: this function owns the one it opens.
    Returns the relations built, in build order.
    """
    models = load_models(sql_dir)
    if _relation_kind(con, "unpod", "runs") is None:
        raise ModelBuildError("unpod.runs does not exist: load runs before building the models")
    digest = _digest(models)
    con.begin()
    current: Model | None = None
    changes = None
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        state = _read_state(con)
        changes = _pending_changes(con, models, state, digest) if incremental else None
        stand_ins = _create_stand_ins(con, models)
        # PostgreSQL keeps its tables (see _refill_model); after a model file changed they are reshaped first.
        keeps_tables = changes is None and refills_models(con)
        reshape = keeps_tables and not _all_built(con, models, digest)
        if changes is None:
            _drop_retired(con)
        if changes is None and not keeps_tables:
            _drop_models(con, models)
        elif reshape:
            _drop_views_before_reshape(con, models)
        for model in models:
            current = model
            if changes is not None and model.layer != "marts" and model.key:
                _refresh_by_run(con, model)
            elif changes is not None and model.name == RUN_INDEX:
                _refresh_run_index(con, model, changes)
            elif changes is not None and model.key:
                _refresh_groups(con, model, changes)
            elif keeps_tables:
                _refill_model(con, model, reshape)
            else:
                _build_model(con, model)
        current = None
        for source in stand_ins:
            con.execute(f"drop table {source}")
        through = changes.through if changes is not None else _latest_load_id(con, None)
        checked = state.checked_through if changes is not None and state is not None else None
        _write_state(con, digest, BuildState("incremental" if changes is not None else "full", through, checked))
        con.commit()
    except DATABASE_ERRORS as error:
        con.rollback()
        where = f"{current.relation} (sql/{current.layer}/{current.path.name})" if current else "the build"
        raise ModelBuildError(f"{where} failed to build: {error}") from error
    finally:
        if incremental:
            _drop_work_tables(con, *_WORK_TABLES)
    if changes is None:
        logger.info("built %d models into schema %s", len(models), SCHEMA)
    else:
        logger.info("refreshed the models for %d changed runs", changes.runs)
    return [model.relation for model in models]


def build_state(con: duckdb.DuckDBPyConnection) -> BuildState | None:
    """What the models hold now; None before the first build."""
    return _read_state(con)


def mark_checked(con: duckdb.DuckDBPyConnection) -> None:
    """The data checks passed on everything the models hold: the next night checks only what is newer."""
    con.execute(f"update {BUILD_STATE} set checked_through = built_through")


def describe_models(sql_dir: Path = SQL_DIR) -> str:
    """The documentation of every model and column, as ``unpod-runs models --describe`` prints it.

    Marts come first: they are what analysts query; the staging and intermediate models they are built from
    follow.
    """
    blocks = []
    for model in sorted(load_models(sql_dir), key=lambda model: model.layer != "marts"):
        width = max(len(column) for column in model.columns)
        lines = [f"{model.relation} ({model.layer}, {model.materialized})"]
        lines.append(textwrap.fill(f"{model.grain} {model.description}".strip(), _WRAP, initial_indent="  ",
                                   subsequent_indent="  "))
        lines.append("  columns:")
        for column, text in model.columns.items():
            lines.append(textwrap.fill(text, _WRAP, initial_indent=f"    {column:<{width}}  ",
                                       subsequent_indent=" " * (width + 6)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _parse_model(path: Path, layer: str, default_materialization: str) -> Model:
    name = path.stem
    if not _NAME.match(name):
        raise ValueError(f"{path}: a model file name must be a lowercase SQL identifier")
    header, query = split_header(path.read_text(encoding="utf-8"))
    if not header or not query:
        raise ValueError(f"{path}: expected a leading comment block (grain first) and then a query")
    grain, *rest = header
    description: list[str] = []
    directives: dict[str, list[str]] = {"materialized": [], "optional source": [], "incremental key": []}
    columns: dict[str, str] = {}
    in_columns = False
    for line in rest:
        if in_columns:
            match = _COLUMN.match(line)
            if match is None:
                raise ValueError(f"{path}: cannot read column documentation line {line!r}")
            columns[match.group(1)] = match.group(2)
        elif line == "columns:":
            in_columns = True
        elif (match := _DIRECTIVE.match(line)) is not None:
            directives[match.group(1)].append(match.group(2).strip())
        elif line:
            description.append(line)
    if not columns:
        raise ValueError(f"{path}: the comment block documents no column")
    materialized = directives["materialized"][-1] if directives["materialized"] else default_materialization
    if materialized not in MATERIALIZATIONS:
        raise ValueError(f"{path}: materialized must be one of {MATERIALIZATIONS}, not {materialized!r}")
    optional_sources = tuple(directives["optional source"])
    for source in optional_sources:
        if not _SOURCE.match(source):
            raise ValueError(f"{path}: optional source must be schema.table, not {source!r}")
    if optional_sources and materialized not in ("table", "ephemeral"):
        # A view would keep pointing at the stand-in, which is dropped once the build is done.
        raise ValueError(f"{path}: a model over an optional source must be materialized as a table")
    key = _parse_key(path, directives["incremental key"], layer, materialized, columns)
    source = RUN_INPUT if name == RUN_INDEX else MART_INPUT
    if key and layer == "marts" and not _reads(query, source):
        raise ValueError(f"{path}: an incremental mart is refreshed from {source}, which it does not read")
    grouping_sets = _grouping_sets(path, query, key, columns) if key and layer == "marts" and name != RUN_INDEX else ()
    return Model(
        name=name,
        layer=layer,
        path=path,
        query=query,
        grain=grain,
        description=" ".join(description),
        materialized=materialized,
        optional_sources=optional_sources,
        columns=columns,
        key=key,
        grouping_sets=grouping_sets,
    )


def _parse_key(path: Path, lines: list[str], layer: str, materialized: str, columns: dict[str, str]) -> tuple[str, ...]:
    if not lines:
        return ()
    if len(lines) != 1 or materialized != "table":
        raise ValueError(f"{path}: only a model materialized as a table has an incremental key, on one line")
    key = tuple(part.strip() for part in lines[0].split(","))
    if layer != "marts" and key != ("run_id",):
        raise ValueError(f"{path}: a {layer} table is refreshed by run, so its incremental key is run_id")
    for column in key:
        if column not in columns:
            raise ValueError(f"{path}: incremental key column {column!r} is not a documented column")
    return key


def _reads(query: str, relation: str) -> bool:
    return re.search(_relation_pattern(relation), query) is not None


def _relation_pattern(relation: str) -> str:
    return rf"(?<![\w.\"]){re.escape(relation)}(?![\w\"])"


def split_header(text: str) -> tuple[list[str], str]:
    """Split a model or check file into its leading comment lines (without ``--``) and the query after them."""
    lines = text.strip().splitlines()
    header = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("--"):
            return header, "\n".join(lines[index:]).strip().rstrip(";").strip()
        header.append(stripped[2:].strip())
    return header, ""


def _relation_kind(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    row = con.execute(
        """
        select table_type
        from information_schema.tables
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        """,
        [schema, name],
    ).fetchone()
    if row is None:
        return None
    return "view" if row[0] == "VIEW" else "table"


def _create_stand_ins(con: duckdb.DuckDBPyConnection, models: list[Model]) -> list[str]:
    """Create an empty table for each optional source that does not exist yet; the caller drops them again."""
    created: list[str] = []
    for source in sorted({source for model in models for source in model.optional_sources}):
        schema, name = source.split(".")
        if _relation_kind(con, schema, name) is None:
            logger.info("%s does not exist yet: models over it are built empty", source)
            con.execute(f"create schema if not exists {schema}")
            con.execute(f"create table {source} ({_STAND_IN_COLUMN})")
            created.append(source)
    return created


def _all_built(con: duckdb.DuckDBPyConnection, models: list[Model], digest: str) -> bool:
    """Every model is there, built by these very files."""
    if _relation_kind(con, *BUILD_STATE.split(".")) is None or _stored_digest(con) != digest:
        return False
    return all(_relation_kind(con, SCHEMA, model.name) == model.materialized for model in models)


def _refill_model(con: duckdb.DuckDBPyConnection, model: Model, reshape: bool) -> None:
    """Replace a table's rows, not the table: a reader whose snapshot predates the build keeps seeing the old rows.

    (PostgreSQL's DDL is not MVCC-safe: a table dropped and created again looks empty to a reader whose snapshot was
    taken before the commit.) With ``reshape`` (a model file changed), the table first takes its query's new shape
    in place. A view built by the same file is left as it is: it holds no rows. A relation that is not there (new,
    or a view dropped before the reshape) is created.
    """
    if _relation_kind(con, SCHEMA, model.name) is None:
        _build_model(con, model)
        return
    if model.materialized == "view":
        return
    query = native_sql(con, model.query)
    if reshape:
        _reshape_table(con, model, query)
        _comment_model(con, model)
    # By name: a reshaped table keeps its columns' places and adds new ones last, unlike the query's order.
    columns = ", ".join(f'"{name}"' for name in table_columns(con, SCHEMA, model.name))
    con.execute(f"delete from {model.relation}")
    con.execute(f"insert into {model.relation} ({columns})\nselect {columns} from (\n{query}\n) as model_rows")


def _reshape_table(con: duckdb.DuckDBPyConnection, model: Model, query: str) -> None:
    """Bring a table to its changed query's columns without rewriting it, so its old rows stay readable.

    A column the query no longer has is dropped, a new one is added (nullable, no default): both change only the
    catalog. A column whose type changed is dropped and added again: ``alter column ... type`` rewrites the table,
    and after a rewrite a reader whose snapshot predates it sees the table empty.
    """
    con.execute(f"create temp table {_NEW_SHAPE} as select * from (\n{query}\n) as model_rows with no data")
    wanted = column_types(con, f"pg_temp.{_NEW_SHAPE}")
    con.execute(f"drop table pg_temp.{_NEW_SHAPE}")
    present = column_types(con, model.relation)
    dropped = [name for name, kind in present.items() if wanted.get(name) != kind]
    added = [name for name, kind in wanted.items() if present.get(name) != kind]
    if dropped or added:
        actions = [f'drop column "{name}"' for name in dropped] + [f'add column "{name}" {wanted[name]}' for name in added]
        con.execute(f"alter table {model.relation} {', '.join(actions)}")
        logger.info("event=model_reshaped relation=%s dropped=%s added=%s", model.relation, ",".join(dropped) or "-",
                    ",".join(added) or "-")


def _drop_views_before_reshape(con: duckdb.DuckDBPyConnection, models: list[Model]) -> None:
    """Before a reshape: drop every model view, the ones built last first; each is created again in build order.

    A view holds no rows, and may read a column about to be dropped. A model that became a view or a table cannot
    be reshaped: it is dropped and created again, and a reader whose snapshot predates the commit may see it empty.
    """
    for model in reversed(models):
        existing = _relation_kind(con, SCHEMA, model.name)
        if existing is None or existing == model.materialized == "table":
            continue
        if existing != model.materialized:
            logger.warning("event=model_replaced relation=%s was=%s now=%s note=%r", model.relation, existing,
                           model.materialized, "readers whose snapshot predates this build may see it empty once")
        con.execute(f"drop {existing} {model.relation}")


def _drop_models(con: duckdb.DuckDBPyConnection, models: list[Model]) -> None:
    """Before a full build: drop every model, the ones built last first, so no view outlives what it reads."""
    for model in reversed(models):
        existing = _relation_kind(con, SCHEMA, model.name)
        if existing is not None:
            con.execute(f"drop {existing} {model.relation}")


def _drop_retired(con: duckdb.DuckDBPyConnection) -> None:
    for name in RETIRED:
        existing = _relation_kind(con, SCHEMA, name)
        if existing is not None:
            con.execute(f"drop {existing} {SCHEMA}.{name}")


def _build_model(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    existing = _relation_kind(con, SCHEMA, model.name)
    if existing is not None and existing != model.materialized:
        con.execute(f"drop {existing} {model.relation}")
        existing = None
    verb = "create or replace" if existing else "create"
    con.execute(f"{verb} {model.materialized} {model.relation} as\n{native_sql(con, model.query)}")
    _comment_model(con, model)
    logger.debug("built %s as a %s", model.relation, model.materialized)


def _comment_model(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Copy the model file's documentation into the engine's comments."""
    comment = f"{model.grain} {model.description}".strip()
    con.execute(f"comment on {model.materialized} {model.relation} is {_literal(comment)}")
    if model.materialized == "table" or comments_on_view_columns(con):
        for column, text in model.columns.items():
            con.execute(f"comment on column {model.relation}.{column} is {_literal(text)}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---- incremental refresh ------------------------------------------------------------------------------------------

# Temporary tables of one refresh; dropped when the build ends, whatever happened.
_CHANGED = "model_changed_runs"
_REPLACED = "model_replaced_runs"
_REFRESHED = "model_refreshed_runs"
_TOUCHED = "model_touched_keys"
_INPUT = "model_refresh_input"
_MOVED = "model_moved_runs"
_CHANGED_IDS = "model_changed_run_ids"
_MOVED_IDS = "model_moved_run_ids"
_WORK_TABLES = (_CHANGED, _REPLACED, _REFRESHED, _TOUCHED, _INPUT, _MOVED, _CHANGED_IDS, _MOVED_IDS)


@dataclass(frozen=True)
class _Changes:
    """The loads since the last build: ``temp.model_changed_runs`` holds the rows they wrote."""

    since: str
    through: str
    runs: int
    stored: int
    staging_query: str
    definitions_query: str


def _pending_changes(
    con: duckdb.DuckDBPyConnection, models: list[Model], state: BuildState | None, digest: str
) -> _Changes | None:
    """What an incremental refresh must take in, or None when only a full build will do."""
    if state is None or state.built_through is None or _stored_digest(con) != digest:
        return None
    if not _has_column(con, "unpod", "runs", "_dlt_load_id"):
        return None
    for model in models:
        if model.key and _relation_kind(con, SCHEMA, model.name) != "table":
            return None
    since = state.built_through
    # Loads append their rows, so this reads the newest row groups only.
    con.execute(f"create temp table {_CHANGED} as select * from unpod.runs where _dlt_load_id > ?", [since])
    if _has_column(con, "unpod", HISTORY, "_dlt_load_id"):
        # A run whose status history moved (an open run seen again) changes its finish evidence, not its row.
        con.execute(
            f"""
            insert into temp.{_CHANGED}
            select runs.* from unpod.runs as runs
            semi join (select run_id from unpod.{HISTORY} where _dlt_load_id > ?) as seen
                on seen.run_id = runs.run_id
            where runs._dlt_load_id <= ?
            """,
            [since, since],
        )
    (runs,) = con.execute(f"select count(distinct run_id) from temp.{_CHANGED}").fetchone()
    (stored,) = con.execute(f"select count(*) from {SCHEMA}.{RUN_INDEX}").fetchone()
    if runs > FULL_BUILD_SHARE * max(stored, 1):
        return None
    staging = next(model for model in models if model.relation == RUN_STAGING)
    definitions = next(model for model in models if model.relation == RUN_INPUT)
    through = _latest_load_id(con, since) or since
    if _has_column(con, "unpod", HISTORY, "_dlt_load_id"):
        # A quiet night may write history rows only: the next build must not take them in again.
        (history_through,) = con.execute(f"select max(_dlt_load_id) from unpod.{HISTORY} where _dlt_load_id > ?",
                                         [since]).fetchone()
        through = max(through, history_through or through)
    return _Changes(since=since, through=through, runs=runs, stored=stored, staging_query=staging.query,
                    definitions_query=definitions.query)


def _refresh_run_index(con: duckdb.DuckDBPyConnection, model: Model, changes: _Changes) -> None:
    """Replace the rows of ``run_durations`` of the changed runs whose rows differ, and keep those versions in
    ``temp.model_moved_runs``: old and new, they say which groups of the other marts those runs left and joined."""
    con.execute(f"create temp table {_TOUCHED} as select distinct run_id from temp.{_CHANGED}")
    # The previous version of each changed run, and where it is.
    previous = _in_touched(model.relation, model.key, "rowid as replaced_row, rows.*")
    con.execute(f"create temp table {_REPLACED} as {previous}")
    # The loads since the last build wrote every row these runs have: a merge replaces a run's rows, and a second
    # copy that an old load left (or a row without run_id) fails a check, which builds everything.
    staged_rows = re.sub(_relation_pattern("unpod.runs"), f"temp.{_CHANGED}", changes.staging_query)
    defined_rows = re.sub(_relation_pattern(RUN_STAGING), f"({staged_rows})", changes.definitions_query)
    con.execute(f"create temp table {_INPUT} as {defined_rows}")
    query = re.sub(_relation_pattern(RUN_INPUT), f"temp.{_INPUT}", model.query)
    # The input may hold rows without a run_id: keep the changed runs only.
    con.execute(f"create temp table {_REFRESHED} as {_in_touched(f'({query})', model.key)}")
    # The runs whose versions differ (column by column, a missing value equal only to a missing one): only their
    # rows are replaced. Most changed runs are open runs seen again, their rows as they were; rewriting those would
    # cost the table's storage a rewrite of every row group they sit in, night after night.
    columns = table_columns(con, SCHEMA, model.name)
    differs = " or ".join(f'old."{name}" is distinct from new."{name}"' for name in columns)
    con.execute(
        f"""
        create temp table {_MOVED_IDS} as
        select distinct coalesce(old.run_id, new.run_id) as run_id
        from temp.{_REPLACED} as old
        full join temp.{_REFRESHED} as new on new.run_id is not distinct from old.run_id
        where {differs}
        """
    )
    moved = f"semi join temp.{_MOVED_IDS} as moved on moved.run_id is not distinct from rows.run_id"
    con.execute(f"delete from {model.relation} where rowid in "
                f"(select rows.replaced_row from temp.{_REPLACED} as rows {moved})")
    con.execute(f"insert into {model.relation} by name select rows.* from temp.{_REFRESHED} as rows {moved}")
    # Their versions, old and new: which groups of the other marts they left and joined.
    listed = ", ".join(f'rows."{name}"' for name in columns)
    con.execute(
        f"""
        create temp table {_MOVED} as
        select {listed} from temp.{_REPLACED} as rows {moved}
        union all
        select {listed} from temp.{_REFRESHED} as rows {moved}
        """
    )
    _drop_work_tables(con, _TOUCHED, _INPUT, _MOVED_IDS)
    logger.debug("refreshed %s", model.relation)


def _refresh_groups(con: duckdb.DuckDBPyConnection, model: Model, changes: _Changes) -> None:
    """Compute again the rows of a mart over ``run_durations`` that a run left or joined tonight, and only those.

    Set by set of its grouping sets: the groups a moved run left or joined are computed again by the mart's query
    narrowed to that set, over the runs of those groups only. A set whose touched groups hold a large share of the
    runs (the row over every run, always) is computed whole instead, with the others like it in one pass. A NULL key
    (a run without collection_ref) is a group of its own: every match is ``is not distinct from``.
    """
    (moved,) = con.execute(f"select count(*) from temp.{_MOVED}").fetchone()
    whole, by_group = [], []
    for grouping_set in model.grouping_sets if moved else ():
        if not grouping_set.columns:
            whole.append(grouping_set)
            continue
        con.execute(f"create temp table {_TOUCHED} as select distinct {', '.join(grouping_set.columns)} "
                    f"from temp.{_MOVED}")
        runs_of_groups = _in_touched(MART_INPUT, grouping_set.columns)
        (touched_runs,) = con.execute(f"select count(*) from ({runs_of_groups})").fetchone()
        if touched_runs > FULL_BUILD_SHARE * max(changes.stored, 1):
            # Most groups changed (every collection got a new run): one pass over everything is cheaper.
            whole.append(grouping_set)
        else:
            by_group.append(grouping_set)
            query = re.sub(_relation_pattern(MART_INPUT), f"({runs_of_groups})", _narrowed(model, [grouping_set]))
            touched_rows = _in_touched(model.relation, grouping_set.columns, "rowid")
            con.execute(f"delete from {model.relation} where rowid in "
                        f"({touched_rows} where rows.grain = {_literal(grouping_set.grain)})")
            con.execute(f"insert into {model.relation} by name {query}")
        _drop_work_tables(con, _TOUCHED)
    if whole:
        grains = ", ".join(_literal(grouping_set.grain) for grouping_set in whole)
        con.execute(f"delete from {model.relation} where grain in ({grains})")
        con.execute(f"insert into {model.relation} by name {_narrowed(model, whole)}")
    logger.debug("refreshed %s: by group %s; whole %s", model.relation,
                 "; ".join(repr(grouping_set.grain) for grouping_set in by_group) or "-",
                 "; ".join(repr(grouping_set.grain) for grouping_set in whole) or "-")


def _narrowed(model: Model, grouping_sets: list[GroupingSet]) -> str:
    """The mart's query with only these of its grouping sets: the rows the full query gives them, and no others.

    A key column that none of them groups by is no grouping column of the narrowed query, which may then neither
    select it nor ask ``grouping()`` of it: there it is NULL, and ``grouping()`` of it 1, as in the full query's rows
    of these sets. sqlglot rewrites the tree and writes it out as DuckDB SQL again.
    """
    from sqlglot import exp

    tree = _parse_query(model.path, model.query).copy()
    (node,) = tree.find_all(exp.GroupingSets)
    kept = {grouping_set.sql for grouping_set in grouping_sets}
    node.set("expressions", [element for element in node.expressions if element.sql(dialect="duckdb") in kept])
    select = node.find_ancestor(exp.Select)
    absent = set(model.key) - {column for grouping_set in grouping_sets for column in grouping_set.columns}
    for grouping in list(select.find_all(exp.Grouping)):
        if grouping.find_ancestor(exp.Select) is select and {part.name for part in grouping.expressions} <= absent:
            grouping.replace(exp.Literal.number(1))
    for column in list(select.find_all(exp.Column)):
        if (column.name in absent and column.find_ancestor(exp.Select) is select
                and column.find_ancestor(exp.AggFunc) is None):
            column.replace(exp.alias_(exp.Null(), column.name) if column.parent is select else exp.Null())
    return tree.sql(dialect="duckdb")


def _refresh_by_run(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Replace a per-run table's rows of the changed runs, computed from their rows of the loader's tables only."""
    con.execute(f"create or replace temp table {_CHANGED_IDS} as select distinct run_id from temp.{_CHANGED}")
    query = model.query
    for source in sorted(set(re.findall(r"(?<![\w.\"])unpod\.[a-z_][a-z0-9_]*(?![\w\"])", query))):
        if not _has_column(con, *source.split("."), "run_id"):
            continue  # the empty stand-in of an optional source the loader has not created yet
        narrowed = (f"(select source.* from {source} as source "
                    f"semi join temp.{_CHANGED_IDS} as changed on changed.run_id = source.run_id)")
        query = re.sub(_relation_pattern(source), narrowed, query)
    con.execute(f"delete from {model.relation} where run_id in (select run_id from temp.{_CHANGED_IDS})")
    con.execute(f"insert into {model.relation} by name {query}")
    logger.debug("refreshed %s", model.relation)


def _in_touched(relation: str, key: tuple[str, ...], column: str = "*") -> str:
    """The rows (or one column) of ``relation`` in a changed group of ``temp.model_touched_keys``."""
    condition = " and ".join(f"rows.{name} is not distinct from touched.{name}" for name in key)
    return f"select rows.{column} from {relation} as rows semi join temp.{_TOUCHED} as touched on {condition}"


def _drop_work_tables(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    for table in tables:
        con.execute(f"drop table if exists temp.{table}")


def _latest_load_id(con: duckdb.DuckDBPyConnection, since: str | None) -> str | None:
    if not _has_column(con, "unpod", "runs", "_dlt_load_id"):
        return None
    if since is None:
        return con.execute("select max(_dlt_load_id) from unpod.runs").fetchone()[0]
    return con.execute("select max(_dlt_load_id) from unpod.runs where _dlt_load_id > ?", [since]).fetchone()[0]


def _digest(models: list[Model]) -> str:
    """Any change to a model file changes what the incremental tables hold: they are then built again."""
    text = "\n".join(f"{model.layer}/{model.name} {model.materialized} {model.key}\n{model.query}" for model in models)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_state(con: duckdb.DuckDBPyConnection) -> BuildState | None:
    if _relation_kind(con, *BUILD_STATE.split(".")) is None:
        return None
    row = con.execute(f"select kind, built_through, checked_through from {BUILD_STATE}").fetchone()
    return BuildState(*row) if row else None


def _stored_digest(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(f"select models_digest from {BUILD_STATE}").fetchone()
    return row[0] if row else None


def _write_state(con: duckdb.DuckDBPyConnection, digest: str, state: BuildState) -> None:
    con.execute(
        f"""
        create table if not exists {BUILD_STATE} (
            models_digest varchar,
            kind varchar,
            built_through varchar,
            checked_through varchar
        )
        """
    )
    con.execute(f"delete from {BUILD_STATE}")
    con.execute(
        f"insert into {BUILD_STATE} values (?, ?, ?, ?)",
        [digest, state.kind, state.built_through, state.checked_through],
    )


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    row = con.execute(
        """
        select count(*) from information_schema.columns
        where table_catalog = current_database() and table_schema = ? and table_name = ? and column_name = ?
        """,
        [schema, table, column],
    ).fetchone()
    return row[0] > 0
