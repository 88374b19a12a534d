"""The HTML report that ``load`` and ``demo`` write: the headline numbers and charts of the analytics models.

One self-contained file: inline CSS, charts as inline SVG drawn by matplotlib (text kept as text, no fonts
embedded), no script and no external URL, so it opens offline and can be mailed around. Every figure is read
from the ``analytics`` models, with timestamps formatted in UTC in SQL so the reader's TimeZone changes nothing.
"""

from __future__ import annotations

import html
import io
import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import matplotlib
from matplotlib.figure import Figure
from matplotlib import dates as mdates
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator, PercentFormatter

logger = logging.getLogger(__name__)

TOP_COLLECTIONS = 15
HEATMAP_COLLECTIONS = 12
TABLE_ROWS = 10
COLOURS = {
    "completed": "#3b8f5a",
    "partially_completed": "#e3a33b",
    "failed": "#c8453b",
    "open": "#b8bec6",
    "p50": "#2f5f9e",
    "p95": "#a9c1e3",
    "text": "#2b2f36",
    "muted": "#6b7280",
    "grid": "#e6e8eb",
}
NO_COLLECTION = "(no collection_ref)"
_UTC = "%Y-%m-%d %H:%M UTC"
_DURATION_TICKS = {0: "0", 1: "1 s", 10: "10 s", 60: "1 min", 600: "10 min", 3600: "1 h", 6 * 3600: "6 h",
                   86400: "1 d", 7 * 86400: "7 d", 30 * 86400: "30 d"}


@dataclass(frozen=True)
class _Section:
    title: str
    caption: str
    body: str


def write_report(con: duckdb.DuckDBPyConnection, out_path: Path) -> Path:
    """Write the report to ``out_path`` (through a temporary file, so a reader never opens half of it)."""
    page = render_report(con)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, out_path)
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("wrote the report to %s", out_path)
    return out_path


def render_report(con: duckdb.DuckDBPyConnection) -> str:
    """The report as one HTML document."""
    headline = _one(con, _HEADLINE_SQL)
    latest_load = _one(con, _LATEST_LOAD_SQL)
    collections = _rows(con, "select * from analytics.collection_stats")
    days = _rows(con, _DAYS_SQL)
    sections = [_status_section(_rows(con, _STATUS_SQL), headline)]
    if headline["runs"]:
        sections += [
            _failure_rate_section(collections, headline["failure_rate"]),
            _duration_section(collections),
            _days_section(days),
            _day_durations_section(days),
            _heatmap_section(_rows(con, _HEATMAP_SQL)),
            _tables_section(collections),
            _spaces_section(_rows(con, _SPACES_SQL)),
        ]
    return _page(headline, latest_load, _highlights(headline, collections), sections)


# ---- queries ---------------------------------------------------------------------------------------------------

_HEADLINE_SQL = f"""
select
    count(*) as runs,
    count(distinct space_token) as spaces,
    (select count(*) from analytics.collection_stats) as collections,
    count(*) filter (where is_terminal) as terminal_runs,
    count(*) filter (where is_failed) as failed_runs,
    count(*) filter (where not is_terminal) as open_runs,
    count(*) filter (where is_failed) / nullif(count(*) filter (where is_terminal), 0)::double as failure_rate,
    quantile_cont(duration_seconds, 0.5) as p50_duration_seconds,
    quantile_cont(duration_seconds, 0.95) as p95_duration_seconds,
    strftime(max(modified) at time zone 'UTC', '{_UTC}') as last_modified,
    strftime(min(created) at time zone 'UTC', '%Y-%m-%d') as first_day,
    strftime(max(created) at time zone 'UTC', '%Y-%m-%d') as last_day
from analytics.stg_runs
"""

_LATEST_LOAD_SQL = f"""
select
    count(*) as loads,
    strftime(arg_max(finished_at, started_at) at time zone 'UTC', '{_UTC}') as finished_at,
    arg_max(outcome, started_at) as outcome,
    arg_max(full_scan, started_at) as full_scan
from analytics.load_history
"""

_STATUS_SQL = "select * from analytics.runs_by_status order by runs desc, status"

_DAYS_SQL = """
select
    day,
    count(*) as runs,
    count(*) filter (where status = 'completed') as completed_runs,
    count(*) filter (where status = 'partially_completed') as partially_completed_runs,
    count(*) filter (where is_failed) as failed_runs,
    count(*) filter (where not is_terminal) as open_runs,
    count(*) filter (where is_failed) / nullif(count(*) filter (where is_terminal), 0)::double as failure_rate,
    quantile_cont(duration_seconds, 0.5) as p50_duration_seconds,
    quantile_cont(duration_seconds, 0.95) as p95_duration_seconds
from analytics.run_durations
where day is not null
group by day
order by day
"""

