"""Data subject requests: find a person, everything held about them (every record and revision),
and erasing it, at central and, when the erasure is pulled, at a post. Rules in
fieldapp/domain/subjects.py."""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Iterable

from sqlite_utils import Database

from fieldapp.domain import persons as person_rules
from fieldapp.domain import subjects as rules
from fieldapp.domain.filters import Filter
from fieldapp.domain.records import Outcome, now
from fieldapp.forms import schema
from fieldapp.storage import central, persons, records, summary
from fieldapp.storage.db import write

_COLUMNS = ", ".join(f"r.{c}" for c in records._COLUMNS)


def _marks(values) -> str:
    return ", ".join("?" * len(values))


def find(db: Database, text: str, *, limit: int = 50) -> list[dict]:
    """The persons whose intake or registration matches a name or the start of a document number,
    each once as the person they now are (merges followed): their describing record, newest first."""
    found = [r for form in person_rules.PERSON_FORMS
             for r in central.page(db, Filter(form=form, q=text), limit=limit)]
    now_is = persons.canonical(db, {person_rules.person_id(r) for r in found})
    described = records.persons(db, list(set(now_is.values())))
    return sorted(described.values(), key=lambda r: r["id"], reverse=True)[:limit]


def group(db: Database, person: str) -> list[str]:
    """The person a request is about, as they now are, and everyone merged into them; [] if no live
    participant or intake has this id."""
    record = records.get(db, person)
    if record is None or record["deleted"] or record["form"] not in person_rules.PERSON_FORMS:
        return []
    pid = person_rules.person_id(record)
    return persons.group(db, persons.canonical(db, [pid])[pid])


def about(db: Database, ids: list[str]) -> list[dict]:
    """Every record about these persons, deleted ones too (a tombstone keeps the last answers):
    their registrations and intakes, what points at them, and central's verdicts naming them."""
    if not ids:
        return []
    m = _marks(ids)
    rows = db.query(
        f"SELECT {_COLUMNS} FROM records r WHERE r.uuid IN ({m}) AND +r.form IN ('participant', 'intake')"
        f" UNION SELECT {_COLUMNS} FROM records r INDEXED BY records_person WHERE r.person != ''"
        f" AND r.person IN ({m})"
        f" UNION SELECT {_COLUMNS} FROM records r WHERE r.form = ? AND"
        f" (json_extract(r.data, '$.survivor') IN ({m}) OR json_extract(r.data, '$.merged') IN ({m}))"
        " ORDER BY id",
        [*ids, *ids, person_rules.MERGE_FORM, *ids, *ids],
    )
    return [records._record(r) for r in rows]


def held(db: Database, ids: list[str]) -> list[dict]:
    """`about`, each record with its every revision (oldest first) and the versions posts sent
    that met a newer one (conflicts kept for review)."""
    found = about(db, ids)
    for record in found:
        record["revisions"] = records.history(db, record["uuid"])
        record["conflicts"] = [
            {"at": at, "by": by, "device": device, "status": status, "answers": json.loads(data)}
            for at, by, device, status, data in db.execute(
                "SELECT received_at, created_by, device, status, data FROM conflicts WHERE uuid = ?"
                " ORDER BY id", [record["uuid"]])]
    return found


def correct(db: Database, record: dict, answers: dict, *, by: str, device: str) -> records.Decision:
    """A central correction: the record's next revision, which the post pulls like any other."""
    return records.save(db, records.Submission(
        uuid=record["uuid"], definition=schema.get(record["form"], record["form_version"]),
        answers=answers, post=record["post"], device=device, user=by,
        base_revision=record["revision"], parent=record["parent"], person=record["person"]))


def erased(db: Database, uuids: Iterable[str]) -> set[str]:
    """Those of these uuids that were erased here (records, and the persons they were about)."""
    uuids = [u for u in set(uuids) if u]
    if not uuids:
        return set()
    rows = db.execute(f"SELECT uuid FROM erasures WHERE uuid IN ({_marks(uuids)})", uuids)
    return {r[0] for r in rows}


