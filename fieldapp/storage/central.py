"""Central: the merged records of every post, filtered, paged for reading and streamed for export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

from sqlite_utils import Database

from fieldapp.domain.filters import PERSON_FORMS, Filter
from fieldapp.domain.text import doc_key
from fieldapp.storage import records
from fieldapp.storage.db import snapshot
from fieldapp.storage.records import _COLUMNS, _fts_query

# When the record's first revision reached central (its own records: when it was made there).
_RECEIVED = ("(SELECT coalesce(nullif(v.received_at, ''), v.created_at) FROM revisions v"
             " WHERE v.uuid = r.uuid AND v.revision = 1) AS received_at")
_SELECT = f"SELECT {', '.join('r.' + c for c in _COLUMNS)}, {_RECEIVED} FROM records r"


def _where(flt: Filter, since_seq: int | None) -> tuple[str, list]:
    where, params = ["r.form = ?", "r.deleted = 0"], [flt.form]
    if flt.post:
        where.append("r.post = ?")
        params.append(flt.post)
    if flt.start:
        where.append("substr(r.created_at, 1, 10) >= ?")
        params.append(flt.start)
    if flt.end:
        where.append("substr(r.created_at, 1, 10) <= ?")
        params.append(flt.end)
    if answers := flt.person_answers:
        # A record about a person is filtered on its own answers; one that points at a person, on
        # the answers of that person's registration or intake.
        about = "r" if flt.form in PERSON_FORMS else "p"
        checks = " AND ".join(f"json_extract({about}.data, '$.{name}') = ?" for name in answers)
        if about == "r":
            where.append(checks)
        else:
            where.append(f"EXISTS (SELECT 1 FROM records p WHERE p.uuid = r.person AND {checks})")
        params += answers.values()
    if flt.course:
        where.append(_COURSE[flt.form])
        params += [flt.course] * _COURSE[flt.form].count("?")
    if flt.q.strip():
        found = []
        if words := _fts_query(flt.q):
            found.append("r.id IN (SELECT rowid FROM records_search WHERE records_search MATCH ?)")
            params.append(words)
        if key := doc_key(flt.q):
            found.append("(r.doc_key != '' AND r.doc_key >= ? AND r.doc_key < ?)")
            params += [key, key + "\uffff"]
        where.append(f"({' OR '.join(found)})" if found else "0")
    if since_seq is not None:
        where.append("r.uuid IN (SELECT uuid FROM changes WHERE seq > ? AND kind = 'record')")
        params.append(since_seq)
    return " AND ".join(where), params


_ENROLLED = ("EXISTS (SELECT 1 FROM records e WHERE e.form = 'enrolment' AND e.parent = ?"
             " AND e.deleted = 0 AND e.person != '' AND e.person = {person})")
# How each form's records belong to a course.
_COURSE = {
    "course": "r.uuid = ?",
    "session": "r.parent = ?",
    "enrolment": "r.parent = ?",
    "certificate": "r.parent = ?",
    "attendance": "r.parent IN (SELECT s.uuid FROM records s WHERE s.parent = ? AND s.form = 'session')",
    "intake": _ENROLLED.format(person="coalesce(nullif(r.person, ''), r.uuid)"),
    "participant": _ENROLLED.format(person="r.uuid"),
}


def _record(row: tuple) -> dict:
    record = dict(zip((*_COLUMNS, "received_at"), row, strict=True))
    record["answers"] = json.loads(record.pop("data"))
    return record


def page(db: Database, flt: Filter, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """Newest records first that match the filter; the next page starts before the last id."""
    where, params = _where(flt, None)
    if before is not None:
        where += " AND r.id < ?"
        params.append(before)
    sql = f"{_SELECT} WHERE {where} ORDER BY r.id DESC LIMIT ?"
    return [_record(row) for row in db.execute(sql, [*params, limit])]


def count(db: Database, flt: Filter, *, since_seq: int | None = None) -> int:
    where, params = _where(flt, since_seq)
    return db.execute(f"SELECT count(*) FROM records r WHERE {where}", params).fetchone()[0]


def stream(db: Database, flt: Filter, *, since_seq: int | None = None) -> Iterator[dict]:
    """Every matching record, oldest first, read in one transaction: a consistent snapshot that
    posts' syncs do not block. Memory stays flat whatever the number of rows."""
    where, params = _where(flt, since_seq)
    yield from map(_record, _rows(db, f"{_SELECT} WHERE {where} ORDER BY r.id", params))