_HEATMAP_SQL = f"""
with

busiest as (
    select collection_ref
    from analytics.collection_stats
    order by total_runs desc, collection_ref
    limit {HEATMAP_COLLECTIONS}
),

final as (
    select daily.day, daily.collection_ref, daily.failure_rate, daily.terminal_runs
    from analytics.daily_run_stats as daily
    inner join busiest
        on daily.collection_ref is not distinct from busiest.collection_ref
    where daily.day is not null
)

select * from final
"""

_SPACES_SQL = f"""
select
    space_token,
    space_name,
    total_runs,
    open_runs,
    failure_rate,
    failed_runs,
    terminal_runs,
    p95_duration_seconds,
    strftime(last_modified at time zone 'UTC', '{_UTC}') as last_modified
from analytics.space_stats
order by total_runs desc, space_token
limit {TABLE_ROWS}
"""


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cursor = con.execute(query)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, query: str) -> dict[str, Any]:
    return _rows(con, query)[0]


# ---- formatting --------------------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for limit, divisor, unit in ((120, 1, "s"), (7200, 60, "min"), (172800, 3600, "h")):
        if abs(seconds) < limit:
            return f"{seconds / divisor:.3g} {unit}"
    return f"{seconds / 86400:.3g} d"


def _duration_unit(max_seconds: float) -> tuple[float, str]:
    for limit, divisor, unit in ((120, 1, "seconds"), (7200, 60, "minutes"), (172800, 3600, "hours")):
        if max_seconds < limit:
            return divisor, unit
    return 86400, "days"


def _rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _collection(name: str | None) -> str:
    return NO_COLLECTION if name is None else name


# ---- charts ------------------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.set_facecolor("white")
    return figure


def _style(axes: Any, grid_axis: str) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color(COLOURS["grid"])
    axes.tick_params(colors=COLOURS["text"], labelsize=9, length=0)
    axes.grid(axis=grid_axis, color=COLOURS["grid"], linewidth=0.8)
    axes.set_axisbelow(True)


