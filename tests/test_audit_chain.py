"""The audit log's chain: any altered, deleted, inserted or reordered row makes
`fieldapp audit verify` fail and name the first bad row; concurrent writers keep it whole."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from fieldapp import config
from fieldapp.cli import main
from fieldapp.domain import audit as rules
from fieldapp.storage import audit, migrations
from fieldapp.storage import db as storage_db

ROWS = 5


@pytest.fixture
def instance(tmp_path):
    """An instance whose log holds ROWS events, appended as the app does."""
    config.write_new(tmp_path, post="POST-1", mode="field")
    db = storage_db.connect(tmp_path / "fieldapp.db")
    migrations.apply(db)
    for i in range(ROWS):
        audit.record(db, "record.viewed", actor=audit.Actor("user", str(i), f"user{i}", "10.0.0.1"),
                     target=f"record:00000000-0000-4000-8000-00000000000{i}",
                     details={"sections": ["needs"], "revision": i})
    db.close()
    return tmp_path


def verify(instance) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--instance", str(instance), "audit", "verify"])
    return result.exit_code, result.output


def tamper(instance, *statements, params=()):
    """Change the log as someone with the file would: a raw connection, triggers dropped."""
    conn = sqlite3.connect(instance / "fieldapp.db", isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for sql in statements:
        conn.execute(sql, params if "?" in sql else ())
    conn.close()


def row(instance, seq: int) -> dict:
    conn = sqlite3.connect(instance / "fieldapp.db")
    values = conn.execute(f"SELECT {', '.join(rules.COLUMNS)} FROM audit_log WHERE seq = ?",
                          [seq]).fetchone()
    conn.close()
    return dict(zip(rules.COLUMNS, values, strict=True))


def insert(instance, values: dict):
    marks = ", ".join("?" * len(rules.COLUMNS))
    tamper(instance, f"INSERT INTO audit_log ({', '.join(rules.COLUMNS)}) VALUES ({marks})",
           params=[values[c] for c in rules.COLUMNS])


def test_an_untouched_log_verifies(instance):
    assert verify(instance) == (0, f"ok, {ROWS} rows\n")


@pytest.mark.parametrize("column, value", [
    ("seq", 99), ("at", "2020-01-01T00:00:00.000000Z"), ("actor_kind", "system"),
    ("actor_id", "999"), ("actor_name", "someone_else"), ("event", "auth.login"),
    ("target_kind", "user"), ("target_id", "00000000-0000-4000-8000-000000000009"),
    ("details", '{"revision":7,"sections":["needs"]}'), ("address", "10.9.9.9"),
    ("prev_hash", "f" * 64), ("hash", "e" * 64),
])
def test_altering_any_column_is_found_at_that_row(instance, column, value):
    tamper(instance, f"UPDATE audit_log SET {column} = ? WHERE seq = 3", params=[value])
    code, output = verify(instance)
    assert code == 1
    assert "FAILED at row 3:" in output


@pytest.mark.parametrize("seq, why", [
    (1, "row 1 is missing"), (3, "row 3 is missing"), (ROWS, "the last rows were deleted"),
])
def test_deleting_a_row_is_found(instance, seq, why):
    tamper(instance, f"DELETE FROM audit_log WHERE seq = {seq}")
    code, output = verify(instance)
    assert code == 1
    assert f"FAILED at row {seq}:" in output and why in output


def test_deleting_every_row_is_found(instance):
    tamper(instance, "DELETE FROM audit_log")
    code, output = verify(instance)
    assert code == 1 and "FAILED at row 1:" in output and "the last rows were deleted" in output


def test_a_forged_row_inserted_in_the_middle_is_found(instance):
    """Rows 3… are moved up and a row with a correct hash is put at 3: row 4 no longer links."""
    tamper(instance, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3",
           "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
    forged = {**row(instance, 2), "seq": 3, "event": "auth.logout", "prev_hash": row(instance, 2)["hash"]}
    forged["hash"] = rules.row_hash(forged)
    insert(instance, forged)
    code, output = verify(instance)
    assert code == 1 and "FAILED at row 4:" in output and "does not follow" in output


def test_a_forged_row_appended_with_a_wrong_hash_is_found(instance):
    last = row(instance, ROWS)
    insert(instance, {**last, "seq": ROWS + 1, "prev_hash": last["hash"], "hash": "a" * 64})
    code, output = verify(instance)
    assert code == 1 and f"FAILED at row {ROWS + 1}:" in output and "altered" in output


def test_reordering_two_rows_is_found(instance):
    second, third = row(instance, 2), row(instance, 3)
    tamper(instance, "DELETE FROM audit_log WHERE seq IN (2, 3)")
    insert(instance, {**third, "seq": 2})
    insert(instance, {**second, "seq": 3})
    code, output = verify(instance)
    assert code == 1 and "FAILED at row 2:" in output


def test_a_log_rewritten_from_a_row_on_differs_from_the_anchor(instance):
    """Someone who recomputes every hash after their change still leaves the anchor behind."""
    rows = [row(instance, s) for s in range(1, ROWS + 1)]
    tamper(instance, "DELETE FROM audit_log WHERE seq >= 3")
    previous = rows[1]["hash"]
    for r in rows[2:]:
        r = {**r, "address": "10.6.6.6", "prev_hash": previous}
        r["hash"] = previous = rules.row_hash(r)
        insert(instance, r)
    code, output = verify(instance)
    assert code == 1 and f"FAILED at row {ROWS}:" in output and "rewritten" in output


def test_a_missing_anchor_fails_and_anchoring_again_is_recorded(instance):
    (instance / "fieldapp.db.audit-anchor").unlink()
    code, output = verify(instance)
    assert code == 1 and "anchor file is missing" in output
    result = CliRunner().invoke(main, ["--instance", str(instance), "audit", "anchor"])
    assert result.exit_code == 0, result.output
    assert verify(instance) == (0, f"ok, {ROWS + 1} rows\n")
    db = storage_db.connect(instance / "fieldapp.db")
    newest = audit.page(db, rules.Filter(), limit=1)[0]
    db.close()
    assert newest["event"] == "audit.anchored" and newest["details"]["previous_seq"] is None


def test_rows_after_the_anchor_are_accepted_and_reported(instance):
    """A crash between a commit and the anchor's update leaves the anchor a row behind."""
    anchor = instance / "fieldapp.db.audit-anchor"
    behind = anchor.read_text()
    db = storage_db.connect(instance / "fieldapp.db")
    audit.record(db, "auth.logout", actor=audit.SYSTEM)
    db.close()
    anchor.write_text(behind)
    code, output = verify(instance)
    assert code == 0 and f"ok, {ROWS + 1} rows" in output and "the last 1 rows" in output


