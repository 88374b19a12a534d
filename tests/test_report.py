"""The HTML report: self-contained, with the headline numbers and charts, readable on an empty database too, and
fast enough to be written by every nightly load."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlglot
from conftest_analytics import add_load_history, create_runs_db, run, utc
from sqlglot import exp

from unpod_runs.analytics.models import build_models, load_models
from unpod_runs.analytics.report import render_report, write_report
from unpod_runs.analytics.report.charts import DayAxis

# Any warning while rendering means something drew wrong: fail on it.
pytestmark = pytest.mark.filterwarnings("error")

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert(1)</script> & \"quoted\" 'name'"

RUNS = [
    run("R1", "completed", "2025-03-01T23:59:00", "2025-03-02T00:01:00", collection_ref="collection_fast"),
    run("R2", "failed", "2025-03-02T10:00:00", "2025-03-02T10:00:10", collection_ref="collection_fast"),
    run("R3", "partially_completed", "2025-03-02T10:00:00", "2025-03-02T11:00:00", collection_ref="collection_slow"),
    run("R4", "completed", "2025-03-03T10:00:00", "2025-03-03T12:00:00", collection_ref="collection_slow"),
    run("R5", "pending", "2025-03-03T11:00:00", collection_ref="collection_waiting"),
    run("R6", "mystery", "2025-03-03T11:00:00", collection_ref="<script>alert(1)</script>"),
]


def render(tmp_path, runs, zone: str = "UTC", loads: list[dict] | None = None) -> str:
    tmp_path.mkdir(exist_ok=True)
    with create_runs_db(tmp_path / "db.duckdb", runs) as con:
        if loads:
            add_load_history(con, loads)
        build_models(con)
        con.execute(f"set TimeZone = '{zone}'")
        path = write_report(con, tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html"
    assert [entry.name for entry in path.parent.iterdir()] == ["report.html"], "a temporary file was left behind"
    return path.read_text(encoding="utf-8")


def charts(page: str) -> list[ElementTree.Element]:
    """Every inline SVG of the page, parsed as XML: text that was not escaped would not parse."""
    return [ElementTree.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)]


def chart_text(chart: ElementTree.Element) -> list[str]:
    """What the chart's text elements show (without their tooltips)."""
    return [(text.text or "") + "".join(child.tail or "" for child in text) for text in chart.iter("text")]


def assert_self_contained(page: str) -> None:
    lowered = page.lower()
    for needle in ("<script", "<link", "<img", "<image", "<iframe", "<object", "<embed", "<foreignobject",
                   "@import", "@font-face", "http://", "https://", "xlink:href", "href=", "src="):
        assert needle not in lowered, needle
    # The only url() is the colour bar's gradient, defined in the same chart.
    assert set(re.findall(r"url\([^)]*\)", page)) <= {"url(#unpod-runs-reds)"}
    for chart in charts(page):
        assert chart.get("viewBox") and chart.get("width") == "100%"
        assert chart.find("script") is None


def test_report_is_one_self_contained_page_with_numbers_and_charts(tmp_path):
    loads = [{"load_id": "9", "started_at": utc("2025-03-04T02:00:00"), "finished_at": utc("2025-03-04T02:00:42"),
              "outcome": "ok", "full_scan": True}]
    page = render(tmp_path, RUNS, loads=loads)
    assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "matplotlib" not in page
    assert [chart.get("aria-label") for chart in charts(page)] == [
        "Failure rate per collection", "Duration per collection", "Runs and failure rate per day",
        "Duration per day", "Failure rate by collection and day",
    ]
    for text in (
        "Runs", ">6<",                       # runs loaded
        "Failure rate", "25.0%",             # 1 failed of 4 terminal
        "1 failed of 4 terminal",
        "2 open",
        "2025-03-03 11:00 UTC",              # data as of: the latest modified, in UTC
        "latest load 2025-03-04 02:00 UTC: ok (full scan)",
        "collection_fast", "collection_slow",
        "Most failing", "Slowest (by p95 duration)",
        "Failure rate per collection", "Duration per collection", "Runs and failure rate per day", "Duration per day",
    ):
        assert text in page, text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'unknown</span>' in page                # the unknown status is flagged in the status table


