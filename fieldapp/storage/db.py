"""SQLite connections: WAL, synchronous=FULL, foreign keys, busy timeout, and one writer."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

BUSY_TIMEOUT_MS = 10_000

# One writer per database file in this process: waitress serves requests on several threads, and
# SQLite allows one writer at a time anyway; queueing here is fairer than spinning on SQLITE_BUSY.
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(path, threading.Lock())


def connect(path: str | Path) -> Database:
    """Open a database: `connect("instance/fieldapp.db")`."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = Database(conn)
    db._fieldapp_path = str(Path(path).resolve())
    return db


@contextmanager
def write(db: Database) -> Iterator[Database]:
    """A write transaction, serialized with every other writer: `with write(db): ...`."""
    with _lock_for(db._fieldapp_path):
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")
