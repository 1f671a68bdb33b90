"""Enrolment: find people registered by intake, register new participants, one enrolment each."""

from __future__ import annotations

import pytest

from fieldapp.domain import persons
from fieldapp.storage import records
from tests.conftest import csrf_token, make_course, valid_intake


def valid_participant(**overrides) -> dict:
    import uuid as uuidlib

    data = {"uuid": str(uuidlib.uuid4()), "base_revision": "0", "form_version": "1",
            "consent": ["given"], "given_names": "Wilmer", "first_surname": "Rojas",
            "sex": "male", "birth_date_known": "no", "estimated_age": "24", "nationality": "VE",
            "phone": "+58 412 555 0101", "population": "migrant"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def course(client_as):
    return make_course(client_as("supervisor").http, capacity="3")


def _enrol(client, course, person, q="x", lang="en"):
    page = client.get(f"/{lang}/courses/{course}/enrol?q={q}")
    return client.http.post(f"/{lang}/courses/{course}/enrol", data={
        "csrf_token": csrf_token(page.text), "person": person, "q": q})


def _roster(db, course):
    return [e["person"] for e in records.children(db, course, "enrolment")]


def test_enrol_a_person_found_from_intake(db, client_as, course):
    officer = client_as("officer")
    intake = valid_intake()
    officer.post_form("/en/intake/new", intake)
    found = officer.get(f"/en/courses/{course}/enrol?q=garcia").text
    assert "María José García Núñez" in found and "AB123456" in found
    response = _enrol(officer, course, intake["uuid"], q="garcia")
    assert response.status_code == 302
    assert _roster(db, course) == [intake["uuid"]]
    [enrolment] = records.children(db, course, "enrolment")
    assert enrolment["uuid"] == persons.enrolment_uuid(course, intake["uuid"])
    assert "María José García Núñez" in officer.get(f"/en/courses/{course}").text


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "This person is already on the course&#39;s roster."),
    ("es", "Esta persona ya está en la lista del curso."),
])
def test_enrolling_twice_is_refused_with_a_message(db, client_as, course, lang, expected):
    officer = client_as("officer")
    intake = valid_intake()
    officer.post_form("/en/intake/new", intake)
    _enrol(officer, course, intake["uuid"], lang=lang)
    again = _enrol(officer, course, intake["uuid"], lang=lang)
    assert expected in officer.get(again.location).text
    assert len(records.children(db, course, "enrolment")) == 1


def test_a_full_course_refuses_more(db, client_as, course):
    officer = client_as("officer")
    for i in range(3):
        officer.post_form(f"/en/courses/{course}/participants/new",
                          valid_participant(given_names=f"P{i}"))
    response = officer.post_form(f"/en/courses/{course}/participants/new",
                                 valid_participant(given_names="Cuarto"))
    assert response.status_code == 422
    assert "The course is full: all 3 places are taken." in response.text
    assert len(_roster(db, course)) == 3
    assert records.count(db, "participant", None) == 3  # the fourth was not stored either


@pytest.mark.parametrize("person", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_enrolling_an_unknown_person_changes_nothing(db, client_as, course, person):
    response = _enrol(client_as("officer"), course, person)
    assert response.status_code == 302
    assert _roster(db, course) == []


def test_another_posts_person_cannot_be_enrolled(db, client_as, course):
    other = valid_intake()
    client_as("officer_b").post_form("/en/intake/new", other)
    _enrol(client_as("officer"), course, other["uuid"])
    assert _roster(db, course) == []


def test_a_new_participant_is_registered_and_enrolled_at_once(db, client_as, course):
    officer = client_as("officer")
    data = valid_participant()
    response = officer.post_form(f"/en/courses/{course}/participants/new", data)
    assert response.status_code == 302
    assert _roster(db, course) == [data["uuid"]]
    assert records.get(db, data["uuid"])["answers"]["population"] == "migrant"


def test_a_participant_without_consent_is_not_registered(db, client_as, course):
    response = client_as("officer").post_form(f"/en/courses/{course}/participants/new",
                                              valid_participant(consent=None))
    assert response.status_code == 422
    assert records.count(db, "participant", None) == 0 and _roster(db, course) == []


def test_a_later_intake_links_to_the_participant(db, client_as, course):
    officer = client_as("officer")
    participant = valid_participant()
    officer.post_form(f"/en/courses/{course}/participants/new", participant)
    page = officer.get(f"/en/intake/new?person={participant['uuid']}").text
    assert 'value="Wilmer"' in page and 'value="Rojas"' in page
    intake = valid_intake(given_names="Wilmer", first_surname="Rojas", person=participant["uuid"])
    assert officer.post_form("/en/intake/new", intake).status_code == 302
    assert records.get(db, intake["uuid"])["person"] == participant["uuid"]
    # One person: the search lists them once, and the roster now shows the fuller intake.
    found = officer.get(f"/en/courses/{course}/enrol?q=wilmer").text
    assert found.count("Wilmer Rojas") == 1 and "Already enrolled" in found
    assert records.persons(db, [participant["uuid"]])[participant["uuid"]]["form"] == "intake"


def test_an_intake_cannot_claim_a_person_of_another_post(db, client_as):
    from fieldapp.forms import schema

    other = valid_participant()
    records.save(db, records.Submission(other["uuid"], schema.get("participant"),
                                        {"given_names": "Otra"}, "POST-B", "dev", "officer_b"))
    assert client_as("officer").get(f"/en/intake/new?person={other['uuid']}").text.count(
        'value="Otra"') == 0
    response = client_as("officer").post_form("/en/intake/new",
                                              valid_intake(person=other["uuid"]))
    assert response.status_code == 422
    assert records.count(db, "intake", None) == 0