def _svg(figure: Figure) -> str:
    """The figure as inline SVG: text stays text, and the prolog and metadata (with their URLs) are dropped."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "unpod-runs", "font.size": 9}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    return re.sub(r'width="[\d.]+pt" height="[\d.]+pt"', 'width="100%"', svg, count=1)


def _failure_rate_section(collections: list[dict], overall_rate: float | None) -> _Section:
    rated = [row for row in collections if row["failure_rate"] is not None]
    unrated = len(collections) - len(rated)
    rated.sort(key=lambda row: (-row["failure_rate"], -row["terminal_runs"], _collection(row["collection_ref"])))
    shown = rated[:TOP_COLLECTIONS][::-1]
    caption = (
        f"failed / terminal runs per collection, the {len(shown)} highest of {len(rated)} with a finished run"
        + (f"; {unrated} collection(s) have no terminal run yet, so no rate" if unrated else "")
        + ". The dashed line is the overall rate."
    )
    if not shown:
        return _Section("Failure rate per collection", caption, _empty("No collection has a terminal run yet."))
    figure = _figure(10, 0.9 + 0.32 * len(shown))
    axes = figure.subplots()
    positions = range(len(shown))
    rates = [row["failure_rate"] for row in shown]
    # Scaled to the highest rate, not to 100%: the labels carry the values, the bars the comparison.
    limit = min(1.0, max(0.05, max(rates), overall_rate or 0) * 1.12)
    axes.barh(positions, rates, color=COLOURS["failed"], height=0.62)
    if overall_rate is not None:
        axes.axvline(overall_rate, color=COLOURS["text"], linestyle="--", linewidth=1, zorder=1)
    for position, row in zip(positions, shown):
        label = f"{row['failure_rate']:.0%}  ({row['failed_runs']:,} of {row['terminal_runs']:,})"
        axes.text(row["failure_rate"] + limit * 0.01, position, label, va="center", fontsize=8.5,
                  color=COLOURS["text"], bbox={"facecolor": "white", "edgecolor": "none", "pad": 1}, zorder=3)
    axes.set_yticks(list(positions), [_collection(row["collection_ref"]) for row in shown])
    axes.set_xlim(0, limit * 1.3)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    _style(axes, "x")
    return _Section("Failure rate per collection", caption, _svg(figure))


def _duration_section(collections: list[dict]) -> _Section:
    timed = [row for row in collections if row["p95_duration_seconds"] is not None]
    timed.sort(key=lambda row: (-row["p95_duration_seconds"], _collection(row["collection_ref"])))
    shown = timed[:TOP_COLLECTIONS][::-1]
    caption = (
        f"duration of terminal runs (modified − created): median (p50, dark) and 95th percentile (p95, light), "
        f"the {len(shown)} slowest of {len(timed)} collections by p95"
    )
    if not shown:
        return _Section("Duration per collection", caption, _empty("No terminal run has a duration yet."))
    divisor, unit = _duration_unit(max(row["p95_duration_seconds"] for row in shown))
    figure = _figure(10, 1.1 + 0.32 * len(shown))
    axes = figure.subplots()
    positions = list(range(len(shown)))
    p95 = [row["p95_duration_seconds"] / divisor for row in shown]
    p50 = [row["p50_duration_seconds"] / divisor for row in shown]
    top = max(p95) or 1.0
    axes.barh(positions, p95, color=COLOURS["p95"], height=0.62, label="p95")
    axes.barh(positions, p50, color=COLOURS["p50"], height=0.62, label="p50")
    for position, row, width in zip(positions, shown, p95):
        label = f"p50 {_duration(row['p50_duration_seconds'])} · p95 {_duration(row['p95_duration_seconds'])}"
        axes.text(width + top * 0.01, position, label, va="center", fontsize=8.5, color=COLOURS["text"])
    axes.set_yticks(positions, [_collection(row["collection_ref"]) for row in shown])
    axes.set_xlim(0, top * 1.32)
    axes.set_xlabel(unit, color=COLOURS["muted"])
    axes.legend(loc="lower right", frameon=False, fontsize=8.5)
    _style(axes, "x")
    return _Section("Duration per collection", caption, _svg(figure))


def _days_section(days: list[dict]) -> _Section:
    caption = "runs by the UTC day they were created, split by status now; the line is that day's failure rate"
    if not days:
        return _Section("Runs and failure rate per day", caption, _empty("No run has a creation date."))
    figure = _figure(10, 3.6)
    axes = figure.subplots()
    labels = [day["day"] for day in days]
    bottom = [0] * len(days)
    for key, name in (
        ("completed_runs", "completed"),
        ("partially_completed_runs", "partially_completed"),
        ("failed_runs", "failed"),
        ("open_runs", "open"),
    ):
        values = [day[key] for day in days]
        axes.bar(labels, values, bottom=bottom, color=COLOURS[name], width=0.8, label=name.replace("_", " "))
        bottom = [below + value for below, value in zip(bottom, values)]
    axes.set_ylabel("runs", color=COLOURS["muted"])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _style(axes, "y")
    rate_axes = axes.twinx()
    rate_days = [(day["day"], day["failure_rate"]) for day in days if day["failure_rate"] is not None]
    if rate_days:
        rate_axes.plot(*zip(*rate_days), color=COLOURS["text"], marker="o", markersize=3.5, linewidth=1.4,
                       label="failure rate")
    rate_axes.set_ylim(0, 1)
    rate_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    rate_axes.set_ylabel("failure rate", color=COLOURS["muted"])
    rate_axes.tick_params(colors=COLOURS["text"], labelsize=9, length=0)
    for side in ("top", "left", "bottom", "right"):
        rate_axes.spines[side].set_visible(False)
    _date_axis(axes, labels)
    handles, names = axes.get_legend_handles_labels()
    rate_handles, rate_names = rate_axes.get_legend_handles_labels()
    figure.legend(handles + rate_handles, names + rate_names, loc="outside upper center", ncols=5, frameon=False,
                  fontsize=8.5)
    return _Section("Runs and failure rate per day", caption, _svg(figure))


def _day_durations_section(days: list[dict]) -> _Section:
    timed = [day for day in days if day["p50_duration_seconds"] is not None]
    caption = (
        "duration of the terminal runs created each UTC day, all collections together: p50 and p95 "
        "(logarithmic scale: a few runs that wait for days must not flatten the rest)"
    )
    if not timed:
        return _Section("Duration per day", caption, _empty("No terminal run has a duration yet."))
    figure = _figure(10, 3.2)
    axes = figure.subplots()
    labels = [day["day"] for day in timed]
    p50 = [day["p50_duration_seconds"] for day in timed]
    p95 = [day["p95_duration_seconds"] for day in timed]
    axes.fill_between(labels, p50, p95, color=COLOURS["p95"], alpha=0.45, linewidth=0)
    axes.plot(labels, p95, color=COLOURS["p95"], marker="o", markersize=3.5, linewidth=1.4, label="p95")
    axes.plot(labels, p50, color=COLOURS["p50"], marker="o", markersize=3.5, linewidth=1.6, label="p50")
    # symlog rather than log: a day whose runs all finished within their creation second has a p50 of 0.
    axes.set_yscale("symlog", linthresh=1)
    top = max(p95)
    axes.set_yticks([tick for tick in _DURATION_TICKS if tick <= top * 1.5] or [0, 1])
    axes.yaxis.set_major_formatter(FuncFormatter(lambda seconds, _: _DURATION_TICKS.get(round(seconds), "")))
    axes.yaxis.set_minor_locator(NullLocator())
    axes.set_ylim(0, max(top * 1.6, 2))
    _style(axes, "y")
    _date_axis(axes, labels)
    figure.legend(loc="outside upper center", ncols=2, frameon=False, fontsize=8.5)
    return _Section("Duration per day", caption, _svg(figure))


def _heatmap_section(cells: list[dict]) -> _Section:
    caption = (
        f"failure rate per UTC day for the {HEATMAP_COLLECTIONS} collections with the most runs; "
        "grey: no terminal run that day"
    )
    if not cells:
        return _Section("Failure rate by collection and day", caption, _empty("No run has a creation date."))
    days = sorted({cell["day"] for cell in cells})
    totals: dict[str | None, int] = {}
    for cell in cells:
        totals[cell["collection_ref"]] = totals.get(cell["collection_ref"], 0) + cell["terminal_runs"]
    collections = sorted(totals, key=lambda name: (-totals[name], _collection(name)))
    grid = [[float("nan")] * len(days) for _ in collections]
    for cell in cells:
        if cell["failure_rate"] is not None:
            grid[collections.index(cell["collection_ref"])][days.index(cell["day"])] = cell["failure_rate"]
    colour_map = matplotlib.colormaps["Reds"].with_extremes(bad="#eef0f2")
    figure = _figure(10, 1.2 + 0.34 * len(collections))
    axes = figure.subplots()
    image = axes.imshow(grid, aspect="auto", cmap=colour_map, vmin=0, vmax=1, interpolation="nearest")
    axes.set_yticks(range(len(collections)), [_collection(name) for name in collections])
    step = max(1, -(-len(days) // 9))
    axes.set_xticks(range(0, len(days), step), [days[index].strftime("%b %d") for index in range(0, len(days), step)])
    if len(days) <= 16:
        for row_index, row in enumerate(grid):
            for column_index, value in enumerate(row):
                if value == value:
                    axes.text(column_index, row_index, f"{value:.0%}", ha="center", va="center", fontsize=7.5,
                              color="white" if value > 0.55 else COLOURS["text"])
    axes.tick_params(labelsize=9, length=0, colors=COLOURS["text"])
    for spine in axes.spines.values():
        spine.set_visible(False)
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.8, format=PercentFormatter(1.0))
    colour_bar.outline.set_visible(False)
    colour_bar.ax.tick_params(labelsize=8, length=0)
    return _Section("Failure rate by collection and day", caption, _svg(figure))


def _date_axis(axes: Any, days: list[date]) -> None:
    """Whole days on the axis, padded half a day each side, so a single day does not turn into hours."""
    axes.set_xlim(mdates.date2num(min(days)) - 0.5, mdates.date2num(max(days)) + 0.5)
    if len(days) <= 14 and (max(days) - min(days)).days <= 14:
        axes.xaxis.set_major_locator(mdates.DayLocator())
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        return
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# ---- tables and page ---------------------------------------------------------------------------------------------


def _empty(message: str) -> str:
    return f'<p class="empty">{html.escape(message)}</p>'


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(
        f'<th class="{"num" if index >= numeric_from else ""}">{html.escape(header)}</th>'
        for index, header in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if index >= numeric_from else ""}">{cell}</td>' for index, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rate_cell(rate: float | None) -> str:
    if rate is None:
        return '<span class="muted">no terminal run</span>'
    return f'<span class="rate" style="--rate:{rate * 100:.1f}%">{_rate(rate)}</span>'


def _status_section(statuses: list[dict], headline: dict) -> _Section:
    caption = "where the runs stand now; open = any status other than completed, failed, partially_completed"
    if not statuses:
        return _Section("Runs by status", caption, _empty("No runs loaded yet."))
    rows = []
    for row in statuses:
        name = "NULL (no status)" if row["status"] is None else row["status"]
        tag = "terminal" if row["is_terminal"] else "open"
        unknown = "" if row["is_known_status"] else ' <span class="tag warn">unknown</span>'
        rows.append([
            f"{html.escape(name)} <span class=\"tag\">{tag}</span>{unknown}",
            _count(row["runs"]),
            _rate(row["share_of_runs"]),
            html.escape(row["first_created"].astimezone(timezone.utc).strftime(_UTC) if row["first_created"] else "–"),
        ])
    table = _table(["status", "runs", "share", "oldest created"], rows)
    return _Section("Runs by status", caption, table)


def _tables_section(collections: list[dict]) -> _Section:
    failing = sorted(
        (row for row in collections if row["failure_rate"] is not None),
        key=lambda row: (-row["failure_rate"], -row["failed_runs"], _collection(row["collection_ref"])),
    )[:TABLE_ROWS]
    slowest = sorted(
        (row for row in collections if row["p95_duration_seconds"] is not None),
        key=lambda row: (-row["p95_duration_seconds"], _collection(row["collection_ref"])),
    )[:TABLE_ROWS]
    failing_table = _table(
        ["collection", "failure rate", "failed", "terminal", "open"],
        [
            [
                html.escape(_collection(row["collection_ref"])),
                _rate_cell(row["failure_rate"]),
                _count(row["failed_runs"]),
                _count(row["terminal_runs"]),
                _count(row["open_runs"]),
            ]
            for row in failing
        ],
    )
    slowest_table = _table(
        ["collection", "p50", "p95", "max", "terminal"],
        [
            [
                html.escape(_collection(row["collection_ref"])),
                _duration(row["p50_duration_seconds"]),
                f"<strong>{_duration(row['p95_duration_seconds'])}</strong>",
                _duration(row["max_duration_seconds"]),
                _count(row["terminal_runs"]),
            ]
            for row in slowest
        ],
    )
    if not failing:
        failing_table = _empty("No collection has a terminal run yet.")
    if not slowest:
        slowest_table = _empty("No terminal run has a duration yet.")
    body = f"<h3>Most failing</h3>{failing_table}<h3>Slowest (by p95 duration)</h3>{slowest_table}"
    return _Section("Collections to look at", "from analytics.collection_stats", body)


def _spaces_section(spaces: list[dict]) -> _Section:
    rows = [
        [
            html.escape(row["space_name"] or row["space_token"] or "(no space)")
            + (f' <span class="muted">{html.escape(row["space_token"])}</span>' if row["space_name"] else ""),
            _count(row["total_runs"]),
            _count(row["open_runs"]),
            _rate_cell(row["failure_rate"]),
            _duration(row["p95_duration_seconds"]),
            html.escape(row["last_modified"] or "–"),
        ]
        for row in spaces
    ]
    table = _table(["space", "runs", "open", "failure rate", "p95 duration", "last modified"], rows)
    return _Section("Spaces", f"the {len(rows)} spaces with the most runs, from analytics.space_stats", table)


def _highlights(headline: dict, collections: list[dict]) -> list[str]:
    if not headline["runs"]:
        return ["No runs are loaded yet: run <code>unpod-runs load</code> first."]
    notes = []
    failing = [row for row in collections if row["failure_rate"] is not None and row["failed_runs"]]
    if failing:
        worst = max(failing, key=lambda row: (row["failure_rate"], row["failed_runs"]))
        notes.append(
            f"Most failing collection: <strong>{html.escape(_collection(worst['collection_ref']))}</strong>, "
            f"{_rate(worst['failure_rate'])} ({worst['failed_runs']:,} of {worst['terminal_runs']:,} terminal runs)."
        )
    timed = [row for row in collections if row["p95_duration_seconds"] is not None]
    if timed:
        slowest = max(timed, key=lambda row: row["p95_duration_seconds"])
        notes.append(
            f"Slowest collection: <strong>{html.escape(_collection(slowest['collection_ref']))}</strong>, "
            f"p95 {_duration(slowest['p95_duration_seconds'])} (p50 {_duration(slowest['p50_duration_seconds'])})."
        )
    if headline["open_runs"]:
        notes.append(f"{headline['open_runs']:,} runs are still open (not completed, failed or partially completed).")
    return notes


def _card(label: str, value: str, detail: str = "", wide: bool = False) -> str:
    detail_html = f'<div class="detail">{detail}</div>' if detail else ""
    kind = "card wide" if wide else "card"
    return f'<div class="{kind}"><div class="label">{label}</div><div class="value">{value}</div>{detail_html}</div>'


def _page(headline: dict, latest_load: dict, highlights: list[str], sections: list[_Section]) -> str:
    generated = datetime.now(timezone.utc).strftime(_UTC)
    if latest_load["loads"]:
        scan = " (full scan)" if latest_load["full_scan"] else ""
        load_detail = f"latest load {latest_load['finished_at'] or 'unfinished'}: {latest_load['outcome'] or '–'}{scan}"
    else:
        load_detail = "no load recorded"
    cards = "".join([
        _card("Runs", _count(headline["runs"]), f"{_count(headline['open_runs'])} open"),
        _card("Spaces", _count(headline["spaces"])),
        _card("Collections", _count(headline["collections"])),
        _card(
            "Failure rate",
            _rate(headline["failure_rate"]),
            f"{_count(headline['failed_runs'])} failed of {_count(headline['terminal_runs'])} terminal",
        ),
        _card("p50 duration", _duration(headline["p50_duration_seconds"]), "terminal runs"),
        _card("p95 duration", _duration(headline["p95_duration_seconds"]), "terminal runs"),
        _card("Data as of", html.escape(headline["last_modified"] or "–"), html.escape(load_detail), wide=True),
    ])
    period = (
        f"runs created {headline['first_day']} to {headline['last_day']} (UTC)" if headline["first_day"] else "no runs"
    )
    notes = "".join(f"<li>{note}</li>" for note in highlights)
    body = "".join(
        f'<section><h2>{html.escape(section.title)}</h2><p class="caption">{html.escape(section.caption)}</p>'
        f'<div class="figure">{section.body}</div></section>'
        for section in sections
    )
    return _TEMPLATE.format(
        css=_CSS,
        period=html.escape(period),
        generated=html.escape(generated),
        cards=cards,
        notes=notes,
        body=body,
    )


_CSS = """
:root { --text: #2b2f36; --muted: #6b7280; --line: #e6e8eb; --bg: #f6f7f9; --failed: #c8453b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
       font: 14px/1.45 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0; font-size: 24px; }
