"""The HTML report that ``load`` and ``demo`` write: the headline numbers and charts of the analytics models.

One self-contained file: inline CSS, charts as inline SVG built here as plain strings (text kept as text, in
the page's font), no script and no external URL, so it opens offline and can be mailed around. Every figure is read
from the ``analytics`` models, with timestamps formatted in UTC in SQL so the reader's TimeZone changes nothing.
"""

from __future__ import annotations

import html
import logging
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

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
    latest_load = next(iter(_rows(con, _LATEST_LOAD_SQL)), None)
    collections = _rows(con, "select * from analytics.collection_stats")
    days = _rows(con, _DAYS_SQL)
    trends = _rows(con, _TRENDS_SQL)
    stuck = _rows(con, _STUCK_SQL)
    sections = [_status_section(_rows(con, _STATUS_SQL), headline)]
    if headline["total_runs"]:
        sections += [
            _trends_section(trends),
            _stuck_section(stuck, headline),
            _failure_rate_section(collections, headline["failure_rate"]),
            _duration_section(collections),
            _days_section(days),
            _day_durations_section(days),
            _heatmap_section(_rows(con, _HEATMAP_SQL)),
            _exact_section(headline),
            _queue_section(_rows(con, _QUEUE_SQL)),
            _recovery_section(_rows(con, _RECOVERY_SQL)),
            _tables_section(collections),
            _spaces_section(_rows(con, _SPACES_SQL)),
        ]
    return _page(headline, latest_load, _highlights(headline, collections, trends, stuck), sections)


# ---- queries ---------------------------------------------------------------------------------------------------

_HEADLINE_SQL = f"""
select
    * exclude (last_modified, first_created, last_created),
    strftime(last_modified at time zone 'UTC', '{_UTC}') as last_modified,
    strftime(first_created at time zone 'UTC', '%Y-%m-%d') as first_day,
    strftime(last_created at time zone 'UTC', '%Y-%m-%d') as last_day
from analytics.overall_stats
"""

_LATEST_LOAD_SQL = f"""
select
    strftime(finished_at at time zone 'UTC', '{_UTC}') as finished_at,
    outcome,
    full_scan
from analytics.load_history
order by started_at desc nulls last
limit 1
"""

_STATUS_SQL = "select * from analytics.runs_by_status order by runs desc, status"

_DAYS_SQL = "select * from analytics.daily_overall_stats where day is not null order by day"

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


# Regressions first, then the collections whose failure rate rose most.
_TRENDS_SQL = """
select *
from analytics.collection_trends
order by is_regression desc, failure_rate_change desc nulls last, p95_exact_change_ratio desc nulls last,
    collection_ref
"""

# The runs unchanged longest: the stuck ones. Before the status history knows a run, its time unchanged is unknown.
_STUCK_SQL = f"""
select
    run_id,
    collection_ref,
    coalesce(space_name, space_token) as space,
    status,
    age_seconds,
    unchanged_for_seconds,
    strftime(created at time zone 'UTC', '{_UTC}') as created
from analytics.open_runs
order by unchanged_for_seconds desc nulls last, created, run_id
limit {TABLE_ROWS}
"""

_QUEUE_SQL = f"""
select *
from analytics.collection_time_in_status
where queued_runs + running_runs + queued_now_runs + running_now_runs + held_now_runs > 0
order by p50_queued_max_seconds desc nulls last, max_queued_now_seconds desc nulls last, collection_ref
limit {TABLE_ROWS}
"""

