"""SQLite connections: WAL, synchronous=FULL, foreign keys, busy timeout, and one writer."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

BUSY_TIMEOUT_MS = 10_000
# Pages a connection keeps in memory (negative: KiB). A sync batch of 500 records dirties a few
# thousand pages; with SQLite's default of 2 MB they spill to the WAL before the commit, and a
# connection kept for many requests keeps its hot pages.
CACHE_KIB = 32 * 1024
# A server's connections copy the WAL back into the database after answering (`checkpoint`);
# this bound stays as a safety net, far above what one request writes.
SERVING_AUTOCHECKPOINT_PAGES = 10_000

# One writer per database file in this process: waitress serves requests on several threads, and
# SQLite allows one writer at a time anyway; queueing here is fairer than spinning on SQLITE_BUSY.
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(path, threading.Lock())


def connect(path: str | Path, *, serving: bool = False) -> Database:
    """Open a database: `connect("instance/fieldapp.db")`.

    `serving=True` for a server's long-lived connections: they leave the WAL to `checkpoint`,
    run after an answer has gone out, instead of checkpointing inside a request."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    if serving:
        conn.execute(f"PRAGMA wal_autocheckpoint = {SERVING_AUTOCHECKPOINT_PAGES}")
    db = Database(conn)
    db._fieldapp_path = str(Path(path).resolve())
    db._fieldapp_wrote = False
    return db


@contextmanager
def write(db: Database, *, durable: bool = True) -> Iterator[Database]:
    """A write transaction, serialized with every other writer: `with write(db): ...`.

    `durable=False` skips the fsync at commit, for bookkeeping that may be lost in a power cut
    (a device's last contact): the next durable commit or checkpoint writes it for good."""
    with _lock_for(db._fieldapp_path):
        if not durable:
            db.execute("PRAGMA synchronous = NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.conn.in_transaction:
                    db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
                db._fieldapp_wrote = True
        finally:
            if not durable:
                db.execute("PRAGMA synchronous = FULL")


def checkpoint(db: Database) -> None:
    """Copy what the WAL holds back into the database file, without waiting for readers or
    writers (PASSIVE): what a serving connection runs once its answer is on its way."""
    db._fieldapp_wrote = False
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
