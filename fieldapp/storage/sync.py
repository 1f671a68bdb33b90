"""The SQL of sync (hop 2): devices and batches on central, checkpoints and pulled records on a
field server. Rules come from fieldapp.domain; the wire format from the sync package."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlite_utils import Database

from fieldapp.domain import privacy
from fieldapp.domain.merge import merge
from fieldapp.domain.persons import ERASURE_FORM
from fieldapp.domain.records import Decision, Outcome, now, revision_hash
from fieldapp.forms import schema
from fieldapp.storage import audit, records, subjects
from fieldapp.storage.db import snapshot, write

# Central: devices -----------------------------------------------------------------------------

_DEVICE_COLUMNS = (
    "id, post, name, status, code_expires, created_by, created_at, enrolled_at, revoked_at,"
    " last_contact, last_sync, protocol, app_version, clock_offset, received, rejected, last_receipt,"
    " replaces"
)


class ReplaceRefused(LookupError):
    """The device to replace is not a device of the post."""


def add_device(db: Database, *, device: str, post: str, name: str, code_hash: str, expires: str,
               by: str, replaces: str | None = None) -> None:
    """Register a pending device; one it replaces (of the same post) is revoked in the same
    transaction, so the old laptop's token stops working as the new one is registered."""
    with write(db):
        if replaces is not None:
            old = db.execute("SELECT post FROM devices WHERE id = ?", [replaces]).fetchone()
            if old is None or old[0] != post:
                raise ReplaceRefused(replaces)
            _revoke(db, replaces)
        db.execute(
            "INSERT INTO devices (id, post, name, status, code_hash, code_expires, created_by,"
            " created_at, replaces) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
            [device, post, name, code_hash, expires, by, now(), replaces],
        )


def enrol(db: Database, *, code_hash: str, token_hash: str, signing_key: str,
          at: str, post: str | None = None) -> dict | None:
    """Give a pending device the token its holder made; None if the code is not valid now.

    The same code with the same token again (an answer lost on the way) is the same enrolment.
    """
    with write(db):
        row = db.execute(
            "SELECT id FROM devices WHERE code_hash = ? AND status = 'pending' AND code_expires > ?",
            [code_hash, at],
        ).fetchone()
        if row is None:
            again = db.execute(
                "SELECT id FROM devices WHERE code_hash = ? AND status = 'active' AND token_hash = ?"
                " AND code_expires > ? AND (? IS NULL OR post = ?)",
                [code_hash, token_hash, at, post, post]).fetchone()
            return device(db, again[0]) if again else None
        db.execute(
            "UPDATE devices SET status = 'active', token_hash = ?, signing_key = ?, enrolled_at = ?,"
            " last_contact = ? WHERE id = ?",
            [token_hash, signing_key, at, at, row[0]],
        )
    return device(db, row[0])


