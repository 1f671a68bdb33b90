"""Training rules: attendance rates, eligibility at the threshold, hours, sessions, certificates."""

from __future__ import annotations

from datetime import date, time
from fractions import Fraction

import pytest

from fieldapp.domain import trainings as t

DAY = date(2026, 11, 2)


def _sessions(n, cancelled=()):
    return [t.Session(f"s{i}", DAY, time(9), time(12), cancelled=i in cancelled) for i in range(n)]


# (case, number of sessions, cancelled, marks by index, minimum %, qualifies, attended, held)
ELIGIBILITY = [
    ("exactly at 80%", 5, (), "PPPPA", 80, True, 4, 5),
    ("just under 80%", 5, (), "PPPAA", 80, False, 3, 5),
    ("late counts as attended", 5, (), "PLLLA", 80, True, 4, 5),
    ("excused is not attended", 5, (), "PPPEA", 80, False, 3, 5),
    ("unmarked is absent", 5, (), "PPPP", 80, True, 4, 5),
    ("cancelled sessions are not held", 5, (4,), "PPPA", 75, True, 3, 4),
    ("two thirds at 67% fails", 3, (), "PPA", 67, False, 2, 3),
    ("two thirds at 66% passes", 3, (), "PPA", 66, True, 2, 3),
    ("100% needs every session", 20, (), "P" * 19 + "A", 100, False, 19, 20),
    ("0% minimum still needs a session held", 2, (0, 1), "", 0, False, 0, 0),
    ("0% minimum with sessions held", 2, (), "AA", 0, True, 0, 2),
]


@pytest.mark.parametrize(
    ("case", "n", "cancelled", "marks", "minimum", "qualifies", "attended", "held"),
    ELIGIBILITY, ids=[c[0] for c in ELIGIBILITY],
)
def test_certificate_eligibility(case, n, cancelled, marks, minimum, qualifies, attended, held):
    codes = {"P": "present", "A": "absent", "L": "late", "E": "excused"}
    statuses = {f"s{i}": codes[c] for i, c in enumerate(marks)}
    result = t.attendance(_sessions(n, cancelled), statuses)
    assert (result.attended, result.held) == (attended, held)
    assert result.qualifies(minimum) is qualifies


def test_rate_is_exact():
    result = t.attendance(_sessions(5), {f"s{i}": "present" for i in range(4)})
    assert result.rate == Fraction(4, 5)


def test_hours_attended_add_up_session_lengths():
    sessions = [t.Session("a", DAY, time(9), time(12, 30)), t.Session("b", DAY, time(14), time(15))]
    assert t.attendance(sessions, {"a": "present", "b": "late"}).hours == Fraction(9, 2)
    assert t.attendance(sessions, {"a": "present", "b": "excused"}).hours == Fraction(7, 2)


@pytest.mark.parametrize(("day", "start", "end", "problems"), [
    (DAY, time(9), time(12), []),
    (DAY, time(12), time(9), ["session_ends_before_start"]),
    (DAY, time(9), time(9), ["session_ends_before_start"]),
    (date(2026, 10, 31), time(9), time(12), ["session_outside_course"]),
    (date(2026, 12, 1), time(12), time(9), ["session_ends_before_start", "session_outside_course"]),
    (date(2026, 11, 30), time(9), time(12), []),
])
def test_session_rules(day, start, end, problems):
    assert t.session_problems(day, start, end, date(2026, 11, 1), date(2026, 11, 30)) == problems


@pytest.mark.parametrize(("status", "on_roster", "cancelled", "problems"), [
    ("present", True, False, []),
    ("sleeping", True, False, ["unknown_status"]),
    ("present", False, False, ["not_on_roster"]),
    ("late", True, True, ["session_cancelled"]),
])
def test_mark_rules(status, on_roster, cancelled, problems):
    assert t.mark_problems(status=status, on_roster=on_roster, cancelled=cancelled) == problems


@pytest.mark.parametrize(("already", "enrolled", "capacity", "problems"), [
    (False, 0, None, []), (False, 19, 20, []), (False, 20, 20, ["course_full"]),
    (True, 3, 20, ["already_enrolled"]),
])
def test_enrolment_rules(already, enrolled, capacity, problems):
    assert t.enrolment_problems(already_enrolled=already, enrolled=enrolled,
                                capacity=capacity) == problems


def test_certificate_numbers_are_stable_unique_and_verifiable():
    key = b"k" * 32
    number = t.certificate_number(key, "course-1", "person-1")
    assert number == t.certificate_number(key, "course-1", "person-1")
    assert number != t.certificate_number(key, "course-1", "person-2")
    assert number != t.certificate_number(b"other", "course-1", "person-1")
    assert t.checksum_ok(number) and t.checksum_ok(number.lower())
    assert t.certificate_is_valid(key, number, "course-1", "person-1")
    assert not t.certificate_is_valid(key, number, "course-2", "person-1")


@pytest.mark.parametrize("person", [f"person-{i}" for i in range(40)])
def test_every_single_mistyped_character_is_caught(person):
    number = t.certificate_number(b"k" * 32, "course", person)
    symbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # what a person might type, Z included
    positions = [i for i, c in enumerate(number) if i >= 3 and c != "-"]
    typos = [number[:i] + r + number[i + 1:] for i in positions for r in symbols if r != number[i]]
    assert len(typos) == 13 * 31
    assert [typo for typo in typos if t.checksum_ok(typo)] == []


def test_course_figures_per_participant_session_and_group():
    sessions = _sessions(4, cancelled=(3,))
    people = {"ana": {"sex": "female", "nationality": "VE", "population": "migrant"},
              "beto": {"sex": "male", "nationality": "CO", "population": "host"},
              "carla": {"sex": "female", "nationality": "VE", "population": "migrant"}}
    marks = {"s0": {"ana": "present", "beto": "present", "carla": "absent"},
             "s1": {"ana": "late", "beto": "excused"},
             "s2": {"ana": "present", "beto": "present", "carla": "present"},
             "s3": {"ana": "present"}}  # cancelled: not counted
    figures = t.course_figures(sessions, people, marks, minimum_percent=66)
    by_person = {p.person: (p.attendance.attended, p.attendance.held, p.qualifies)
                 for p in figures.participants}
    assert by_person == {"ana": (3, 3, True), "beto": (2, 3, True), "carla": (1, 3, False)}
    assert [(s.attended, s.enrolled) for s in figures.sessions] == [(2, 3), (1, 3), (3, 3), (1, 3)]
    assert figures.totals["sex"] == {"female": (2, 1), "male": (1, 1)}
    assert figures.totals["nationality"] == {"VE": (2, 1), "CO": (1, 1)}
    assert figures.totals["population"] == {"migrant": (2, 1), "host": (1, 1)}


def test_sessions_still_to_come_are_not_held():
    sessions = [t.Session("past", date(2026, 11, 2), time(9), time(12)),
                t.Session("today", date(2026, 11, 3), time(9), time(12)),
                t.Session("later", date(2026, 11, 4), time(9), time(12))]
    result = t.attendance(sessions, {"past": "present"}, today=date(2026, 11, 3))
    assert (result.attended, result.held) == (1, 2)
    assert not t.course_over(sessions, date(2026, 11, 3))
    assert t.course_over(sessions, date(2026, 11, 4))
    cancelled_later = sessions[:2] + [t.Session("x", date(2026, 12, 1), time(9), time(12), True)]
    assert t.course_over(cancelled_later, date(2026, 11, 3))
