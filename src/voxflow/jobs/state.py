"""The job state of an output directory: one SQLite row per input (done, failed, pending).

The database lives in the output directory (``.voxflow-job.sqlite``, WAL mode, each change
committed at once with ``synchronous=FULL``), so a job can be killed at any moment and resumed.
Its footprint stays small on a nearly full disk: 1 KiB pages, and the WAL is checkpointed after
every commit and kept under ``_WAL_LIMIT``. One run at a time holds the directory's lock; a
reader (``voxflow jobs status``) needs none. Rows are keyed by the input's absolute path, which
fixes its output stem for good; whether its work is done is judged by its content hash and the
fingerprint of the options.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxflow.errors import OutputError, printable
from voxflow.outputs import DiskFullError, fsync_directory, remove_temps, stem_key, temp_path

JOB_FILE = ".voxflow-job.sqlite"
LOCK_FILE = ".voxflow-job.lock"
SCHEMA_VERSION = "1"
STATES = ("pending", "running", "done", "failed")
_NEW = ".new"  # suffix of a job database being created
_PAGE_SIZE = 1024  # bytes; a job's rows are small, and each commit writes a few pages
_WAL_LIMIT = 64 * 1024  # bytes of WAL kept after a checkpoint (one commit needs a few pages)
_DAMAGED = "the job state is damaged ({}); move it away to start afresh"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL UNIQUE,      -- os.fsencode(absolute input path); b'-' for stdin
    name TEXT NOT NULL,             -- the input as last named, printable
    stem TEXT NOT NULL,
    stem_key TEXT NOT NULL UNIQUE,  -- outputs.stem_key(stem): unique on any file system
    sha256 TEXT, size INTEGER, mtime_ns INTEGER, inode INTEGER,
    options TEXT,                   -- fingerprint of the options of the last attempt
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',  -- JSON list of the output names of the last success
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (  -- every output the job wrote, by name and content hash
    name TEXT NOT NULL, sha256 TEXT NOT NULL, item INTEGER NOT NULL,
    PRIMARY KEY (name, sha256)
);
"""


@dataclass(frozen=True)
class Item:
    """One input of the job as the database last recorded it."""

    id: int
    path: str
    name: str
    stem: str
    sha256: str | None
    size: int | None
    mtime_ns: int | None
    inode: int | None
    options: str | None
    state: str
    attempts: int
    error: str | None
    outputs: tuple[str, ...]
    updated: float

    def same_work(self, sha256: str | None, options: str) -> bool:
        """Whether the last attempt was on this very content with these very options."""
        return sha256 is not None and self.sha256 == sha256 and self.options == options

    def cached_hash(self, stat: os.stat_result | None) -> str | None:
        """The recorded content hash when the file looks unchanged since (size, mtime, inode)."""
        if stat is None or self.sha256 is None:
            return None
        if (self.size, self.mtime_ns, self.inode) != (stat.st_size, stat.st_mtime_ns, stat.st_ino):
            return None
        return self.sha256


