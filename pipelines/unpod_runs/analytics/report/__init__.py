"""The HTML report that ``load`` and ``demo`` write: the headline numbers and charts of the analytics marts.

One self-contained file: inline CSS, charts as inline SVG built here as plain strings (text kept as text, in
the page's font), no script and no external URL, so it opens offline and can be mailed around. Every figure is read
from an ``analytics`` mart, where it is defined once; the report selects and formats, and computes none.

- ``data.py``: the queries over the marts;
- ``charts.py`` and ``tables.py``: the sections, drawn as charts (with ``svg.py``) or shown as tables, their
  values written by ``formatting.py``;
- ``page.py``: the cards, highlights and HTML page around them;
- here: ``write_report``, the entry point, and ``render_report``, which puts them together.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from unpod_runs.analytics.report.charts import (
    day_durations_section,
    days_section,
    duration_section,
    failure_rate_section,
    heatmap_section,
)
from unpod_runs.analytics.report.data import read_report_data
from unpod_runs.analytics.report.page import highlights, render_page
from unpod_runs.analytics.report.tables import (
    collections_section,
    exact_section,
    queue_section,
    recovery_section,
    spaces_section,
    status_section,
    stuck_section,
    trends_section,
)

logger = logging.getLogger(__name__)


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
    data = read_report_data(con)
    headline = data.headline
    sections = [status_section(data.statuses)]
    if headline["total_runs"]:
        sections += [
            trends_section(data.trends),
            stuck_section(data.stuck, headline),
            failure_rate_section(data.collections, headline["failure_rate"]),
            duration_section(data.collections),
            days_section(data.days),
            day_durations_section(data.days),
            heatmap_section(data.heatmap),
            exact_section(headline),
            queue_section(data.queues),
            recovery_section(data.recovery),
            collections_section(data.collections),
            spaces_section(data.spaces),
        ]
    notes = highlights(headline, data.collections, data.trends, data.stuck)
    return render_page(headline, data.latest_load, notes, sections)