def test_charts_carry_their_labels_and_values(tmp_path):
    failure, duration, days, day_durations, heatmap = charts(render(tmp_path, RUNS))
    labels = chart_text(failure)
    # Highest rate first, each bar labelled with its rate and counts; the dashed line is the overall rate.
    assert labels[:2] == ["collection_fast", "collection_slow"]
    assert {"50%  (1 of 2)", "0%  (0 of 2)", "overall 25.0%", "0%", "20%", "40%", "60%"} <= set(labels)
    assert any(line.get("stroke-dasharray") for line in failure.iter("line"))
    # p50 dark and p95 light, in minutes: collection_slow has p50 90 min (1 h and 2 h), p95 117 min.
    labels = chart_text(duration)
    assert labels[:2] == ["collection_slow", "collection_fast"]
    assert {"p50 90 min · p95 117 min", "p50 65 s · p95 114 s", "minutes", "p50", "p95"} <= set(labels)
    # One stack per day, with the four statuses in the legend and a failure-rate line on a percentage axis.
    labels = chart_text(days)
    assert {"completed", "partially completed", "failed", "open", "failure rate", "runs", "0%", "100%"} <= set(labels)
    assert ["Mar 01", "Mar 02", "Mar 03"] == [label for label in labels if label.startswith("Mar")]
    assert len(days.findall("polyline")) == 1
    assert [title.text.split(":")[0] for title in days.iter("title")] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    # A log scale labelled in durations, p50 and p95 lines over a band.
    labels = chart_text(day_durations)
    assert {"0", "1 s", "10 s", "1 min", "10 min", "1 h"} <= set(labels) and "1 d" not in labels
    assert len(day_durations.findall("polyline")) == 2 and len(day_durations.findall("polygon")) == 1
    # One row per busy collection (the hostile name escaped, and drawn as text), one column per day, cells labelled.
    labels = chart_text(heatmap)
    assert {"collection_fast", "<script>alert(1)</script>", "100%", "0%", "Mar 01", "Mar 03"} <= set(labels)


def test_report_escapes_names_from_the_api_everywhere(tmp_path):
    long_name = "collection_" + "very_long_name_" * 12 + "<end>"
    runs = [
        run("R1", "failed", "2025-03-01T10:00:00", "2025-03-01T10:00:05", collection_ref=HOSTILE),
        run("R2", "completed", "2025-03-01T10:00:00", "2025-03-01T10:00:50", collection_ref=long_name),
    ]
    page = render(tmp_path, runs)
    assert_self_contained(page)
    assert "<script>" not in page and "<end>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#x27;name&#x27;" in page
    drawn = charts(page)                  # every chart parses, and those with names show them as they are
    assert len(drawn) == 5
    for chart in (drawn[0], drawn[1], drawn[4]):
        texts = chart_text(chart)
        assert HOSTILE in texts, chart.get("aria-label")
        # A long name is cut with an ellipsis on the axis, and kept whole in its tooltip.
        cut = [text for text in texts if text.endswith("…")]
        assert len(cut) == 1 and long_name.startswith(cut[0][:-1]), chart.get("aria-label")
        assert long_name in [title.text for title in chart.iter("title")]


def test_report_does_not_depend_on_the_session_time_zone(tmp_path):
    generated = re.compile(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    in_utc = generated.sub("", render(tmp_path / "utc", RUNS))
    in_tokyo = generated.sub("", render(tmp_path / "tokyo", RUNS, zone="Asia/Tokyo"))
    assert in_tokyo == in_utc


@pytest.mark.parametrize(
    "runs",
    [
        [],
        [run("R1", "pending", "2025-03-01T10:00:00")],
        [run("R1", "failed", "2025-03-01T10:00:00", "2025-03-01T10:00:05", collection_ref=None)],
        [run("R1", "completed", "2025-03-01T10:00:00"), run("R2", "completed", "2025-03-02T10:00:00")],
    ],
    ids=["no_runs", "only_open", "single_failed_without_collection", "zero_durations"],
)
def test_report_renders_small_and_empty_databases(tmp_path, runs):
    page = render(tmp_path, runs)
    assert_self_contained(page)
    drawn = charts(page)
    for chart in drawn:
        assert "nan" not in ElementTree.tostring(chart, encoding="unicode").lower()
    if not runs:
        assert "No runs are loaded yet" in page
        assert drawn == []
    elif runs[0]["status"] == "pending":
        assert "No collection has a terminal run yet." in page
        assert "No terminal run has a duration yet." in page
        assert [chart.get("aria-label") for chart in drawn] == [
            "Runs and failure rate per day", "Failure rate by collection and day",
        ]
    elif runs[0]["status"] == "failed":
        assert "(no collection_ref)" in page and "100.0%" in page
        assert len(drawn) == 5
        assert "100%  (1 of 1)" in chart_text(drawn[0])
    else:
        assert "0 s" in page and "0.0%" in page
        assert len(drawn) == 5
        assert "p50 0 s · p95 0 s" in chart_text(drawn[1])


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (date(2025, 3, 1), date(2025, 3, 1), ["Mar 01"]),
        (date(2025, 3, 1), date(2025, 3, 3), ["Mar 01", "Mar 02", "Mar 03"]),
        (date(2025, 5, 8), date(2025, 6, 7), ["May 12", "May 19", "May 26", "Jun 02"]),       # Mondays
        (date(2025, 8, 29), date(2025, 11, 28), ["Sep 2025", "15", "Oct", "15", "Nov", "15"]),
        (date(2025, 5, 10), date(2026, 4, 8), ["Jun 2025", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan 2026",
                                               "Feb", "Mar", "Apr"]),
        (date(2024, 5, 10), date(2026, 4, 8), ["Jul 2024", "Sep", "Nov", "Jan 2025", "Mar", "May", "Jul", "Sep",
                                               "Nov", "Jan 2026", "Mar"]),
    ],
)
def test_day_axis_labels_are_few_and_readable(first, last, expected):
    axis = DayAxis(first, last, 0, 900)
    ticks = axis.ticks()
    assert [label for _, label in ticks] == expected
    assert all(first <= day <= last for day, _ in ticks)
    assert axis.x(first) == pytest.approx(axis.slot / 2) and axis.x(last) == pytest.approx(900 - axis.slot / 2)


