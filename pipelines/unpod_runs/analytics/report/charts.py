"""The sections drawn as charts: failure rate and duration per collection, runs and durations per day, and the
failure rate by collection and day."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from unpod_runs.analytics.report import svg
from unpod_runs.analytics.report.data import HEATMAP_COLLECTIONS
from unpod_runs.analytics.report.formatting import collection_name, duration_unit, format_duration, format_rate
from unpod_runs.analytics.report.page import Section, empty
from unpod_runs.analytics.report.svg import COLOURS, LABEL_SIZE, WIDTH

TOP_COLLECTIONS = 15      # the collections a bar chart shows
ROW = 32                  # one bar of a horizontal bar chart
BAR = 0.62                # bar thickness, as a share of its row or day
MAX_NAME_WIDTH = 380      # a longer axis label is cut with an ellipsis; the full text is its tooltip
REDS = ((255, 245, 240), (254, 224, 210), (252, 187, 161), (252, 146, 114), (251, 106, 74), (239, 59, 44),
        (203, 24, 29), (165, 15, 21), (103, 0, 13))   # matplotlib's "Reds" (ColorBrewer), 0 → 1
NO_RATE = "#eef0f2"
_DURATION_TICKS = {0: "0", 1: "1 s", 10: "10 s", 60: "1 min", 600: "10 min", 3600: "1 h", 6 * 3600: "6 h",
                   86400: "1 d", 7 * 86400: "7 d", 30 * 86400: "30 d"}


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
    name_width = min(MAX_NAME_WIDTH, max(svg.text_width(name) for name in names))
    left = 12 + name_width + 10
    right = WIDTH - 8
    top = 26 if reference else 10
    plot_width = right - left
    # Scaled so that every note fits after its bar (and the scale reaches minimum_top).
    scale = plot_width / minimum_top
    for row, note in zip(bars, notes):
        end = max(value for value, _ in row)
        if end > 0:
            scale = min(scale, (plot_width - 6 - svg.text_width(note, LABEL_SIZE)) / end)
    scale = max(scale, plot_width / (minimum_top * 4))   # a pathological note must not squash the bars
    ticks, step = svg.ticks(plot_width / scale)
    bottom = top + ROW * len(names)
    parts = [svg.line(left + tick * scale, top, left + tick * scale, bottom, COLOURS["grid"]) for tick in ticks[1:]]
    parts += svg.axes(left, top, right, bottom)
    for index, (name, row, note) in enumerate(zip(names, bars, notes)):
        centre = top + ROW * (index + 0.5)
        shown = svg.fit(name, MAX_NAME_WIDTH)
        parts.append(svg.text(left - 8, centre, shown, tooltip=name if shown != name else None, text_anchor="end"))
        for value, colour in sorted(row, key=lambda bar: -bar[0]):
            parts.append(svg.rect(left, centre - ROW * BAR / 2, value * scale, ROW * BAR, colour))
    if reference:
        value, caption = reference
        x = left + value * scale
        parts.append(svg.line(x, top - 4, x, bottom, COLOURS["text"], stroke_dasharray="5 3", stroke_width=1.0))
        parts.append(svg.text(x, top - 14, caption, font_size=LABEL_SIZE, fill=COLOURS["muted"], text_anchor="middle"))
    # The notes last, on white, so the reference line never runs through one.
    for index, (row, note) in enumerate(zip(bars, notes)):
        x, y = left + max(value for value, _ in row) * scale + 3, top + ROW * (index + 0.5)
        parts.append(svg.rect(x, y - 10, svg.text_width(note, LABEL_SIZE) * 0.96 + 4, 20, "white"))
        parts.append(svg.text(x + 2, y, note, font_size=LABEL_SIZE))
    parts += [svg.text(left + tick * scale, bottom + 14, tick_label(tick, step), text_anchor="middle")
              for tick in ticks]
    height = bottom + 28
    if axis_title or legend:
        if axis_title:
            parts.append(
                svg.text((left + right) / 2, bottom + 36, axis_title, fill=COLOURS["muted"], text_anchor="middle")
            )
        if legend:
            parts += svg.legend(legend, right, bottom + 36, anchor="end")
        height = bottom + 50
    return svg.figure(height, label, parts)


def failure_rate_section(collections: list[dict], overall_rate: float | None) -> Section:
    rated = [row for row in collections if row["failure_rate"] is not None]
    unrated = len(collections) - len(rated)
    rated.sort(key=lambda row: (-row["failure_rate"], -row["terminal_runs"], collection_name(row["collection_ref"])))
    shown = rated[:TOP_COLLECTIONS]
    caption = (
        f"failed / terminal runs per collection, the {len(shown)} highest of {len(rated)} with a finished run"
        + (f"; {unrated} collection(s) have no terminal run yet, so no rate" if unrated else "")
        + ". The dashed line is the overall rate."
    )
    if not shown:
        return Section("Failure rate per collection", caption, empty("No collection has a terminal run yet."))
    # Scaled to the highest rate, not to 100%: the labels carry the values, the bars the comparison.
    limit = min(1.0, max(0.05, shown[0]["failure_rate"], overall_rate or 0) * 1.12)
    chart = _hbars(
        [collection_name(row["collection_ref"]) for row in shown],
        [[(row["failure_rate"], COLOURS["failed"])] for row in shown],
        [f"{row['failure_rate']:.0%}  ({row['failed_runs']:,} of {row['terminal_runs']:,})" for row in shown],
        minimum_top=limit * 1.3,
        tick_label=lambda tick, step: f"{tick * 100:.{svg.decimals(step * 100)}f}%",
        label="Failure rate per collection",
        reference=None if overall_rate is None else (overall_rate, f"overall {format_rate(overall_rate)}"),
    )
    return Section("Failure rate per collection", caption, chart)


def duration_section(collections: list[dict]) -> Section:
    timed = [row for row in collections if row["p95_duration_seconds"] is not None]
    timed.sort(key=lambda row: (-row["p95_duration_seconds"], collection_name(row["collection_ref"])))
    shown = timed[:TOP_COLLECTIONS]
    caption = (
        f"duration of terminal runs (modified − created): median (p50, dark) and 95th percentile (p95, light), "
        f"the {len(shown)} slowest of {len(timed)} collections by p95"
    )
    if not shown:
        return Section("Duration per collection", caption, empty("No terminal run has a duration yet."))
    divisor, unit = duration_unit(max(row["p95_duration_seconds"] for row in shown))
    top = shown[0]["p95_duration_seconds"] / divisor or 1.0
    chart = _hbars(
        [collection_name(row["collection_ref"]) for row in shown],
        [
            [
                (row["p95_duration_seconds"] / divisor, COLOURS["p95"]),
                (row["p50_duration_seconds"] / divisor, COLOURS["p50"]),
            ]
            for row in shown
        ],
        [
            f"p50 {format_duration(row['p50_duration_seconds'])} · p95 {format_duration(row['p95_duration_seconds'])}"
            for row in shown
        ],
        minimum_top=top * 1.32,
        tick_label=lambda tick, step: f"{tick:,.{svg.decimals(step)}f}",
        label="Duration per collection",
        axis_title=unit,
        legend=[("box", COLOURS["p50"], "p50"), ("box", COLOURS["p95"], "p95")],
    )
    return Section("Duration per collection", caption, chart)


@dataclass(frozen=True)
class DayAxis:
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
        return [svg.text(self.x(day), bottom + 14, label, text_anchor="middle") for day, label in self.ticks()]


def days_section(days: list[dict]) -> Section:
    caption = "runs by the UTC day they were created, split by status now; the line is that day's failure rate"
    if not days:
        return Section("Runs and failure rate per day", caption, empty("No run has a creation date."))
    stacks = (
        ("completed_runs", "completed"),
        ("partially_completed_runs", "partially_completed"),
        ("failed_runs", "failed"),
        ("open_runs", "open"),
    )
    left, right, top, bottom = 62, WIDTH - 62, 34, 322
    axis = DayAxis(days[0]["day"], days[-1]["day"], left, right)
    highest = max(day["runs"] for day in days)
    ticks, _ = svg.ticks(highest * 1.05, bins=10, integer=True)
    runs_top = max(highest * 1.05, ticks[-1])
    y = lambda runs: bottom - (bottom - top) * runs / runs_top  # noqa: E731
    rate_y = lambda rate: bottom - (bottom - top) * rate  # noqa: E731
    parts = [svg.line(left, y(tick), right, y(tick), COLOURS["grid"]) for tick in ticks[1:]]
    parts += svg.axes(left, top, right, bottom)
    # Bars a pixel or two wide touch, and stay sharp rather than blur into their neighbours.
    narrow = axis.slot < 3
    width = axis.slot if narrow else min(axis.slot * 0.8, 40)
    parts.append('<g shape-rendering="crispEdges">' if narrow else "<g>")
    for day in days:
        x = axis.x(day["day"]) - width / 2
        rects, below = [], 0
        for key, name in stacks:
            if day[key]:
                rects.append(svg.rect(x, y(below + day[key]), width, y(below) - y(below + day[key]), COLOURS[name]))
                below += day[key]
        tooltip = (
            f"{day['day']:%Y-%m-%d}: {day['runs']:,} runs, {day['completed_runs']:,} completed, "
            f"{day['partially_completed_runs']:,} partially completed, {day['failed_runs']:,} failed, "
            f"{day['open_runs']:,} open; failure rate {format_rate(day['failure_rate'])}"
        )
        parts.append(f"<g><title>{html.escape(tooltip)}</title>{''.join(rects)}</g>")
    parts.append("</g>")
    rated = [(axis.x(day["day"]), rate_y(day["failure_rate"])) for day in days if day["failure_rate"] is not None]
    if rated:
        few = len(rated) <= 150
        parts.append(svg.polyline(rated, COLOURS["text"], 1.4 if few else 1.0, markers=few))
    parts += [svg.text(left - 8, y(tick), f"{tick:,.0f}", text_anchor="end") for tick in ticks]
    parts += [svg.text(right + 8, rate_y(tick / 100), f"{tick}%") for tick in range(0, 101, 20)]
    parts += axis.draw(bottom)
    parts.append(svg.text(16, (top + bottom) / 2, "runs", fill=COLOURS["muted"], text_anchor="middle",
                       transform=f"rotate(-90 16 {svg.number((top + bottom) / 2)})"))
    parts.append(svg.text(WIDTH - 12, (top + bottom) / 2, "failure rate", fill=COLOURS["muted"], text_anchor="middle",
                       transform=f"rotate(-90 {WIDTH - 12} {svg.number((top + bottom) / 2)})"))
    legend = [("box", COLOURS[name], name.replace("_", " ")) for _, name in stacks]
    parts += svg.legend(legend + [("line", COLOURS["text"], "failure rate")], (left + right) / 2, 12)
    chart = svg.figure(bottom + 26, "Runs and failure rate per day", parts)
    return Section("Runs and failure rate per day", caption, chart)


def _log_seconds(seconds: float) -> float:
    """A symmetric-log scale, linear below a second: a day whose runs all finished within their creation second
    has a p50 of 0, which a plain log scale cannot draw."""
    return seconds if seconds < 1 else 1 + math.log10(seconds)


def day_durations_section(days: list[dict]) -> Section:
    timed = [day for day in days if day["p50_duration_seconds"] is not None]
    caption = (
        "duration of the terminal runs created each UTC day, all collections together: p50 and p95 "
        "(logarithmic scale: a few runs that wait for days must not flatten the rest)"
    )
    if not timed:
        return Section("Duration per day", caption, empty("No terminal run has a duration yet."))
    left, right, top, bottom = 62, WIDTH - 12, 30, 286
    axis = DayAxis(days[0]["day"], days[-1]["day"], left, right)
    highest = max(day["p95_duration_seconds"] for day in timed)
    ticks = [tick for tick in _DURATION_TICKS if tick <= highest * 1.5]
    ticks = ticks if len(ticks) > 1 else [0, 1]
    scale_top = _log_seconds(max(highest * 1.6, 2))
    y = lambda seconds: bottom - (bottom - top) * _log_seconds(max(seconds, 0)) / scale_top  # noqa: E731
    p50 = [(axis.x(day["day"]), y(day["p50_duration_seconds"])) for day in timed]
    p95 = [(axis.x(day["day"]), y(day["p95_duration_seconds"])) for day in timed]
    parts = [svg.line(left, y(tick), right, y(tick), COLOURS["grid"]) for tick in ticks[1:]]
    parts += svg.axes(left, top, right, bottom)
    band = " ".join(f"{svg.number(x)},{svg.number(y)}" for x, y in p95 + p50[::-1])
    parts.append(f'<polygon points="{band}" fill="{COLOURS["p95"]}" fill-opacity="0.45"/>')
    markers = len(timed) <= 150
    parts += [svg.polyline(p95, COLOURS["p95"], 1.4, markers), svg.polyline(p50, COLOURS["p50"], 1.6, markers)]
    parts += [svg.text(left - 8, y(tick), _DURATION_TICKS[tick], text_anchor="end") for tick in ticks]
    parts += axis.draw(bottom)
    parts += svg.legend([("line", COLOURS["p95"], "p95"), ("line", COLOURS["p50"], "p50")], (left + right) / 2, 10)
    return Section("Duration per day", caption, svg.figure(bottom + 26, "Duration per day", parts))


def _red(rate: float) -> str:
    """The colour of a failure rate (0 to 1) on matplotlib's "Reds" scale."""
    position = min(max(rate, 0.0), 1.0) * (len(REDS) - 1)
    index = min(int(position), len(REDS) - 2)
    share = position - index
    low, high = REDS[index], REDS[index + 1]
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high))


