"""Central's summary: what the live records of every post add up to. All its SQL is here.

Intakes are counted by post, month, nationality, sex, age group and migratory status from the
table of those facts (one row per live intake, migration 0014) and its three indexes, not from
the records' JSON: that is what keeps the page fast at 100,000 intakes. Training figures follow the rules of
domain/trainings.py, the same as each course's own summary page.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, time
from fractions import Fraction

from sqlite_utils import Database

from fieldapp.domain import trainings
from fieldapp.domain.summary import Facts
from fieldapp.storage.db import snapshot

# Pairs of dimensions counted together, each from its index of intake_facts (migration 0014),
# which leads with them.
PAIRS = {
    ("month", "post"): "intake_facts_month",
    ("nationality", "migratory_status"): "intake_facts_origin",
    ("age_group", "sex"): "intake_facts_sex_age",
}
_FACTS = "record, post, month, nationality, migratory_status, age_group, sex"
_INSERT = f"INSERT INTO intake_facts ({_FACTS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
# An edit that changes none of the facts leaves the row, and its three index entries, alone.
_UPSERT = _INSERT + (
    " ON CONFLICT (record) DO UPDATE SET post = excluded.post, month = excluded.month,"
    " nationality = excluded.nationality, migratory_status = excluded.migratory_status,"
    " age_group = excluded.age_group, sex = excluded.sex"
    " WHERE (post, month, nationality, migratory_status, age_group, sex) IS NOT (excluded.post,"
    " excluded.month, excluded.nationality, excluded.migratory_status, excluded.age_group, excluded.sex)"
)


def keep_intake(db: Database, record_id: int, post: str, facts: Facts | None, *, new: bool) -> None:
    """Keep an intake's row of facts, inside the write of its revision: `facts` None for a
    deleted intake (not counted). `new`: the record's first revision (no row yet)."""
    if facts is None:
        if not new:
            db.execute("DELETE FROM intake_facts WHERE record = ?", [record_id])
    else:
        db.execute(_INSERT if new else _UPSERT, [record_id, post, *facts])


def forget_intakes(db: Database, uuids: list[str]) -> None:
    """No facts any more for these records (erased: each is a tombstone now)."""
    marks = ", ".join("?" * len(uuids))
    db.execute(f"DELETE FROM intake_facts WHERE record IN (SELECT id FROM records WHERE uuid IN ({marks}))",
               uuids)


@dataclass(frozen=True)
class Filters:
    """Which records count: one post or all, and a span of months (`"2025-01"`, both included).

    Intakes count by their interview month, participant registrations by the month they were
    captured, courses by the month of their first day."""

    post: str | None = None
    first_month: str | None = None
    last_month: str | None = None

    def conditions(self, month: str) -> tuple[str, list[str]]:
        """`" AND …"` SQL conditions, given the expression of a record's month, and parameters."""
        where, params = [], []
        if self.first_month:
            where.append(f"{month} >= ?")
            params.append(self.first_month)
        if self.last_month:
            where.append(f"{month} <= ?")
            params.append(self.last_month)
        if self.post is not None:
            where.append("post = ?")
            params.append(self.post)
        return "".join(f" AND {w}" for w in where), params


@dataclass(frozen=True)
class IntakeCounts:
    """Live intakes counted by pairs of dimensions (see PAIRS); '' stands for "not recorded"."""

    pairs: dict[tuple[str, str], Counter]

    @property
    def total(self) -> int:
        return sum(self.pairs["month", "post"].values())

    def pair(self, first: str, second: str) -> Counter:
        """`pair("age_group", "sex")[("18_24", "female")]`."""
        return self.pairs[first, second]

    def by(self, dimension: str) -> Counter:
        """One dimension alone: `by("sex")["female"]`."""
        for names, counts in self.pairs.items():
            if dimension in names:
                i = names.index(dimension)
                alone: Counter = Counter()
                for key, n in counts.items():
                    alone[key[i]] += n
                return alone
        raise KeyError(dimension)


@dataclass(frozen=True)
class CourseFigures:
    """One course: its roster and how it went, by the rules of domain/trainings.py."""

    uuid: str
    post: str
    title: str
    start_date: str
    min_attendance: int
    over: bool  # every session not cancelled has taken place (trainings.course_over)
    sessions_held: int
    enrolled: int
    qualifying: int  # attended at least min_attendance % of the sessions held so far
    certified: int  # live certificates of participation
    attended: int  # attended marks of the enrolled at the sessions held

    @property
    def completed(self) -> int | None:
        """Those who qualify once the course is over; None while it runs."""
        return self.qualifying if self.over else None

    @property
    def possible(self) -> int:
        return self.enrolled * self.sessions_held

    @property
    def attendance_rate(self) -> Fraction | None:
        """Attended marks over the marks possible (enrolled x held); None before any session."""
        return Fraction(self.attended, self.possible) if self.possible else None