# Failing collections first, then the ones whose last completion is oldest.
_RECOVERY_SQL = f"""
select
    freshness.collection_ref,
    freshness.seconds_since_last_completed,
    freshness.open_runs,
    recovery.failed_runs,
    recovery.recovered_incidents,
    recovery.mean_time_to_recovery_seconds,
    recovery.max_time_to_recovery_seconds,
    coalesce(recovery.is_failing_now, false) as is_failing_now,
    recovery.failures_since_last_completed,
    strftime(recovery.failing_since at time zone 'UTC', '{_UTC}') as failing_since
from analytics.collection_freshness as freshness
left join analytics.collection_recovery as recovery
    on recovery.collection_ref is not distinct from freshness.collection_ref
order by is_failing_now desc, freshness.seconds_since_last_completed desc nulls first, freshness.collection_ref
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
#
# Hand-built inline SVG: a chart is a viewBox WIDTH units wide, drawn at the width of its section (about 1:1 on a
# desktop, scaled down with its text on a narrow screen). Text is SVG text in the page's font; its width is
# estimated from Arial's advance widths (a little generously), which is all the layout needs: margins for the
# axis labels, room for the value labels, and where a legend starts.

WIDTH = 1000
FONT_SIZE = 12.5
LABEL_SIZE = 12
ROW = 32                  # one bar of a horizontal bar chart
BAR = 0.62                # bar thickness, as a share of its row or day
MAX_NAME_WIDTH = 380      # a longer axis label is cut with an ellipsis; the full text is its tooltip
REDS = ((255, 245, 240), (254, 224, 210), (252, 187, 161), (252, 146, 114), (251, 106, 74), (239, 59, 44),
        (203, 24, 29), (165, 15, 21), (103, 0, 13))   # matplotlib's "Reds" (ColorBrewer), 0 → 1
NO_RATE = "#eef0f2"
# Arial's advance widths of printable ASCII, in thousandths of the font size; other characters count as 0.6.
_ADVANCE = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667,
    556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556,
    556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722,
    500, 500, 500, 334, 260, 334, 584,
)


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    """The width of ``text`` in a sans-serif font, over- rather than underestimated (fonts differ)."""
    thousandths = sum(_ADVANCE[ord(char) - 32] if 32 <= ord(char) < 127 else 600 for char in text)
    return thousandths * size / 1000 * 1.08


def _fit(text: str, width: float, size: float = FONT_SIZE) -> str:
    """``text``, cut with an ellipsis to fit ``width``."""
    if _text_width(text, size) <= width:
        return text
    text = text[:int(width / (size * 0.2))]    # no character is narrower: a huge name costs no more than a short one
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _n(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zero."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attributes(attributes: dict[str, Any]) -> str:
    return "".join(
        f' {name.replace("_", "-")}="{_n(value) if isinstance(value, float) else html.escape(str(value))}"'
        for name, value in attributes.items()
        if value is not None
    )


def _text(x: float, y: float, content: str, tooltip: str | None = None, **attributes: Any) -> str:
    """A text vertically centred on ``y``; ``content`` (and the tooltip) escaped here."""
    title = f"<title>{html.escape(tooltip)}</title>" if tooltip else ""
    attributes = {"x": float(x), "y": float(y), "dy": "0.35em", **attributes}
    return f"<text{_attributes(attributes)}>{title}{html.escape(content)}</text>"


def _rect(x: float, y: float, width: float, height: float, fill: str, **attributes: Any) -> str:
    return (
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(width, 0))}" height="{_n(max(height, 0))}" fill="{fill}"'
        f"{_attributes(attributes)}/>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, **attributes: Any) -> str:
    return (f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}"'
            f'{_attributes(attributes)}/>')


def _polyline(points: list[tuple[float, float]], stroke: str, width: float, markers: bool) -> str:
    path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
    line = (f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="{_n(width)}" '
            'stroke-linejoin="round" stroke-linecap="round"/>')
    if not markers:
        return line
    circles = "".join(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="2.6"/>' for x, y in points)
    return f'{line}<g fill="{stroke}">{circles}</g>'


def _svg(height: float, label: str, parts: list[str]) -> str:
    """The chart: scaled to the width of its section, text in the page's font, overflow shown rather than cut."""
    return (
        f'<svg viewBox="0 0 {WIDTH} {_n(height)}" width="100%" role="img" aria-label="{html.escape(label)}" '
        f'font-size="{FONT_SIZE}" fill="{COLOURS["text"]}" overflow="visible">' + "".join(parts) + "</svg>"
    )


def _ticks(top: float, bins: int = 6, integer: bool = False) -> tuple[list[float], float]:
    """Round ticks from 0 to at most ``top`` (steps of 1, 2 or 5 × 10ⁿ), and the step."""
    top = top if top > 0 else 1.0
    raw = top / bins
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(multiple * magnitude for multiple in (1, 2, 5, 10) if multiple * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, float(round(step)))
    return [index * step for index in range(int(top / step + 1e-9) + 1)], step


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _legend(items: list[tuple[str, str, str]], centre: float, y: float, anchor: str = "middle") -> list[str]:
    """One row of legend entries ``(kind, colour, label)``, kind "box" or "line", centred on (or ending at) x."""
    widths = [22 + _text_width(label, LABEL_SIZE) for _, _, label in items]
    total = sum(widths) + 18 * (len(items) - 1)
    x = centre - total / 2 if anchor == "middle" else centre - total
    parts = []
    for (kind, colour, label), width in zip(items, widths):
        if kind == "box":
            parts.append(_rect(x, y - 5, 16, 10, colour))
        else:
            parts.append(_line(x, y, x + 16, y, colour, stroke_width=1.6))
            parts.append(f'<circle cx="{_n(x + 8)}" cy="{_n(y)}" r="2.6" fill="{colour}"/>')
        parts.append(_text(x + 22, y, label, font_size=LABEL_SIZE))
        x += width + 18
    return parts


