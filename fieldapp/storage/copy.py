"""Consistent copies of a live database with SQLite's backup API (never a file copy), their checks,
and the copy kept before an upgrade."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from fieldapp.storage.db import connect, is_unlocked, share_key, snapshot

# Pages copied per step: 4 MB with SQLite's 4 KiB pages; a progress report after each.
STEP_PAGES = 1024
# Pre-upgrade copies kept beside the database; older ones are removed after a new one is made.
PRE_UPGRADE_KEEP = 2
PRE_UPGRADE_MARK = ".pre-upgrade-"


def copy_to(db: Database, dest: str | Path, *,
            progress: Callable[[int, int], None] | None = None) -> None:
    """Copy `db` as it is now into a new database file `dest`, in steps, while others keep
    writing: `copy_to(db, "/tmp/x.db", progress=lambda done, total: ...)`.

    A read transaction held across the steps pins one snapshot: SQLite restarts a backup whose
    source another connection changed only when the copying connection starts a new read, so
    writers neither block the copy nor make it start over, and it holds what was committed when
    it began. The copy is opened through `connect`, like every database file."""
    dest = Path(dest)
    if is_unlocked(db._fieldapp_path):  # the backup API copies pages: same key and salt on both ends
        salt = bytes.fromhex(db.execute("PRAGMA cipher_salt").fetchone()[0])
        share_key(db._fieldapp_path, dest, salt=salt)
    target = connect(dest)
    try:
        with snapshot(db):
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            def step(status, remaining, total):
                if progress is not None:
                    progress(total - remaining, total)
            db.conn.backup(target.conn, pages=STEP_PAGES, progress=step)
        # One self-contained file: no -wal beside it.
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.conn.close()


def integrity(path: str | Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong with a database file ([] when it is sound)."""
    db = connect(path)
    try:
        rows = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
    finally:
        db.conn.close()
    return [] if rows == ["ok"] else rows


def record_count(db: Database) -> int:
    """Records of every form, deleted ones included (0 before the first migration)."""
    if not db["records"].exists():
        return 0
    return db.execute("SELECT count(*) FROM records").fetchone()[0]


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; Windows has no directory handles to sync)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pre_upgrade_copy(db: Database) -> Path:
    """Copy the database beside itself before migrations run:
    `<db>.pre-upgrade-<schema>-<time>`. It stays in the instance folder, as protected as the
    database (the same permissions, and whatever `connect` applies to every file). A copy
    interrupted by a power cut leaves only a `.partial` file, which the next attempt replaces."""
    from fieldapp.storage.migrations import schema_version

    source = Path(db._fieldapp_path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")  # two upgrades in a second: two copies
    final = source.with_name(f"{source.name}{PRE_UPGRADE_MARK}{schema_version(db)}-{stamp}")
    partial = final.with_name(final.name + ".partial")
    for stale in source.parent.glob(f"{source.name}{PRE_UPGRADE_MARK}*.partial"):
        stale.unlink()
    copy_to(db, partial)
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, final)
    fsync_dir(final.parent)
    kept = sorted((p for p in source.parent.glob(f"{source.name}{PRE_UPGRADE_MARK}*")
                   if not p.name.endswith(".partial")), key=lambda p: p.stat().st_mtime)
    for old in kept[:-PRE_UPGRADE_KEEP]:
        with contextlib.suppress(OSError):
            old.unlink()
    return final
