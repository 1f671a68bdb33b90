"""Consent and retention (issue 7): what a record without consent may hold, when a field server
and central remove personal data, what a purge removes and what it leaves, on real SQLite files."""

from __future__ import annotations

import json
import random
import uuid as uuidlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fieldapp import retention
from fieldapp.domain import privacy
from fieldapp.domain.records import Outcome, now, revision_hash
from fieldapp.forms import schema
from fieldapp.storage import migrations, records, summary
from fieldapp.storage import retention as store
from fieldapp.storage import sync as sync_store
from sync import server
from tests.central_data import central_app as central_app  # noqa: F401 - a fixture
from tests.central_data import seed
from tests.conftest import POST_A, database_bytes, valid_intake
from tests.sync.harness import intake_answers
from tests.test_intake_facts import BY_SQL, KEPT

# Marker strings: each must vanish from the field database once its record is purged.
MARKERS = {
    "given_names": "Qorvintha", "first_surname": "Zelbarrow", "doc_number": "QZ4417723",
    "phone": "+573114417723", "notes": "Kestrelmoth notes", "certified_skills": "Varnokite welding",
}

UNSENT = {"given_names": "Unsentia", "first_surname": "Pendwick", "doc_number": "UN5550001",
          "phone": "+573005550001", "notes": "Waiting to sync", "certified_skills": "Masonry"}


def _uuid() -> str:
    return str(uuidlib.uuid4())


def _at(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def _save(db, form: str, answers: dict, *, uuid: str | None = None, base: int = 0,
          person: str = "", parent: str = "", post: str = POST_A, origin: str = "") -> str:
    uuid = uuid or _uuid()
    decision = records.save(db, records.Submission(
        uuid=uuid, definition=schema.get(form), answers=answers, post=post, device="device-test",
        user="officer", base_revision=base, person=person, parent=parent, origin=origin))
    assert decision.outcome in (Outcome.STORED, Outcome.DUPLICATE), decision
    return uuid


def _intake(db, **overrides) -> str:
    return _save(db, "intake", intake_answers(random.Random(1), **{**MARKERS, **overrides}))


def _acknowledge(db, outcome: str = "stored") -> None:
    """What a sync does once central answered every pending change: the checkpoint moves on."""
    checkpoint = int(sync_store.state(db).get("push_checkpoint", 0))
    rows = sync_store.pending(db, checkpoint, 10_000)
    results = [{"uuid": r["item"]["uuid"], "revision": r["item"]["base"] + 1, "outcome": outcome}
               for r in rows]
    assert sync_store.acknowledge(db, checkpoint=checkpoint, to_seq=rows[-1]["seq"], results=results,
                                  messages={})


def _found(raw: bytes, markers) -> list[str]:
    folded = raw.lower()
    return [m for m in markers if m.encode().lower() in folded]


# Rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form, answers, beyond", [
    ("intake", {"consent": "refused", "purpose": "statistics", "sex": "male"}, []),
    ("intake", {"consent": "refused", "given_names": "Ana", "phone": "+5730"}, ["given_names", "phone"]),
    ("intake", {"consent": "refused", "notes": ""}, []),  # an empty answer holds nothing
    ("intake", {"consent": "given", "given_names": "Ana"}, []),
    ("intake", {"consent": "not_possible", "given_names": "Ana"}, []),
    ("participant", {"consent": [], "given_names": "Ana", "sex": "female"}, ["given_names"]),
    ("participant", {"consent": ["given"], "given_names": "Ana"}, []),
    ("attendance", {"status": "present", "note": "late bus"}, []),  # no consent asked
    ("course", {"title": "Welding"}, []),  # no personal data
])
def test_without_consent_only_the_minimum_may_be_held(form, answers, beyond):
    assert privacy.beyond_consent(schema.get(form), answers) == beyond


@pytest.mark.parametrize("form, answers, purpose", [
    ("intake", {"purpose": "protection"}, "protection"),
    ("participant", {}, "training"),
    ("attendance", {}, "training"),
    ("course", {}, ""),
])
def test_every_personal_record_has_a_purpose(form, answers, purpose):
    assert privacy.purpose(schema.get(form), answers) == purpose


def test_the_personal_forms_are_those_with_a_privacy_table():
    assert store.personal_forms() == ["attendance", "intake", "participant"]