def _hbars(
    names: list[str],
    bars: list[list[tuple[float, str]]],
    notes: list[str],
    minimum_top: float,
    tick_label: Any,
    label: str,
    axis_title: str | None = None,
    legend: list[tuple[str, str, str]] | None = None,
    reference: tuple[float, str] | None = None,
) -> str:
    """Horizontal bars, the first row at the top: per row, bars drawn over each other (the longest first) and a
    note after the longest; the scale reaches at least ``minimum_top`` and leaves room for every note."""
    name_width = min(MAX_NAME_WIDTH, max(_text_width(name) for name in names))
    left = 12 + name_width + 10
    right = WIDTH - 8
    top = 26 if reference else 10
    plot_width = right - left
    # Scaled so that every note fits after its bar (and the scale reaches minimum_top).
    scale = plot_width / minimum_top
    for row, note in zip(bars, notes):
        end = max(value for value, _ in row)
        if end > 0:
            scale = min(scale, (plot_width - 6 - _text_width(note, LABEL_SIZE)) / end)
    scale = max(scale, plot_width / (minimum_top * 4))   # a pathological note must not squash the bars
    ticks, step = _ticks(plot_width / scale)
    bottom = top + ROW * len(names)
    parts = [_line(left + tick * scale, top, left + tick * scale, bottom, COLOURS["grid"]) for tick in ticks[1:]]
    parts += [_line(left, top, left, bottom, COLOURS["grid"]), _line(left, bottom, right, bottom, COLOURS["grid"])]
    for index, (name, row, note) in enumerate(zip(names, bars, notes)):
        centre = top + ROW * (index + 0.5)
        shown = _fit(name, MAX_NAME_WIDTH)
        parts.append(_text(left - 8, centre, shown, tooltip=name if shown != name else None, text_anchor="end"))
        for value, colour in sorted(row, key=lambda bar: -bar[0]):
            parts.append(_rect(left, centre - ROW * BAR / 2, value * scale, ROW * BAR, colour))
    if reference:
        value, caption = reference
        x = left + value * scale
        parts.append(_line(x, top - 4, x, bottom, COLOURS["text"], stroke_dasharray="5 3", stroke_width=1.0))
        parts.append(_text(x, top - 14, caption, font_size=LABEL_SIZE, fill=COLOURS["muted"], text_anchor="middle"))
    # The notes last, on white, so the reference line never runs through one.
    for index, (row, note) in enumerate(zip(bars, notes)):
        x, y = left + max(value for value, _ in row) * scale + 3, top + ROW * (index + 0.5)
        parts.append(_rect(x, y - 10, _text_width(note, LABEL_SIZE) * 0.96 + 4, 20, "white"))
        parts.append(_text(x + 2, y, note, font_size=LABEL_SIZE))
    parts += [_text(left + tick * scale, bottom + 14, tick_label(tick, step), text_anchor="middle") for tick in ticks]
    height = bottom + 28
    if axis_title or legend:
        if axis_title:
            parts.append(
                _text((left + right) / 2, bottom + 36, axis_title, fill=COLOURS["muted"], text_anchor="middle")
            )
        if legend:
            parts += _legend(legend, right, bottom + 36, anchor="end")
        height = bottom + 50
    return _svg(height, label, parts)


def _failure_rate_section(collections: list[dict], overall_rate: float | None) -> _Section:
    rated = [row for row in collections if row["failure_rate"] is not None]
    unrated = len(collections) - len(rated)
    rated.sort(key=lambda row: (-row["failure_rate"], -row["terminal_runs"], _collection(row["collection_ref"])))
    shown = rated[:TOP_COLLECTIONS]
    caption = (
        f"failed / terminal runs per collection, the {len(shown)} highest of {len(rated)} with a finished run"
        + (f"; {unrated} collection(s) have no terminal run yet, so no rate" if unrated else "")
        + ". The dashed line is the overall rate."
    )
    if not shown:
        return _Section("Failure rate per collection", caption, _empty("No collection has a terminal run yet."))
    # Scaled to the highest rate, not to 100%: the labels carry the values, the bars the comparison.
    limit = min(1.0, max(0.05, shown[0]["failure_rate"], overall_rate or 0) * 1.12)
    chart = _hbars(
        [_collection(row["collection_ref"]) for row in shown],
        [[(row["failure_rate"], COLOURS["failed"])] for row in shown],
        [f"{row['failure_rate']:.0%}  ({row['failed_runs']:,} of {row['terminal_runs']:,})" for row in shown],
        minimum_top=limit * 1.3,
        tick_label=lambda tick, step: f"{tick * 100:.{_decimals(step * 100)}f}%",
        label="Failure rate per collection",
        reference=None if overall_rate is None else (overall_rate, f"overall {_rate(overall_rate)}"),
    )
    return _Section("Failure rate per collection", caption, chart)


