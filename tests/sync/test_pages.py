"""The people's side of sync: the supervisor's page on a field server (against a real central
process) and central's dashboard, devices, conflicts and bundle import, in both languages."""

from __future__ import annotations

import io
import re
import time

import pytest

from fieldapp.domain.records import revision_hash
from fieldapp.storage import records
from fieldapp.storage import sync as store
from sync import bundle, protocol
from sync import server as sync_server
from tests.conftest import csrf_token, valid_intake
from tests.sync.harness import Field, enrolled_device


def _wait_for_sync(http, lang="en") -> dict:
    deadline = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while True:
        job = http.get(f"/{lang}/sync/progress").get_json()["job"]
        if not job["running"] or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_supervisor_enrols_syncs_and_carries_a_bundle_from_the_page(app, client_as, central, db):
    supervisor = client_as("supervisor")
    page = supervisor.get("/en/sync/")
    assert "not enrolled" in page.text
    # A mistyped code: a clear message, nothing stored.
    wrong = supervisor.post_form("/en/sync/", {"url": central.url, "code": "AAAA-BBBB-CCCC"},
                                 url="/en/sync/enrol")
    assert wrong.status_code == 400 and "not valid" in wrong.text, wrong.text[wrong.text.find("<main"):]
    assert "token" not in store.state(db)
    code = central.register("POST-A", "Laptop 1")
    done = supervisor.post_form("/en/sync/", {"url": central.url, "code": code}, url="/en/sync/enrol")
    assert done.status_code == 303
    assert store.state(db)["device_name"] == "Laptop 1"

    officer = client_as("officer")
    officer.post_form("/en/intake/new", valid_intake())
    officer.post_form("/en/intake/new", valid_intake(uuid="1b4e28ba-2fa1-41d2-883f-0016d3cca427"))
    page = supervisor.get("/en/sync/")
    assert re.search(r'id="pending">2<', page.text)
    started = supervisor.post_form("/en/sync/", {}, url="/en/sync/run")
    assert started.status_code == 303
    job = _wait_for_sync(supervisor.http)
    assert job["error"] is None and job["counts"]["stored"] == 2 and job["receipt"]["records"] == 2
    page = supervisor.get("/en/sync/")
    digest = protocol.short(job["receipt"]["digest"])
    assert digest in page.text and re.search(r'id="pending">0<', page.text)
    # Central shows the same digest for this device.
    conn = central.db()
    device = [d for d in store.devices(conn) if d["name"] == "Laptop 1"][0]
    assert digest == protocol.short(__import__("json").loads(device["last_receipt"])["digest"])

    # No internet: a bundle from the page, imported at central, its receipt imported back.
    officer.post_form("/en/intake/new", valid_intake(uuid="9f1c7a52-6a38-4a8a-9d0e-5b1f0e3c2d11"))
    response = supervisor.post_form("/en/sync/", {}, url="/en/sync/bundle")
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    receipt_file, receipt = sync_server.import_bundle(conn, response.data)
    assert receipt["counts"]["stored"] == 1
    conn.close()
    page = supervisor.get("/en/sync/")
    imported = supervisor.http.post("/en/sync/receipt", data={
        "csrf_token": csrf_token(page.text), "receipt": (io.BytesIO(receipt_file), "r.fieldapp-receipt")},
        content_type="multipart/form-data")
    assert imported.status_code == 303
    assert store.pending_count(db, int(store.state(db)["push_checkpoint"])) == 0
    again = supervisor.http.post("/en/sync/receipt", data={
        "csrf_token": csrf_token(page.text), "receipt": (io.BytesIO(receipt_file), "r.fieldapp-receipt")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "imported before" in again.text
    # A damaged receipt: refused, in Spanish on the Spanish page.
    page = supervisor.get("/es/sync/")
    broken = supervisor.http.post("/es/sync/receipt", data={
        "csrf_token": csrf_token(page.text), "receipt": (io.BytesIO(receipt_file[:-20]), "r")},
        content_type="multipart/form-data")
    assert broken.status_code == 400 and "dañado" in broken.text


@pytest.fixture
def central_app(app):
    app.config["MODE"] = "central"
    return app


def test_an_admin_registers_a_device_and_sees_its_code_once_then_revokes_it(central_app, client_as, db):
    admin = client_as("admin")
    bad = admin.post_form("/en/central/devices/new", {"post": "no spaces!", "name": "x"})
    assert bad.status_code == 400 and "post code" in bad.text
    made = admin.post_form("/es/central/devices/new", {"post": "post-b", "name": "Portátil 2"})
    assert made.status_code == 200 and "Código de inscripción" in made.text
    code = re.search(r'id="code">([A-Z0-9-]+)<', made.text).group(1)
    [device] = store.devices(db)
    assert device["post"] == "POST-B" and device["status"] == "pending"
    # The code is stored hashed only.
    stored = db.execute("SELECT code_hash FROM devices").fetchone()[0]
    assert stored == protocol.secret_hash(protocol.normalise_code(code)) and code not in stored
    dashboard = admin.get("/en/central/")
    assert "Portátil 2" in dashboard.text and code not in dashboard.text
    revoked = admin.post_form("/en/central/", {}, url=f"/en/central/devices/{device['id']}/revoke")
    assert revoked.status_code == 303 and store.device(db, device["id"])["status"] == "revoked"


def test_central_staff_resolve_a_conflict_field_by_field(central_app, client_as, db, tmp_path):
    # A record of POST-A at central, changed here, and a post's version of the same question.
    token, device_id = enrolled_device(db)
    field = Field.create(tmp_path / "field", "POST-A")
    uuid = field.intake()
    item = store.pending(field.db, 0, 10)[0]["item"]
    device = store.device(db, device_id)
    with central_app.test_request_context():
        sync_server.apply(db, device, "s1", "b1", [item])
    head = records.get(db, uuid)
    from fieldapp.forms import schema

    records.save(db, records.Submission(
        uuid=uuid, definition=schema.get("intake"), answers={**head["answers"], "notes": "Oficina."},
        post="POST-A", device="central", user="central", base_revision=1))
    theirs = dict(item, base=1, answers={**item["answers"], "notes": "Puesto.", "occupation": "isco_5"})
    theirs["hash"] = revision_hash(theirs["answers"])
    with central_app.test_request_context():
        [result] = sync_server.apply(db, device, "s1", "b2", [theirs])
    assert result["outcome"] == "conflict"
    [conflict] = store.conflicts(db)
    staff = client_as("central")
    listing = staff.get("/en/central/conflicts")
    assert f"/en/central/conflicts/{conflict['id']}" in listing.text
    page = staff.get(f"/es/central/conflicts/{conflict['id']}")
    assert "Oficina." in page.text and "Puesto." in page.text
    resolved = staff.http.post(f"/en/central/conflicts/{conflict['id']}", data={
        "csrf_token": csrf_token(page.text), "choose-notes": "post", "choose-occupation": "central"})
    assert resolved.status_code == 303
    record = records.get(db, uuid)
    assert record["revision"] == 3 and record["answers"]["notes"] == "Puesto."
    assert record["answers"]["occupation"] == head["answers"]["occupation"]
    assert store.conflict(db, conflict["id"])["status"] == "resolved"
    # Settled: a second answer changes nothing.
    again = staff.http.post(f"/en/central/conflicts/{conflict['id']}", data={
        "csrf_token": csrf_token(page.text), "whole": "post"})
    assert again.status_code == 409 and records.get(db, uuid)["revision"] == 3
    field.db.close()


def test_a_forged_or_damaged_bundle_is_refused_and_changes_nothing(central_app, client_as, db, tmp_path):
    token, device_id = enrolled_device(db)
    field = Field.create(tmp_path / "field", "POST-A")
    store.set_state(field.db, token="another-token", device=device_id)
    field.intake()
    forged, _ = bundle.export(field.db)
    store.set_state(field.db, token=token)
    good, _ = bundle.export(field.db)
    staff = client_as("central")
    before = db.execute("SELECT count(*) FROM records").fetchone()[0]
    for data, words in ((forged, "signature does not match"), (good[:-30], "damaged"),
                        (b"not gzip at all", "damaged")):
        page = staff.get("/en/central/")
        response = staff.http.post("/en/central/bundles", data={
            "csrf_token": csrf_token(page.text), "bundle": (io.BytesIO(data), "b.fieldapp-bundle")},
            content_type="multipart/form-data")
        assert response.status_code == 400 and words in response.text
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == before
    page = staff.get("/en/central/")
    ok = staff.http.post("/en/central/bundles", data={
        "csrf_token": csrf_token(page.text), "bundle": (io.BytesIO(good), "b.fieldapp-bundle")},
        content_type="multipart/form-data")
    assert ok.status_code == 200 and "attachment" in ok.headers["Content-Disposition"]
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == before + 1
    # The same bundle again: the same outcomes, nothing new.
    page = staff.get("/en/central/")
    staff.http.post("/en/central/bundles", data={
        "csrf_token": csrf_token(page.text), "bundle": (io.BytesIO(good), "b.fieldapp-bundle")},
        content_type="multipart/form-data")
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == before + 1
    assert db.execute("SELECT count(*) FROM revisions").fetchone()[0] == before + 1
    field.db.close()


def test_central_shows_capture_times_corrected_by_the_devices_clock_offset(central_app, client_as, db,
                                                                           tmp_path):
    token, device_id = enrolled_device(db)
    store.contact(db, device_id, protocol=1, app_version="0.1.0", clock_offset=7200.0)  # 2 h ahead
    field = Field.create(tmp_path / "field", "POST-A")
    uuid = field.intake()
    item = dict(store.pending(field.db, 0, 10)[0]["item"], at="2026-11-20T12:00:00.000000Z")
    with central_app.test_request_context():
        sync_server.apply(db, store.device(db, device_id), "s1", "b1", [item])
    page = client_as("central").get(f"/en/records/{uuid}")
    history = page.text[page.text.find("History"):]
    assert "by the post's clock" in history and "10:00:00" in history and "arrived" in history
    dashboard = client_as("central").get("/en/central/")
    assert "120.0 min ahead" in dashboard.text
    field.db.close()
