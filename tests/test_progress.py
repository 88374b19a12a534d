"""Progress a person can read: share done, rate and time left; a live bar on a terminal, key=value lines in a log."""

from __future__ import annotations

import io
import logging
import os
import pty
import subprocess
import sys

from conftest import LoadEnv
from unpod_runs.pipeline.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_log_lines_tell_share_rate_and_time_left_at_most_every_few_seconds(caplog):
    clock = Clock()
    progress = Progress({"BIG": 9000, "SMALL": None}, live=False, every_s=5, clock=clock)
    caplog.set_level(logging.INFO, logger="unpod_runs.pipeline.progress")

    clock.now += 1
    progress.page("BIG", served=1000, count=9000)
    clock.now += 3
    progress.page("SMALL", served=1000, count=1000)
    progress.space_done("SMALL")
    assert caplog.messages == []  # not yet: at most every 5 s
    clock.now += 6
    progress.page("BIG", served=2000, count=9000)

    overall, big = caplog.messages
    # 3000 of 9000 runs of BIG, SMALL done: (3000 + 1000) / 10000 after 10 s, at 400 runs/s.
    assert overall == ("event=progress spaces_done=1/2 runs_read=4000 runs_listed=10000 done_pct=40.0 "
                       "rate_runs_s=400 eta_s=15")
    assert big == "event=progress_space space=BIG runs_read=3000 runs_listed=9000 done_pct=33.3 pages=2"


def test_a_space_that_is_done_counts_as_done_whatever_it_read():
    clock = Clock()
    progress = Progress({"A": 50_000, "B": 50_000}, live=False, clock=clock)
    clock.now += 2
    progress.page("A", served=50, count=50_000)  # an incremental night: one page of a big space
    progress.space_done("A")
    assert progress.share == 0.5
    assert progress.seconds_left() == 2.0
    progress.space_done("B")
    assert progress.share == 1.0 and progress.seconds_left() == 0.0


def test_the_bar_is_redrawn_in_place_and_erased_at_the_end(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    stream = io.StringIO()
    clock = Clock()
    progress = Progress({"SPACEAAAAAAAA": 1000}, stream=stream, live=True, clock=clock)
    clock.now += 2
    progress.page("SPACEAAAAAAAA", served=250, count=1000)
    assert stream.getvalue() == ("\r\x1b[K[#####...............]  25% 250/1,000 runs, 0/1 spaces, 125 runs/s, "
                                 "6 s left, reading SPACEAAA 25%")
    progress.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_a_load_on_a_terminal_shows_a_live_bar(load_env: LoadEnv):
    main, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "unpod_runs.cli", "load", "--db", str(load_env.db)],
            env=load_env.env, cwd=load_env.db.parent, stdout=subprocess.PIPE, stderr=follower,
        )
        os.close(follower)
        stdout, _ = process.communicate(timeout=120)
        seen = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(main)
    assert process.returncode == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert "\r\x1b[K[" in text and "runs/s" in text and " left" in text and "spaces" in text
    assert b"3 loaded" in stdout
