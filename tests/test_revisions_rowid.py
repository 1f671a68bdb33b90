"""Migration 0009 rebuilds `revisions` as an ordinary rowid table: every revision kept as it was."""

from __future__ import annotations

import random
import uuid as uuidlib

from fieldapp.forms import schema
from fieldapp.storage import db as storage_db
from fieldapp.storage import records
from fieldapp.storage.migrations import apply, schema_version
from tests.sync.harness import intake_answers


def _records_of_today(path) -> list[str]:
    """Records with edits and deletions, made by today's storage code: their uuids."""
    db = storage_db.connect(path)
    apply(db)
    rng, intake, ids = random.Random(3), schema.get("intake"), [str(uuidlib.uuid4()) for _ in range(5)]
    for uuid in ids:
        for revision in range(3):  # a new record, then two edits (the last one deletes two records)
            records.save(db, records.Submission(
                uuid=uuid, definition=intake, answers=intake_answers(rng, given_names="Ñandú"),
                post="POST-A", device="laptop-1", user="officer", base_revision=revision,
                deleted=revision == 2 and uuid in ids[:2]))
    db.conn.close()
    return ids


def test_every_revision_survives_the_rebuild(tmp_path):
    ids = _records_of_today(tmp_path / "today.db")
    db = storage_db.connect(tmp_path / "fieldapp.db")
    apply(db, stop_before="0009_revisions_rowid")  # records and revisions as in 0008
    db.execute("ATTACH DATABASE ? AS today", [str(tmp_path / "today.db")])
    with storage_db.write(db):
        for table in ("records", "revisions"):
            db.execute(f"INSERT INTO main.{table} SELECT * FROM today.{table}")
    db.execute("DETACH DATABASE today")
    table = "SELECT * FROM revisions ORDER BY uuid, revision"
    before = db.execute(table).fetchall()
    assert len(before) == 15

    apply(db, before_upgrade=None)

    assert schema_version(db) >= "0009_revisions_rowid"
    assert db.execute(table).fetchall() == before
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'revisions'").fetchone()[0]
    assert "WITHOUT ROWID" not in sql and "PRIMARY KEY (uuid, revision)" in sql
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # and the storage code works on the rebuilt table: a fourth revision of a live record
    records.save(db, records.Submission(uuid=ids[4], definition=schema.get("intake"),
                                        answers=intake_answers(random.Random(4)), post="POST-A",
                                        device="laptop-1", user="officer", base_revision=3))
    assert db.execute("SELECT count(*) FROM revisions WHERE uuid = ?", [ids[4]]).fetchone()[0] == 4