def test_anonymising_keeps_what_the_summary_counts():
    answers = intake_answers(random.Random(3), birth_date="1990-05-04", interview_date="2025-03-15",
                             arrival_date="2025-03-01", migratory_status="refugee", **MARKERS)
    kept = privacy.anonymised(schema.get("intake"), answers)
    assert kept == {"consent": "given", "purpose": "assistance", "interview_date": "2025-03-15",
                    "sex": answers["sex"], "nationality": answers["nationality"],
                    "migratory_status": "refugee", "age_group": "25_59"}
    assert privacy.anonymised(schema.get("attendance"), {"status": "late", "note": "x"}) == {
        "status": "late"}


def test_the_age_groups_are_the_summary_s():
    assert privacy.AGE_GROUP_BOUNDS == migrations.AGE_GROUP_BOUNDS


# Consent at capture and on sync ---------------------------------------------------------------


def test_storage_refuses_personal_data_without_consent(db):
    uuid = _uuid()
    decision = records.save(db, records.Submission(
        uuid=uuid, definition=schema.get("intake"), post=POST_A, device="d", user="officer",
        answers={"consent": "refused", "purpose": "statistics", "given_names": MARKERS["given_names"]}))
    assert (decision.outcome, decision.code) == (Outcome.REJECTED, "no_consent")
    assert records.get(db, uuid) is None
    assert not _found(database_bytes(Path(db._fieldapp_path)), [MARKERS["given_names"]])


def test_the_intake_page_keeps_only_the_minimum_when_consent_is_refused(app, db, client_as):
    data = valid_intake(consent="refused", age_group="25_59", given_names=MARKERS["given_names"])
    response = client_as("officer").post_form("/en/intake/new", data)
    assert response.status_code == 302
    assert set(records.get(db, data["uuid"])["answers"]) == {
        "consent", "purpose", "interview_date", "sex", "age_group", "nationality"}


def test_the_outbox_replay_refuses_a_participant_without_consent(app, db, client_as):
    http = client_as("officer")
    token = http.get("/en/api/token").json["token"]
    course = records.save(db, records.Submission(
        uuid=_uuid(), definition=schema.get("course"), post=POST_A, device="d", user="officer",
        answers={"title": "Welding", "area": "vocational", "start_date": "2026-11-02",
                 "end_date": "2026-11-27", "min_attendance": 80, "capacity": 25}))
    assert course.outcome is Outcome.STORED
    course_uuid = db.execute("SELECT uuid FROM records WHERE form = 'course'").fetchone()[0]
    uuid = _uuid()
    fields = {"uuid": uuid, "base_revision": "0", "form_version": "1", "given_names": "Ana",
              "first_surname": "Pérez", "sex": "female", "birth_date_known": "no",
              "estimated_age": "30", "nationality": "VE", "population": "migrant"}
    response = http.http.post("/en/api/outbox", json={"records": [
        {"kind": "participant", "uuid": uuid, "course": course_uuid, "fields": fields}]},
        headers={"X-CSRFToken": token})
    assert response.status_code == 200
    (result,) = response.json["results"]
    assert result["outcome"] == "rejected" and "consent" in result["errors"]
    assert records.get(db, uuid) is None


def _pushed(answers: dict, form: str = "intake") -> dict:
    return {"uuid": _uuid(), "form": form, "v": 1, "base": 0, "base_hash": "",
            "hash": revision_hash(answers), "deleted": False, "answers": answers, "parent": "",
            "person": "", "by": "officer", "at": now()}


@pytest.mark.parametrize("answers, code", [
    ({"consent": "refused", "purpose": "statistics", "interview_date": "2025-01-02", "sex": "male",
      "age_group": "25_59", "nationality": "VE", "given_names": "Ana"}, "no_consent"),
    ({"consent": "refused", "purpose": "statistics", "interview_date": "2025-01-02", "sex": "male",
      "age_group": "25_59", "nationality": "VE"}, None),
])
def test_central_refuses_a_pushed_record_with_personal_data_but_no_consent(answers, code):
    checked = server.check(_pushed(answers), POST_A, "device-1", date.today())
    if code is None:
        assert not isinstance(checked, dict), checked
    else:
        assert checked["outcome"] == "rejected" and checked["code"] == code