@dataclass(frozen=True)
class PostTraining:
    """A post's courses added up. Completion counts the courses that are over."""

    courses: int = 0
    enrolled: int = 0
    completed: int = 0
    certified: int = 0
    attended: int = 0
    possible: int = 0

    @property
    def attendance_rate(self) -> Fraction | None:
        return Fraction(self.attended, self.possible) if self.possible else None


def intakes(db: Database, filters: Filters = Filters()) -> IntakeCounts:
    """Live intakes counted by each pair of PAIRS.

    Each count reads its index alone, in the index's order, grouping by its first two columns:
    no sorting, and no row of the table read.
    """
    extra, params = filters.conditions("month")
    pairs = {}
    for names, index in PAIRS.items():
        columns = ", ".join(names)
        sql = (f"SELECT {columns}, count(*) FROM intake_facts INDEXED BY {index}"
               f" WHERE 1 = 1{extra} GROUP BY {columns}")
        pairs[names] = Counter({(a, b): n for a, b, n in db.execute(sql, params)})
    return IntakeCounts(pairs)


def participants_by_post(db: Database, filters: Filters = Filters()) -> Counter:
    """Live participant registrations (people registered for training without an intake) by post."""
    extra, params = filters.conditions("substr(created_at, 1, 7)")
    sql = ("SELECT post, count(*) FROM records WHERE form = 'participant' AND deleted = 0"
           f"{extra} GROUP BY post")
    return Counter(dict(db.execute(sql, params).fetchall()))


def posts(db: Database) -> list[str]:
    """Every post that has records, in order: one index probe per post, however many records."""
    sql = (
        "WITH RECURSIVE p (post) AS (SELECT min(post) FROM records"
        " UNION ALL SELECT (SELECT min(post) FROM records WHERE post > p.post) FROM p"
        " WHERE p.post IS NOT NULL) SELECT post FROM p WHERE post IS NOT NULL"
    )
    return [r[0] for r in db.execute(sql)]


def _courses(db: Database, filters: Filters) -> list[dict]:
    extra, params = filters.conditions("substr(json_extract(data, '$.start_date'), 1, 7)")
    sql = (
        "SELECT uuid, post, title, json_extract(data, '$.start_date'),"
        " json_extract(data, '$.min_attendance') FROM records"
        f" WHERE form = 'course' AND deleted = 0{extra}"
    )
    keys = ("uuid", "post", "title", "start_date", "min_attendance")
    return [dict(zip(keys, row, strict=True)) for row in db.execute(sql, params)]


def _sessions(db: Database, courses: list[str]) -> list[tuple[str, trainings.Session]]:
    """(course, session) of every live session of the courses."""
    sql = (
        "SELECT s.parent, s.uuid, json_extract(s.data, '$.date'),"
        " json_extract(s.data, '$.start_time'), json_extract(s.data, '$.end_time'),"
        " json_extract(s.data, '$.status')"
        " FROM json_each(?) c JOIN records s INDEXED BY records_parent"
        " ON s.parent != '' AND s.parent = c.value AND s.form = 'session' AND s.deleted = 0"
    )
    return [
        (course, trainings.Session(uuid, date.fromisoformat(day), time.fromisoformat(start),
                                   time.fromisoformat(end), cancelled=status == "cancelled"))
        for course, uuid, day, start, end, status in db.execute(sql, [json.dumps(courses)])
    ]


def _rosters(db: Database, courses: list[str]) -> list[tuple[str, str]]:
    """(course, person) of everyone enrolled whose person record is live: the course's roster."""
    sql = (
        "SELECT e.parent, e.person FROM json_each(?) c JOIN records e INDEXED BY records_parent"
        " ON e.parent != '' AND e.parent = c.value AND e.form = 'enrolment' AND e.deleted = 0"
        " WHERE json_extract(e.data, '$.status') = 'enrolled' AND ("
        "  EXISTS (SELECT 1 FROM records p WHERE p.uuid = e.person AND p.deleted = 0"
        "          AND p.form IN ('participant', 'intake'))"
        "  OR EXISTS (SELECT 1 FROM records p INDEXED BY records_person WHERE p.person != ''"
        "             AND p.person = e.person AND p.form = 'intake' AND p.deleted = 0))"
    )
    return db.execute(sql, [json.dumps(courses)]).fetchall()


