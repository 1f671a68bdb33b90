"""Integration: a real central server on 127.0.0.1 and field servers with their own SQLite files."""

from __future__ import annotations

import random

import pytest

from fieldapp.storage import records
from fieldapp.storage import sync as store
from sync import client
from tests.sync.harness import Field, heads, integrity, revisions


def test_push_stores_every_record_once_and_a_second_sync_sends_nothing(central, make_field):
    field = make_field()
    rng = random.Random(1)
    made = [field.intake(rng) for _ in range(30)]
    first = field.sync(batch_size=7)
    assert first.counts["stored"] == 30 and first.sent == 30
    assert first.receipt["records"] == 30 and first.receipt["matches"]
    again = field.sync()
    assert again.sent == 0 and again.requests <= 3
    conn = central.db()
    assert set(heads(conn, field.post)) == set(made)
    assert revisions(conn, field.post) == revisions(field.db, field.post)
    assert integrity(conn) == "ok"
    conn.close()


def test_a_correction_at_central_reaches_the_post(central, make_field):
    field = make_field()
    uuid = field.intake()
    field.sync()
    central.edit(uuid, notes="Corregido en la oficina central.")
    done = field.sync()
    assert done.pulled == 1
    record = records.get(field.db, uuid)
    assert record["revision"] == 2 and record["answers"]["notes"] == "Corregido en la oficina central."
    # The field can edit on top of central's correction: a plain next revision.
    field.edit(uuid, occupation="isco_5")
    assert field.sync().counts["stored"] == 1
    conn = central.db()
    assert heads(conn, field.post) == heads(field.db, field.post)
    assert revisions(conn, field.post) == revisions(field.db, field.post)
    conn.close()


def test_edits_of_different_questions_on_both_sides_are_merged(central, make_field):
    field = make_field()
    uuid = field.intake()
    field.sync()
    central.edit(uuid, notes="Nota de la oficina.")
    field.edit(uuid, occupation="isco_5")
    done = field.sync()
    assert done.counts["merged"] == 1 and done.counts["conflict"] == 0
    for conn in (field.db, central.db()):
        record = records.get(conn, uuid)
        assert record["revision"] == 3
        assert record["answers"]["notes"] == "Nota de la oficina."
        assert record["answers"]["occupation"] == "isco_5"
    conn = central.db()
    assert revisions(conn, field.post) == revisions(field.db, field.post)
    # The field's own version is kept on both sides: central's conflicts table, the field's history.
    kept = store.conflicts_of(conn, uuid)
    assert [c["status"] for c in kept] == ["merged"] and kept[0]["answers"]["occupation"] == "isco_5"
    assert field.db.execute("SELECT count(*) FROM superseded WHERE uuid = ?", [uuid]).fetchone()[0] == 1
    conn.close()


def test_edits_of_the_same_question_make_a_conflict_that_central_resolves(central, make_field):
    from fieldapp.forms import schema

    field = make_field()
    uuid = field.intake()
    field.sync()
    central.edit(uuid, notes="Versión de la oficina.")
    field.edit(uuid, notes="Versión del puesto.", occupation="isco_5")
    done = field.sync()
    assert done.counts["conflict"] == 1
    # Until central decides, both sides hold central's version; the field's waits at central.
    assert records.get(field.db, uuid)["answers"]["notes"] == "Versión de la oficina."
    outcome = store.outcomes(field.db, "conflict")
    assert [o["uuid"] for o in outcome] == [uuid]
    conn = central.db()
    [conflict] = store.conflicts(conn)
    assert conflict["fields"] == ["notes"] and conflict["answers"]["notes"] == "Versión del puesto."
    head = records.get(conn, uuid)
    chosen = {**head["answers"], "notes": conflict["answers"]["notes"],
              "occupation": conflict["answers"]["occupation"]}
    sub = records.Submission(uuid=uuid, definition=schema.get("intake"), answers=chosen,
                             post=field.post, device="central", user="central1",
                             base_revision=head["revision"])
    assert store.resolve(conn, conflict["id"], sub, by="central1").outcome == "stored"
    conn.close()
    field.sync()
    record = records.get(field.db, uuid)
    assert record["answers"]["notes"] == "Versión del puesto." and record["revision"] == 3
    conn = central.db()
    assert store.conflicts(conn) == [] and revisions(conn, field.post) == revisions(field.db, field.post)
    conn.close()


def test_a_delete_syncs_as_a_tombstone(central, make_field):
    field = make_field()
    uuid = field.intake()
    field.sync()
    field.delete(uuid)
    assert field.sync().counts["stored"] == 1
    conn = central.db()
    assert records.get(conn, uuid)["deleted"] == 1 and len(records.history(conn, uuid)) == 2
    conn.close()


def test_a_revoked_device_gets_401_and_nothing_changes(central, make_field):
    field = make_field()
    field.intake()
    conn = central.db()
    assert store.revoke(conn, field.device)
    before = conn.execute("SELECT count(*) FROM records").fetchone()[0]
    with pytest.raises(client.SyncError) as refused:
        field.sync()
    assert refused.value.status == 401 and refused.value.code == "unknown_device"
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == before
    conn.close()
    assert store.pending_count(field.db, 0) == 1