def test_report_module_does_not_import_matplotlib():
    code = "import sys, unpod_runs.analytics.report; sys.exit('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO / "pipelines"), "PATH": ""}, timeout=60)
    assert result.returncode == 0, result.stderr or "unpod_runs.analytics.report imported matplotlib"


def many_runs(count: int, seed: int = 7) -> list[dict]:
    """``count`` runs over 90 days in 40 collections and 8 spaces, mostly terminal, durations from seconds to days."""
    rng = random.Random(seed)
    statuses = ["completed"] * 80 + ["failed"] * 11 + ["partially_completed"] * 6 + ["pending", "running", "hold"]
    rows = []
    for index in range(count):
        created = datetime(2025, 1, 1) + timedelta(seconds=rng.randrange(90 * 86400))
        status = rng.choice(statuses)
        terminal = status in ("completed", "failed", "partially_completed")
        modified = created + timedelta(seconds=int(rng.lognormvariate(4.5, 1.8))) if terminal else None
        rows.append(run(
            f"R{index}", status, created.isoformat(timespec="seconds"),
            modified.isoformat(timespec="seconds") if modified else None,
            collection_ref=f"collection_{index % 40:02d}" if index % 50 else None,
            space_token=f"SPACE{index % 8:019d}",
        ))
    return rows