def device(db: Database, device_id: str) -> dict | None:
    return next(db.query(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?", [device_id]), None)


def device_by_token(db: Database, token_hash: str, used_since: str = "") -> dict | None:
    """The active device holding this token, with its signing key; with `used_since` (ISO 8601
    UTC), only if it was used (or enrolled) since then: a token left unused expires."""
    sql = (f"SELECT {_DEVICE_COLUMNS}, signing_key FROM devices WHERE token_hash = ? AND status = 'active'"
           " AND coalesce(last_contact, enrolled_at, '') >= ?")
    return next(db.query(sql, [token_hash, used_since]), None)


def signing_key(db: Database, device_id: str) -> str | None:
    """The key that checks an active device's bundles."""
    row = db.execute("SELECT signing_key FROM devices WHERE id = ? AND status = 'active'",
                     [device_id]).fetchone()
    return row[0] if row else None


def devices(db: Database) -> list[dict]:
    """Every device with its post's open conflicts, by post and name."""
    sql = (
        f"SELECT {_DEVICE_COLUMNS}, (SELECT count(*) FROM conflicts c WHERE c.device = d.id"
        " AND c.status = 'open') AS open_conflicts FROM devices d ORDER BY post, name, created_at"
    )
    return list(db.query(sql))


def clock_offsets(db: Database, device_ids: set[str]) -> dict[str, float]:
    """The last clock offset measured for each of these devices (seconds ahead of central)."""
    if not device_ids:
        return {}
    rows = db.execute(
        f"SELECT id, clock_offset FROM devices WHERE id IN ({', '.join('?' * len(device_ids))})"
        " AND clock_offset IS NOT NULL", list(device_ids))
    return dict(rows.fetchall())


def revoke(db: Database, device_id: str) -> bool:
    with write(db):
        return _revoke(db, device_id)


def _revoke(db: Database, device_id: str) -> bool:
    cursor = db.execute(
        "UPDATE devices SET status = 'revoked', token_hash = NULL, code_hash = NULL,"
        " revoked_at = ? WHERE id = ? AND status != 'revoked'", [now(), device_id],
    )
    return cursor.rowcount == 1


def contact(db: Database, device_id: str, *, protocol: int, app_version: str,
            clock_offset: float | None) -> None:
    """Note that a device called: when, with which protocol and version, how far off its clock is.

    Not fsynced by itself (a power cut may lose the latest call): it is bookkeeping, and every
    request notes it, so it would otherwise double the fsyncs of a sync."""
    with write(db, durable=False):
        db.execute(
            "UPDATE devices SET last_contact = ?, protocol = ?, app_version = ?,"
            " clock_offset = coalesce(?, clock_offset) WHERE id = ?",
            [now(), protocol, app_version[:40], clock_offset, device_id],
        )


# Central: applying a pushed batch -----------------------------------------------------------


@dataclass(slots=True)
class Incoming:
    """A pushed revision the server has checked, ready to apply."""

    sub: records.Submission
    hash: str
    base_hash: str = ""


def batch_results(db: Database, device_id: str, batch: str) -> list[dict] | None:
    """The answer already given to this batch, if it was applied before."""
    row = db.execute(
        "SELECT results FROM sync_batches WHERE device = ? AND batch = ?", [device_id, batch]
    ).fetchone()
    return json.loads(row[0]) if row else None


def apply_batch(
    db: Database, device_id: str, batch: str, sync_id: str, items: list[Incoming | dict],
    valid: Callable[[schema.FormDefinition, dict], bool],
) -> list[dict]:
    """Apply a batch in one transaction and keep its answer; a repeated batch gets the same answer.

    `items` holds checked revisions, or for refused ones the result already decided (a dict);
    `valid` judges a field-by-field merge, which must pass the form like any record.
    """
    at = now()
    with write(db):
        kept = db.execute(
            "SELECT results FROM sync_batches WHERE device = ? AND batch = ?", [device_id, batch]
        ).fetchone()
        if kept:
            return json.loads(kept[0])
        results = [item if isinstance(item, dict) else _apply_one(db, item, at, valid)
                   for item in items]
        stored = sum(r["outcome"] == Outcome.STORED for r in results)
        rejected = sum(r["outcome"] == Outcome.REJECTED for r in results)
        db.execute(
            "INSERT INTO sync_batches (device, batch, sync, results, at) VALUES (?, ?, ?, ?, ?)",
            [device_id, batch, sync_id, json.dumps(results, ensure_ascii=False), at],
        )
        db.execute(
            "UPDATE devices SET received = received + ?, rejected = rejected + ? WHERE id = ?",
            [stored, rejected, device_id],
        )
    return results


def _result(item: Incoming, decision: Decision, code: str = "", **extra) -> dict:
    result = {"uuid": item.sub.uuid, "revision": item.sub.base_revision + 1,
              "outcome": str(decision.outcome), "head": decision.revision}
    if code or decision.code:
        result["code"] = code or decision.code
    result.update(extra)
    return result


def _apply_one(db: Database, item: Incoming, at: str, valid) -> dict:
    sub = item.sub
    if sub.parent:
        parent = db.execute("SELECT post FROM records WHERE uuid = ?", [sub.parent]).fetchone()
        if parent is None or parent[0] != sub.post:
            return _result(item, Decision(Outcome.REJECTED, 0, "unknown_parent"))
    head, stored = records._head_row(db, sub.uuid)
    base_hash, next_hash = records.revision_hashes(db, sub.uuid, head, sub.base_revision,
                                                   sub.base_revision + 1)
    if head and (head.form, head.post) == (sub.definition.form, sub.post) and head.hash != item.hash \
            and 0 < sub.base_revision <= head.revision and next_hash != item.hash \
            and base_hash != item.base_hash:
        # The revision the device edited is not the one this server holds under that number
        # (it was a version of the device's that met a conflict): nothing to merge against.
        return _conflict(db, item, at, valid, base_known=False)
    if head and (head.form, head.post) == (sub.definition.form, sub.post) \
            and sub.base_revision > head.revision and _diverged(db, sub.uuid, head.revision):
        # Revisions this server lacks, from a device whose versions met this server's: the edit
        # stands on the device's version, not on this server's head.
        return _conflict(db, item, at, valid, base_known=False)
    decision = records._apply(db, sub, at, head=head, stored=stored, next_hash=next_hash,
                              digest=item.hash)
    if decision.outcome is not Outcome.CONFLICT:
        return _result(item, decision)
    return _conflict(db, item, at, valid)


def _diverged(db: Database, uuid: str, head: int) -> bool:
    """Whether a device's versions of the record went their own way from the head here: a
    conflict still open, or one met at or just before it. Otherwise the revisions this server
    lacks are ones it refused, and the device's numbering may stand."""
    return db.execute(
        "SELECT 1 FROM conflicts WHERE uuid = ? AND (status = 'open' OR base_revision >= ?) LIMIT 1",
        [uuid, head - 1]).fetchone() is not None


def _revision(db: Database, uuid: str, revision: int) -> dict | None:
    row = db.execute(
        "SELECT data, deleted, form_version FROM revisions WHERE uuid = ? AND revision = ?",
        [uuid, revision],
    ).fetchone()
    return {"answers": json.loads(row[0]), "deleted": bool(row[1]), "version": row[2]} if row else None


def _conflict(db: Database, item: Incoming, at: str, valid, base_known: bool = True) -> dict:
    """Both sides changed the record: merge field by field, or keep both for a person to judge."""
    sub = item.sub
    head = records.get(db, sub.uuid)
    base = (_revision(db, sub.uuid, sub.base_revision) if base_known else None) or {"answers": {}}
    result = merge(base["answers"], head["answers"], sub.answers,
                   ours_deleted=bool(head["deleted"]), theirs_deleted=sub.deleted)
    if result.answers is not None and head["deleted"] and sub.deleted:
        return _result(item, Decision(Outcome.DUPLICATE, head["revision"]))
    known = db.execute(
        "SELECT id, status, resolution_revision FROM conflicts WHERE uuid = ? AND base_revision = ?"
        " AND hash = ?", [sub.uuid, sub.base_revision, item.hash],
    ).fetchone()
    if known:  # the same version sent again (another batch, a bundle): answered as before
        # A merge answered again is no new record: a duplicate, counted once.
        outcome = Outcome.DUPLICATE if known[1] == "merged" else Outcome.CONFLICT
        return _result(item, Decision(outcome, known[2] or head["revision"]), "merged" if
                       known[1] == "merged" else "conflict", conflict=known[0])
    definition = schema.get(head["form"], head["form_version"]) or sub.definition
    mergeable = base_known and result.answers is not None and valid(sub.definition, result.answers)
    status = "merged" if mergeable else "open"
    revision = None
    if mergeable:
        revision = head["revision"] + 1
        merged = records.Submission(
            uuid=sub.uuid, definition=sub.definition if sub.definition.version >= definition.version
            else definition, answers=result.answers, post=sub.post, device="central",
            user=sub.user, base_revision=head["revision"], parent=head["parent"],
            person=head["person"],
        )
        records.write_revision(db, merged, revision, revision_hash(result.answers), at,
                               new=False)
    cursor = db.execute(
        "INSERT INTO conflicts (uuid, form, post, device, base_revision, head_revision, form_version,"
        " data, hash, deleted, fields, created_by, created_at, received_at, status,"
        " resolution_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sub.uuid, head["form"], head["post"], sub.origin, sub.base_revision, head["revision"],
         sub.definition.version, json.dumps(sub.answers, ensure_ascii=False, sort_keys=True),
         item.hash, int(sub.deleted), json.dumps(list(result.overlap or result.changed)), sub.user,
         sub.at or at, at, status, revision],
    )
    if not mergeable:
        # The device sees central's version at its next pull; its own stays here for review.
        db.execute("INSERT INTO changes (uuid, revision, at, origin, post) VALUES (?, ?, ?, '', ?)",
                   [sub.uuid, head["revision"], at, head["post"]])
        return _result(item, Decision(Outcome.CONFLICT, head["revision"]), "conflict",
                       conflict=cursor.lastrowid)
    return _result(item, Decision(Outcome.STORED, revision), "merged", conflict=cursor.lastrowid)


def finish(db: Database, device_id: str, receipt: dict) -> None:
    with write(db):
        db.execute("UPDATE devices SET last_sync = ?, last_receipt = ? WHERE id = ?",
                   [receipt["at"], json.dumps(receipt), device_id])


# Central: conflicts ---------------------------------------------------------------------------

_CONFLICT_COLUMNS = (
    "id, uuid, form, post, device, base_revision, head_revision, form_version, data, hash, deleted,"
    " fields, created_by, created_at, received_at, status, resolved_by, resolved_at,"
    " resolution_revision"
)


def _conflict_row(row: dict | None) -> dict | None:
    if row is None:
        return None
    row = dict(row)
    row["answers"] = json.loads(row.pop("data"))
    row["fields"] = json.loads(row["fields"])
    return row


def conflicts(db: Database, *, status: str = "open", limit: int = 200) -> list[dict]:
    rows = db.query(f"SELECT {_CONFLICT_COLUMNS} FROM conflicts WHERE status = ? ORDER BY id LIMIT ?",
                    [status, limit])
    return [_conflict_row(r) for r in rows]


def conflict(db: Database, conflict_id: int) -> dict | None:
    rows = db.query(f"SELECT {_CONFLICT_COLUMNS} FROM conflicts WHERE id = ?", [conflict_id])
    return _conflict_row(next(rows, None))


def conflicts_of(db: Database, uuid: str) -> list[dict]:
    rows = db.query(f"SELECT {_CONFLICT_COLUMNS} FROM conflicts WHERE uuid = ? ORDER BY id", [uuid])
    return [_conflict_row(r) for r in rows]


def resolve(db: Database, conflict_id: int, sub: records.Submission | None, *, by: str) -> Decision:
    """Close a conflict: store the chosen answers as the record's next revision (None: keep
    central's version as it is). Refused as a conflict if the record moved on meanwhile."""
    at = now()
    with write(db):
        decision = records._apply(db, sub, at) if sub else Decision(Outcome.DUPLICATE, 0)
        if decision.outcome in (Outcome.STORED, Outcome.DUPLICATE):
            db.execute(
                "UPDATE conflicts SET status = 'resolved', resolved_by = ?, resolved_at = ?,"
                " resolution_revision = ? WHERE id = ? AND status = 'open'",
                [by, at, decision.revision or None, conflict_id],
            )
    return decision


def open_conflicts(db: Database) -> int:
    return db.execute("SELECT count(*) FROM conflicts WHERE status = 'open'").fetchone()[0]


# Central: what a device pulls --------------------------------------------------------------


def pull(db: Database, *, post: str, device_id: str, cursor: int, limit: int,
         retention_days: int = 0) -> tuple[list, list, int, bool]:
    """Records and accounts of a post changed since `cursor`, except what this device sent, what
    was erased, and (with `retention_days`) the persons a post may no longer hold.

    Returns (record states, accounts, new cursor, more to come). Read in one transaction, so the
    cursor never passes a change that was not read.
    """
    with snapshot(db):
        top = db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
        rows = db.execute(
            "SELECT seq, uuid, kind FROM changes WHERE post = ? AND seq > ? AND seq <= ?"
            " AND origin != ? ORDER BY seq LIMIT ?", [post, cursor, top, device_id, limit],
        ).fetchall()
        more = len(rows) == limit
        new_cursor = rows[-1][0] if more else top
        record_ids = list(dict.fromkeys(u for _, u, kind in rows if kind == "record"))
        withheld = subjects.erased(db, record_ids) | _past_retention(db, record_ids, retention_days)
        record_ids = [u for u in record_ids if u not in withheld]
        account_names = list(dict.fromkeys(u for _, u, kind in rows if kind == "account"))
        states = [_state(db, u) for u in record_ids]
        accounts = [dict(a) for a in db.query(
            "SELECT username, full_name, password_hash, role, post, active, session_generation"
            f" FROM users WHERE username IN ({', '.join('?' * len(account_names))}) AND post = ?",
            [*account_names, post])] if account_names else []
    return states, accounts, new_cursor, more


def _past_retention(db: Database, uuids: list[str], days: int) -> set[str]:
    """The person records (intakes, registrations) among these that central last received more
    than `days` ago, unless the person is enrolled on a course that ended less than `days` ago or
    has not ended: a post keeps personal data that long (FIELD_RETENTION_DAYS), so a device is
    not sent what it would have to remove already. 0: no limit."""
    if days <= 0 or not uuids:
        return set()
    moment = datetime.now(UTC) - timedelta(days=days)
    received = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ended = moment.date().isoformat()
    rows = db.execute(
        f"SELECT r.uuid FROM records r WHERE r.uuid IN ({', '.join('?' * len(uuids))})"
        " AND r.form IN ('intake', 'participant')"
        " AND (SELECT coalesce(nullif(v.received_at, ''), v.created_at) FROM revisions v"
        "      WHERE v.uuid = r.uuid AND v.revision = r.revision) < ?"
        " AND NOT EXISTS (SELECT 1 FROM records e JOIN records c ON c.uuid = e.parent"
        "      WHERE e.person != '' AND e.person = coalesce(nullif(r.person, ''), r.uuid)"
        "      AND e.form = 'enrolment' AND e.deleted = 0 AND c.deleted = 0"
        "      AND coalesce(json_extract(c.data, '$.end_date'), '9999-12-31') >= ?)",
        [*uuids, received, ended])
    return {r[0] for r in rows}


def _state(db: Database, uuid: str) -> dict:
    head = db.execute("SELECT form, post, parent, person FROM records WHERE uuid = ?", [uuid]).fetchone()
    revisions = [
        {"rev": r[0], "v": r[1], "answers": json.loads(r[2]), "hash": r[3], "deleted": bool(r[4]),
         "device": r[5], "by": r[6], "at": r[7]}
        for r in db.execute(
            "SELECT revision, form_version, data, hash, deleted, device, created_by, created_at"
            " FROM revisions WHERE uuid = ? ORDER BY revision", [uuid])
    ]
    return {"uuid": uuid, "form": head[0], "post": head[1], "parent": head[2], "person": head[3],
            "revisions": revisions}


# Field: state and checkpoints ----------------------------------------------------------------


def state(db: Database) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM sync_state").fetchall())


def set_state(db: Database, *, durable: bool = True, **values) -> None:
    with write(db, durable=durable):
        _set(db, values)


def _set(db: Database, values: dict) -> None:
    for key, value in values.items():
        if value is None:
            db.execute("DELETE FROM sync_state WHERE key = ?", [key])
        else:
            db.execute("INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                       " SET value = excluded.value", [key, str(value)])


def pending(db: Database, after: int, limit: int) -> list[dict]:
    """Local revisions not yet acknowledged by central, in the order they were written."""
    rows = db.execute(
        "SELECT c.seq, c.uuid, c.revision, r.form_version, r.data, r.hash, r.deleted, r.created_by,"
        " r.created_at, h.form, h.parent, h.person, coalesce(b.hash, '') FROM changes c"
        " JOIN revisions r ON r.uuid = c.uuid AND r.revision = c.revision"
        " JOIN records h ON h.uuid = c.uuid"
        " LEFT JOIN revisions b ON b.uuid = c.uuid AND b.revision = c.revision - 1"
        " WHERE c.seq > ? AND c.origin = '' AND c.kind = 'record'"
        " AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.uuid = c.uuid) ORDER BY c.seq LIMIT ?",
        [after, limit],
    )
    return [
        {"seq": seq, "item": {
            "uuid": uuid, "form": form, "v": version, "base": revision - 1, "base_hash": base_hash,
            "hash": digest, "deleted": bool(deleted), "answers": orjson.loads(data), "parent": parent,
            "person": person, "by": by, "at": at,
        }} for seq, uuid, revision, version, data, digest, deleted, by, at, form, parent, person, base_hash
        in rows
    ]


def pending_count(db: Database, after: int) -> int:
    return db.execute(
        "SELECT count(*) FROM changes c WHERE seq > ? AND origin = '' AND kind = 'record'"
        " AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.uuid = c.uuid)", [after]
    ).fetchone()[0]


def acknowledge(db: Database, *, checkpoint: int, to_seq: int, results: list[dict],
                messages: dict[str, str]) -> bool:
    """Advance the push checkpoint past an answered batch and keep what was not simply stored.

    Refused if the checkpoint moved meanwhile (another sync): the caller reads it again. Not
    waited for on disk: if a power cut loses it, the batch goes again and central, which keeps
    every batch's answer, answers the same; nothing is lost or doubled.
    """
    at = now()
    with write(db, durable=False):
        current = int(_get(db, "push_checkpoint") or 0)
        if current != checkpoint:
            return False
        for r in results:
            if r["outcome"] in ("stored", "duplicate") and r.get("code") != "merged":
                db.execute("DELETE FROM sync_outcomes WHERE uuid = ?", [r["uuid"]])
            else:
                db.execute(
                    "INSERT OR REPLACE INTO sync_outcomes (uuid, revision, outcome, code, message, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [r["uuid"], r["revision"], r["outcome"], r.get("code", ""),
                     messages.get(r["uuid"], ""), at],
                )
        _set(db, {"push_checkpoint": to_seq})
        # The records' retention on this laptop starts now (fieldapp.retention).
        db.execute("INSERT OR IGNORE INTO push_acks (seq, at) VALUES (?, ?)", [to_seq, at])
    return True


def _get(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def outcomes(db: Database, outcome: str | None = None) -> list[dict]:
    """What central answered for revisions not simply stored, with the record's title."""
    where, params = ("WHERE o.outcome = ?", [outcome]) if outcome else ("", [])
    return list(db.query(
        "SELECT o.uuid, o.revision, o.outcome, o.code, o.message, o.at, r.form, r.title,"
        f" r.revision AS head FROM sync_outcomes o LEFT JOIN records r ON r.uuid = o.uuid {where}"
        " ORDER BY o.at DESC", params))


def outcome_count(db: Database, outcome: str) -> int:
    """How many revisions central last answered with `outcome` (`outcomes`, counted)."""
    return db.execute("SELECT count(*) FROM sync_outcomes WHERE outcome = ?", [outcome]).fetchone()[0]


# Field: what a pull brings -------------------------------------------------------------------


class UnknownForm(LookupError):
    """Central sent a record of a form version this server does not have: upgrade fieldapp."""


def adopt(db: Database, states: list[dict], accounts: list[dict], cursor: int) -> dict[str, int]:
    """Take central's version of pulled records and accounts, then move the pull cursor.

    A record this device changed and has not pushed yet is left as it is: the push that follows
    meets central's version there, and central keeps both. Returns counts by what happened.
    """
    counts = {"applied": 0, "same": 0, "skipped": 0, "accounts": 0}
    at = now()
    with write(db):
        checkpoint = int(_get(db, "push_checkpoint") or 0)
        for s in states:
            # Central's version is here now: a merge note has served its purpose.
            db.execute("DELETE FROM sync_outcomes WHERE uuid = ? AND code = 'merged'", [s["uuid"]])
            outcome = _adopt_record(db, s, checkpoint, at)
            counts[outcome] += 1
            if s["form"] == ERASURE_FORM and outcome == "applied" and not s["revisions"][-1]["deleted"]:
                erased = subjects.apply_erasure(db, s["revisions"][-1]["answers"], s["uuid"])
                counts["erased"] = counts.get("erased", 0) + erased
                audit.record(db, "subject.erased_at_post", actor=audit.SYSTEM, target=f"record:{s['uuid']}",
                             details={"records": erased})
        for account in accounts:
            _adopt_account(db, account)
            counts["accounts"] += 1
        _set(db, {"pull_cursor": cursor})
    if "erased" in counts:
        try:
            subjects.forget(db)
        finally:
            db.execute("PRAGMA secure_delete = OFF")
    return counts


def _adopt_record(db: Database, s: dict, checkpoint: int, at: str) -> str:
    uuid = s["uuid"]
    local = dict(db.execute("SELECT revision, hash FROM revisions WHERE uuid = ?", [uuid]).fetchall())
    diverge = next((r for r in s["revisions"] if local.get(r["rev"]) != r["hash"]), None)
    if diverge is None:
        return "same"
    unsent = db.execute(
        "SELECT 1 FROM changes WHERE uuid = ? AND seq > ? AND origin = '' AND kind = 'record' LIMIT 1",
        [uuid, checkpoint],
    ).fetchone()
    if unsent:
        return "skipped"
    first = diverge["rev"]
    if any(schema.get(s["form"], r["v"]) is None for r in s["revisions"]):
        raise UnknownForm(s["form"])  # the whole pull is rolled back; the cursor stays
    db.execute(
        "INSERT OR IGNORE INTO superseded (uuid, revision, form_version, data, hash, deleted, device,"
        " created_by, created_at, replaced_at) SELECT uuid, revision, form_version, data, hash,"
        " deleted, device, created_by, created_at, ? FROM revisions WHERE uuid = ? AND revision >= ?",
        [at, uuid, first],
    )
    db.execute("DELETE FROM revisions WHERE uuid = ? AND revision >= ?", [uuid, first])
    exists = bool(local)
    # A record whose personal data left this laptop takes central's later versions without it:
    # a correction made at central does not bring the data back (docs/security.md).
    purged = db.execute("SELECT 1 FROM purged WHERE uuid = ?", [uuid]).fetchone() is not None
    for r in s["revisions"]:
        if r["rev"] < first:
            continue
        definition = schema.get(s["form"], r["v"])
        answers = privacy.anonymised(definition, r["answers"]) if purged else r["answers"]
        sub = records.Submission(
            uuid=uuid, definition=definition, answers=answers, post=s["post"],
            device=r["device"], user=r["by"], parent=s["parent"], person=s["person"],
            deleted=r["deleted"], at=r["at"], origin="central",
        )
        records.write_revision(db, sub, r["rev"], r["hash"], at, new=not exists, feed=False)
        exists = True
    return "applied"


def _adopt_account(db: Database, a: dict) -> None:
    at = now()
    db.execute(
        "INSERT INTO users (username, full_name, password_hash, role, post, active, created_at,"
        " updated_at, session_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username)"
        " DO UPDATE SET full_name = excluded.full_name, password_hash = excluded.password_hash,"
        " role = excluded.role, post = excluded.post, active = excluded.active,"
        " updated_at = excluded.updated_at,"
        " session_generation = max(session_generation, excluded.session_generation)",
        [a["username"], a["full_name"], a["password_hash"], a["role"], a["post"], a["active"], at, at,
         a["session_generation"]],
    )
