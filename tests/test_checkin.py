"""Attendance check-in: each tap is one mark record, idempotent, refused when it must be."""

from __future__ import annotations

import pytest

from fieldapp.domain import persons
from fieldapp.storage import records
from tests.conftest import csrf_token, make_course, make_session
from tests.test_enrolment import valid_participant


@pytest.fixture
def setup(client_as):
    """A course with two sessions (the second cancelled) and two enrolled participants."""
    supervisor, officer = client_as("supervisor"), client_as("officer")
    course = make_course(supervisor.http)
    session = make_session(supervisor.http, course)
    cancelled = make_session(supervisor.http, course, date="2026-11-04", status="cancelled")
    people = []
    for name in ("Ana", "Beto"):
        data = valid_participant(given_names=name)
        officer.post_form(f"/en/courses/{course}/participants/new", data)
        people.append(data["uuid"])
    token = csrf_token(officer.get(f"/en/sessions/{session}/checkin").text)
    return {"officer": officer, "course": course, "session": session, "cancelled": cancelled,
            "people": people, "token": token}


def tap(s, person, status, base=0, session=None, lang="en"):
    """One tap as the check-in page's script sends it, through the outbox API: its answer."""
    session = session or s["session"]
    response = s["officer"].http.post(f"/{lang}/api/outbox", headers={"X-CSRFToken": s["token"]},
                                      json={"records": [{
                                          "uuid": persons.mark_uuid(session, person), "kind": "mark",
                                          "session": session,
                                          "fields": {"mark": f"{person}:{base}:{status}"}}]})
    assert response.status_code == 200
    [answer] = response.json["results"]
    return answer


def post_tap(s, value):
    """One tap posted without the script."""
    return s["officer"].http.post(f"/en/sessions/{s['session']}/marks",
                                  data={"mark": value, "csrf_token": s["token"]})


def marks(db, session):
    return {m["person"]: (m["answers"]["status"], m["revision"])
            for m in records.children(db, session, "attendance")}


def test_the_checkin_page_lists_the_roster(setup):
    page = setup["officer"].get(f"/en/sessions/{setup['session']}/checkin").text
    assert "Ana Rojas" in page and "Beto Rojas" in page
    assert page.count('aria-pressed="false"') == 8


def test_a_tap_is_a_mark_and_the_same_tap_again_is_the_same_record(db, setup):
    ana = setup["people"][0]
    first = tap(setup, ana, "present")
    again = tap(setup, ana, "present")
    assert first == {"uuid": persons.mark_uuid(setup["session"], ana), "outcome": "stored",
                     "person": ana, "status": "present", "revision": 1, "location": ""}
    assert again["outcome"] == "duplicate"
    assert marks(db, setup["session"]) == {ana: ("present", 1)}
    [mark] = records.children(db, setup["session"], "attendance")
    assert mark["uuid"] == persons.mark_uuid(setup["session"], ana)
    assert mark["created_by"] == "officer" and mark["created_at"]


def test_changing_a_mark_is_a_new_revision(db, setup):
    ana = setup["people"][0]
    tap(setup, ana, "present")
    assert tap(setup, ana, "late", base=1)["revision"] == 2
    assert marks(db, setup["session"]) == {ana: ("late", 2)}
    assert [h["answers"]["status"] for h in records.history(
        db, persons.mark_uuid(setup["session"], ana))] == ["present", "late"]


def test_a_stale_tap_is_a_conflict_that_shows_the_saved_mark(db, setup):
    ana = setup["people"][0]
    tap(setup, ana, "present")
    tap(setup, ana, "late", base=1)  # another phone
    answer = tap(setup, ana, "absent", base=1)
    assert answer["outcome"] == "conflict" and answer["code"] == "conflict"
    assert answer["status"] == "late" and answer["revision"] == 2
    assert marks(db, setup["session"]) == {ana: ("late", 2)}


@pytest.mark.parametrize(("case", "person", "status", "session", "code"), [
    ("unknown status", 0, "asleep", "session", "unknown_status"),
    ("not on the roster", "00000000-0000-4000-8000-000000000000", "present", "session",
     "not_on_roster"),
    ("cancelled session", 0, "present", "cancelled", "session_cancelled"),
    ("malformed person", "x", "present", "session", "unknown_status"),
])
@pytest.mark.parametrize("lang", ["en", "es"])
def test_bad_taps_are_refused_and_change_nothing(db, setup, case, person, status, session,
                                                 code, lang):
    who = setup["people"][person] if isinstance(person, int) else person
    answer = tap(setup, who, status, session=setup[session], lang=lang)
    assert answer["outcome"] == "rejected" and answer["code"] == code
    english = {"unknown_status": "Choose present", "not_on_roster": "not on the course",
               "session_cancelled": "was cancelled"}[code]
    assert (english in answer["message"]) is (lang == "en")
    assert marks(db, setup["session"]) == {} and marks(db, setup["cancelled"]) == {}


