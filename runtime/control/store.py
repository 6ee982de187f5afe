"""The mappings ``serve`` holds, in one SQLite file: what survives a restart of ``serve``.

One row per mapping: its UUID (and so its default consumer group), the request that
defines it (AWS's CreateEventSourceMapping JSON, updates applied), the region it was
created in, when it was last modified, and whether it is being deleted. Runtime state
(State, LastProcessingResult) is not stored: the running pollers own it.

The file carries SQLite's ``application_id`` and a schema version: a file that is not a
database, belongs to another program or to a newer schema is refused with an error that
names it, never emptied or overwritten.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

APPLICATION_ID: Final = 0x4B45534D  # "KESM"
SCHEMA_VERSION: Final = 1
FILE_NAME: Final = "mappings.sqlite"
LOCK_FILE: Final = "serve.lock"
_SCHEMA: Final = """
CREATE TABLE mappings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    request TEXT NOT NULL,
    region TEXT NOT NULL,
    last_modified REAL NOT NULL,
    deleting INTEGER NOT NULL DEFAULT 0
)
"""


class StateFileError(RuntimeError):
    """The state file cannot be used as it is; the message names it and says why."""


@dataclass(frozen=True)
class StoredMapping:
    """One row."""

    seq: int
    """Creation order: List answers in it, and its Marker is the last seq returned."""
    uuid: str
    request: dict[str, Any]
    region: str
    last_modified: float
    deleting: bool


class MappingStore:
    """The SQLite file; every method is one transaction, safe from any thread."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE_NAME
        self._lock = threading.Lock()
        self._owner = _claim(directory / LOCK_FILE)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._open(fresh)
        except BaseException as exc:
            self._db.close()
            self._owner.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StateFileError(
                    f"state file {self.path} is not a kafka-esm serve database ({exc}); it is"
                    " left as it is: move it away or give another --state-dir"
                ) from None
            raise

    def _open(self, fresh: bool) -> None:
        db = self._db
        if fresh:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute(_SCHEMA)
            return
        app = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if app != APPLICATION_ID:
            raise StateFileError(
                f"state file {self.path} belongs to another program (SQLite application_id"
                f" {app:#x}, not {APPLICATION_ID:#x}); it is left as it is: give another"
                " --state-dir"
            )
        if version != SCHEMA_VERSION:
            raise StateFileError(
                f"state file {self.path} has schema version {version}; this kafka-esm reads"
                f" {SCHEMA_VERSION}: use the kafka-esm that wrote it, or another --state-dir"
            )
        db.execute("PRAGMA quick_check").fetchone()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, uuid: str, request: dict[str, Any], region: str) -> StoredMapping:
        """Store a new mapping."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO mappings (uuid, request, region, last_modified) VALUES (?, ?, ?, ?)",
                (uuid, json.dumps(request), region, now),
            )
        assert cursor.lastrowid is not None
        return StoredMapping(cursor.lastrowid, uuid, request, region, now, False)

    def replace_request(self, uuid: str, request: dict[str, Any]) -> StoredMapping | None:
        """Store an updated request; None when the mapping is gone."""
        with self._transaction() as db:
            db.execute(
                "UPDATE mappings SET request = ?, last_modified = ? WHERE uuid = ?",
                (json.dumps(request), time.time(), uuid),
            )
        return self.get(uuid)

    def mark_deleting(self, uuid: str) -> None:
        """Deleting: a restart of ``serve`` finishes the delete instead of running it."""
        with self._transaction() as db:
            db.execute("UPDATE mappings SET deleting = 1 WHERE uuid = ?", (uuid,))

    def remove(self, uuid: str) -> None:
        """Forget the mapping."""
        with self._transaction() as db:
            db.execute("DELETE FROM mappings WHERE uuid = ?", (uuid,))

    def get(self, uuid: str) -> StoredMapping | None:
        """One mapping, or None."""
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE uuid = ?", (uuid,)).fetchone()
        return None if row is None else _row(row)

    def all(self) -> list[StoredMapping]:
        """Every mapping, in creation order."""
        with self._lock:
            rows = self._db.execute(f"{_SELECT} ORDER BY seq").fetchall()
        return [_row(row) for row in rows]

    def close(self) -> None:
        """Close the file and let another ``serve`` have the folder."""
        with self._lock:
            self._db.close()
            self._owner.close()


_SELECT: Final = "SELECT seq, uuid, request, region, last_modified, deleting FROM mappings"


def _row(row: tuple[Any, ...]) -> StoredMapping:
    seq, uuid, request, region, last_modified, deleting = row
    return StoredMapping(seq, uuid, json.loads(request), region, last_modified, bool(deleting))


def _claim(path: Path) -> IO[str]:
    """An exclusive lock on the state folder for this process: two ``serve`` on one folder
    would run every mapping twice. The kernel drops it when the process dies."""
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StateFileError(
            f"state folder {path.parent} is in use by another kafka-esm serve (pid {holder});"
            " stop it or give another --state-dir"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
