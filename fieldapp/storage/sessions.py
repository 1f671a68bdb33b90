"""Login sessions (by the hash of their id) and failed-login counters. Times: seconds since the epoch."""

from __future__ import annotations

from collections.abc import Iterable

from sqlite_utils import Database

from fieldapp.storage.db import write


def start(db: Database, *, id_hash: str, user: dict, password_stamp: str, at: float,
          expired_before: float) -> None:
    """Record a new session of `user`; sessions that ended before `expired_before` are removed."""
    with write(db):
        db.execute("DELETE FROM sessions WHERE last_seen < ?", [expired_before])
        db.execute(
            "INSERT INTO sessions (id_hash, user_id, generation, password_stamp, created_at, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [id_hash, user["id"], user["session_generation"], password_stamp, at, at],
        )


def find(db: Database, id_hash: str) -> dict | None:
    """The session with this id hash: `find(db, h)["user_id"]`."""
    return next(db.query(
        "SELECT id_hash, user_id, generation, password_stamp, created_at, last_seen FROM sessions"
        " WHERE id_hash = ?", [id_hash]), None)


def touch(db: Database, id_hash: str, at: float) -> None:
    """Note a visit. Not made durable: a visit forgotten in a power cut only ends a session sooner."""
    with write(db, durable=False):
        db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", [at, id_hash])


def end(db: Database, id_hash: str) -> None:
    with write(db):
        db.execute("DELETE FROM sessions WHERE id_hash = ?", [id_hash])


def count(db: Database, user_id: int) -> int:
    return db.execute("SELECT count(*) FROM sessions WHERE user_id = ?", [user_id]).fetchone()[0]


def failures(db: Database, keys: Iterable[str]) -> dict[str, tuple[int, float]]:
    """Failed logins recorded under these keys: {key: (failures, last failure)}."""
    keys = list(keys)
    rows = db.execute(
        f"SELECT key, failures, last_at FROM login_failures WHERE key IN ({', '.join('?' * len(keys))})",
        keys)
    return {key: (n, last_at) for key, n, last_at in rows}


def add_failure(db: Database, keys: Iterable[str], *, at: float, forget_before: float) -> None:
    """Count one more failure under each key; counts last failed at or before `forget_before`
    start again."""
    with write(db):
        db.execute("DELETE FROM login_failures WHERE last_at <= ?", [forget_before])
        for key in keys:
            db.execute(
                "INSERT INTO login_failures (key, failures, last_at) VALUES (?, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at",
                [key, at])


def clear_failures(db: Database, key: str) -> None:
    with write(db):
        db.execute("DELETE FROM login_failures WHERE key = ?", [key])
