"""Persons across posts: every person for the duplicate finder, the finder's last run, central's
verdicts on pairs (person_merge records, which sync to the posts) and who was merged into whom."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from sqlite_utils import Database

from fieldapp.domain import dedup
from fieldapp.domain import persons as rules
from fieldapp.domain.records import Outcome, now
from fieldapp.forms import schema
from fieldapp.storage import records
from fieldapp.storage.db import write

_MERGE_ROWS = (
    "SELECT json_extract(data, '$.merged'), json_extract(data, '$.survivor') FROM records"
    " WHERE form = 'person_merge' AND deleted = 0"
)


class VerdictRefused(Exception):
    """A verdict that cannot be given now. `code`: unknown_person, same_person (one person
    already), judged (the pair's verdict does not allow it), already_merged (one of them was
    merged into a third person), changed (someone judged the pair meanwhile)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# Merged persons ---------------------------------------------------------------------------------


def links(db: Database) -> dict[str, str]:
    """Every merged person id -> the person it now is, chains followed: `links(db)[a] == b`."""
    rows = db.execute(f"{_MERGE_ROWS} AND json_extract(data, '$.status') = 'merged'").fetchall()
    return rules.resolve(rows)


def canonical(db: Database, ids: Iterable[str]) -> dict[str, str]:
    """The person each id now is: itself unless it was merged into another."""
    merged = links(db)
    return {i: merged.get(i, i) for i in ids}


def judged(db: Database) -> set[tuple[str, str]]:
    """Pairs with a standing verdict (merged or not the same person), each as `rules.pair` orders it."""
    rows = db.execute(f"{_MERGE_ROWS} AND json_extract(data, '$.status') IN ('merged', 'distinct')")
    return {rules.pair(a, b) for a, b in rows}


def group(db: Database, person: str) -> list[str]:
    """The person and everyone merged into them, the person first."""
    return [person, *sorted(m for m, s in links(db).items() if s == person)]


def describe(db: Database, ids: list[str]) -> dict[str, dict]:
    """The record that best describes the person each id now is (merges followed), or the id's own
    when the survivor's records are not in this database (a post keeps only its own)."""
    now_is = canonical(db, ids)
    found = records.persons(db, list({*ids, *now_is.values()}))
    described = {i: found.get(now_is[i]) or found.get(i) for i in ids}
    return {i: r for i, r in described.items() if r is not None}


_COLUMNS = ", ".join(f"r.{c}" for c in records._COLUMNS)


