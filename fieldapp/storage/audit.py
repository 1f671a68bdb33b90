"""The audit log: append an event in one line, read it page by page, verify its chain.

    from fieldapp.storage import audit
    audit.record(db, "account.updated", actor=audit.Actor.user(admin, address),
                 target=f"user:{user_id}", details={"changed": ["role"], "role": "supervisor"})

`record` works inside the caller's `storage.db.write` (the event is then committed, or rolled
back, with the caller's change) or on its own (it opens one). Never put personal data in an event:
targets are identifiers (a record's uuid, an account's number, a device's id), details are codes,
counts and filters. A web view uses `fieldapp.web.audit.record`, which fills in the actor.

Each row links to the previous one by hash (domain/audit.py). Deleting rows at the end would
leave a valid, shorter chain, so every commit that appended also writes the last row's number and
hash to an *anchor* file beside the database (`<database>.audit-anchor`); `verify` compares the
two. docs/security.md says what this protects against and what it does not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlite_utils import Database

from fieldapp.domain import audit as rules
from fieldapp.domain.records import now
from fieldapp.storage.db import after_commit, in_write, snapshot, write

log = logging.getLogger(__name__)

MAX_DETAILS = 4096  # characters of canonical JSON: counts and codes, never documents


@dataclass(frozen=True)
class Actor:
    """Who did it, from where: a user, a device (sync), the system or an anonymous caller."""

    kind: str
    id: str = ""
    name: str = ""
    address: str = ""

    @classmethod
    def user(cls, user: dict, address: str = "") -> Actor:
        """A logged-in account: `Actor.user(g.user, request.remote_addr)`."""
        return cls("user", str(user["id"]), user["username"], address or "")

    @classmethod
    def device(cls, device_id: str, address: str = "") -> Actor:
        return cls("device", device_id, device_id, address or "")

    @classmethod
    def anonymous(cls, address: str = "") -> Actor:
        return cls("anonymous", "", "", address or "")


SYSTEM = Actor("system", "", "system")
CLI = Actor("system", "cli", "cli")  # the `fieldapp` command, run on the server itself


class AuditError(ValueError):
    """An event that cannot be recorded as given (a programming error, never user input)."""


def record(db: Database, event: str, *, actor: Actor, target: str = "",
           details: dict | None = None, anchor: bool = True) -> int:
    """Append an event and return its sequence number.

    `event`: a dotted code ("record.viewed"); `target`: "kind:id" ("record:<uuid>", "user:12",
    "device:<id>") or ""; `details`: a small dict of codes and counts, stored as canonical JSON.
    `anchor=False` leaves the anchor file to the next event that moves it (a sync's batches: its
    finish does), rather than writing and syncing it once more after this commit."""
    row = _row(event, actor, target, details)
    if in_write(db) is None and not db.conn.in_transaction:
        with write(db):
            return _append(db, row, anchor)
    return _append(db, row, anchor)


def _row(event: str, actor: Actor, target: str, details: dict | None) -> dict:
    if not rules.EVENT.match(event):
        raise AuditError(f"bad event code {event!r}")
    if actor.kind not in rules.ACTOR_KINDS:
        raise AuditError(f"bad actor kind {actor.kind!r}")
    kind, _, ident = target.partition(":") if target else ("", "", "")
    if target and not (rules.TARGET_KIND.match(kind) and rules.TARGET_ID.match(ident)):
        raise AuditError(f"bad target {target!r}")
    if details is not None and not isinstance(details, dict):
        raise AuditError("details must be a dict")
    text = rules.canonical(details or {})
    if len(text) > MAX_DETAILS:
        raise AuditError("details too large")
    return {"event": event, "actor_kind": actor.kind, "actor_id": actor.id[:64],
            "actor_name": actor.name[:64], "target_kind": kind, "target_id": ident,
            "details": text, "address": (actor.address or "")[:64]}


def _append(db: Database, row: dict, anchor: bool = True) -> int:
    # Read the chain's head in the transaction that appends: SQLite serializes write
    # transactions (BEGIN IMMEDIATE), across threads and processes alike.
    last = _head(db)
    seq, previous = (last.seq + 1, last.hash) if last else (1, rules.GENESIS)
    row = {**row, "seq": seq, "at": now(), "prev_hash": previous}
    row["hash"] = rules.row_hash(row)
    db.execute(f"INSERT INTO audit_log ({', '.join(rules.COLUMNS)}) VALUES "
               f"({', '.join('?' * len(rules.COLUMNS))})", [row[c] for c in rules.COLUMNS])
    writing = in_write(db)
    # A commit that may be lost in a power cut (durable=False) must not be anchored: the anchor
    # would then name a row that never was. The next durable append anchors it.
    if anchor and writing is not None and writing["durable"]:
        after_commit(db, _anchor_head)
    return seq


# The anchor ----------------------------------------------------------------------------------


def anchor_path(db: Database) -> Path:
    return Path(f"{db._fieldapp_path}.audit-anchor")


def read_anchor(path: Path) -> rules.Anchor | None:
    """The anchor in `path`, or None if there is none or it cannot be read."""
    try:
        seq, digest = path.read_text(encoding="ascii").split()
        return rules.Anchor(int(seq), digest)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _head(db: Database) -> rules.Anchor | None:
    last = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return rules.Anchor(*last) if last else None


def _anchor_head(db: Database, *, force: bool = False) -> None:
    """Write the committed head to the anchor file, unless it holds a later row already (another
    process anchored after us). Written aside, synced, then renamed: never half a file."""
    path = anchor_path(db)
    try:
        head = _head(db)
        if head is None:
            return
        kept = read_anchor(path)
        if kept is not None and kept.seq >= head.seq and not force:
            return
        aside = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(aside, "w", encoding="ascii") as f:
            f.write(f"{head.seq} {head.hash}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(aside, path)
    except OSError as e:  # the action is done and committed: say so, never fail it here
        log.warning("audit anchor not updated: %s", type(e).__name__)


def reanchor(db: Database, *, actor: Actor) -> tuple[rules.Anchor | None, rules.Anchor]:
    """Anchor the log where it ends now, recording the event with the anchor it replaces: after
    restoring a backup, or after a crash left rows unanchored. Returns (old anchor, new one)."""
    old = read_anchor(anchor_path(db))
    with write(db):
        head = _head(db)
        record(db, "audit.anchored", actor=actor, details={
            "previous_seq": old.seq if old else None, "previous_hash": old.hash if old else None,
            "log_ended_at": head.seq if head else 0})
    _anchor_head(db, force=True)
    return old, read_anchor(anchor_path(db))


# Reading and verifying -------------------------------------------------------------------------


def verify(db: Database) -> rules.Verdict:
    """Walk the whole chain and compare its end with the anchor (read first: it never names a
    row the snapshot cannot see)."""
    anchor = read_anchor(anchor_path(db))
    with snapshot(db):
        return rules.check(_rows(db), anchor)


def _rows(db: Database) -> Iterator[dict]:
    cursor = db.execute(f"SELECT {', '.join(rules.COLUMNS)} FROM audit_log ORDER BY seq")
    for values in cursor:
        yield dict(zip(rules.COLUMNS, values, strict=True))


def count(db: Database) -> int:
    return db.execute("SELECT count(*) FROM audit_log").fetchone()[0]


def page(db: Database, flt: rules.Filter, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """Events matching the filter, newest first, older than `before` (a sequence number)."""
    where, params = [], []
    for column, value in (("event", flt.event), ("actor_name", flt.user), ("target_id", flt.target)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if flt.start:
        where.append("at >= ?")
        params.append(flt.start)
    if flt.end:
        where.append("at < ?")
        params.append((date.fromisoformat(flt.end) + timedelta(days=1)).isoformat())
    if before is not None:
        where.append("seq < ?")
        params.append(before)
    sql = (f"SELECT {', '.join(rules.COLUMNS)} FROM audit_log"
           f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ?")
    rows = []
    for values in db.execute(sql, [*params, limit]):
        row = dict(zip(rules.COLUMNS, values, strict=True))
        with contextlib.suppress(ValueError):
            row["details"] = json.loads(row["details"])
        rows.append(row)
    return rows
