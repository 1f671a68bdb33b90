"""The SQL of retention: which records are due, and removing their personal data from every
table that holds answers, leaving no readable trace in the database or its WAL.

Rules (what a record keeps, its purpose) come from fieldapp.domain.privacy; when to run, from
fieldapp.retention."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from sqlite_utils import Database

from fieldapp.domain import privacy
from fieldapp.domain.records import canonical
from fieldapp.domain.summary import intake_facts
from fieldapp.forms import schema
from fieldapp.storage import db as storage_db
from fieldapp.storage import summary
from fieldapp.storage.db import write

# Records purged per transaction: a long purge lets the post's writers in between.
CHUNK = 200


def personal_forms() -> list[str]:
    """The forms whose records hold personal data (a `[privacy]` table in their definition)."""
    return sorted({d.form for d in schema.definitions().values() if privacy.is_personal(d)})


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def field_due(db: Database, cutoff: str) -> list[dict]:
    """Field: personal records central has held since before `cutoff`, not purged since.

    Central holds a record when every local change of it was acknowledged (the push checkpoint
    passed it, `push_acks` says when) and none was refused; revisions pulled from central are
    held there by definition. A record with a change not acknowledged, or refused, is never due.
    """
    forms = personal_forms()
    acked = db.execute("SELECT max(seq) FROM push_acks WHERE at <= ?", [cutoff]).fetchone()[0]
    rows = db.execute(
        "SELECT r.uuid, r.form FROM records r"
        f" WHERE r.form IN ({_marks(forms)})"
        # Not correlated: read once (a range of the change feed), not once per record.
        " AND r.uuid NOT IN (SELECT c.uuid FROM changes c WHERE c.seq > ? AND c.origin = ''"
        "  AND c.kind = 'record')"
        " AND NOT EXISTS (SELECT 1 FROM sync_outcomes o WHERE o.uuid = r.uuid"
        "  AND o.outcome = 'rejected')"
        " AND (SELECT max(received_at) FROM revisions v WHERE v.uuid = r.uuid) <= ?"
        " AND NOT EXISTS (SELECT 1 FROM purged p WHERE p.uuid = r.uuid AND p.at >="
        "  (SELECT max(received_at) FROM revisions v WHERE v.uuid = r.uuid))"
        " ORDER BY r.id",
        [*forms, -1 if acked is None else acked, cutoff],
    ).fetchall()
    return [{"uuid": u, "form": f} for u, f in rows]


def central_candidates(db: Database) -> Iterable[dict]:
    """Central: every personal record not anonymised since its latest revision, with its purpose
    and capture time (the caller judges each purpose's retention)."""
    for definition in {d.form: d for d in schema.definitions().values() if d.privacy}.values():
        p = definition.privacy
        purpose = "json_extract(r.data, ?)" if p.purpose_field else "?"
        rows = db.execute(
            f"SELECT r.uuid, r.form, {purpose}, r.created_at FROM records r WHERE r.form = ?"
            " AND NOT EXISTS (SELECT 1 FROM purged p WHERE p.uuid = r.uuid AND p.at >="
            "  (SELECT max(received_at) FROM revisions v WHERE v.uuid = r.uuid))"
            " ORDER BY r.id",
            [f"$.{p.purpose_field}" if p.purpose_field else p.purpose, definition.form],
        )
        for uuid, form, purpose_code, created_at in rows:
            yield {"uuid": uuid, "form": form, "purpose": purpose_code or "", "created_at": created_at}


def purge(db: Database, uuids: list[str], *, scope: str, at: str,
          progress: Callable[[int], None] | None = None) -> int:
    """Remove the personal data of these records: every revision, the record's row, its search
    entries, and the copies kept for conflicts and superseded versions. Uuids, forms, revision
    numbers and content hashes stay, so sync still knows each revision.

    Runs with `secure_delete` (what is removed is overwritten with zeros), then, on a field
    server, rewrites the database (VACUUM: no page keeps an answer an earlier edit left in its
    free space), and empties the WAL. Central's database, far larger and not carried around, is
    not rewritten. Returns the number of records purged."""
    done = 0
    for start in range(0, len(uuids), CHUNK):
        chunk = uuids[start:start + CHUNK]
        db.execute("PRAGMA secure_delete = ON")
        try:
            with write(db):
                for uuid in chunk:
                    _purge_one(db, uuid)
                    db.execute("INSERT INTO purged (uuid, at, scope) VALUES (?, ?, ?) ON CONFLICT"
                               " (uuid) DO UPDATE SET at = excluded.at, scope = excluded.scope",
                               [uuid, at, scope])
                # A full-text index keeps a deleted row's words in its older segments until they
                # are merged: merge them all now.
                db.execute("INSERT INTO records_search (records_search) VALUES ('optimize')")
        finally:
            db.execute("PRAGMA secure_delete = OFF")
        done += len(chunk)
        if progress:
            progress(done)
    if done:
        scrub(db, vacuum=scope == "field")
    return done


def _anonymised(form: str, version: int, data: str) -> str:
    return canonical(_anonymised_answers(form, version, data))


def _anonymised_answers(form: str, version: int, data: str) -> dict:
    definition = schema.get(form, version) or schema.get(form)
    return privacy.anonymised(definition, json.loads(data))


def _purge_one(db: Database, uuid: str) -> None:
    row = db.execute("SELECT id, form, form_version, data, post, created_at, deleted FROM records"
                     " WHERE uuid = ?", [uuid]).fetchone()
    if row is None:
        return
    record_id, form, version, data, post, created_at, deleted = row
    answers = _anonymised_answers(form, version, data)
    db.execute("UPDATE records SET data = ?, title = '', doc_key = '' WHERE id = ?",
               [canonical(answers), record_id])
    if form == "intake" and not deleted:  # counted by what it keeps
        summary.keep_intake(db, record_id, post, intake_facts(answers, created_at), new=False)
    for revision, rev_version, rev_data in db.execute(
            "SELECT revision, form_version, data FROM revisions WHERE uuid = ?", [uuid]).fetchall():
        db.execute("UPDATE revisions SET data = ? WHERE uuid = ? AND revision = ?",
                   [_anonymised(form, rev_version, rev_data), uuid, revision])
    for conflict_id, c_version, c_data in db.execute(
            "SELECT id, form_version, data FROM conflicts WHERE uuid = ?", [uuid]).fetchall():
        db.execute("UPDATE conflicts SET data = ? WHERE id = ?",
                   [_anonymised(form, c_version, c_data), conflict_id])
    # Versions replaced by central's: history of a record that has no history to show any more.
    db.execute("DELETE FROM superseded WHERE uuid = ?", [uuid])
    db.execute("DELETE FROM records_search WHERE rowid = ?", [record_id])


def scrub(db: Database, *, vacuum: bool = True) -> bool:
    """Rewrite the database (`vacuum`) so that no free space holds old content; empty the WAL.

    Earlier edits and deletes (made without secure_delete) leave old cells in pages' free space:
    VACUUM builds every page anew. The temporary copy is kept in memory, not in a file.
    False if a reader kept the WAL from being emptied."""
    with storage_db._lock_for(db._fieldapp_path):  # no writer of this process meanwhile
        if vacuum:
            db.execute("PRAGMA temp_store = MEMORY")
            try:
                db.execute("VACUUM")
            finally:
                db.execute("PRAGMA temp_store = DEFAULT")
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return not busy  # False: a reader kept the WAL; the next checkpoint empties it


def purged_at(db: Database, uuid: str) -> str | None:
    """When the record's personal data was removed here, or None."""
    row = db.execute("SELECT at FROM purged WHERE uuid = ?", [uuid]).fetchone()
    return row[0] if row else None


def is_purged(db: Database, uuid: str) -> bool:
    return purged_at(db, uuid) is not None