def _rows(db: Database, sql: str, params: list) -> Iterator[tuple]:
    """The rows of a query, read from one snapshot a few hundred at a time."""
    with snapshot(db):
        cursor = db.conn.execute(sql, params)
        while rows := cursor.fetchmany(500):
            yield from rows


def last_seq(db: Database) -> int:
    """The change feed's latest sequence: an incremental export starts after it."""
    return db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


def posts(db: Database) -> list[str]:
    """Every post that has records here."""
    return [r[0] for r in db.execute("SELECT DISTINCT post FROM records ORDER BY post")]


def courses(db: Database) -> list[dict]:
    """Every live course, for the course filter: uuid, post and name."""
    rows = db.execute(
        "SELECT uuid, post, json_extract(data, '$.title') FROM records WHERE form = 'course' AND deleted = 0"
        " ORDER BY post, 3")
    return [{"uuid": u, "post": p, "name": n or ""} for u, p, n in rows]


def stream_attendance(db: Database, flt: Filter, *, since_seq: int | None = None) -> Iterator[dict]:
    """Attendance as a long table: one mark (person × session) with its session and course."""
    where, params = _where(replace(flt, form="attendance"), since_seq)
    sql = (
        "SELECT r.uuid, r.person, r.post, r.device, r.created_by, r.created_at, r.revision,"
        " json_extract(r.data, '$.status'), json_extract(r.data, '$.note'),"
        " s.uuid, json_extract(s.data, '$.date'), json_extract(s.data, '$.start_time'),"
        " json_extract(s.data, '$.end_time'), json_extract(s.data, '$.status'),"
        " c.uuid, json_extract(c.data, '$.title'), json_extract(c.data, '$.area')"
        " FROM records r JOIN records s ON s.uuid = r.parent JOIN records c ON c.uuid = s.parent"
        f" WHERE {where} ORDER BY r.id"
    )
    names = ("uuid", "person", "post", "device", "created_by", "created_at", "revision", "status", "note",
             "session", "session_date", "start_time", "end_time", "session_status", "course",
             "course_title", "course_area")
    yield from (dict(zip(names, row, strict=True)) for row in _rows(db, sql, params))


def stream_courses(db: Database, flt: Filter) -> Iterator[tuple[dict, list[dict], list[dict], list[dict],
                                                                  list[dict]]]:
    """Course by course (filtered as courses are): the course, its sessions, its live enrolments
    (filtered as enrolments are), its attendance marks and certificates. One course in memory at a
    time."""
    where, params = _where(replace(flt, form="course", nationality="", sex="", age_group="",
                                   migratory_status="", q=""), None)
    enrolled_where, enrolled_params = _where(replace(flt, form="enrolment", start="", end="", q=""), None)
    with snapshot(db):
        for row in db.conn.execute(f"{_SELECT} WHERE {where} ORDER BY r.id", params).fetchall():
            course = _record(row)
            sessions = records.children(db, course["uuid"], "session")
            enrolments = [_record(r) for r in db.execute(
                f"{_SELECT} WHERE {enrolled_where} AND r.parent = ? ORDER BY r.id",
                [*enrolled_params, course["uuid"]])]
            marks = records.children(db, [s["uuid"] for s in sessions], "attendance")
            certificates = records.children(db, course["uuid"], "certificate")
            yield course, sessions, enrolments, marks, certificates


def person_answers(db: Database, ids: list[str]) -> dict[str, dict]:
    """The answers that describe each person (latest intake, else registration), by person id."""
    return {pid: {**record["answers"], "_post": record["post"]}
            for pid, record in records.persons(db, ids).items()}
