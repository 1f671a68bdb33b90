"""Against a real central process: an erasure made at central reaches a post, which erases its
copies; an old copy pushed later is refused (`erased`). A replacement laptop takes over a post."""

from __future__ import annotations

import random
import sqlite3

import pytest

from fieldapp import accounts, create_app
from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations, records
from fieldapp.storage import subjects as store
from sync import client
from tests.conftest import PASSWORD, Client, database_bytes
from tests.sync.harness import Field, run_cli

MARKERS = ("Xelphandra", "Brumquist", "XB5550123")


def _marked(f: Field) -> str:
    return f.intake(random.Random(3), given_names="Xelphandra", first_surname="Brumquist",
                    doc_number="XB5550123")


def _field_pages(f: Field, tmp_path) -> list[str]:
    """The post's records pages, searched for the person, as its supervisor sees them."""
    app = create_app({"SECRET_KEY": "t", "DATABASE": str(f.path), "POST": f.post, "TESTING": True,
                      "WTF_CSRF_ENABLED": False}, instance=tmp_path / "field-instance")
    conn = storage_db.connect(f.path)
    accounts.create(conn, username="sup-" + f.post.lower(), password=PASSWORD, role="supervisor",
                    post=f.post)
    conn.close()
    http = Client(app, "sup-" + f.post.lower())
    return [http.get(url).text for url in ("/en/records", "/en/records?q=xelph", "/en/records?q=XB555")]


def test_an_erasure_reaches_the_post_and_an_old_copy_never_comes_back(central, make_field, tmp_path):
    post = make_field()
    uuid = _marked(post)
    kept = post.intake(random.Random(4))
    post.sync()
    post.edit(uuid, notes="Brumquist otra vez")  # a second revision, synced too
    post.sync()
    # A backup of the laptop taken now, restored later: it still holds the person.
    backup = tmp_path / "backup.db"
    post.db.execute("VACUUM INTO ?", [str(backup)])

    conn = central.db()
    try:
        ids = store.group(conn, uuid)
        done = store.erase(conn, ids, reason="request", reference="DSR-7", by="central1", device="central")
    finally:
        conn.close()
    assert done["records"] == 1 and done["posts"] == [post.post]

    progress = post.sync()
    assert progress.receipt is not None
    record = records.get(post.db, uuid)
    assert record["deleted"] and record["answers"] == {}
    assert all(r["answers"] == {} for r in records.history(post.db, uuid))
    assert records.get(post.db, kept)["answers"]["given_names"]  # the other person stays
    for page in _field_pages(post, tmp_path):
        for marker in MARKERS:
            assert marker not in page
    post.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = database_bytes(post.path)
    for marker in MARKERS:
        assert marker.encode() not in raw and marker.lower().encode() not in raw, marker

    # The restored backup edits the record and syncs: central refuses it, then the pull erases it.
    restored = Field(backup, post.post)
    restored.db = storage_db.connect(backup)
    migrations.apply(restored.db)
    restored.edit(uuid, notes="Xelphandra vuelve")
    pushed = restored.sync()
    assert pushed.counts["rejected"] == 1
    outcome = restored.db.execute("SELECT code FROM sync_outcomes WHERE uuid = ?", [uuid]).fetchone()
    assert outcome is None  # cleared: the pull that followed erased the record
    assert records.get(restored.db, uuid)["answers"] == {}
    restored.db.close()

    conn = central.db()
    try:
        assert records.get(conn, uuid)["answers"] == {}
        assert all(r["answers"] == {} for r in records.history(conn, uuid))
        rows = conn.execute("SELECT data FROM revisions WHERE uuid = ?", [uuid]).fetchall()
        assert rows and all(r[0] == "{}" for r in rows)
    finally:
        conn.close()


def test_a_replacement_laptop_takes_over_the_post(central, make_field, tmp_path):
    old = make_field()
    post = old.post
    rng = random.Random(8)
    made = [old.intake(rng) for _ in range(3)]
    course_uuid = old.save("course", {"title": "Soldadura", "area": "vocational", "start_date": "2026-01-05",
                                      "end_date": "2099-12-31", "min_attendance": 80, "capacity": 20})
    old.sync()
    run_cli(central.instance, "users", "add", "officer-" + post.lower(), "--role", "officer", "--post",
            post, "--password-stdin", stdin=PASSWORD + "\n")
    # A person older than the post keeps them, not enrolled on a running course: not sent.
    aged = made[0]
    conn = central.db()
    try:
        conn.execute("UPDATE revisions SET received_at = '2000-01-01T00:00:00.000000Z'"
                     " WHERE uuid = ?", [aged])
    finally:
        conn.close()

    # The admin registers the new laptop as the replacement of the old one.
    added = run_cli(central.instance, "devices", "add", post, "New laptop", "--replaces", old.device)
    code = added.stdout.strip().rsplit(" ", 1)[-1]
    wrong = run_cli(central.instance, "devices", "add", "OTHER-POST", "x", "--replaces", old.device,
                    check=False)
    assert wrong.returncode != 0

    new = Field.create(tmp_path / "new", post)
    new.enrol(central, code)
    first = new.sync()
    assert first.accounts >= 1
    held = {r[0] for r in new.db.execute("SELECT uuid FROM records")}
    assert set(made[1:]) | {course_uuid} <= held and aged not in held
    assert new.db.execute("SELECT 1 FROM users WHERE username = ?", ["officer-" + post.lower()]).fetchone()

    # Work goes on: an edit of a record the old laptop made, a new intake, then a sync.
    new.edit(made[1], notes="Corregido en el portátil nuevo")
    made.append(new.intake(rng))
    done = new.sync()
    assert done.counts["stored"] == 2 and done.counts["rejected"] == 0 and done.counts["conflict"] == 0

    with pytest.raises(client.SyncError) as refused:
        old.sync()
    assert refused.value.status == 401 and refused.value.code == "unknown_device"

    conn = sqlite3.connect(central.db_path)
    try:
        rows = conn.execute("SELECT uuid, count(*) FROM records WHERE post = ? AND form = 'intake'"
                            " GROUP BY uuid", [post]).fetchall()
        assert sorted(u for u, _ in rows) == sorted(made) and all(n == 1 for _, n in rows)
        revisions = dict(conn.execute("SELECT uuid, max(revision) FROM revisions GROUP BY uuid"))
        assert revisions[made[1]] == 2
    finally:
        conn.close()
        new.db.close()