def erasures(db: Database) -> list[dict]:
    """Every erasure's record (one per post): when, by whom, the reference, reason and count."""
    rows = db.execute(
        "SELECT uuid, post, created_by, created_at, data FROM records WHERE form = ? ORDER BY id DESC",
        [person_rules.ERASURE_FORM])
    return [{"uuid": u, "post": p, "by": b, "at": a, **json.loads(d)} for u, p, b, a, d in rows]


def erase(db: Database, ids: list[str], *, reason: str, reference: str, by: str,
          device: str) -> dict:
    """Erase everything about these persons (one person and everyone merged into them): every
    revision of every record is emptied, and an erasure record is written for each post that held
    some, which the post pulls and applies to its copies. Returns the request id, the number of
    records erased and the posts."""
    request = str(uuidlib.uuid4())
    definition = schema.get(person_rules.ERASURE_FORM)
    _secure(db, True)
    try:
        with write(db):
            found = about(db, ids)
            by_post: dict[str, int] = {}
            for record in found:
                by_post[record["post"]] = by_post.get(record["post"], 0) + 1
            scrub(db, [r["uuid"] for r in found], ids, request)
            at = now()
            for post, count in sorted(by_post.items()):
                decision = records._apply(db, records.Submission(
                    uuid=rules.erasure_uuid(request, post), definition=definition,
                    answers=rules.erasure_answers(ids, reason, reference, count), post=post,
                    device=device, user=by), at)
                assert decision.outcome is Outcome.STORED, decision
        forget(db)
    finally:
        _secure(db, False)
    return {"request": request, "records": len(found), "posts": sorted(by_post)}


def apply_erasure(db: Database, answers: dict, request: str) -> int:
    """At a post, inside the pull's transaction: erase the copies of every record about the
    persons an erasure names, those not sent to central yet too. Returns how many."""
    ids = answers.get("persons", "").split()
    found = about(db, ids)
    _secure(db, True)
    scrub(db, [r["uuid"] for r in found], ids, request)
    return len(found)


def scrub(db: Database, uuids: list[str], ids: list[str], request: str) -> None:
    """Empty every revision of these records (inside a write transaction) and remember them as
    erased, with the persons: nothing about them may come back by sync."""
    every = list(dict.fromkeys([*uuids, *ids]))
    if not every:
        return
    m, u = _marks(every), _marks(uuids) if uuids else ""
    if uuids:
        db.execute(f"DELETE FROM records_search WHERE rowid IN (SELECT id FROM records WHERE uuid IN ({u}))",
                   uuids)
        summary.forget_intakes(db, uuids)
        db.execute(f"UPDATE records SET data = '{{}}', title = '', doc_key = '', deleted = 1, hash = ?"
                   f" WHERE uuid IN ({u})", [rules.ERASED_HASH, *uuids])
        db.execute(f"UPDATE revisions SET data = '{{}}', hash = ?, deleted = 1 WHERE uuid IN ({u})",
                   [rules.ERASED_HASH, *uuids])
    for table in ("conflicts", "superseded", "sync_outcomes"):
        db.execute(f"DELETE FROM {table} WHERE uuid IN ({m})", every)
    db.execute(f"DELETE FROM person_pairs WHERE a IN ({m}) OR b IN ({m})", [*every, *every])
    at = now()
    db.conn.executemany("INSERT OR IGNORE INTO erasures (uuid, erasure, erased_at) VALUES (?, ?, ?)",
                        [(x, request, at) for x in every])


def forget(db: Database) -> None:
    """After an erasure: rebuild the name index without the erased names (a deleted row leaves its
    words in the index until its segments are merged), and copy the WAL into the database and
    empty it, so the file keeps no readable trace (with secure_delete, freed space is zeroed)."""
    with write(db):
        db.execute("INSERT INTO records_search (records_search) VALUES ('optimize')")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _secure(db: Database, on: bool) -> None:
    db.execute(f"PRAGMA secure_delete = {'ON' if on else 'OFF'}")
