"""What the database says about its own health, read without writing: size, integrity, schema
version, and the field server's sync bookkeeping. For `fieldapp doctor` and the diagnostics page."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations
from fieldapp.storage import sync as store
from fieldapp.storage.db import BUSY_TIMEOUT_MS


@dataclass
class DatabaseHealth:
    """Readings of one database file. `integrity` is SQLite's answer: ["ok"] or the problems."""

    exists: bool = True
    readable: bool = True  # False when SQLite raised an error: the readings below are unknown
    bytes: int = 0  # the database file and its WAL
    integrity: list[str] = field(default_factory=lambda: ["ok"])
    schema: str = ""
    schema_pending: int = 0
    enrolled: bool = False
    central_url: str = ""
    device: str = ""
    last_sync: str | None = None
    pending: int = 0
    refused: int = 0
    clock_offset: float | None = None


def read(path: str | Path, *, mode: str = "field", full: bool = False) -> DatabaseHealth:
    """Read a database's health: `read("instance/fieldapp.db", full=True)`.

    `full` runs `PRAGMA integrity_check` (reads every page and index); otherwise `quick_check`,
    which skips matching indexes to their tables and suits a web page. A damaged file is a reading
    (its error goes in `integrity`), never an exception."""
    path = Path(path)
    if not path.exists():
        return DatabaseHealth(exists=False, readable=False, integrity=[])
    wal = path.with_name(path.name + "-wal")
    health = DatabaseHealth(bytes=path.stat().st_size + (wal.stat().st_size if wal.exists() else 0))
    try:
        if storage_db.is_unlocked(path):  # encrypted: SQLCipher's driver and the unlocked key
            conn = storage_db.raw_connection(path)
        else:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except storage_db.Error as e:
        health.integrity, health.readable = [str(e)], False
        return health
    try:
        db = Database(conn)
        health.integrity = [row[0] for row in conn.execute(
            "PRAGMA integrity_check(20)" if full else "PRAGMA quick_check(20)")]
        health.schema = migrations.schema_version(db)
        health.schema_pending = len(migrations.migrations.pending(db))
        if mode == "field" and db["sync_state"].exists():
            _sync(db, health)
    except storage_db.Error as e:
        health.integrity, health.readable = [str(e)], False
    finally:
        conn.close()
    return health


def _sync(db: Database, health: DatabaseHealth) -> None:
    state = store.state(db)
    health.enrolled = bool(state.get("token"))
    health.central_url = state.get("central_url", "")
    health.device = state.get("device", "")
    health.last_sync = state.get("last_sync")
    health.pending = store.pending_count(db, int(state.get("push_checkpoint", 0)))
    health.refused = store.outcome_count(db, "rejected")
    offset = state.get("clock_offset")
    health.clock_offset = float(offset) if offset else None
