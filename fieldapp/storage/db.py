"""SQLite connections: WAL, synchronous=FULL, foreign keys, busy timeout, and one writer."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

BUSY_TIMEOUT_MS = 10_000
log = logging.getLogger(__name__)
# Pages a connection keeps in memory (negative: KiB), at most. A sync batch of 500 records
# dirties about 1,500 pages (6 MB); with SQLite's default of 2 MB they spill to the WAL before the
# commit. A server's connection, kept from request to request, also keeps its hot pages.
CACHE_KIB = 16 * 1024
# A server's connections leave copying the WAL back into the database to a thread of its own
# (`checkpoint_soon`); this bound stays as a safety net, far above what one request writes.
SERVING_AUTOCHECKPOINT_PAGES = 50_000
# A WAL file that a burst made large is cut back to this size once it is copied.
WAL_SIZE_LIMIT = 64 * 1024 * 1024

# One writer per database file in this process: waitress serves requests on several threads, and
# SQLite allows one writer at a time anyway; queueing here is fairer than spinning on SQLITE_BUSY.
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(path, threading.Lock())


def connect(path: str | Path, *, serving: bool = False) -> Database:
    """Open a database: `connect("instance/fieldapp.db")`.

    `serving=True` for a server's long-lived connections: they leave the WAL to
    `checkpoint_soon` instead of checkpointing inside a request."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    if serving:
        conn.execute(f"PRAGMA wal_autocheckpoint = {SERVING_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    db = Database(conn)
    db._fieldapp_path = str(Path(path).resolve())
    db._fieldapp_wrote = False
    db._fieldapp_writing = None
    return db


@contextmanager
def snapshot(db: Database) -> Iterator[Database]:
    """A read transaction: every query inside sees the database as it was at the first one, and
    writers (a post's sync) are not blocked meanwhile. Inside a transaction already, that one."""
    begun = not db.conn.in_transaction
    if begun:
        db.execute("BEGIN")
    try:
        yield db
    finally:
        if begun:
            db.execute("COMMIT")


@contextmanager
def write(db: Database, *, durable: bool = True) -> Iterator[Database]:
    """A write transaction, serialized with every other writer: `with write(db): ...`.

    `durable=False` skips the fsync at commit, for bookkeeping that may be lost in a power cut
    (a device's last contact): the next durable commit or checkpoint writes it for good.

    Inside another `write` of the same connection it joins that transaction (the outer one
    commits or rolls back, and decides durability): a caller can make a storage function's
    write and its audit event one transaction, `with write(db): users.update(...); audit.record(...)`.
    """
    if getattr(db, "_fieldapp_writing", None) is not None:
        yield db
        return
    with _lock_for(db._fieldapp_path):
        if not durable:
            db.execute("PRAGMA synchronous = NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            db._fieldapp_writing = {"durable": durable, "after_commit": []}
            try:
                yield db
            except BaseException:
                if db.conn.in_transaction:
                    db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
                db._fieldapp_wrote = True
                hooks, db._fieldapp_writing = db._fieldapp_writing["after_commit"], None
                for hook in hooks:
                    hook(db)
        finally:
            db._fieldapp_writing = None
            if not durable:
                db.execute("PRAGMA synchronous = FULL")


def in_write(db: Database) -> dict | None:
    """The `write` this connection is in ({"durable", "after_commit"}), or None."""
    return getattr(db, "_fieldapp_writing", None)


def after_commit(db: Database, hook: Callable[[Database], None]) -> None:
    """Run `hook(db)` once the current `write` commits (never if it rolls back); at most once per
    transaction for the same hook. Outside a `write`, nothing is run."""
    writing = in_write(db)
    if writing is not None and hook not in writing["after_commit"]:
        writing["after_commit"].append(hook)


def checkpoint_soon(db: Database) -> None:
    """Have what the WAL holds copied back into the database file soon, on a thread of its own:
    what a server does after a request that wrote, so that no answer waits for it."""
    db._fieldapp_wrote = False
    path = db._fieldapp_path
    with _checkpointers_guard:
        checkpointer = _checkpointers.get(path)
        if checkpointer is None or not checkpointer.running:
            checkpointer = _checkpointers[path] = _Checkpointer(path)
        checkpointer.wake.set()


class _Checkpointer:
    """A thread that runs PASSIVE checkpoints (they wait for no reader or writer) of one database
    when woken, and ends after a while without work.

    It waits for a pause in the writes (QUIET_SECONDS without one, or MAX_DELAY_SECONDS at most):
    a burst of requests, such as a sync's batches, rewrites the same pages (an index's leaves)
    again and again; each is then copied into the database once rather than after every request,
    and the copying keeps off the disk while the burst needs it."""

    IDLE_SECONDS = 5
    QUIET_SECONDS = 0.2
    MAX_DELAY_SECONDS = 2

    def __init__(self, path: str):
        self.path, self.wake, self.running = path, threading.Event(), True
        threading.Thread(target=self._run, daemon=True, name="fieldapp-checkpoint").start()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                if not self.wake.wait(self.IDLE_SECONDS):
                    with _checkpointers_guard:
                        if not self.wake.is_set():
                            self.running = False
                            return
                latest = time.monotonic() + self.MAX_DELAY_SECONDS
                while True:
                    self.wake.clear()
                    left = latest - time.monotonic()
                    if left <= 0 or not self.wake.wait(min(self.QUIET_SECONDS, left)):
                        break
                if conn is None:
                    conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:  # the next writer's checkpoint copies what this one did not
            log.warning("checkpoint failed: %s", e)
        finally:
            self.running = False
            if conn is not None:
                conn.close()


_checkpointers: dict[str, _Checkpointer] = {}
_checkpointers_guard = threading.Lock()