def heatmap_section(cells: list[dict]) -> Section:
    caption = (
        f"failure rate per UTC day for the {HEATMAP_COLLECTIONS} collections with the most runs; "
        "grey: no terminal run that day"
    )
    if not cells:
        return Section("Failure rate by collection and day", caption, empty("No run has a creation date."))
    days = sorted({cell["day"] for cell in cells})
    totals: dict[str | None, int] = {}
    for cell in cells:
        totals[cell["collection_ref"]] = totals.get(cell["collection_ref"], 0) + cell["terminal_runs"]
    collections = sorted(totals, key=lambda name: (-totals[name], collection_name(name)))
    row_of = {name: index for index, name in enumerate(collections)}
    column_of = {day: index for index, day in enumerate(days)}
    grid: list[list[float | None]] = [[None] * len(days) for _ in collections]
    for cell in cells:
        grid[row_of[cell["collection_ref"]]][column_of[cell["day"]]] = cell["failure_rate"]
    names = [collection_name(name) for name in collections]
    left = 12 + min(MAX_NAME_WIDTH, max(svg.text_width(name) for name in names)) + 10
    right, top, row = WIDTH - 96, 6, 34
    bottom = top + row * len(collections)
    column = (right - left) / len(days)
    parts = [svg.rect(left, top, right - left, bottom - top, NO_RATE), '<g shape-rendering="crispEdges">']
    for row_index, rates in enumerate(grid):
        # Neighbouring cells of one colour are one rectangle: a quiet collection is a few long runs of "0%".
        colours = [None if rate is None else _red(rate) for rate in rates]
        start = 0
        for index in range(1, len(colours) + 1):
            if index == len(colours) or colours[index] != colours[start]:
                if colours[start] is not None:
                    parts.append(svg.rect(left + start * column, top + row_index * row, (index - start) * column, row,
                                       colours[start]))
                start = index
    parts.append("</g>")
    if len(days) <= 16:
        for row_index, rates in enumerate(grid):
            for column_index, rate in enumerate(rates):
                if rate is not None:
                    parts.append(svg.text(left + (column_index + 0.5) * column, top + (row_index + 0.5) * row,
                                       f"{rate:.0%}", font_size=11, text_anchor="middle",
                                       fill="white" if rate > 0.55 else COLOURS["text"]))
    for index, name in enumerate(names):
        shown = svg.fit(name, MAX_NAME_WIDTH)
        parts.append(svg.text(left - 8, top + row * (index + 0.5), shown, tooltip=name if shown != name else None,
                           text_anchor="end"))
    label = "%b %d" if (days[-1] - days[0]).days < 365 else "%b %Y"
    # At most 9 labels, and never closer than their width.
    step = max(1, -(-len(days) // 9), math.ceil((svg.text_width("May 2025") + 12) / column))
    parts += [svg.text(left + (index + 0.5) * column, bottom + 14, days[index].strftime(label), text_anchor="middle")
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
    parts.append(svg.rect(right + 30, bar_top, 14, bar_height, "url(#unpod-runs-reds)"))
    parts += [svg.text(right + 50, bar_top + bar_height * (1 - tick / 100), f"{tick}%", font_size=11)
              for tick in range(0, 101, tick_step)]
    chart = svg.figure(bottom + 26, "Failure rate by collection and day", parts)
    return Section("Failure rate by collection and day", caption, chart)
