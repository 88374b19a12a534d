"""Where the writer works and how readers get its result.

A DuckDB writer cannot share its file with readers in other processes, so ``load`` never writes the
published file (``--db``). It seeds a private working copy beside it with a copy of the published file, writes
there, then publishes by renaming the working copy over ``--db`` in one step. A reader that holds the old file
open keeps reading last night's database; the next one it opens is tonight's. Never half of one. Between loads
only the published file is kept: one copy of the database on disk, not two.

The working copy is created here in a storage format that the BI tools' DuckDB engines (1.4 and newer) open. A
file keeps the format it was created with through every later write and every copy, so the published file and a
working copy seeded from it have it too.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

# The oldest DuckDB line that BI drivers still bundle (Evidence 1.4; Metabase, Grafana 1.5) opens this format.
STORAGE_VERSION = "v1.4.0"


# DuckDB takes up to 80% of the machine's memory by default; the nightly job shares its machine, and spills to disk
# past this instead (a first load of 5 million runs peaked at 2.1 GiB without it, 1.4 GiB at 512 MB).
WRITER_MEMORY_LIMIT = "384MB"
WRITER_CONFIG = {"memory_limit": WRITER_MEMORY_LIMIT}
# A new database is written by one thread. Parallel writers each leave a part-filled row group
# ([122880, 43345, 122880, 110895] for 400,000 runs), and DuckDB merges those at the first later append: the first
# quiet night rewrote most of the big tables and grew each copy by 11 MiB at 400,000 runs. Later builds write
# in parallel: by then the blocks a rewrite frees are there for the next one to reuse.
FIRST_BUILD_CONFIG = {**WRITER_CONFIG, "threads": 1}


class LockBusy(Exception):
    """Another process is writing this database."""


class SeedFailed(Exception):
    """The working copy could not be made from the published file: nothing was loaded."""


class PublishFailed(Exception):
    """The working copy could not replace the published file: readers keep the previous version."""


class LoadLock:
    """An exclusive ``flock`` on ``<db>.lock``: the kernel drops it when its process dies, so it never goes stale.

    ``command`` (``load`` or ``models``) is written into the file, so a command that finds it taken names the holder."""

    def __init__(self, db_path: Path, command: str = "load") -> None:
        self.command = command
        self.path = db_path.with_name(db_path.name + ".lock")
        self._handle = None

    def __enter__(self) -> "LoadLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            handle.close()
            raise LockBusy(f"{self.path.with_suffix('')} is being written by another command ({holder})") from None
        handle.seek(0)
        handle.truncate()
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        handle.write(f"unpod-runs {self.command}, pid {os.getpid()} since {since}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class Workspace:
    published: Path
    work_dir: Path

    @classmethod
    def for_db(cls, db_path: Path) -> "Workspace":
        db_path = db_path.resolve()
        return cls(published=db_path, work_dir=db_path.with_name(f".{db_path.name}.work"))

    @property
    def work_db(self) -> Path:
        return self.work_dir / "unpod_runs.duckdb"

    @property
    def pipeline_name(self) -> str:
        """One dlt pipeline (and state) per working copy: named after where it was made, and kept in it, so a
        database moved or copied with its working copy and dlt's folder keeps its pipeline."""
        if self._name_file.exists():
            return self._name_file.read_text(encoding="utf-8").strip()
        digest = hashlib.sha1(str(self.published).encode()).hexdigest()[:10]
        return f"unpod_runs_{digest}"

    @property
    def _name_file(self) -> Path:
        return self.work_dir / "pipeline_name"

    def prepare(self) -> str:
        """Find or seed the working copy: "existing" (a load that did not publish left it), "seeded" from the
        published file, or "new" (no database yet)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self._name_file.exists():
            self._name_file.write_text(self.pipeline_name + "\n", encoding="utf-8")
        # Left by a publish that was killed mid-copy, when publishing still copied.
        for leftover in self.published.parent.glob(f".{self.published.name}.publish-*"):
            leftover.unlink(missing_ok=True)
        if self.work_db.exists():
            return "existing"
        if self.published.exists():
            log.info("event=workspace_seeded from=%s", self.published)
            try:
                _copy_durably(self.published, self.work_db)
            except OSError as exc:
                raise SeedFailed(f"could not copy {self.published} into the working copy {self.work_db}: "
                                 f"{exc.strerror or exc}") from None
            return "seeded"
        return "new"

    def create_work_db(self) -> None:
        """Create the empty working copy in ``STORAGE_VERSION``, before dlt first opens it with its defaults."""
        with duckdb.connect(str(self.work_db), config={**WRITER_CONFIG, "storage_compatibility_version": STORAGE_VERSION}):
            pass

    def publish(self) -> None:
        """Replace the published file with the working copy in one atomic rename: the working folder is beside
        the published file, on its filesystem. A publish that fails leaves the working copy where it is."""
        try:
            self._rename_over_published()
        except OSError as exc:
            raise PublishFailed(
                f"could not publish {self.published}: {exc.strerror or exc}; readers keep the previous version, "
                f"tonight's load stays in {self.work_dir} and the next load publishes it"
            ) from None
        log.info("event=published path=%s bytes=%d", self.published, self.published.stat().st_size)

    def _rename_over_published(self) -> None:
        with duckdb.connect(str(self.work_db), config=WRITER_CONFIG) as con:
            con.execute("checkpoint")
        wal = self.work_db.with_name(self.work_db.name + ".wal")
        if wal.exists():  # a checkpoint with no other connection open leaves none; without it the file is not whole
            raise OSError(errno.EBUSY, f"{wal} is still there after a checkpoint")
        with open(self.work_db, "rb+") as handle:
            os.fsync(handle.fileno())
        stale_wal = self.published.with_name(self.published.name + ".wal")
        if stale_wal.exists():
            log.warning("event=stale_wal_removed path=%s note=%r", stale_wal, "the published file is for readers only")
            stale_wal.unlink()
        os.replace(self.work_db, self.published)
        _fsync_dir(self.published.parent)
        _fsync_dir(self.work_dir)


def _copy_durably(source: Path, target: Path) -> None:
    """Copy under a temporary name and rename, so a kill mid-copy never leaves a half file at ``target``."""
    partial = target.with_name(target.name + ".partial")
    _copy_file(source, partial)
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)


def _copy_file(source: Path, target: Path) -> None:
    """Copy in the kernel with ``copy_file_range``: a filesystem that can share blocks (XFS, Btrfs) then shares
    them instead of copying, and the publish costs next to nothing; elsewhere it is a plain in-kernel copy."""
    try:
        with open(source, "rb") as reader, open(target, "wb") as writer:
            remaining = os.fstat(reader.fileno()).st_size
            while remaining > 0:
                copied = os.copy_file_range(reader.fileno(), writer.fileno(), remaining)
                if copied == 0:
                    break
                remaining -= copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        shutil.copyfile(source, target)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
