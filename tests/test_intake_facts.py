"""The summary's table of intake facts (migration 0014): kept by every writer of a record, in Python,
exactly as the SQL expressions that fill it on upgrade compute them."""

from __future__ import annotations

import json
import random
import uuid as uuidlib
from datetime import date, timedelta

import pytest

from fieldapp.domain.summary import intake_facts
from fieldapp.forms import schema
from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations, records
from fieldapp.storage.migrations import apply

INTAKE = schema.get("intake")
# The expressions of migration 0006 that fill the table on upgrade (0014), '' for NULL.
BY_SQL = (
    f"SELECT id, post, {migrations.INTAKE_MONTH}, coalesce({migrations.INTAKE_NATIONALITY}, ''),"
    f" coalesce({migrations.INTAKE_MIGRATORY_STATUS}, ''), coalesce({migrations.INTAKE_AGE_GROUP}, ''),"
    f" coalesce({migrations.INTAKE_SEX}, '') FROM records WHERE form = 'intake' AND deleted = 0 ORDER BY id"
)
KEPT = ("SELECT record, post, month, nationality, migratory_status, age_group, sex FROM intake_facts"
        " ORDER BY record")


def _odd_answers(rng: random.Random) -> dict:
    """Answers of every shape the facts are computed from: any of them may be missing."""
    seen = date(2024, 1, 1) + timedelta(days=rng.randint(0, 700))
    answers = {"consent": "given", "given_names": "Ana", "first_surname": "Pérez"}
    if rng.random() < 0.8:
        answers["interview_date"] = seen.isoformat()
    shape = rng.choice(["born", "born_later", "estimated", "group", "none"])
    if shape == "born":
        answers["birth_date"] = (seen - timedelta(days=rng.randint(0, 36000))).isoformat()
    elif shape == "born_later":  # a birth date after the interview: counted as 0-4
        answers["birth_date"] = (seen + timedelta(days=rng.randint(1, 900))).isoformat()
    elif shape == "estimated":
        answers["estimated_age"] = rng.randint(0, 120)
    elif shape == "group":
        answers["age_group"] = rng.choice(["0_4", "18_24", "60_plus"])
    for name, codes in (("nationality", ["VE", "CO", "HT"]), ("migratory_status", ["refugee", "regular"]),
                        ("sex", ["female", "male", "other"])):
        if rng.random() < 0.85:
            answers[name] = rng.choice(codes)
    return answers


def _sub(answers: dict, post: str = "POST-A", **kw) -> records.Submission:
    return records.Submission(kw.pop("uuid", None) or str(uuidlib.uuid4()), INTAKE, answers, post,
                              "dev", "tester", at=kw.pop("at", ""), **kw)


def test_the_facts_kept_in_python_are_the_upgrade_s_sql(db):
    rng = random.Random(14)
    subs = [_sub(_odd_answers(rng), rng.choice(["POST-A", "POST-B"]),
                 at=f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00Z") for _ in range(600)]
    records.save_batch(db, subs)
    assert db.execute(KEPT).fetchall() == db.execute(BY_SQL).fetchall()
    assert len(db.execute(KEPT).fetchall()) == 600

    # Edits that change a fact, edits that change none, deletions: the table follows.
    edits = []
    for sub in rng.sample(subs, 300):
        changed = dict(sub.answers)
        kind = rng.choice(["notes", "facts", "interview", "delete"])
        if kind == "notes":
            changed["notes"] = "corrected"
        elif kind == "facts":
            changed.update(_odd_answers(rng), notes="other facts")
        elif kind == "interview":
            changed.pop("interview_date", None)  # counted by the capture's month from now on
            changed["notes"] = "no interview date"
        edits.append(_sub(changed, sub.post, uuid=sub.uuid, base_revision=1, deleted=kind == "delete"))
    decisions = records.save_batch(db, edits)
    assert all(d.outcome == "stored" for d in decisions)
    kept = db.execute(KEPT).fetchall()
    assert kept == db.execute(BY_SQL).fetchall()
    assert len(kept) == 600 - sum(e.deleted for e in edits)


def test_each_intake_s_facts_by_the_rule(db):
    u = str(uuidlib.uuid4())
    records.save(db, _sub({"interview_date": "2025-03-14", "birth_date": "2000-03-15", "sex": "male",
                           "nationality": "HT"}, uuid=u))
    assert db.execute(KEPT).fetchall() == [(1, "POST-A", "2025-03", "HT", "", "18_24", "male")]
    assert intake_facts({"estimated_age": 70}, "2025-02-01T09:00:00Z") == ("2025-02", "", "", "60_plus", "")
    chosen = intake_facts({"age_group": "5_11", "birth_date": "1990-01-01"}, "2025-02-01T09:00:00Z")
    assert chosen[3] == "5_11"  # the answer, where consent was refused and the group asked


def test_upgrading_fills_the_table_from_the_records(tmp_path):
    today = storage_db.connect(tmp_path / "today.db")
    apply(today)
    rng = random.Random(15)
    records.save_batch(today, [_sub(_odd_answers(rng), at="2025-05-05T10:00:00Z") for _ in range(200)])
    gone = _sub(_odd_answers(rng))
    records.save(today, gone)
    records.save(today, _sub(gone.answers, uuid=gone.uuid, base_revision=1, deleted=True))
    today.close()

    db = storage_db.connect(tmp_path / "fieldapp.db")
    apply(db, stop_before="0014_intake_facts")
    db.execute("ATTACH DATABASE ? AS today", [str(tmp_path / "today.db")])
    with storage_db.write(db):
        db.execute("INSERT INTO main.records SELECT * FROM today.records")
    db.execute("DETACH DATABASE today")
    apply(db, before_upgrade=None)

    expected = [(rid, post, *intake_facts(json.loads(data), created))
                for rid, post, data, created in db.execute(
                    "SELECT id, post, data, created_at FROM records WHERE deleted = 0 ORDER BY id")]
    assert db.execute(KEPT).fetchall() == expected
    assert len(expected) == 200
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not names & set(migrations.INTAKE_INDEXES)  # 0006's indexes are gone
    db.close()


@pytest.mark.parametrize("answers", [
    {"interview_date": "2025-03-14", "birth_date": "2025-03-15"},  # born the day after
    {"interview_date": "2025-03-14", "birth_date": "1965-03-14"},  # 60 that day
    {"interview_date": "2025-03-14", "birth_date": "1965-03-15"},  # 59 for one more day
    {"birth_date": "2020-01-01"},  # no interview date: the capture's day
    {"estimated_age": 0}, {"estimated_age": 4}, {"estimated_age": 5}, {},
])
def test_edge_ages_agree_with_the_sql(db, answers):
    records.save(db, _sub(answers, at="2025-06-30T23:59:59Z"))
    assert db.execute(KEPT).fetchall() == db.execute(BY_SQL).fetchall()