def test_the_triggers_refuse_update_and_delete(instance):
    conn = sqlite3.connect(instance / "fieldapp.db")
    for sql in ("UPDATE audit_log SET address = '' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()


def test_an_event_in_a_rolled_back_write_leaves_no_trace(instance):
    db = storage_db.connect(instance / "fieldapp.db")
    anchor = (instance / "fieldapp.db.audit-anchor").read_text()
    with pytest.raises(RuntimeError), storage_db.write(db):
        audit.record(db, "account.updated", actor=audit.SYSTEM, target="user:1")
        raise RuntimeError("the action failed")
    assert audit.count(db) == ROWS
    assert (instance / "fieldapp.db.audit-anchor").read_text() == anchor
    db.close()


@pytest.mark.parametrize("event, target, details", [
    ("Auth.Login", "", None), ("login", "", None), ("auth.login", "record", None),
    ("auth.login", "record:has space", None), ("auth.login", "", ["not", "a", "dict"]),
    ("auth.login", "", {"big": "x" * 5000}),
])
def test_malformed_events_are_refused_before_anything_is_written(instance, event, target, details):
    db = storage_db.connect(instance / "fieldapp.db")
    with pytest.raises(audit.AuditError):
        audit.record(db, event, actor=audit.SYSTEM, target=target, details=details)
    assert audit.count(db) == ROWS
    db.close()


WRITER = textwrap.dedent("""
    import sys
    from fieldapp.storage import audit, db as storage_db
    db = storage_db.connect(sys.argv[1])
    for i in range(int(sys.argv[2])):
        audit.record(db, "sync.pull", actor=audit.Actor.device(sys.argv[3]), details={"i": i})
""")


def test_two_processes_appending_at_once_keep_the_chain_whole(instance):
    each = 150
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(instance / "fieldapp.db"), str(each),
                                 name]) for name in ("device-a", "device-b")]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    assert verify(instance) == (0, f"ok, {ROWS + 2 * each} rows\n")
    conn = sqlite3.connect(instance / "fieldapp.db")
    per_device = dict(conn.execute("SELECT actor_name, count(*) FROM audit_log GROUP BY actor_name"))
    conn.close()
    assert per_device["device-a"] == per_device["device-b"] == each