class JobState:
    """The open, locked state of one job directory; every method commits what it changes."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, lock_fd: int | None) -> None:
        self.directory = directory
        self.db_path = directory / JOB_FILE
        self._conn = conn
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, directory: Path) -> JobState:
        """Create or resume the job in ``directory``: lock it, reset rows a killed run left
        ``running`` to ``pending``, and delete stale temporary outputs."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _os_error(exc, directory / LOCK_FILE) from None
        if not _try_lock(lock_fd):
            os.close(lock_fd)
            raise OutputError("another voxflow run is using this output directory",
                              source=str(directory))  # fmt: skip
        try:
            conn = _connect(directory / JOB_FILE, readonly=False)
            with _guarded(directory / JOB_FILE):
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    raise OutputError(f"job state of schema {row[0]}, this voxflow reads "
                                      f"{SCHEMA_VERSION}", source=str(directory / JOB_FILE))
                conn.execute("UPDATE items SET state='pending' WHERE state='running'")
        except BaseException:
            os.close(lock_fd)
            raise
        job = cls(directory, conn, lock_fd)
        recorded = job._query("SELECT name, sha256 FROM outputs")
        remove_temps(directory, {job.temp_for(name, sha).name for name, sha in recorded})
        return job

    @classmethod
    def read(cls, directory: Path) -> JobState:
        """Open a job for reading only, without its lock (for ``voxflow jobs status``)."""
        try:
            found = (directory / JOB_FILE).is_file()
        except OSError as exc:  # a directory the user may not look into
            reason = f"cannot read the job state: {exc.strerror or exc}"
            raise OutputError(reason, source=str(directory)) from None
        if not found:
            raise OutputError("no voxflow job here (no .voxflow-job.sqlite)", source=str(directory))
        return cls(directory, _connect(directory / JOB_FILE, readonly=True), None)

    def close(self) -> None:
        """Close the database (checkpointing the WAL) and release the directory's lock."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> JobState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def active(self) -> bool:
        """Whether a run holds this job's lock now (so that ``running`` rows are real)."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self.directory / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return False
        try:
            return not _try_lock(fd)
        finally:
            os.close(fd)

    # --- reading ---------------------------------------------------------------------------

    def items(self) -> list[Item]:
        """Every input the job has seen, in the order they were first seen."""
        return [_item(r) for r in self._query("SELECT * FROM items ORDER BY id")]

    def item(self, path: str) -> Item | None:
        """The row of the input at ``path`` (absolute, or ``-``), if the job has one."""
        rows = self._query("SELECT * FROM items WHERE path=?", (os.fsencode(path),))
        return _item(rows[0]) if rows else None

    def taken_stems(self) -> set[str]:
        """The stem keys of every input the job has seen."""
        return {r[0] for r in self._query("SELECT stem_key FROM items")}

    def owner_of_stem(self, stem: str) -> Item | None:
        """The input whose outputs are named by ``stem`` (compared by :func:`stem_key`)."""
        rows = self._query("SELECT * FROM items WHERE stem_key=?", (stem_key(stem),))
        return _item(rows[0]) if rows else None

    def temp_for(self, name: str, sha256: str) -> Path:
        """The temporary that output ``name`` with this content is written to: named after
        the hash :meth:`record_output` stored first, so that only the job's own are removed."""
        return temp_path(self.directory / name, sha256[:16])

    def wrote(self, name: str, sha256: str) -> bool:
        """Whether the job wrote an output file ``name`` with exactly this content."""
        return bool(self._query("SELECT 1 FROM outputs WHERE name=? AND sha256=?", (name, sha256)))

    # --- changing --------------------------------------------------------------------------

    def add(self, path: str, name: str, stem: str) -> Item:
        """Record a new input with its output stem, pending."""
        self._change(
            "INSERT INTO items (path, name, stem, stem_key, updated) VALUES (?, ?, ?, ?, ?)",
            (os.fsencode(path), printable(name), stem, stem_key(stem), time.time()),
        )
        found = self.item(path)
        assert found is not None
        return found

    def adopt(self, item: Item, path: str, name: str) -> Item:
        """Move a recorded input to its new path (the file was moved): it keeps its stem."""
        self._change("UPDATE items SET path=?, name=?, updated=? WHERE id=?",
                     (os.fsencode(path), printable(name), time.time(), item.id))  # fmt: skip
        found = self.item(path)
        assert found is not None
        return found

    def start(
        self,
        item: Item,
        sha256: str | None,
        options: str,
        stat: os.stat_result | None,
        *,
        fresh: bool = False,
    ) -> None:
        """Mark an attempt as running; the count of attempts restarts when the work changed
        (or when ``fresh``)."""
        size, mtime, inode = (stat.st_size, stat.st_mtime_ns, stat.st_ino) if stat else (None,) * 3
        same = item.same_work(sha256, options) and not fresh
        self._change(
            "UPDATE items SET state='running', attempts=?, sha256=?, size=?, mtime_ns=?, "
            "inode=?, options=?, updated=? WHERE id=?",
            (item.attempts if same else 0, sha256, size, mtime, inode, options, time.time(),
             item.id),
        )  # fmt: skip

    def finish(self, item: Item, outputs: list[str]) -> None:
        """Mark the input done with these outputs."""
        self._change(
            "UPDATE items SET state='done', attempts=attempts+1, error=NULL, outputs=?, "
            "updated=? WHERE id=?",
            (json.dumps(outputs, ensure_ascii=False), time.time(), item.id),
        )

    def fail(self, item: Item, reason: str) -> None:
        """Mark the attempt failed with its one-line reason; it counts towards the limit."""
        self._change(
            "UPDATE items SET state='failed', attempts=attempts+1, error=?, updated=? WHERE id=?",
            (reason, time.time(), item.id),
        )

    def release(self, item: Item) -> None:
        """Put an abandoned attempt back to pending; it does not count as an attempt."""
        self._change("UPDATE items SET state='pending', updated=? WHERE id=? AND state='running'",
                     (time.time(), item.id))  # fmt: skip

    def record_output(self, item: Item, name: str, sha256: str) -> None:
        """Note, before publishing it, that the job writes ``name`` with this content."""
        self._change("INSERT OR IGNORE INTO outputs VALUES (?, ?, ?)", (name, sha256, item.id))

    def forget_other_outputs(self, name: str, sha256: str) -> None:
        """After ``name`` was published with this content, drop the hashes it had before."""
        self._change("DELETE FROM outputs WHERE name=? AND sha256<>?", (name, sha256))

    # --- plumbing --------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with _guarded(self.db_path):
            return self._conn.execute(sql, args).fetchall()

    def _change(self, sql: str, args: tuple[Any, ...]) -> None:
        with _guarded(self.db_path):
            self._conn.execute(sql, args)  # autocommit: one durable transaction per change


