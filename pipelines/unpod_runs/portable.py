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
"""

from __future__ import annotations

from typing import Callable

import sqlglot
from sqlglot import exp

# The columns a table has (empty when it does not exist).
ColumnsOf = Callable[[str, str], list[str]]


def to_postgres(sql: str, columns_of: ColumnsOf) -> str:
    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = tree.transform(_epoch_us)
    tree = tree.transform(_round_numeric)
    _union_by_name(tree, columns_of)
    return tree.sql(dialect="postgres")


def _epoch_us(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us" and len(node.expressions) == 1:
        seconds = exp.Extract(this=exp.var("epoch"), expression=node.expressions[0])
        return exp.cast(exp.Mul(this=seconds, expression=exp.Literal.number(1_000_000)), "bigint")
    return node


def _round_numeric(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
        return exp.Round(this=exp.cast(node.this, "numeric"), decimals=node.args["decimals"])
    return node


def _union_by_name(tree: exp.Expression, columns_of: ColumnsOf) -> None:
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


def _star_source(select: exp.Expression) -> str | None:
    """The relation of a ``select * from <relation>``, else None."""
    if not isinstance(select, exp.Select) or not select.is_star or select.args.get("from_") is None:
        return None
    source = select.args["from_"].this
    return source.name if isinstance(source, exp.Table) else None