def linked(db: Database, ids: list[str]) -> list[dict]:
    """Every live record about these persons (their registrations and intakes, enrolments, marks,
    certificates), oldest first."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = db.query(
        f"SELECT {_COLUMNS} FROM records r WHERE r.uuid IN ({marks}) AND +r.form IN ('participant', 'intake')"
        f" AND r.deleted = 0 UNION SELECT {_COLUMNS} FROM records r INDEXED BY records_person"
        f" WHERE r.person != '' AND r.person IN ({marks}) AND r.deleted = 0 ORDER BY id",
        [*ids, *ids],
    )
    return [records._record(r) for r in rows]


def counts(db: Database, ids: list[str]) -> dict[str, int]:
    """How many live records are about each person, counting those of persons merged into them
    (unless they are among `ids` themselves, then counted on their own)."""
    owner = {i: i for i in ids}
    owner.update([(m, s) for m, s in links(db).items() if s in owner and m not in owner])
    tally = dict.fromkeys(ids, 0)
    for record in linked(db, list(owner)):
        who = owner.get(rules.person_id(record)) or owner.get(record["uuid"])
        if who:
            tally[who] += 1
    return tally


# Every person, for the finder -------------------------------------------------------------------

_ANSWERS = ("given_names", "first_surname", "second_surname", "birth_date", "estimated_age",
            "nationality", "doc_type", "doc_number", "interview_date", "consent")


def people(db: Database) -> Iterator[dedup.Person]:
    """Every live person of every post, once: an intake made for a registered participant is that
    participant, described by the latest such intake. Anonymous intakes are left out."""
    extracts = ", ".join(f"json_extract(data, '$.{name}')" for name in _ANSWERS)
    rows = db.execute(
        f"SELECT id, uuid, form, post, person, created_at, {extracts} FROM records"
        " WHERE form IN ('participant', 'intake') AND deleted = 0"
    )
    anonymous = schema.get("intake").is_anonymous
    linked_people: dict[str, tuple[int, dedup.Person]] = {}
    for row_id, uuid, form, post, person, created_at, *values in rows:
        answers = dict(zip(_ANSWERS, values, strict=True))
        if form == "intake" and anonymous(answers):
            continue
        found = _person(person or uuid, post, answers, (answers["interview_date"] or created_at)[:10])
        if form == "intake" and not person:
            yield found  # most persons: an intake of its own, nothing else describes them
            continue
        key = person or uuid
        rank = row_id if form == "intake" else 0  # an intake over the registration; the latest one
        if key not in linked_people or rank > linked_people[key][0]:
            linked_people[key] = (rank, found)
    for _, found in linked_people.values():
        yield found


def _person(person_id: str, post: str, answers: dict, recorded_on: str) -> dedup.Person:
    text = {k: answers[k] or "" for k in ("given_names", "first_surname", "second_surname",
                                          "birth_date", "nationality", "doc_type", "doc_number")}
    age = answers["estimated_age"]
    return dedup.Person(id=person_id, post=post, estimated_age=age if isinstance(age, int) else None,
                        recorded_on=recorded_on, **text)


# The finder's last run --------------------------------------------------------------------------


def look_again(db: Database, *, by: str) -> dict:
    """Run the finder over every person not merged into another, skipping judged pairs, and keep
    its pairs as the proposals (the previous run's are dropped). Returns the run."""
    started = now()
    merged = links(db)
    counted = 0

    def standing():
        nonlocal counted
        for person in people(db):
            if person.id not in merged:
                counted += 1
                yield person

    pairs = dedup.find_pairs(standing(), skip=judged(db))
    with write(db):
        run = db.execute(
            "INSERT INTO person_pair_runs (started_by, started_at, finished_at, persons, pairs)"
            " VALUES (?, ?, ?, ?, ?)", [by, started, now(), counted, len(pairs)]).lastrowid
        db.execute("DELETE FROM person_pairs WHERE run != ?", [run])
        db.conn.executemany(
            "INSERT INTO person_pairs (run, a, b, score, reasons) VALUES (?, ?, ?, ?, ?)",
            [(run, p.a, p.b, p.score, " ".join(p.reasons)) for p in pairs])
    return last_run(db)


def last_run(db: Database) -> dict | None:
    return next(db.query("SELECT id, started_by, started_at, finished_at, persons, pairs"
                         " FROM person_pair_runs ORDER BY id DESC LIMIT 1"), None)


def proposals(db: Database) -> list[dict]:
    """The last run's pairs still open, best first: neither judged since nor merged into a third."""
    run = last_run(db)
    if run is None:
        return []
    merged, done = links(db), judged(db)
    rows = db.execute("SELECT a, b, score, reasons FROM person_pairs WHERE run = ?"
                      " ORDER BY score DESC, a, b", [run["id"]])
    return [dedup.Pair(a, b, score, tuple(reasons.split())) for a, b, score, reasons in rows
            if a not in merged and b not in merged and (a, b) not in done]


def proposal(db: Database, a: str, b: str) -> dedup.Pair | None:
    """The pair if it is among the open proposals, else None."""
    first, second = rules.pair(a, b)
    row = db.execute("SELECT score, reasons FROM person_pairs WHERE run = (SELECT max(id) FROM"
                     " person_pair_runs) AND a = ? AND b = ?", [first, second]).fetchone()
    if row is None or first in (merged := links(db)) or second in merged or (first, second) in judged(db):
        return None
    return dedup.Pair(first, second, row[0], tuple(row[1].split()))


# Verdicts ---------------------------------------------------------------------------------------


def verdicts(db: Database, status: str | None = None) -> list[dict]:
    """The verdict on each judged pair (one, whichever post's copy), latest first."""
    where, params = ("AND json_extract(data, '$.status') = ?", [status]) if status else ("", [])
    rows = db.execute(
        f"SELECT data, updated_by, updated_at, revision, post FROM records WHERE form = 'person_merge'"
        f" AND deleted = 0 {where} ORDER BY updated_at DESC, id DESC", params)
    found: dict[tuple[str, str], dict] = {}
    for data, by, at, revision, post in rows:
        answers = json.loads(data)
        key = rules.pair(answers["survivor"], answers["merged"])
        if key in found:
            found[key]["posts"].append(post)
            continue
        found[key] = {**answers, "by": by, "at": at, "revision": revision, "posts": [post]}
    return list(found.values())


def verdict(db: Database, a: str, b: str) -> dict | None:
    """The standing verdict on a pair (its answers, with who and when), or None if never judged."""
    heads = [h for h in _heads(db, a, b).values() if h]
    if not heads:
        return None
    head = max(heads, key=lambda h: h["updated_at"])
    return {**head["answers"], "by": head["updated_by"], "at": head["updated_at"],
            "revision": head["revision"], "posts": sorted(h["post"] for h in heads)}


def _heads(db: Database, a: str, b: str) -> dict[str, dict | None]:
    """The pair's verdict record at each post the two persons belong to (None where not yet)."""
    posts = set()
    for person in (a, b):
        record = records.get(db, person)
        if record is None or record["form"] not in rules.PERSON_FORMS:
            raise VerdictRefused("unknown_person")
        posts.add(record["post"])
    return {post: records.get(db, rules.merge_uuid(a, b, post)) for post in sorted(posts)}


def set_verdict(db: Database, a: str, b: str, status: str, *, by: str, score: int = 0,
                reasons: Iterable[str] = (), device: str = "central") -> dict:
    """Judge a pair: merged (`a` is kept, `b` merged into it), distinct, or unmerged (a merge
    undone; the order of a, b does not matter). Writes the verdict record of each post the two
    belong to in one transaction, as a new revision where one exists; raises VerdictRefused."""
    if a == b:
        raise VerdictRefused("same_person")
    definition = schema.get(rules.MERGE_FORM)
    with write(db):
        heads = _heads(db, a, b)
        current = next((h["answers"] for h in heads.values() if h and not h["deleted"]), None)
        if not rules.may_follow(current and current["status"], status):
            raise VerdictRefused("judged")
        if status == rules.UNMERGED:
            answers = {**current, "status": status}
        else:
            if len(records.persons(db, [a, b])) < 2:
                raise VerdictRefused("unknown_person")
            now_is = canonical(db, [a, b])
            if now_is[a] == now_is[b]:
                raise VerdictRefused("same_person")
            if now_is != {a: a, b: b}:
                raise VerdictRefused("already_merged")
            answers = {"survivor": a, "merged": b, "status": status, "score": int(score)}
            if codes := " ".join(reasons):
                answers["reasons"] = codes
        at = now()
        for post, head in heads.items():
            decision = records._apply(db, records.Submission(
                uuid=rules.merge_uuid(a, b, post), definition=definition, answers=answers, post=post,
                device=device, user=by, base_revision=head["revision"] if head else 0), at)
            if decision.outcome not in (Outcome.STORED, Outcome.DUPLICATE):
                raise VerdictRefused("changed")  # rolls the whole verdict back
    return verdict(db, a, b)