def _item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"], path=os.fsdecode(row["path"]), name=row["name"], stem=row["stem"],
        sha256=row["sha256"], size=row["size"], mtime_ns=row["mtime_ns"], inode=row["inode"],
        options=row["options"], state=row["state"], attempts=row["attempts"],
        error=row["error"], outputs=tuple(json.loads(row["outputs"])), updated=row["updated"],
    )  # fmt: skip


def _connect(db: Path, *, readonly: bool) -> sqlite3.Connection:
    if not readonly and not db.exists():
        _create(db)
    try:
        empty = db.stat().st_size == 0
    except OSError:
        empty = False  # missing or unreadable: SQLite says why in its own words
    if empty:  # never a job just begun (see _create): a file that lost its content
        raise OutputError(_DAMAGED.format("empty, 0 bytes"), source=str(db))
    with _guarded(db):
        if readonly:
            conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
        else:
            conn = sqlite3.connect(db, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA wal_autocheckpoint=1")  # checkpoint after every commit
            conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a corrupt file fails here
    return conn


def _create(db: Path) -> None:
    """Make a new job database in one step: built under a temporary name, then renamed, so
    the job file is never seen empty and an empty one is known to be damaged."""
    tmp = db.with_name(db.name + _NEW)
    try:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):  # a killed creation's
            leftover.unlink(missing_ok=True)
        with _guarded(db):
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
                conn.executescript(_SCHEMA)
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            finally:
                conn.close()
        os.replace(tmp, db)
        fsync_directory(db.parent)
    except OSError as exc:
        raise _os_error(exc, db) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a failed creation's; gone after the rename


@contextlib.contextmanager
def _guarded(db: Path) -> Iterator[None]:
    """SQLite errors as one-line OutputErrors naming the job file."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
            raise DiskFullError(f"disk full while writing {db}") from None
        if code is not None and code & 0xFF in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            raise OutputError(_DAMAGED.format(exc), source=str(db)) from None
        raise OutputError(f"job state: {exc}", source=str(db)) from None


def _os_error(exc: OSError, path: Path) -> OutputError:
    """A one-line OutputError for an OSError met while creating ``path`` in a job directory."""
    import errno

    if exc.errno == errno.ENOSPC:
        return DiskFullError(f"disk full while writing {path}")
    return OutputError(f"cannot write here: {exc.strerror or exc}", source=str(path.parent))


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; True where locks do not exist."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one run at a time is up to the user
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