def _duration_section(collections: list[dict]) -> _Section:
    timed = [row for row in collections if row["p95_duration_seconds"] is not None]
    timed.sort(key=lambda row: (-row["p95_duration_seconds"], _collection(row["collection_ref"])))
    shown = timed[:TOP_COLLECTIONS]
    caption = (
        f"duration of terminal runs (modified − created): median (p50, dark) and 95th percentile (p95, light), "
        f"the {len(shown)} slowest of {len(timed)} collections by p95"
    )
    if not shown:
        return _Section("Duration per collection", caption, _empty("No terminal run has a duration yet."))
    divisor, unit = _duration_unit(max(row["p95_duration_seconds"] for row in shown))
    top = shown[0]["p95_duration_seconds"] / divisor or 1.0
    chart = _hbars(
        [_collection(row["collection_ref"]) for row in shown],
        [
            [
                (row["p95_duration_seconds"] / divisor, COLOURS["p95"]),
                (row["p50_duration_seconds"] / divisor, COLOURS["p50"]),
            ]
            for row in shown
        ],
        [
            f"p50 {_duration(row['p50_duration_seconds'])} · p95 {_duration(row['p95_duration_seconds'])}"
            for row in shown
        ],
        minimum_top=top * 1.32,
        tick_label=lambda tick, step: f"{tick:,.{_decimals(step)}f}",
        label="Duration per collection",
        axis_title=unit,
        legend=[("box", COLOURS["p50"], "p50"), ("box", COLOURS["p95"], "p95")],
    )
    return _Section("Duration per collection", caption, chart)


@dataclass(frozen=True)
class _DayAxis:
    """Whole UTC days from ``first`` to ``last`` across [left, right], padded half a day each side."""

    first: date
    last: date
    left: float
    right: float

    @property
    def slot(self) -> float:
        return (self.right - self.left) / ((self.last - self.first).days + 1)

    def x(self, day: date) -> float:
        return self.left + ((day - self.first).days + 0.5) * self.slot

    def ticks(self) -> list[tuple[date, str]]:
        """Every day up to two weeks; Mondays up to 45 days; the 1st (as its month) and 15th up to 4 months;
        months, then every 2nd, 3rd, 6th or 12th month beyond. The first month label and every January carry
        the year."""
        span = (self.last - self.first).days + 1
        days = [self.first + timedelta(days=offset) for offset in range(span)]
        if span <= 14:
            return [(day, day.strftime("%b %d")) for day in days]
        if span <= 45:
            return [(day, day.strftime("%b %d")) for day in days if day.weekday() == 0]
        if span <= 130:
            chosen = [day for day in days if day.day in (1, 15)]
        else:
            every = next((months for limit, months in ((400, 1), (800, 2), (1200, 3), (2400, 6)) if span <= limit), 12)
            chosen = [day for day in days if day.day == 1 and (day.month - 1) % every == 0]
        ticks, dated = [], False
        for day in chosen:
            if day.day != 1:
                ticks.append((day, str(day.day)))
            elif not dated or day.month == 1:
                ticks.append((day, day.strftime("%b %Y")))
                dated = True
            else:
                ticks.append((day, day.strftime("%b")))
        return ticks

    def draw(self, bottom: float) -> list[str]:
        return [_text(self.x(day), bottom + 14, label, text_anchor="middle") for day, label in self.ticks()]


def _days_section(days: list[dict]) -> _Section:
    caption = "runs by the UTC day they were created, split by status now; the line is that day's failure rate"
    if not days:
        return _Section("Runs and failure rate per day", caption, _empty("No run has a creation date."))
    stacks = (
        ("completed_runs", "completed"),
        ("partially_completed_runs", "partially_completed"),
        ("failed_runs", "failed"),
        ("open_runs", "open"),
    )
    left, right, top, bottom = 62, WIDTH - 62, 34, 322
    axis = _DayAxis(days[0]["day"], days[-1]["day"], left, right)
    highest = max(day["runs"] for day in days)
    ticks, _ = _ticks(highest * 1.05, bins=10, integer=True)
    runs_top = max(highest * 1.05, ticks[-1])
    y = lambda runs: bottom - (bottom - top) * runs / runs_top  # noqa: E731
    rate_y = lambda rate: bottom - (bottom - top) * rate  # noqa: E731
    parts = [_line(left, y(tick), right, y(tick), COLOURS["grid"]) for tick in ticks[1:]]
    parts += [_line(left, top, left, bottom, COLOURS["grid"]), _line(left, bottom, right, bottom, COLOURS["grid"])]
    # Bars a pixel or two wide touch, and stay sharp rather than blur into their neighbours.
    narrow = axis.slot < 3
    width = axis.slot if narrow else min(axis.slot * 0.8, 40)
    parts.append('<g shape-rendering="crispEdges">' if narrow else "<g>")
    for day in days:
        x = axis.x(day["day"]) - width / 2
        rects, below = [], 0
        for key, name in stacks:
            if day[key]:
                rects.append(_rect(x, y(below + day[key]), width, y(below) - y(below + day[key]), COLOURS[name]))
                below += day[key]
        tooltip = (
            f"{day['day']:%Y-%m-%d}: {day['runs']:,} runs, {day['completed_runs']:,} completed, "
            f"{day['partially_completed_runs']:,} partially completed, {day['failed_runs']:,} failed, "
            f"{day['open_runs']:,} open; failure rate {_rate(day['failure_rate'])}"
        )
        parts.append(f"<g><title>{html.escape(tooltip)}</title>{''.join(rects)}</g>")
    parts.append("</g>")
    rated = [(axis.x(day["day"]), rate_y(day["failure_rate"])) for day in days if day["failure_rate"] is not None]
    if rated:
        few = len(rated) <= 150
        parts.append(_polyline(rated, COLOURS["text"], 1.4 if few else 1.0, markers=few))
    parts += [_text(left - 8, y(tick), f"{tick:,.0f}", text_anchor="end") for tick in ticks]
    parts += [_text(right + 8, rate_y(tick / 100), f"{tick}%") for tick in range(0, 101, 20)]
    parts += axis.draw(bottom)
    parts.append(_text(16, (top + bottom) / 2, "runs", fill=COLOURS["muted"], text_anchor="middle",
                       transform=f"rotate(-90 16 {_n((top + bottom) / 2)})"))
    parts.append(_text(WIDTH - 12, (top + bottom) / 2, "failure rate", fill=COLOURS["muted"], text_anchor="middle",
                       transform=f"rotate(-90 {WIDTH - 12} {_n((top + bottom) / 2)})"))
    legend = [("box", COLOURS[name], name.replace("_", " ")) for _, name in stacks]
    parts += _legend(legend + [("line", COLOURS["text"], "failure rate")], (left + right) / 2, 12)
    chart = _svg(bottom + 26, "Runs and failure rate per day", parts)
    return _Section("Runs and failure rate per day", caption, chart)


