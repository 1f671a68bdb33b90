"""A sync in the audit logs: one event per batch and per pull at central, one per run at the post."""

from __future__ import annotations

from fieldapp import config
from fieldapp.domain.audit import Filter
from fieldapp.storage import audit
from tests.sync.harness import Field, run_cli


def _events(db, **filters) -> list[dict]:
    return list(reversed(audit.page(db, Filter(**filters), limit=1000)))


def test_a_sync_is_an_event_per_batch_and_pull_at_central_and_one_run_at_the_post(central, tmp_path):
    config.write_new(tmp_path, post="PAUDIT", mode="field")
    field = Field.create(tmp_path, "PAUDIT")
    field.enrol(central)
    for _ in range(5):
        field.intake()
    run_cli(tmp_path, "sync", "--batch-size", "2")

    run = _events(field.db, event="sync.run")
    assert len(run) == 1 and run[0]["actor_name"] == "cli"
    assert (run[0]["details"]["sent"], run[0]["details"]["stored"]) == (5, 5)

    db = central.db()
    try:
        mine = _events(db, user=field.device)
        head = db.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    finally:
        db.close()
    # The batches' events leave the anchor to the finish, which anchors them all at once.
    assert audit.read_anchor(central.instance / "fieldapp.db.audit-anchor").seq == head
    kinds = [e["event"] for e in mine]
    assert kinds[0] == "device.enrolled" and kinds.count("sync.push") == 3
    assert kinds.count("sync.finish") == 1 and kinds.count("sync.pull") >= 1
    assert "record.created" not in kinds, "records that arrive by sync are counted per batch"
    pushes = [e["details"] for e in mine if e["event"] == "sync.push"]
    assert [p["records"] for p in pushes] == [2, 2, 1] and sum(p["stored"] for p in pushes) == 5
    assert all(e["target_id"] == field.device and e["actor_kind"] == "device" for e in mine)
    assert "ok, " in run_cli(central.instance, "audit", "verify").stdout
    assert "ok, " in run_cli(tmp_path, "audit", "verify").stdout
