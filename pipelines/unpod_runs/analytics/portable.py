"""The models' and checks' SQL, written for DuckDB, as PostgreSQL runs it.

sqlglot (pinned in requirements.lock) translates most of it right: ``FILTER (WHERE ...)``, ``quantile_cont`` over a
list (PostgreSQL's ``percentile_cont(array[...]) within group``), ``semi join``, ``list(distinct ...)``, ``::double``.
It never raises on what it cannot translate: it passes it through, or worse, translates it wrongly without a word.
Three constructs are translated here instead, each proven on a real PostgreSQL by tests/test_postgres_sql.py:

- ``epoch_us(t)``: passed through by sqlglot. Becomes ``extract(epoch from t)`` in microseconds, which on
  ``timestamptz`` is absolute, like DuckDB's. (sqlglot's own ``date_diff`` translation casts to ``timestamp``, which
  reads the session's TimeZone: a duration across a DST change would be off by an hour.)
- ``select * from <contract> union all by name select * from <table>``: the contract (a CTE of typed NULLs) fills
  a column the loader has not created yet. Becomes a positional ``union all`` over the contract's columns, each
  read from the table where it has it and NULL where it has not: the same rows and types.
- ``round(x, n)`` of a double: PostgreSQL rounds only ``numeric`` to ``n`` places.

Any other construct that PostgreSQL does not run fails the guard test, which runs every model and check there.

The helpers here are what models.py and checks.py need to run on any engine's connection (a DuckDB one, or
engines.PostgresConnection, whose ``dialect`` is "postgres"); sqlglot is imported only when something is translated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import duckdb
import psycopg2

if TYPE_CHECKING:
    from sqlglot import exp

# What a failed statement raises, on any engine: models and checks report it instead of crashing.
DATABASE_ERRORS = (duckdb.Error, psycopg2.Error)

# The columns a table has (empty when it does not exist).
ColumnsOf = Callable[[str, str], list[str]]


def has_table(con: Any, schema: str, table: str) -> bool:
    (count,) = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return count > 0


def native_sql(con: Any, sql: str) -> str:
    """``sql`` (DuckDB's dialect) as the engine behind ``con`` runs it."""
    if getattr(con, "dialect", "duckdb") != "postgres":
        return sql
    return to_postgres(sql, lambda schema, table: table_columns(con, schema, table))


def refills_models(con: Any) -> bool:
    """On PostgreSQL a full build keeps the tables it built last night: it refills them, and reshapes them in place
    after a model file changed, instead of replacing them (models.py)."""
    return getattr(con, "dialect", "duckdb") == "postgres"


def column_types(con: Any, relation: str) -> dict[str, str]:
    """PostgreSQL: each column of ``relation`` (``schema.name``) and its type, as ``add column`` takes it."""
    rows = con.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = to_regclass(?) and attnum > 0 and not attisdropped order by attnum",
        [relation],
    ).fetchall()
    return dict(rows)


def comments_on_view_columns(con: Any) -> bool:
    """A DuckLake keeps no comment on a view's column (its tables' columns and its views keep theirs)."""
    if getattr(con, "dialect", "duckdb") == "postgres":
        return True
    row = con.execute("select type from duckdb_databases() where database_name = current_database()").fetchone()
    return row is None or row[0] != "ducklake"


def table_columns(con: Any, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_catalog = current_database() "
        "and table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [name for (name,) in rows]


def to_postgres(sql: str, columns_of: ColumnsOf) -> str:
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = tree.transform(_epoch_us)
    tree = tree.transform(_round_numeric)
    _union_by_name(tree, columns_of)
    return tree.sql(dialect="postgres")


def _epoch_us(node: "exp.Expression") -> "exp.Expression":
    from sqlglot import exp

    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us" and len(node.expressions) == 1:
        seconds = exp.Extract(this=exp.var("epoch"), expression=node.expressions[0])
        return exp.cast(exp.Mul(this=seconds, expression=exp.Literal.number(1_000_000)), "bigint")
    return node


def _round_numeric(node: "exp.Expression") -> "exp.Expression":
    from sqlglot import exp

    if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
        return exp.Round(this=exp.cast(node.this, "numeric"), decimals=node.args["decimals"])
    return node


def _union_by_name(tree: "exp.Expression", columns_of: ColumnsOf) -> None:
    from sqlglot import exp

    contracts = {cte.alias: cte.this for cte in tree.find_all(exp.CTE)}
    for union in list(tree.find_all(exp.Union)):
        if not union.args.get("by_name"):
            continue
        contract = contracts.get(_star_source(union.this))
        table = union.expression.args["from_"].this if _star_source(union.expression) else None
        if contract is None or not isinstance(table, exp.Table):
            raise ValueError(f"cannot translate union by name for PostgreSQL: {union.sql('duckdb')[:200]}")
        present = set(columns_of(table.db, table.name))
        columns = []
        for projection in contract.expressions:
            name, kind = projection.alias, projection.this.args["to"]
            value = exp.column(name, quoted=True) if name in present else exp.null()
            columns.append(exp.alias_(exp.Cast(this=value, to=kind.copy()), name, quoted=True))
        union.set("expression", exp.select(*columns).from_(table.copy()))
        union.set("by_name", None)


def _star_source(select: "exp.Expression") -> str | None:
    """The relation of a ``select * from <relation>``, else None."""
    from sqlglot import exp

    if not isinstance(select, exp.Select) or not select.is_star or select.args.get("from_") is None:
        return None
    source = select.args["from_"].this
    return source.name if isinstance(source, exp.Table) else None
