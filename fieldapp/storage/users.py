"""Accounts: create, read, update. Passwords arrive already hashed."""

from __future__ import annotations

from sqlite_utils import Database

from fieldapp.domain.records import now
from fieldapp.storage.db import IntegrityError, write

_COLUMNS = (
    "id, username, full_name, password_hash, role, post, active, created_at, updated_at,"
    " session_generation, must_change_password"
)


class UsernameTaken(ValueError):
    """Another account already has this username (case-insensitive)."""


def create(
    db: Database, *, username: str, password_hash: str, role: str, post: str | None,
    full_name: str = "", must_change_password: bool = False,
) -> int:
    """Add an account and return its id; raises UsernameTaken."""
    at = now()
    try:
        with write(db):
            cursor = db.execute(
                "INSERT INTO users (username, full_name, password_hash, role, post, created_at,"
                " updated_at, must_change_password) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [username, full_name, password_hash, role, post, at, at, int(must_change_password)],
            )
            _log_change(db, cursor.lastrowid)
            return cursor.lastrowid
    except IntegrityError as e:
        raise UsernameTaken(username) from e


def get(db: Database, user_id: int) -> dict | None:
    return next(db.query(f"SELECT {_COLUMNS} FROM users WHERE id = ?", [user_id]), None)


def by_username(db: Database, username: str) -> dict | None:
    return next(db.query(f"SELECT {_COLUMNS} FROM users WHERE username = ?", [username]), None)


def all_users(db: Database, post: str | None = None) -> list[dict]:
    """Every account, or those of one post, by username."""
    where, params = ("WHERE post = ?", [post]) if post else ("", [])
    sql = f"SELECT {_COLUMNS} FROM users {where} ORDER BY username COLLATE NOCASE"
    return list(db.query(sql, params))


def update(db: Database, user_id: int, *, end_sessions: bool = False, **changes) -> None:
    """Change some of full_name, password_hash, role, post, active, must_change_password; with
    `end_sessions=True`, end the account's sessions in the same transaction."""
    allowed = {"full_name", "password_hash", "role", "post", "active", "must_change_password"}
    if not changes or set(changes) - allowed:
        raise ValueError(f"cannot update {set(changes) - allowed or 'nothing'}")
    assignments = ", ".join(f"{k} = ?" for k in changes)
    with write(db):
        db.execute(
            f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
            [*changes.values(), now(), user_id],
        )
        if end_sessions:
            _end_sessions(db, user_id)
        _log_change(db, user_id)


def _log_change(db: Database, user_id: int) -> None:
    """Put the account in the feed its post's devices pull from central (a post's accounts)."""
    username, post = db.execute("SELECT username, post FROM users WHERE id = ?", [user_id]).fetchone()
    if post:
        db.execute("INSERT INTO changes (uuid, revision, at, post, kind) VALUES (?, 0, ?, ?, 'account')",
                   [username, now(), post])


def posts(db: Database) -> list[str]:
    """Every post that has an account, in order."""
    return [r[0] for r in db.execute("SELECT DISTINCT post FROM users WHERE post IS NOT NULL ORDER BY post")]


def end_sessions(db: Database, user_id: int) -> None:
    """End every session of an account, here and (through its generation, which sync carries)
    on the post's server."""
    with write(db):
        _end_sessions(db, user_id)
        _log_change(db, user_id)


def _end_sessions(db: Database, user_id: int) -> None:
    db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
    db.execute("UPDATE users SET session_generation = session_generation + 1 WHERE id = ?", [user_id])


def count(db: Database) -> int:
    return db.execute("SELECT count(*) FROM users").fetchone()[0]
