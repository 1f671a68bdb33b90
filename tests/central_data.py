"""A small, known data set of several posts' records at central, for the central pages and exports."""

from __future__ import annotations

import random
import uuid as uuidlib
from datetime import date

import pytest

from fieldapp import create_app
from fieldapp.domain import persons
from fieldapp.forms import schema
from fieldapp.storage import records
from tests.sync.harness import intake_answers

TODAY = date.today().isoformat()


def save(db, form: str, answers: dict, *, post: str, uuid: str | None = None, parent: str = "",
         person: str = "", device: str = "laptop-1", user: str = "officer", at: str = "") -> str:
    uuid = uuid or str(uuidlib.uuid4())
    decision = records.save(db, records.Submission(
        uuid=uuid, definition=schema.get(form), answers=answers, post=post, device=device, user=user,
        parent=parent, person=person, at=at, origin=device))
    assert decision.outcome.value == "stored", decision
    return uuid


def seed(db) -> dict:
    """Three intakes at POST-A (two Venezuelan women, a Colombian man) and one at POST-B (a Haitian
    woman whose notes start with a formula), a course at POST-A with two sessions, two enrolments
    and their marks, and a certificate."""
    rng = random.Random(7)
    ids = {}
    ids["ana"] = save(db, "intake", intake_answers(
        rng, given_names="Ana María", first_surname="Pérez", second_surname="Núñez", sex="female",
        nationality="VE", doc_number="V11111111", phone="+573001111111", notes="Llegó con su hija."),
        post="POST-A", at="2026-03-02T10:00:00Z")
    ids["rosa"] = save(db, "intake", intake_answers(
        rng, given_names="Rosa", first_surname="Díaz", second_surname="", sex="female", nationality="VE",
        doc_number="V22222222", phone="+573002222222", migratory_status="regular"),
        post="POST-A", at="2026-04-15T10:00:00Z")
    ids["juan"] = save(db, "intake", intake_answers(
        rng, given_names="Juan", first_surname="Gómez", second_surname="Ruiz", sex="male", nationality="CO",
        doc_number="C33333333", phone="+573003333333"), post="POST-A", at="2026-05-20T10:00:00Z")
    ids["marie"] = save(db, "intake", intake_answers(
        rng, given_names="Marie", first_surname="Joseph", second_surname="", sex="female", nationality="HT",
        doc_number="H44444444", phone="+50944444444", notes="=HYPERLINK(\"http://evil\")"),
        post="POST-B", device="laptop-b", user="officer_b", at="2026-06-01T10:00:00Z")
    course = schema.get("course")
    ids["course"] = save(db, "course", {
        "title": "Soldadura básica", "area": "vocational", "partner": "SENA", "start_date": "2026-03-01",
        "end_date": "2026-03-31", "min_attendance": 50, "capacity": 20}, post="POST-A", user="supervisor")
    assert course.fields_by_name["area"]
    ids["s1"] = save(db, "session", {"date": "2026-03-03", "start_time": "09:00", "end_time": "12:00",
                                     "place": "Aula 2", "status": "scheduled"}, post="POST-A",
                     parent=ids["course"], user="supervisor")
    ids["s2"] = save(db, "session", {"date": "2026-03-10", "start_time": "09:00", "end_time": "12:00",
                                     "place": "Aula 2", "status": "scheduled"}, post="POST-A",
                     parent=ids["course"], user="supervisor")
    for who in ("ana", "juan"):
        save(db, "enrolment", {"status": "enrolled"}, post="POST-A", parent=ids["course"], person=ids[who],
             uuid=persons.enrolment_uuid(ids["course"], ids[who]))
    for session, who, status in (("s1", "ana", "present"), ("s2", "ana", "late"), ("s1", "juan", "absent"),
                                 ("s2", "juan", "present")):
        save(db, "attendance", {"status": status}, post="POST-A", parent=ids[session], person=ids[who],
             uuid=persons.mark_uuid(ids[session], ids[who]))
    save(db, "certificate", {"number": "SOLD-0001-X", "minutes": 360, "issued_on": "2026-04-01"},
         post="POST-A", parent=ids["course"], person=ids["ana"],
         uuid=persons.certificate_uuid(ids["course"], ids["ana"]))
    return ids


@pytest.fixture
def central_app(tmp_path, seeded_db):
    import shutil

    shutil.copyfile(seeded_db, tmp_path / "fieldapp.db")
    return create_app({"SECRET_KEY": "test-secret", "DATABASE": str(tmp_path / "fieldapp.db"),
                       "POST": "CENTRAL", "DEVICE_ID": "central", "MODE": "central", "TESTING": True},
                      instance=tmp_path)