def test_a_refused_push_is_answered_in_the_batch_and_nothing_is_stored(central_app, tmp_path):  # noqa: F811
    from fieldapp.storage import db as storage_db

    db = storage_db.connect(central_app.config["DATABASE"])
    item = _pushed({"consent": "refused", "purpose": "statistics", "interview_date": "2025-01-02",
                    "sex": "male", "age_group": "25_59", "nationality": "VE",
                    "phone": MARKERS["phone"]})
    with central_app.test_request_context("/es/sync/v1/push"):
        (result,) = server.apply(db, {"id": "device-1", "post": POST_A}, "s1", "b1", [item])
    assert result["code"] == "no_consent" and result["outcome"] == "rejected"
    assert "consentimiento" in result["message"].lower() or result["message"]
    assert records.get(db, item["uuid"]) is None
    db.close()


# Field retention ------------------------------------------------------------------------------


@pytest.fixture
def field(app, db):
    """An edited intake, a participant, a course with an attendance mark with a note, all
    acknowledged by central now; then one intake central has not acknowledged yet."""
    ids = {"intake": _intake(db)}
    first = records.get(db, ids["intake"])
    _save(db, "intake", {**first["answers"], "notes": "Second Kestrelmoth revision"},
          uuid=ids["intake"], base=1)
    ids["participant"] = _save(db, "participant", {
        "consent": ["given"], "given_names": "Brumlivex", "first_surname": "Oktarine", "sex": "male",
        "birth_date_known": "no", "estimated_age": 40, "nationality": "CO", "population": "host",
        "phone": "+573009988776"})
    ids["course"] = _save(db, "course", {"title": "Welding", "area": "vocational",
                                         "start_date": "2026-11-02", "end_date": "2026-11-27",
                                         "min_attendance": 80, "capacity": 25})
    ids["mark"] = _save(db, "attendance", {"status": "late", "note": "Thraxwillow bus"},
                        person=ids["participant"], parent=ids["course"])
    _acknowledge(db)
    ids["unsent"] = _intake(db, **UNSENT)
    return ids


def test_nothing_is_purged_before_the_retention_ends(app, db, field):
    assert retention.plan(db, app.config, _at(29)).uuids == []


def test_acknowledged_personal_records_are_purged_after_the_retention(app, db, field):
    due = retention.plan(db, app.config, _at(31))
    assert sorted(due.uuids) == sorted([field["intake"], field["participant"], field["mark"]])
    assert due.by_form == {"intake": 1, "participant": 1, "attendance": 1}
    assert field["unsent"] not in due.uuids  # never acknowledged: never purged
    app.config["FIELD_RETENTION_DAYS"] = 3
    assert len(retention.plan(db, app.config, _at(4)).uuids) == 3


def test_a_record_central_refused_is_never_purged(app, db):
    uuid = _intake(db)
    _acknowledge(db, outcome="rejected")
    assert retention.plan(db, app.config, _at(365)).uuids == []
    assert records.get(db, uuid)["answers"]["given_names"] == MARKERS["given_names"]


def test_a_purge_removes_every_copy_and_leaves_what_sync_needs(app, db, field):
    before = {u: records.history(db, u) for u in field.values()}
    pending = sync_store.pending_count(db, int(sync_store.state(db)["push_checkpoint"]))
    done = retention.run(db, app.config, _at(31))
    assert len(done.uuids) == 3
    intake = records.get(db, field["intake"])
    assert intake["title"] == "" and intake["doc_key"] == ""
    assert set(intake["answers"]) == {"consent", "purpose", "interview_date", "sex", "nationality",
                                      "migratory_status", "age_group"}
    for uuid in (field["intake"], field["participant"], field["mark"]):
        after = records.history(db, uuid)
        # Uuid, revisions and hashes stay: sync still knows every revision.
        assert [(r["revision"], r["hash"]) for r in after] == [
            (r["revision"], r["hash"]) for r in before[uuid]]
    assert records.get(db, field["mark"])["answers"] == {"status": "late"}
    assert records.get(db, field["course"])["answers"]["title"] == "Welding"  # not personal
    # Nothing to search by, nothing new to push: the purge is not an edit.
    for text in ("Qorvintha", "QZ4417723"):
        assert records.search(db, "intake", post=POST_A, text=text) == []
    assert [r["uuid"] for r in records.search(db, "intake", post=POST_A, text="Unsentia")] == [
        field["unsent"]]
    assert sync_store.pending_count(db, int(sync_store.state(db)["push_checkpoint"])) == pending
    assert store.is_purged(db, field["intake"]) and not store.is_purged(db, field["unsent"])
    # A second purge finds nothing more to do.
    assert retention.run(db, app.config, _at(32)).uuids == []


