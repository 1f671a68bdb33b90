"""Training rules: sessions, attendance rates, certificate eligibility and numbers. Pure functions.

Attendance counts a session as attended when the mark is `present` or `late`. `excused` and `absent`
are not attended. A session is held once its day has come, unless it was cancelled; sessions not
held count in neither the attended sessions nor the sessions held. Rates are exact fractions: 4 of
5 sessions is exactly 80%, never 79.999…%.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from fractions import Fraction

STATUSES = ("present", "absent", "late", "excused")
ATTENDED = frozenset({"present", "late"})
# 31 symbols (Crockford's base 32 without Z: no I, L, O, U to misread). 31 is prime, so a weighted
# check character modulo 31 catches every single mistyped character.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"


@dataclass(frozen=True)
class Session:
    uuid: str
    day: date
    start: time
    end: time
    cancelled: bool = False

    @property
    def hours(self) -> Fraction:
        minutes = (datetime.combine(self.day, self.end) - datetime.combine(self.day, self.start))
        return Fraction(int(minutes.total_seconds()) // 60, 60)


@dataclass(frozen=True)
class Attendance:
    """One participant's attendance over a course's held sessions."""

    attended: int
    held: int
    hours: Fraction

    @property
    def rate(self) -> Fraction:
        return Fraction(self.attended, self.held) if self.held else Fraction(0)

    def qualifies(self, minimum_percent: int) -> bool:
        """Attended at least the minimum share of held sessions (the threshold itself qualifies)."""
        return self.held > 0 and self.rate >= Fraction(minimum_percent, 100)


def held(session: Session, today: date | None) -> bool:
    """Not cancelled, and its day has come (every session counts when `today` is None)."""
    return not session.cancelled and (today is None or session.day <= today)


def attendance(sessions: Iterable[Session], marks: dict[str, str],
               today: date | None = None) -> Attendance:
    """A participant's attendance: `marks` maps session uuid to status; unmarked means absent."""
    held_sessions = [s for s in sessions if held(s, today)]
    attended = [s for s in held_sessions if marks.get(s.uuid) in ATTENDED]
    return Attendance(len(attended), len(held_sessions),
                      sum((s.hours for s in attended), Fraction(0)))


def course_over(sessions: Iterable[Session], today: date) -> bool:
    """Every session that is not cancelled has taken place (certificates can be issued)."""
    return all(s.cancelled or s.day <= today for s in sessions)


def session_problems(
    day: date, start: time, end: time, course_start: date, course_end: date
) -> list[str]:
    """Why a session cannot be saved, as error codes (empty when it can)."""
    problems = []
    if end <= start:
        problems.append("session_ends_before_start")
    if not course_start <= day <= course_end:
        problems.append("session_outside_course")
    return problems


def mark_problems(*, status: str, on_roster: bool, cancelled: bool) -> list[str]:
    """Why an attendance mark cannot be saved, as error codes (empty when it can)."""
    problems = []
    if status not in STATUSES:
        problems.append("unknown_status")
    if not on_roster:
        problems.append("not_on_roster")
    if cancelled:
        problems.append("session_cancelled")
    return problems


def enrolment_problems(*, already_enrolled: bool, enrolled: int, capacity: int | None) -> list[str]:
    """Why a person cannot be enrolled, as error codes (empty when they can)."""
    problems = []
    if already_enrolled:
        problems.append("already_enrolled")
    if capacity is not None and enrolled >= capacity:
        problems.append("course_full")
    return problems


def certificate_number(key: bytes, course_uuid: str, person_uuid: str) -> str:
    """A certificate number anyone holding `key` can check: `FA-XXXX-XXXX-XXXX-C`.

    Twelve base-32 characters of an HMAC of the course and the person, then a check character that
    catches a mistyped character when someone reads the number out.
    """
    digest = hmac.new(key, f"{course_uuid}:{person_uuid}".encode(), hashlib.sha256).digest()
    value, body = int.from_bytes(digest[:9], "big"), ""
    for _ in range(12):
        value, digit = divmod(value, 31)
        body += _ALPHABET[digit]
    return f"FA-{body[:4]}-{body[4:8]}-{body[8:]}-{_check(body)}"


def _check(body: str) -> str:
    return _ALPHABET[sum((i + 1) * _ALPHABET.index(c) for i, c in enumerate(body)) % 31]


def certificate_is_valid(key: bytes, number: str, course_uuid: str, person_uuid: str) -> bool:
    """True when `number` is the certificate of this person for this course."""
    expected = certificate_number(key, course_uuid, person_uuid)
    return hmac.compare_digest(expected, number.strip().upper())


def checksum_ok(number: str) -> bool:
    """True when a typed certificate number is well formed (before any lookup)."""
    parts = number.strip().upper().split("-")
    if len(parts) != 5 or parts[0] != "FA" or any(len(p) != 4 for p in parts[1:4]):
        return False
    body, check = "".join(parts[1:4]), parts[4]
    if any(c not in _ALPHABET for c in body) or len(check) != 1:
        return False
    return _check(body) == check


@dataclass(frozen=True)
class ParticipantFigures:
    person: str
    attendance: Attendance
    qualifies: bool


@dataclass(frozen=True)
class SessionFigures:
    session: Session
    attended: int
    enrolled: int

    @property
    def rate(self) -> Fraction:
        return Fraction(self.attended, self.enrolled) if self.enrolled else Fraction(0)


@dataclass(frozen=True)
class CourseFigures:
    participants: list[ParticipantFigures]
    sessions: list[SessionFigures]
    # {"sex": {"female": (enrolled, qualified)}, "nationality": {...}, "population": {...}}
    totals: dict[str, dict[str, tuple[int, int]]]


def course_figures(
    sessions: list[Session], people: dict[str, dict], marks: dict[str, dict[str, str]],
    minimum_percent: int, groups: tuple[str, ...] = ("sex", "nationality", "population"),
    today: date | None = None,
) -> CourseFigures:
    """A course's attendance per participant and per session, and totals by group.

    `people` maps each enrolled person to the answers that describe them; `marks` maps a session
    uuid to {person: status}.
    """
    participants = []
    for person in people:
        statuses = {s: by_person[person] for s, by_person in marks.items() if person in by_person}
        result = attendance(sessions, statuses, today)
        participants.append(ParticipantFigures(person, result, result.qualifies(minimum_percent)))
    per_session = [
        SessionFigures(s, sum(1 for p in people if marks.get(s.uuid, {}).get(p) in ATTENDED),
                       len(people))
        for s in sessions
    ]
    totals: dict[str, dict[str, tuple[int, int]]] = {g: {} for g in groups}
    for figures in participants:
        for group in groups:
            value = people[figures.person].get(group, "")
            enrolled, qualified = totals[group].get(value, (0, 0))
            totals[group][value] = (enrolled + 1, qualified + figures.qualifies)
    return CourseFigures(participants, per_session, totals)