def _log_seconds(seconds: float) -> float:
    """A symmetric-log scale, linear below a second: a day whose runs all finished within their creation second
    has a p50 of 0, which a plain log scale cannot draw."""
    return seconds if seconds < 1 else 1 + math.log10(seconds)


def _day_durations_section(days: list[dict]) -> _Section:
    timed = [day for day in days if day["p50_duration_seconds"] is not None]
    caption = (
        "duration of the terminal runs created each UTC day, all collections together: p50 and p95 "
        "(logarithmic scale: a few runs that wait for days must not flatten the rest)"
    )
    if not timed:
        return _Section("Duration per day", caption, _empty("No terminal run has a duration yet."))
    left, right, top, bottom = 62, WIDTH - 12, 30, 286
    axis = _DayAxis(days[0]["day"], days[-1]["day"], left, right)
    highest = max(day["p95_duration_seconds"] for day in timed)
    ticks = [tick for tick in _DURATION_TICKS if tick <= highest * 1.5]
    ticks = ticks if len(ticks) > 1 else [0, 1]
    scale_top = _log_seconds(max(highest * 1.6, 2))
    y = lambda seconds: bottom - (bottom - top) * _log_seconds(max(seconds, 0)) / scale_top  # noqa: E731
    p50 = [(axis.x(day["day"]), y(day["p50_duration_seconds"])) for day in timed]
    p95 = [(axis.x(day["day"]), y(day["p95_duration_seconds"])) for day in timed]
    parts = [_line(left, y(tick), right, y(tick), COLOURS["grid"]) for tick in ticks[1:]]
    parts += [_line(left, top, left, bottom, COLOURS["grid"]), _line(left, bottom, right, bottom, COLOURS["grid"])]
    band = " ".join(f"{_n(x)},{_n(y)}" for x, y in p95 + p50[::-1])
    parts.append(f'<polygon points="{band}" fill="{COLOURS["p95"]}" fill-opacity="0.45"/>')
    markers = len(timed) <= 150
    parts += [_polyline(p95, COLOURS["p95"], 1.4, markers), _polyline(p50, COLOURS["p50"], 1.6, markers)]
    parts += [_text(left - 8, y(tick), _DURATION_TICKS[tick], text_anchor="end") for tick in ticks]
    parts += axis.draw(bottom)
    parts += _legend([("line", COLOURS["p95"], "p95"), ("line", COLOURS["p50"], "p50")], (left + right) / 2, 10)
    return _Section("Duration per day", caption, _svg(bottom + 26, "Duration per day", parts))