class FetchCounter:
    """A DuckDB connection that counts the queries it runs and the rows it hands to Python."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.queries: list[str] = []
        self.rows_fetched = 0

    def execute(self, query: str, *parameters) -> FetchCounter:
        self.queries.append(query)
        self.con.execute(query, *parameters)
        return self

    @property
    def description(self):
        return self.con.description

    def fetchall(self) -> list[tuple]:
        rows = self.con.fetchall()
        self.rows_fetched += len(rows)
        return rows


def test_report_of_a_large_database_fetches_aggregates_not_runs(tmp_path):
    # 40,000 runs: 800 inserted through the helpers (row inserts are slow), then copied 50 times, each copy
    # shifted by a few hours so the days and durations stay varied.
    with create_runs_db(tmp_path / "db.duckdb", many_runs(800)) as con:
        con.execute("""
            insert into unpod.runs
            select runs.* replace (
                run_id || '.' || copy.i as run_id,
                _dlt_id || '.' || copy.i as _dlt_id,
                created + copy.i * interval 5 hour as created,
                modified + copy.i * interval 5 hour as modified
            )
            from unpod.runs, range(1, 50) as copy(i)
        """)
        assert con.execute("select count(*) from unpod.runs").fetchone()[0] == 40_000
        build_models(con)
        counted = FetchCounter(con)
        page = render_report(counted)
    # The work stays in DuckDB: what reaches Python are aggregates per collection and day, not the runs
    # (a tenth of them would already be the slow report this database is built to catch).
    assert 0 < counted.rows_fetched < 4_000, f"render_report fetched {counted.rows_fetched:,} rows of 40,000 runs"
    assert all("from unpod." not in query for query in counted.queries), "the report reads the analytics only"
    assert_self_contained(page)
    assert ">40,000<" in page
    drawn = charts(page)
    assert len(drawn) == 5
    assert len(page) < 1_000_000, f"the page is {len(page):,} characters"
    # The 15 most failing and slowest of 41 collections, the 12 busiest in the heat map.
    for chart, rows in zip([drawn[0], drawn[1], drawn[4]], [15, 15, 12]):
        names = [text for text in chart_text(chart) if text.startswith(("collection_", "(no collection_ref)"))]
        assert len(names) == rows, chart.get("aria-label")


def relations_read(query: str) -> set[str]:
    """The tables and views a query reads, as schema.name (its own CTEs left out)."""
    tree = sqlglot.parse_one(query, read="duckdb")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {f"{table.db}.{table.name}" if table.db else table.name
            for table in tree.find_all(exp.Table) if table.db or table.name not in ctes}


def test_the_report_reads_marts_only_and_computes_no_figure_of_its_own(tmp_path):
    loads = [{"load_id": "9", "started_at": utc("2025-03-04T02:00:00"), "finished_at": utc("2025-03-04T02:00:42"),
              "outcome": "ok", "full_scan": False}]
    with create_runs_db(tmp_path / "db.duckdb", RUNS) as con:
        add_load_history(con, loads)
        build_models(con)
        counted = FetchCounter(con)
        render_report(counted)
    marts = {model.relation for model in load_models() if model.layer == "marts"}
    assert relations_read("with runs as (select * from analytics.stg_runs) select * from runs") == {
        "analytics.stg_runs"}  # what the assertions below would catch
    read = set()
    for query in counted.queries:
        read |= relations_read(query)
        # A figure is defined once, in its mart: the report selects, orders and formats, and aggregates nothing.
        aggregates = [node.sql("duckdb") for node in sqlglot.parse_one(query, read="duckdb").find_all(exp.AggFunc)]
        assert aggregates == [], f"the report computes {aggregates} itself in:\n{query}"
    assert read <= marts, f"the report reads {sorted(read - marts)}, which are not marts"
    assert {"analytics.overall_stats", "analytics.daily_overall_stats", "analytics.collection_stats"} <= read


def test_report_marks_regressions_and_shows_stuck_runs_exact_durations_and_queue_times(tmp_path):
    from conftest_analytics import add_status_history, rows_from_truth

    from unpod_runs.sandbox.world import World

    world = World(seed=3, spaces=2, runs=400, open_fraction=0.2)
    sightings = [(world.now, world.truth())]
    for night in range(3):
        world.advance(hours=24, seed=10 + night)
        sightings.append((world.now, world.truth()))
    now = world.now
    # One collection whose failure rate jumps this week, beyond chance: 2 of 40 failed the week before, 14 of 40 now.
    jump = []
    for days_ago, failed in ((10, 2), (3, 14)):
        for index in range(40):
            created = now - timedelta(days=days_ago, minutes=index)
            jump.append(run(f"R_jump_{days_ago}_{index}", "failed" if index < failed else "completed",
                            created.strftime("%Y-%m-%dT%H:%M:%S"),
                            (created + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                            collection_ref="collection_jump"))
    with create_runs_db(tmp_path / "db.duckdb", rows_from_truth(world.truth()) + jump) as con:
        add_status_history(con, sightings)
        build_models(con)
        page = render_report(con)
        (exact, terminal, observed), = con.execute(
            "select count(*) filter (where finish_source = 'modified'), count(*) filter (where is_terminal), "
            "count(*) filter (where finish_source = 'observed') from analytics.run_durations").fetchall()
        (stuck_run, unchanged), = con.execute(
            "select run_id, unchanged_for_seconds from analytics.open_runs "
            "order by unchanged_for_seconds desc nulls last, created, run_id limit 1").fetchall()
        (queued,) = con.execute("select sum(queued_runs) from analytics.collection_time_in_status").fetchone()
    assert_self_contained(page)
    sections = re.findall(r"<h2>(.*?)</h2>", page)
    assert sections[:3] == ["Runs by status", "Trends: last 7 days against the 7 before", "Stuck runs"]
    assert {"How many durations are exact", "Queue time and run time", "Recovery and freshness"} <= set(sections)
    trends = page[page.index("Trends: last 7 days"):page.index("<h2>Stuck runs")]
    assert 'collection_jump<span class="tag bad">failing more</span>' in trends
    assert "5.0% <span class=\"worse\">→</span> <strong>35.0%</strong>" in trends
    assert "Got worse this week: <strong>collection_jump</strong>" in page
    assert f"<code>{stuck_run}</code>" in page and unchanged >= 3 * 86400
    assert f"{exact:,} of {terminal:,} durations are exact" in page and observed > 0
    assert f"{observed:,} finished without the API moving modified" in page
    assert queued > 0 and "median queued" in page