def _attended(db: Database, held: dict[str, str]) -> Counter:
    """(course, person) -> attended marks at the held sessions."""
    sql = (
        "SELECT h.value, m.person, count(*) FROM json_each(?) h"
        " JOIN records m INDEXED BY records_parent ON m.parent != '' AND m.parent = h.key"
        " AND m.form = 'attendance' AND m.deleted = 0"
        " WHERE json_extract(m.data, '$.status') IN (SELECT value FROM json_each(?))"
        " GROUP BY h.value, m.person"
    )
    rows = db.execute(sql, [json.dumps(held), json.dumps(sorted(trainings.ATTENDED))])
    return Counter({(course, person): n for course, person, n in rows})


def _certified(db: Database, courses: list[str]) -> Counter:
    sql = (
        "SELECT c.value, count(*) FROM json_each(?) c JOIN records r INDEXED BY records_parent"
        " ON r.parent != '' AND r.parent = c.value AND r.form = 'certificate' AND r.deleted = 0"
        " GROUP BY c.value"
    )
    return Counter(dict(db.execute(sql, [json.dumps(courses)]).fetchall()))


def courses(db: Database, today: date, filters: Filters = Filters()) -> list[CourseFigures]:
    """Every live course's figures, oldest first: a handful of indexed queries, then one pass
    over the enrolments that applies trainings.Attendance.qualifies to each."""
    found = _courses(db, filters)
    uuids = [c["uuid"] for c in found]
    sessions: dict[str, list[trainings.Session]] = defaultdict(list)
    for course, session in _sessions(db, uuids):
        sessions[course].append(session)
    held = {s.uuid: course for course, course_sessions in sessions.items()
            for s in course_sessions if trainings.held(s, today)}
    held_per_course = Counter(held.values())
    attended = _attended(db, held)
    roster = defaultdict(list)
    for course, person in _rosters(db, uuids):
        roster[course].append(person)
    certified = _certified(db, uuids)
    verdicts: dict[tuple[int, int, int], bool] = {}  # many people share a count: decide it once

    def qualifies(attended_n: int, held_n: int, minimum: int) -> bool:
        key = (attended_n, held_n, minimum)
        if key not in verdicts:
            verdicts[key] = trainings.Attendance(attended_n, held_n, Fraction(0)).qualifies(minimum)
        return verdicts[key]

    figures = []
    for c in found:
        held_here, people = held_per_course[c["uuid"]], roster[c["uuid"]]
        marks = [attended[c["uuid"], p] for p in people]
        minimum = int(c["min_attendance"] or 0)
        figures.append(CourseFigures(
            uuid=c["uuid"], post=c["post"], title=c["title"], start_date=c["start_date"] or "",
            min_attendance=minimum, over=trainings.course_over(sessions[c["uuid"]], today),
            sessions_held=held_here, enrolled=len(people),
            qualifying=sum(qualifies(n, held_here, minimum) for n in marks),
            certified=certified[c["uuid"]], attended=sum(marks),
        ))
    return sorted(figures, key=lambda f: (f.start_date, f.title, f.uuid))


def training_by_post(figures: list[CourseFigures]) -> dict[str, PostTraining]:
    """The courses' figures added up per post."""
    totals: dict[str, PostTraining] = defaultdict(PostTraining)
    for f in figures:
        t = totals[f.post]
        totals[f.post] = PostTraining(
            t.courses + 1, t.enrolled + f.enrolled, t.completed + (f.completed or 0),
            t.certified + f.certified, t.attended + f.attended, t.possible + f.possible)
    return dict(sorted(totals.items()))


@dataclass(frozen=True)
class Summary:
    intakes: IntakeCounts
    participants: Counter  # post -> participant registrations
    courses: list[CourseFigures]
    training: dict[str, PostTraining]  # post -> the courses' figures added up
    posts: list[str]  # every post with records, for choosing one


def collect(db: Database, today: date, filters: Filters = Filters()) -> Summary:
    """Everything the summary page shows, read in one transaction so that the figures agree."""
    with snapshot(db):
        figures = courses(db, today, filters)
        return Summary(intakes(db, filters), participants_by_post(db, filters), figures,
                       training_by_post(figures), posts(db))