header p { margin: 4px 0 0; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 20px 0 8px; }
.card { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; margin-top: 2px; white-space: nowrap; }
.card.wide { grid-column: span 2; }
.card.wide .value { font-size: 20px; padding-top: 3px; }
.card .detail { color: var(--muted); font-size: 12px; margin-top: 2px; }
.highlights { background: white; border: 1px solid var(--line); border-left: 4px solid var(--failed);
              border-radius: 10px; padding: 10px 16px 10px 32px; margin: 12px 0 0; }
.highlights li { margin: 3px 0; }
section { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px;
          margin-top: 18px; }
section h2 { margin: 0; font-size: 17px; }
section h3 { margin: 14px 0 4px; font-size: 14px; }
.caption { margin: 2px 0 10px; color: var(--muted); font-size: 13px; }
.figure svg { display: block; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 5px 8px; overflow-wrap: anywhere; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; white-space: nowrap; }
.rate { display: inline-block; min-width: 64px; padding: 1px 6px; border-radius: 4px;
        background: linear-gradient(90deg, rgba(200, 69, 59, .28) var(--rate), transparent var(--rate)); }
.tag { display: inline-block; font-size: 11px; color: var(--muted); border: 1px solid var(--line);
       border-radius: 4px; padding: 0 5px; margin-left: 4px; }
.tag.warn { color: #8a5a00; border-color: #e3a33b; background: #fff6e0; }
.muted { color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unpod runs report</title>
<style>{css}</style>
</head>
<body>
<main>
<header>
<h1>Unpod runs</h1>
<p>{period} · generated {generated}</p>
</header>
<div class="cards">{cards}</div>
<ul class="highlights">{notes}</ul>
{body}
<footer>Terminal statuses: completed, failed, partially_completed (partially completed is not a failure).
Failure rate = failed / terminal runs. Durations are modified − created of terminal runs; p50/p95 are continuous
quantiles. Days are UTC dates of <code>created</code>. Runs the API no longer lists are left out.
Built from the <code>analytics</code> models of the DuckDB file.</footer>
</main>
</body>
</html>
"""