def _red(rate: float) -> str:
    """The colour of a failure rate (0 to 1) on matplotlib's "Reds" scale."""
    position = min(max(rate, 0.0), 1.0) * (len(REDS) - 1)
    index = min(int(position), len(REDS) - 2)
    share = position - index
    low, high = REDS[index], REDS[index + 1]
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high))


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
    row_of = {name: index for index, name in enumerate(collections)}
    column_of = {day: index for index, day in enumerate(days)}
    grid: list[list[float | None]] = [[None] * len(days) for _ in collections]
    for cell in cells:
        grid[row_of[cell["collection_ref"]]][column_of[cell["day"]]] = cell["failure_rate"]
    names = [_collection(name) for name in collections]
    left = 12 + min(MAX_NAME_WIDTH, max(_text_width(name) for name in names)) + 10
    right, top, row = WIDTH - 96, 6, 34
    bottom = top + row * len(collections)
    column = (right - left) / len(days)
    parts = [_rect(left, top, right - left, bottom - top, NO_RATE), '<g shape-rendering="crispEdges">']
    for row_index, rates in enumerate(grid):
        # Neighbouring cells of one colour are one rectangle: a quiet collection is a few long runs of "0%".
        colours = [None if rate is None else _red(rate) for rate in rates]
        start = 0
        for index in range(1, len(colours) + 1):
            if index == len(colours) or colours[index] != colours[start]:
                if colours[start] is not None:
                    parts.append(_rect(left + start * column, top + row_index * row, (index - start) * column, row,
                                       colours[start]))
                start = index
    parts.append("</g>")
    if len(days) <= 16:
        for row_index, rates in enumerate(grid):
            for column_index, rate in enumerate(rates):
                if rate is not None:
                    parts.append(_text(left + (column_index + 0.5) * column, top + (row_index + 0.5) * row,
                                       f"{rate:.0%}", font_size=11, text_anchor="middle",
                                       fill="white" if rate > 0.55 else COLOURS["text"]))
    for index, name in enumerate(names):
        shown = _fit(name, MAX_NAME_WIDTH)
        parts.append(_text(left - 8, top + row * (index + 0.5), shown, tooltip=name if shown != name else None,
                           text_anchor="end"))
    label = "%b %d" if (days[-1] - days[0]).days < 365 else "%b %Y"
    # At most 9 labels, and never closer than their width.
    step = max(1, -(-len(days) // 9), math.ceil((_text_width("May 2025") + 12) / column))
    parts += [_text(left + (index + 0.5) * column, bottom + 14, days[index].strftime(label), text_anchor="middle")
              for index in range(0, len(days), step)]
    # The colour bar, 0% at the bottom: 80% of the height, all of it for a row or two, ticks at least 14 apart.
    bar_height = (bottom - top) * (0.8 if len(collections) > 3 else 1.0)
    bar_top = top + (bottom - top - bar_height) / 2
    tick_step = next(step for step in (20, 25, 50, 100) if bar_height * step / 100 >= 14)
    stops = "".join(
        f'<stop offset="{index / (len(REDS) - 1):.3f}" stop-color="{_red(index / (len(REDS) - 1))}"/>'
        for index in range(len(REDS))
    )
    parts.append(
        f'<defs><linearGradient id="unpod-runs-reds" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient></defs>'
    )
    parts.append(_rect(right + 30, bar_top, 14, bar_height, "url(#unpod-runs-reds)"))
    parts += [_text(right + 50, bar_top + bar_height * (1 - tick / 100), f"{tick}%", font_size=11)
              for tick in range(0, 101, tick_step)]
    chart = _svg(bottom + 26, "Failure rate by collection and day", parts)
    return _Section("Failure rate by collection and day", caption, chart)


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


def _bracket(low: float | None, high: float | None) -> str:
    """A time known only within bounds, as "low – high" (one value when they agree)."""
    if low is None and high is None:
        return "–"
    if low == high:
        return _duration(low)
    return f"{_duration(low)} – {_duration(high)}"


def _change(before: str, after: str, worse: bool) -> str:
    arrow = '<span class="worse">→</span>' if worse else "→"
    return f"{before} {arrow} {'<strong>' + after + '</strong>' if worse else after}"


def _trends_section(trends: list[dict]) -> _Section:
    regressions = [row for row in trends if row["is_regression"]]
    caption = (
        "runs created in the last 7 days (to the API's clock at the latest load) against the 7 days before, from "
        "analytics.collection_trends. Regression: the failure rate rose by 5 points or more and a two-proportion "
        "z-test gives z ≥ 1.96 (20+ terminal runs in each week), or the p95 of the exact durations rose by half and "
        "by 60 s or more (50+ exact durations in each week)"
    )
    if not trends:
        return _Section("Trends: last 7 days against the 7 before", caption,
                        _empty("No run was created in the last 14 days."))
    shown = regressions + [row for row in trends if not row["is_regression"]][:max(0, TABLE_ROWS - len(regressions))]
    rows = []
    for row in shown:
        tags = []
        if row["is_failure_regression"]:
            tags.append('<span class="tag bad">failing more</span>')
        if row["is_duration_regression"]:
            tags.append('<span class="tag bad">slower</span>')
        rows.append([
            html.escape(_collection(row["collection_ref"])) + "".join(tags),
            _change(_rate(row["prior_7d_failure_rate"]), _rate(row["last_7d_failure_rate"]),
                    row["is_failure_regression"]),
            f"{_count(row['prior_7d_terminal_runs'])} → {_count(row['last_7d_terminal_runs'])}",
            _change(_duration(row["prior_7d_p95_exact_duration_seconds"]),
                    _duration(row["last_7d_p95_exact_duration_seconds"]), row["is_duration_regression"]),
            f"{_count(row['prior_7d_exact_duration_runs'])} → {_count(row['last_7d_exact_duration_runs'])}",
        ])
    headline = (f"<p><strong>{len(regressions)} of {len(trends)} collections got worse.</strong></p>" if regressions
                else f"<p>No regression among {len(trends)} collections with recent runs.</p>")
    table = _table(["collection", "failure rate", "terminal runs", "p95 (exact durations)", "exact durations"], rows)
    return _Section("Trends: last 7 days against the 7 before", caption, headline + table)


def _stuck_section(stuck: list[dict], headline: dict) -> _Section:
    caption = (
        "the open runs unchanged longest, from analytics.open_runs: age and time unchanged in the API's clock at the "
        "last load that saw them (unchanged = same status and modified)"
    )
    if not stuck:
        return _Section("Stuck runs", caption, _empty("No run is open."))
    rows = [
        [
            f"<code>{html.escape(row['run_id'] or '–')}</code>",
            html.escape(_collection(row["collection_ref"])),
            html.escape(row["space"] or "–"),
            html.escape(row["status"] or "NULL"),
            _duration(row["age_seconds"]),
            f"<strong>{_duration(row['unchanged_for_seconds'])}</strong>",
        ]
        for row in stuck
    ]
    summary = (
        f"<p>{_count(headline['open_runs'])} runs are open; <strong>{_count(headline['unchanged_a_day_runs'])} have "
        f"not changed for a day or more</strong>, in {_count(headline['unchanged_a_day_collections'])} "
        "collection(s).</p>"
    )
    table = _table(["run", "collection", "space", "status", "age", "unchanged for"], rows, numeric_from=4)
    return _Section("Stuck runs", caption, summary + table)


def _exact_section(headline: dict) -> _Section:
    caption = (
        "how far durations can be trusted (finish_source in analytics.run_durations): exact when the API moved "
        "modified at the finish; observed when a load saw the run open and a later one saw it finished with the "
        "same modified (the API did not bump it: the duration lies between the two loads); unknown when a run was "
        "first seen finished with modified = created (an instant run, or a finish nobody saw)"
    )
    if not headline["terminal_runs"]:
        return _Section("How many durations are exact", caption, _empty("No terminal run yet."))
    rows = [
        ["exact (modified)", _count(headline["exact_duration_runs"]), _rate(headline["exact_duration_share"]),
         _duration(headline["p50_exact_duration_seconds"]), _duration(headline["p95_exact_duration_seconds"])],
        ["observed (no bump)", _count(headline["observed_duration_runs"]), _rate(headline["observed_duration_share"]),
         f"{_duration(headline['observed_min_duration_seconds'])} to "
         f"{_duration(headline['observed_max_duration_seconds'])}",
         f"known within {_duration(headline['observed_avg_bracket_seconds'])} on average"],
        ["unknown (modified = created)", _count(headline["unknown_duration_runs"]),
         _rate(headline["unknown_duration_share"]),
         "0 s as reported", "instant, or a finish nobody saw"],
    ]
    table = _table(["finish", "runs", "share", "p50 / range", "p95 / precision"], rows)
    note = ("<p class=\"muted\">An observed duration is known only as a range: at least until the last load that "
            "saw the run open, at most until the first that saw it finished (the hourly schedule makes that an "
            "hour). The duration charts above use duration_seconds as SPEC defines it (modified − created) for every "
            "terminal run; collection_stats and daily_run_stats give p50/p95 of the exact ones beside it.</p>")
    return _Section("How many durations are exact", caption, table + note)


def _queue_section(queues: list[dict]) -> _Section:
    caption = (
        "time queued (pending, scheduled) apart from time running (running, in_progress), from "
        "analytics.collection_time_in_status: medians over the runs that left the phase, as a range, since a "
        "load sees a status only when it runs (nightly: within a day; hourly: within an hour). Runs that started "
        "and finished between two loads are not here"
    )
    if not queues:
        return _Section("Queue time and run time", caption, _empty("No load has seen a run open yet."))
    rows = [
        [
            html.escape(_collection(row["collection_ref"])),
            _bracket(row["p50_queued_min_seconds"], row["p50_queued_max_seconds"]),
            _count(row["queued_runs"]),
            _bracket(row["p50_running_min_seconds"], row["p50_running_max_seconds"]),
            _count(row["running_runs"]),
            _count(row["queued_now_runs"]),
            _duration(row["max_queued_now_seconds"]),
            _count(row["held_now_runs"]),
        ]
        for row in queues
    ]
    table = _table(["collection", "median queued", "runs", "median running", "runs", "queued now",
                    "longest queued now", "held now"], rows)
    return _Section("Queue time and run time", caption, table)


def _recovery_section(collections: list[dict]) -> _Section:
    caption = (
        "from analytics.collection_recovery and analytics.collection_freshness: time to recovery (runs finished in "
        "the last 30 days) runs from the first failure of a run of failures to the next completed run; time since the last completed run is at "
        "the API's clock of the latest load. Failing collections first, then the longest without a completion"
    )
    if not collections:
        return _Section("Recovery and freshness", caption, _empty("No collection has runs."))
    rows = []
    for row in collections:
        failing = (f'<span class="tag bad">failing since {html.escape(row["failing_since"])}, '
                   f'{row["failures_since_last_completed"]:,} failed</span>' if row["is_failing_now"] else "")
        rows.append([
            html.escape(_collection(row["collection_ref"])) + failing,
            _duration(row["seconds_since_last_completed"]) if row["seconds_since_last_completed"] is not None
            else '<span class="muted">never completed</span>',
            _duration(row["mean_time_to_recovery_seconds"]),
            _duration(row["max_time_to_recovery_seconds"]),
            _count(row["recovered_incidents"]),
            _count(row["open_runs"]),
        ])
    table = _table(["collection", "since last completed", "mean time to recovery", "longest", "recoveries", "open"],
                   rows)
    return _Section("Recovery and freshness", caption, table)


def _highlights(headline: dict, collections: list[dict], trends: list[dict], stuck: list[dict]) -> list[str]:
    if not headline["total_runs"]:
        return ["No runs are loaded yet: run <code>unpod-runs load</code> first."]
    notes = []
    regressions = [row for row in trends if row["is_regression"]]
    if regressions:
        names = ", ".join(f"<strong>{html.escape(_collection(row['collection_ref']))}</strong>"
                          for row in regressions[:5])
        more = f" and {len(regressions) - 5} more" if len(regressions) > 5 else ""
        notes.append(f"Got worse this week: {names}{more} (see Trends).")
    if headline["unchanged_a_day_runs"]:
        longest = stuck[0]  # the stuck runs come unchanged longest first
        notes.append(
            f"Stuck the longest: run <code>{html.escape(longest['run_id'])}</code> of "
            f"<strong>{html.escape(_collection(longest['collection_ref']))}</strong>, "
            f"{html.escape(longest['status'] or 'NULL')} and unchanged for "
            f"{_duration(longest['unchanged_for_seconds'])}."
        )
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
    if headline["terminal_runs"]:
        notes.append(
            f"{headline['exact_duration_runs']:,} of {headline['terminal_runs']:,} durations are exact "
            f"({_rate(headline['exact_duration_share'])}); "
            f"{headline['observed_duration_runs']:,} finished without the API moving modified and are known only as a range."
        )
    return notes


def _card(label: str, value: str, detail: str = "", wide: bool = False) -> str:
    detail_html = f'<div class="detail">{detail}</div>' if detail else ""
    kind = "card wide" if wide else "card"
    return f'<div class="{kind}"><div class="label">{label}</div><div class="value">{value}</div>{detail_html}</div>'


def _page(headline: dict, latest_load: dict | None, highlights: list[str], sections: list[_Section]) -> str:
    generated = datetime.now(timezone.utc).strftime(_UTC)
    if latest_load is not None:
        scan = " (full scan)" if latest_load["full_scan"] else ""
        load_detail = f"latest load {latest_load['finished_at'] or 'unfinished'}: {latest_load['outcome'] or '–'}{scan}"
    else:
        load_detail = "no load recorded"
    cards = "".join([
        _card("Runs", _count(headline["total_runs"]), f"{_count(headline['open_runs'])} open"),
        _card("Spaces", _count(headline["spaces"])),
        _card("Collections", _count(headline["collections"])),
        _card(
            "Failure rate",
            _rate(headline["failure_rate"]),
            f"{_count(headline['failed_runs'])} failed of {_count(headline['terminal_runs'])} terminal",
        ),
        _card("p50 duration", _duration(headline["p50_duration_seconds"]), "terminal runs"),
        _card("p95 duration", _duration(headline["p95_duration_seconds"]), "terminal runs"),
        _card(
            "Exact durations",
            _rate(headline["exact_duration_share"]),
            f"{_count(headline['exact_duration_runs'])} of {_count(headline['terminal_runs'])} terminal; "
            f"p95 {_duration(headline['p95_exact_duration_seconds'])}",
        ),
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
.tag.bad { color: #9b2c24; border-color: #c8453b; background: #fdecea; font-weight: 600; }
.worse { color: var(--failed); font-weight: 700; }
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
Failure rate = failed / terminal runs. Durations are modified − created of terminal runs; exact ones are those whose
finish moved modified (finish_source = modified); p50/p95 are continuous quantiles. Ages and times in status are in
the API's clock at the latest load. Days are UTC dates of <code>created</code>. Runs the API no longer lists are left out.
Built from the <code>analytics</code> models of the DuckDB file.</footer>
</main>
</body>
</html>
"""