def test_a_purge_leaves_no_readable_trace_in_the_database_and_its_wal(app, db, field):
    path = Path(app.config["DATABASE"])
    markers = [*MARKERS.values(), "Brumlivex", "Oktarine", "Thraxwillow", "Second Kestrelmoth",
               "+573009988776"]
    assert _found(database_bytes(path), markers), "the markers must be readable before the purge"
    retention.run(db, app.config, _at(31))
    # The one record central has not acknowledged keeps its data: only its own markers remain.
    assert _found(database_bytes(path), markers) == []
    assert _found(database_bytes(path), ["Unsentia"]) == ["Unsentia"]


def test_a_purged_record_cannot_be_corrected_and_says_why(app, db, field, client_as):
    retention.run(db, app.config, _at(31))
    http = client_as("officer")
    page = http.get(f"/en/records/{field['intake']}")
    assert page.status_code == 200 and "retention" in page.text
    data = valid_intake(uuid=field["intake"], base_revision="2")
    response = http.post_form(f"/en/records/{field['intake']}/edit", data)
    assert response.status_code == 422 and "retention period" in response.text
    assert records.get(db, field["intake"])["revision"] == 2


def test_a_correction_pulled_from_central_for_a_purged_record_stays_purged(app, db, field):
    retention.run(db, app.config, _at(31))
    uuid = field["intake"]
    revisions = [{"rev": r["revision"], "v": r["form_version"], "answers": r["answers"],
                  "hash": r["hash"], "deleted": False, "device": r["device"], "by": r["created_by"],
                  "at": r["created_at"]} for r in records.history(db, uuid)]
    corrected = intake_answers(random.Random(1), **{**MARKERS, "given_names": "Centralcorrix"})
    revisions.append({"rev": 3, "v": 1, "answers": corrected, "hash": revision_hash(corrected),
                      "deleted": False, "device": "central", "by": "central", "at": now()})
    state = {"uuid": uuid, "form": "intake", "post": POST_A, "parent": "", "person": "",
             "revisions": revisions}
    counts = sync_store.adopt(db, [state], [], cursor=5)
    assert counts["applied"] == 1
    record = records.get(db, uuid)
    assert record["revision"] == 3 and "given_names" not in record["answers"]
    assert record["hash"] == revision_hash(corrected)  # central's revision, as central names it
    assert not _found(json.dumps(records.history(db, uuid)).encode(), ["Centralcorrix"])


def test_the_purge_command_counts_and_the_automatic_purge_can_be_off(app, db, field):
    dry = retention.run(db, app.config, _at(31), dry_run=True)
    assert len(dry.uuids) == 3 and not store.is_purged(db, field["intake"])
    assert retention.tick(app, _at(31)).by_form["intake"] == 1
    assert store.is_purged(db, field["intake"])
    app.config["PURGE_INTERVAL_HOURS"] = 0
    assert retention.start_auto(app) is None


# Central retention ----------------------------------------------------------------------------


def test_central_anonymises_by_purpose_and_the_summary_still_counts(central_app):  # noqa: F811
    from fieldapp.storage import db as storage_db

    db = storage_db.connect(central_app.config["DATABASE"])
    migrations.apply(db)
    seed(db)
    today = date.today()
    before = summary.collect(db, today)
    config = {**central_app.config, "CENTRAL_RETENTION_DAYS": {"assistance": 1, "training": 10**6}}
    due = retention.plan(db, config, _at(2))
    intakes = db.execute("SELECT count(*) FROM records WHERE form = 'intake'").fetchone()[0]
    assert due.by_purpose == {"assistance": intakes}  # every seeded intake is for assistance
    assert retention.plan(db, config, _at(-400)).uuids == []
    retention.run(db, config, _at(2))
    for (data,) in db.execute("SELECT r.data FROM revisions r JOIN records h USING (uuid)"
                              " WHERE h.form = 'intake'"):
        assert "given_names" not in json.loads(data)
    marks = [u for (u,) in db.execute("SELECT uuid FROM records WHERE form = 'attendance'")]
    assert marks and not any(store.is_purged(db, u) for u in marks)  # training: not due yet
    after = summary.collect(db, today)
    assert after.intakes.pairs == before.intakes.pairs
    assert db.execute(KEPT).fetchall() == db.execute(BY_SQL).fetchall()
    assert after.courses == before.courses
    # No retention set for a purpose: those records are kept, and the plan says so.
    unset = retention.plan(db, {**config, "CENTRAL_RETENTION_DAYS": {}}, _at(2))
    assert unset.uuids == [] and unset.unlimited["training"] > 0
    db.close()
