"""Central: exports asked for, their progress and files — also the exports' audit log."""

from __future__ import annotations

import json

from sqlite_utils import Database

from fieldapp.domain.records import now
from fieldapp.storage.db import write

_COLUMNS = ("id", "username", "created_at", "dataset", "format", "profile", "purpose", "options",
            "filters", "since_seq", "upto_seq", "status", "total", "rows", "finished_at", "file", "error")


def create(db: Database, *, export_id: str, username: str, dataset: str, format: str, profile: str,
           purpose: str, options: dict, filters: dict, since_seq: int | None, upto_seq: int,
           total: int) -> None:
    with write(db):
        db.execute(
            f"INSERT INTO exports ({', '.join(_COLUMNS[:13])}) VALUES ({', '.join('?' * 13)})",
            [export_id, username, now(), dataset, format, profile, purpose,
             json.dumps(options, sort_keys=True), json.dumps(filters, sort_keys=True, ensure_ascii=False),
             since_seq, upto_seq, "running", total],
        )


def finish(db: Database, export_id: str, *, rows: int, file: str) -> None:
    with write(db):
        db.execute("UPDATE exports SET status = 'done', rows = ?, file = ?, finished_at = ? WHERE id = ?",
                   [rows, file, now(), export_id])


def fail(db: Database, export_id: str, *, rows: int, error: str) -> None:
    with write(db):
        db.execute("UPDATE exports SET status = 'failed', rows = ?, error = ?, finished_at = ? WHERE id = ?",
                   [rows, error, now(), export_id])


def _export(row) -> dict:
    export = dict(zip(_COLUMNS, row, strict=True))
    export["options"] = json.loads(export["options"])
    export["filters"] = json.loads(export["filters"])
    return export


def get(db: Database, export_id: str) -> dict | None:
    row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM exports WHERE id = ?", [export_id]).fetchone()
    return _export(row) if row else None


def log(db: Database, *, username: str | None = None, limit: int = 100) -> list[dict]:
    """The latest exports, newest first: everyone's (the audit log), or one person's."""
    where, params = ("WHERE username = ?", [username]) if username else ("", [])
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM exports {where} ORDER BY created_at DESC LIMIT ?",
                      [*params, limit])
    return [_export(r) for r in rows]


def last_upto(db: Database, *, username: str, dataset: str, profile: str) -> int | None:
    """Where this person's last finished export of this data set and profile read up to, if any."""
    row = db.execute(
        "SELECT max(upto_seq) FROM exports WHERE username = ? AND dataset = ? AND profile = ?"
        " AND status = 'done'", [username, dataset, profile]).fetchone()
    return row[0]


def interrupted(db: Database, running: set[str]) -> None:
    """Mark as failed the exports still 'running' that no job of this process is writing (the
    server stopped during them)."""
    stale = [i for (i,) in db.execute("SELECT id FROM exports WHERE status = 'running'") if i not in running]
    if not stale:
        return  # the usual case: no write transaction for a page view
    with write(db):
        for export_id in stale:
            db.execute("UPDATE exports SET status = 'failed', error = 'interrupted', finished_at = ?"
                       " WHERE id = ? AND status = 'running'", [now(), export_id])
