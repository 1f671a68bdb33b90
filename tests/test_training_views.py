"""Courses and sessions on the web: who may create them, and bad input refused in both languages."""

from __future__ import annotations

import pytest

from fieldapp.storage import records
from tests.conftest import POST_A, POST_B, make_course, make_session, valid_course, valid_session


def test_a_supervisor_creates_a_course_with_sessions(db, client_as):
    supervisor = client_as("supervisor")
    course = make_course(supervisor.http)
    first = make_session(supervisor.http, course, date="2026-11-03")
    second = make_session(supervisor.http, course, date="2026-11-04", start_time="14:00",
                          end_time="17:30")
    stored = records.get(db, course)
    assert stored["form"] == "course" and stored["post"] == POST_A
    assert stored["answers"]["min_attendance"] == 80
    assert [s["uuid"] for s in records.children(db, course, "session")] == [first, second]
    page = client_as("officer").get(f"/en/courses/{course}").text
    assert "Soldadura básica" in page and "14:00–17:30" in page
    assert "New session" not in page  # officers take attendance; they do not plan sessions
    assert "Soldadura básica" in client_as("officer").get("/en/courses").text


def test_the_new_course_form_proposes_80_percent(client_as):
    page = client_as("supervisor").get("/en/courses/new").text
    assert 'id="f-min_attendance" name="min_attendance"' in page and 'value="80"' in page


def test_central_creates_a_course_for_a_chosen_post(db, client_as):
    central = client_as("central")
    page = central.get("/en/courses/new").text
    assert '<option value="POST-B"' in page
    response = central.post_form("/en/courses/new", valid_course(post=POST_B) | {"post": POST_B})
    assert response.status_code == 302
    [course] = records.search(db, "course", post=POST_B)
    assert course["post"] == POST_B
    assert "Soldadura" in client_as("officer_b").get(f"/en/courses/{course['uuid']}").text


def test_central_must_choose_a_known_post(db, client_as):
    response = client_as("central").post_form("/en/courses/new", {**valid_course(), "post": "NOPE"})
    assert response.status_code == 422
    assert records.count(db, "course", None) == 0


SESSION_ERRORS = [
    ("ends before it starts", {"start_time": "12:00", "end_time": "09:00"}, "end_time",
     {"en": "must end after it starts", "es": "debe terminar después"}),
    ("ends when it starts", {"start_time": "09:00", "end_time": "09:00"}, "end_time",
     {"en": "must end after it starts", "es": "debe terminar después"}),
    ("before the course", {"date": "2026-11-01"}, "date",
     {"en": "within the course, from November 2, 2026 to November 27, 2026",
      "es": "dentro del curso, del 2 de noviembre de 2026 al 27 de noviembre de 2026"}),
    ("after the course", {"date": "2026-12-01"}, "date",
     {"en": "within the course", "es": "dentro del curso"}),
    ("unknown status", {"status": "postponed"}, "status",
     {"en": "Choose one of the options", "es": "Elija una de las opciones"}),
    ("not a time", {"start_time": "9am"}, "start_time",
     {"en": "hours and minutes", "es": "horas y minutos"}),
]


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize(("case", "overrides", "field", "text"), SESSION_ERRORS,
                         ids=[c[0] for c in SESSION_ERRORS])
def test_bad_sessions_are_refused(db, client_as, lang, case, overrides, field, text):
    supervisor = client_as("supervisor")
    course = make_course(supervisor.http)
    url = f"/{lang}/courses/{course}/sessions/new"
    response = supervisor.post_form(url, valid_session(**overrides))
    assert response.status_code == 422
    assert f'id="e-{field}"' in response.text
    assert text[lang] in response.text
    assert records.children(db, course, "session") == []


def test_correcting_a_session_makes_a_revision(db, client_as):
    supervisor = client_as("supervisor")
    course = make_course(supervisor.http)
    session = make_session(supervisor.http, course)
    response = supervisor.post_form(f"/en/sessions/{session}/edit", valid_session(
        uuid=session, base_revision="1", status="cancelled"))
    assert response.status_code == 302
    assert records.get(db, session)["answers"]["status"] == "cancelled"
    assert "Cancelled" in client_as("officer").get(f"/en/courses/{course}").text


def test_a_session_edit_cannot_move_another_record(db, client_as):
    supervisor = client_as("supervisor")
    course = make_course(supervisor.http)
    session = make_session(supervisor.http, course)
    other = make_session(supervisor.http, course, date="2026-11-05")
    response = supervisor.post_form(f"/en/sessions/{session}/edit",
                                    valid_session(uuid=other, base_revision="1", place="X"))
    assert response.status_code == 422
    assert records.get(db, other)["revision"] == 1


def test_a_course_cannot_be_opened_as_a_session(client_as):
    supervisor = client_as("supervisor")
    course = make_course(supervisor.http)
    assert supervisor.get(f"/en/sessions/{course}/edit").status_code == 404
