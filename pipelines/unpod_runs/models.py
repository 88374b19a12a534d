"""Build the SQL models of ``sql/`` into the DuckDB schema ``analytics``, and describe them.

A model is one SQL file holding one query, named after the relation it builds. ``staging/`` is built before
``marts/`` (each in file-name order), so a mart may read any staging model; marts do not read each other.
Each file opens with a comment block that documents it::

    -- <the grain, one sentence>
    -- <what the model is for, any number of lines>
    -- materialized: table                  (optional; staging defaults to view, marts to table)
    -- optional source: unpod.spaces        (optional; a table the loader may not have created yet)
    -- columns:
    --   <column>: <what it holds>

The builder copies that documentation into DuckDB comments, so any client that opens the file shows it.
"""

from __future__ import annotations

import logging
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import duckdb

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
SCHEMA = "analytics"
# Layers in build order, each with its default materialization.
LAYERS = {"staging": "view", "marts": "table"}
MATERIALIZATIONS = ("view", "table")

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SOURCE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_DIRECTIVE = re.compile(r"^(materialized|optional source):\s*(.+)$")
_COLUMN = re.compile(r"^([a-z_][a-z0-9_]*):\s*(.+)$")
# A stand-in for a missing optional source: the models' union-by-name contracts supply the real columns.
_STAND_IN_COLUMN = "_stand_in boolean"
_WRAP = 110


class ModelBuildError(Exception):
    """A model could not be built; the previous models are left as they were."""


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

    @property
    def relation(self) -> str:
        return f"{SCHEMA}.{self.name}"


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Read every model in build order: the staging layer first, then the marts, each by file name."""
    models = []
    for layer, default_materialization in LAYERS.items():
        for path in sorted((sql_dir / layer).glob("*.sql")):
            models.append(_parse_model(path, layer, default_materialization))
    names = [model.name for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"more than one model file builds {', '.join(duplicates)}")
    return models


def build_models(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> list[str]:
    """Build every model in one transaction, so a failing model leaves the previous build readable and intact.

    The connection must not be inside a transaction already: this function owns the one it opens.
    Returns the relations built, in build order.
    """
    models = load_models(sql_dir)
    if _relation_kind(con, "unpod", "runs") is None:
        raise ModelBuildError("unpod.runs does not exist: load runs before building the models")
    con.begin()
    current: Model | None = None
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        stand_ins = _create_stand_ins(con, models)
        for model in models:
            current = model
            _build_model(con, model)
        current = None
        for source in stand_ins:
            con.execute(f"drop table {source}")
        con.commit()
    except duckdb.Error as error:
        con.rollback()
        where = f"{current.relation} (sql/{current.layer}/{current.path.name})" if current else "the build"
        raise ModelBuildError(f"{where} failed to build: {error}") from error
    logger.info("built %d models into schema %s", len(models), SCHEMA)
    return [model.relation for model in models]


def describe_models(sql_dir: Path = SQL_DIR) -> str:
    """The documentation of every model and column, as ``unpod-runs models --describe`` prints it.

    Marts come first: they are what analysts query; the staging models they are built from follow.
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
    header, query = _split_header(path.read_text(encoding="utf-8"))
    if not header or not query:
        raise ValueError(f"{path}: expected a leading comment block (grain first) and then a query")
    grain, *rest = header
    description: list[str] = []
    directives: dict[str, list[str]] = {"materialized": [], "optional source": []}
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
    if optional_sources and materialized != "table":
        # A view would keep pointing at the stand-in, which is dropped once the build is done.
        raise ValueError(f"{path}: a model over an optional source must be materialized as a table")
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
    )


def _split_header(text: str) -> tuple[list[str], str]:
    """Split a model file into its leading comment lines (without ``--``) and the query after them."""
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


def _build_model(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    existing = _relation_kind(con, SCHEMA, model.name)
    if existing is not None and existing != model.materialized:
        con.execute(f"drop {existing} {model.relation}")
    con.execute(f"create or replace {model.materialized} {model.relation} as\n{model.query}")
    comment = f"{model.grain} {model.description}".strip()
    con.execute(f"comment on {model.materialized} {model.relation} is {_literal(comment)}")
    for column, text in model.columns.items():
        con.execute(f"comment on column {model.relation}.{column} is {_literal(text)}")
    logger.debug("built %s as a %s", model.relation, model.materialized)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