def test_a_malformed_mark_value_is_refused(db, setup):
    response = post_tap(setup, "nonsense")
    assert response.status_code == 302
    assert "Choose present" in setup["officer"].get(response.location).text
    assert marks(db, setup["session"]) == {}


def test_taps_work_without_javascript(db, setup):
    ana = setup["people"][0]
    response = post_tap(setup, f"{ana}:0:excused")
    assert response.status_code == 302 and response.location.endswith(f"#p-{ana}")
    assert marks(db, setup["session"]) == {ana: ("excused", 1)}


def test_mark_everyone_present_in_one_action(db, setup):
    ana, beto = setup["people"]
    tap(setup, ana, "absent")
    response = setup["officer"].http.post(
        f"/en/sessions/{setup['session']}/marks/all-present",
        data={"csrf_token": setup["token"]})
    assert response.status_code == 302
    assert marks(db, setup["session"]) == {ana: ("absent", 1), beto: ("present", 1)}


def test_a_walk_in_is_registered_enrolled_and_marked_present(db, setup):
    officer, course, session = setup["officer"], setup["course"], setup["session"]
    walk_in = valid_participant(given_names="Carla")
    response = officer.post_form(
        f"/en/courses/{course}/participants/new?session={session}", walk_in)
    assert response.location == f"/en/sessions/{session}/checkin"
    assert marks(db, session)[walk_in["uuid"]] == ("present", 1)
    assert walk_in["uuid"] in [e["person"] for e in records.children(db, course, "enrolment")]


def test_a_tap_needs_the_csrf_token(db, setup):
    ana = setup["people"][0]
    plain = setup["officer"].http.post(f"/en/sessions/{setup['session']}/marks",
                                       data={"mark": f"{ana}:0:present"})
    scripted = setup["officer"].http.post("/en/api/outbox", json={"records": [{
        "uuid": persons.mark_uuid(setup["session"], ana), "kind": "mark",
        "session": setup["session"], "fields": {"mark": f"{ana}:0:present"}}]})
    assert plain.status_code == scripted.status_code == 400
    assert scripted.json["error"]["code"] == "csrf"
    assert marks(db, setup["session"]) == {}


def test_the_classic_form_writes_the_same_mark(db, setup):
    officer, session, ana = setup["officer"], setup["session"], setup["people"][0]
    url = f"/en/sessions/{session}/attendance/{ana}"
    page = officer.get(url).text
    uuid = persons.mark_uuid(session, ana)
    assert f'value="{uuid}"' in page
    response = officer.post_form(url, {"uuid": uuid, "base_revision": "0", "form_version": "1",
                                       "status": "late", "note": "Llegó 9:20"})
    assert response.status_code == 302
    assert marks(db, session) == {ana: ("late", 1)}
    assert tap(setup, ana, "present", base=1)["revision"] == 2  # the check-in sees it


@pytest.mark.parametrize(("data", "field"), [
    ({"status": "asleep"}, "status"), ({"status": ""}, "status"), ({"note": "x" * 201}, "note"),
])
def test_the_classic_form_refuses_bad_input(db, setup, data, field):
    officer, session, ana = setup["officer"], setup["session"], setup["people"][0]
    url = f"/es/sessions/{session}/attendance/{ana}"
    response = officer.post_form(url, {"uuid": persons.mark_uuid(session, ana),
                                       "base_revision": "0", "form_version": "1",
                                       "status": "present", **data})
    assert response.status_code == 422 and f'id="e-{field}"' in response.text
    assert marks(db, session) == {}


def test_the_classic_form_is_only_for_people_on_the_roster(setup):
    url = f"/en/sessions/{setup['session']}/attendance/00000000-0000-4000-8000-000000000000"
    assert setup["officer"].get(url).status_code == 404


def test_the_classic_form_cannot_write_another_mark(db, setup):
    officer, session = setup["officer"], setup["session"]
    ana, beto = setup["people"]
    response = officer.post_form(f"/en/sessions/{session}/attendance/{ana}", {
        "uuid": persons.mark_uuid(session, beto), "base_revision": "0", "form_version": "1",
        "status": "present"})
    assert response.status_code == 422
    assert marks(db, session) == {}
