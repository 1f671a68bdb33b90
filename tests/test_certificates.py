"""Course summaries and certificates of participation, through the web."""

from __future__ import annotations

import re

import pytest

from fieldapp.storage import records
from tests.conftest import csrf_token, make_course, make_session
from tests.test_checkin import tap
from tests.test_enrolment import valid_participant

DAYS = ["2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-09", "2026-11-10"]


@pytest.fixture
def course(client_as):
    """Five held sessions of 3 h (and one cancelled); Ana 4/5 (exactly 80%), Beto 3/5, Carla 5/5."""
    supervisor, officer = client_as("supervisor"), client_as("officer")
    course = make_course(supervisor.http, min_attendance="80")
    sessions = [make_session(supervisor.http, course, date=day) for day in DAYS[:5]]
    make_session(supervisor.http, course, date=DAYS[5], status="cancelled")
    people = {}
    for name, sex, population in (("Ana", "female", "migrant"), ("Beto", "male", "host"),
                                  ("Carla", "female", "migrant")):
        data = valid_participant(given_names=name, sex=sex, population=population)
        officer.post_form(f"/en/courses/{course}/participants/new", data)
        people[name] = data["uuid"]
    setup = {"officer": officer,
             "token": csrf_token(officer.get(f"/en/sessions/{sessions[0]}/checkin").text)}
    plan = {"Ana": "PPPLA", "Beto": "PPAEA", "Carla": "PPPPP"}
    codes = {"P": "present", "A": "absent", "L": "late", "E": "excused"}
    for name, row in plan.items():
        for session, code in zip(sessions, row, strict=True):
            assert tap(setup, people[name], codes[code], session=session)["outcome"] == "stored"
    return {"uuid": course, "people": people, "supervisor": supervisor, "officer": officer}


def _issue(course, lang="en", paper="a4"):
    supervisor = course["supervisor"]
    page = supervisor.get(f"/{lang}/courses/{course['uuid']}/summary")
    return supervisor.http.post(f"/{lang}/courses/{course['uuid']}/certificates",
                                data={"csrf_token": csrf_token(page.text), "paper": paper})


def test_summary_shows_rates_and_who_qualifies(course):
    page = course["officer"].get(f"/en/courses/{course['uuid']}/summary").text
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td>\s*<td>(\d+) / (\d+)</td>\s*<td>([^<]+)</td>"
                      r"\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", page)
    assert [(n.strip(), a, h, r, hours, q) for n, a, h, r, hours, q in rows] == [
        ("Ana Rojas", "4", "5", "80%", "12", "qualifies"),
        ("Beto Rojas", "2", "5", "40%", "6", "does not qualify"),
        ("Carla Rojas", "5", "5", "100%", "15", "qualifies"),
    ]
    assert "cancelled" in page
    assert "<td>Female</td><td>2</td><td>2</td>" in page
    assert "<td>Host-community member</td><td>1</td><td>0</td>" in page


def test_summary_in_spanish(course):
    page = course["officer"].get(f"/es/courses/{course['uuid']}/summary").text
    assert "<td>no cumple el requisito</td>" in page
    assert "Asistencia mínima para el certificado: 80\xa0%" in page


def test_issuing_certificates_is_one_action_and_idempotent(db, course):
    response = _issue(course, paper="letter")
    assert response.status_code == 302 and response.location.endswith("paper=letter")
    certificates = records.children(db, course["uuid"], "certificate")
    assert sorted(c["person"] for c in certificates) == sorted(
        [course["people"]["Ana"], course["people"]["Carla"]])
    assert {c["answers"]["minutes"] for c in certificates} == {720, 900}
    _issue(course)
    assert len(records.children(db, course["uuid"], "certificate")) == 2
    page = course["officer"].get(response.location).text
    assert page.count('class="certificate paper-letter"') == 2
    assert "Ana Rojas" in page and "Carla Rojas" in page and "Beto Rojas" not in page
    assert "12 hours attended" in page


def test_certificates_print_in_spanish(course):
    _issue(course, lang="es")
    page = course["officer"].get(f"/es/courses/{course['uuid']}/certificates").text
    assert "Certificado de participación" in page and "12 horas de asistencia" in page


def test_a_certificate_number_verifies(db, course, client_as):
    _issue(course)
    [number] = [c["answers"]["number"] for c in records.children(db, course["uuid"], "certificate")
                if c["person"] == course["people"]["Ana"]]
    page = course["officer"].get("/en/certificates/verify", query_string={"number": number}).text
    assert "Valid certificate." in page and "Ana Rojas" in page
    lower = course["officer"].get("/en/certificates/verify",
                                  query_string={"number": number.lower()}).text
    assert "Valid certificate." in lower
    typo = number[:-3] + ("0" if number[-3] != "0" else "1") + number[-2:]
    page = course["officer"].get("/en/certificates/verify", query_string={"number": typo}).text
    assert "not a valid certificate number" in page
    other_post = client_as("officer_b").get("/en/certificates/verify",
                                            query_string={"number": number}).text
    assert "Ana Rojas" not in other_post and "No certificate with this number" in other_post


@pytest.mark.parametrize("number", ["", "x" * 500, "FA-0000-0000-0000-0", "<script>"])
def test_odd_numbers_are_answered_calmly(course, number):
    response = course["officer"].get("/en/certificates/verify", query_string={"number": number})
    assert response.status_code == 200
    assert "<script>" not in response.text.split("<main")[1]


def test_no_certificates_before_the_last_session(db, client_as):
    from datetime import date, timedelta

    supervisor = client_as("supervisor")
    soon = (date.today() + timedelta(days=3)).isoformat()
    course = make_course(supervisor.http, start_date=date.today().isoformat(), end_date=soon)
    make_session(supervisor.http, course, date=soon)
    page = supervisor.get(f"/en/courses/{course}/summary")
    assert "not held yet" in page.text
    response = supervisor.http.post(f"/en/courses/{course}/certificates",
                                    data={"csrf_token": csrf_token(page.text)})
    assert "once the last session has taken place" in supervisor.get(response.location).text
    assert records.children(db, course, "certificate") == []


def test_reissuing_brings_corrected_hours_up_to_date(db, course):
    _issue(course)
    ana = course["people"]["Ana"]
    [session] = [s["uuid"] for s in records.children(db, course["uuid"], "session")
                 if s["answers"]["date"] == DAYS[4]]
    officer = course["officer"]
    setup = {"officer": officer,
             "token": csrf_token(officer.get(f"/en/sessions/{session}/checkin").text)}
    assert tap(setup, ana, "present", base=1, session=session)["revision"] == 2
    _issue(course)
    [certificate] = [c for c in records.children(db, course["uuid"], "certificate")
                     if c["person"] == ana]
    assert (certificate["answers"]["minutes"], certificate["revision"]) == (900, 2)