def test_two_posts_each_get_their_own_records_only(central, make_field):
    a, b = make_field(), make_field()
    ua, ub = a.intake(), b.intake()
    a.sync(), b.sync()
    central.edit(ua, notes="Solo para A.")
    assert b.sync().pulled == 0 and a.sync().pulled == 1
    assert records.get(b.db, ua) is None and records.get(a.db, ub) is None


def test_a_sync_through_a_faulty_network_stores_each_record_once(central, make_field):
    from tests.sync.tcpproxy import FaultyProxy

    field = make_field()
    rng = random.Random(7)
    made = {field.intake(rng) for _ in range(300)}
    proxy = FaultyProxy(central.port, seed=3, cut_request=0.2, cut_response=0.2, reset=0.1)
    try:
        for _ in range(50):
            try:
                field.sync(proxy.url, batch_size=40, attempts=2, backoff=0.01)
                break
            except client.SyncError:
                continue
        assert sum(proxy.faults.values()) > 0
    finally:
        proxy.close()
    field.sync()
    conn = central.db()
    assert set(heads(conn, field.post)) == made
    assert revisions(conn, field.post) == revisions(field.db, field.post)
    conn.close()


def test_a_background_sync_runs_once_at_a_time_and_reports_its_progress(central, make_field, tmp_path):
    """What the supervisor's button and the automatic interval use: sync/jobs.py."""
    import time

    from fieldapp import create_app
    from sync import jobs

    field = make_field()
    for _ in range(5):
        field.intake()
    app = create_app({"SECRET_KEY": "x", "DATABASE": str(field.path), "POST": field.post,
                      "SYNC_INTERVAL": 0.001}, instance=tmp_path)
    assert jobs.tick(app)  # enrolled: an automatic sync starts
    assert not jobs.start(app, lang="en", started_by="someone")  # one at a time
    deadline = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while jobs.current(app).running and time.monotonic() < deadline:
        time.sleep(0.05)
    job = jobs.current(app).as_dict()
    assert job["error"] is None and job["counts"]["stored"] == 5 and job["started_by"] == "automatic"
    assert store.pending_count(field.db, int(store.state(field.db)["push_checkpoint"])) == 0
    # Not enrolled: no automatic sync.
    other = make_field(enrol=False)
    app2 = create_app({"SECRET_KEY": "x", "DATABASE": str(other.path), "POST": other.post},
                      instance=tmp_path)
    assert not jobs.tick(app2)


def test_the_command_line_enrols_syncs_and_carries_bundles(central, tmp_path):
    """`fieldapp devices add` at central, `fieldapp sync enrol|status|export-bundle|import-receipt`
    and `fieldapp sync` at the post, `fieldapp sync import-bundle` at central."""
    import re

    from tests.sync.harness import run_cli

    post = tmp_path / "post"
    run_cli(post, "init", "--post", "CLI-POST", "--password-stdin", stdin="a-long-password-1\n")
    added = run_cli(central.instance, "devices", "add", "cli-post", "Laptop CLI").stdout
    code = re.search(r"shown only once\): ([A-Z0-9-]+)", added).group(1)
    refused = run_cli(post, "sync", "enrol", central.url, "--code-stdin", stdin="WRONG-CODE\n", check=False)
    assert refused.returncode != 0 and "not valid" in refused.stderr
    run_cli(post, "sync", "enrol", central.url, "--code-stdin", stdin=code + "\n")
    field = Field.create(post, "CLI-POST")  # the post's own database, to write records in
    for _ in range(3):
        field.intake()
    assert "Changes waiting to be sent: 3" in run_cli(post, "sync", "status").stdout
    done = run_cli(post, "sync").stdout
    assert "Central confirmed 3 records: 3 stored" in done and "Receipt digest" in done
    field.intake()
    bundle_file, receipt_file = tmp_path / "b.fieldapp-bundle", tmp_path / "r.fieldapp-receipt"
    run_cli(post, "sync", "export-bundle", str(bundle_file))
    imported = run_cli(central.instance, "sync", "import-bundle", str(bundle_file), "--receipt",
                       str(receipt_file)).stdout
    assert "1 stored" in imported
    run_cli(post, "sync", "import-receipt", str(receipt_file))
    again = run_cli(post, "sync", "import-receipt", str(receipt_file)).stdout
    assert "imported before" in again
    assert "Changes waiting to be sent: 0" in run_cli(post, "sync", "status").stdout
    listed = run_cli(central.instance, "devices", "list").stdout
    assert "CLI-POST" in listed and "active" in listed
    device_id = listed.split()[0] if "CLI-POST" in listed.splitlines()[0] else next(
        line.split()[0] for line in listed.splitlines() if "CLI-POST" in line)
    run_cli(central.instance, "devices", "revoke", device_id)
    gone = run_cli(post, "sync", check=False)
    assert gone.returncode != 0 and "not enrolled" in gone.stderr
    field.db.close()
