"""Form definitions: they load, agree with the domain rules, and validate as documented."""

from __future__ import annotations

import re
from datetime import date

import pytest

from fieldapp.domain import trainings
from fieldapp.forms import schema
from fieldapp.forms.schema import DefinitionError, parse
from fieldapp.forms.validate import validate

TODAY = date(2026, 11, 21)
ALL = sorted(schema.definitions())


@pytest.mark.parametrize("key", ALL, ids=[f"{f}-{v}" for f, v in ALL])
def test_definitions_are_consistent(key):
    definition = schema.definitions()[key]
    assert definition.answer_fields
    for f in definition.fields:
        assert f.label
        if f.type in ("choice", "multichoice"):
            assert f.choices and len(set(f.codes)) == len(f.codes)
        if f.pattern:
            re.compile(f.pattern)


def test_attendance_codes_are_the_domains():
    assert schema.get("attendance").fields_by_name["status"].codes == trainings.STATUSES


@pytest.mark.parametrize(("typed", "ok"), [
    ("09:00", True), ("23:59", True), ("00:00", True), ("24:00", False), ("9:00", False),
    ("09:60", False), ("09:00:00", False), ("nine", False),
])
def test_time_answers(typed, ok):
    session = schema.get("session")
    raw = {"date": "2026-11-02", "start_time": typed, "end_time": "23:59", "status": "scheduled"}
    result = validate(session, raw, TODAY)
    assert result.ok is ok, result.errors
    if not ok:
        assert result.errors["start_time"].code == "invalid_time"


def test_course_cannot_end_before_it_starts():
    course = schema.get("course")
    raw = {"title": "Soldadura", "area": "vocational", "start_date": "2026-11-10",
           "end_date": "2026-11-01", "min_attendance": "80"}
    assert validate(course, raw, TODAY).errors["end_date"].code == "date_before_other"


def test_participant_needs_consent():
    participant = schema.get("participant")
    raw = {"given_names": "Ana", "first_surname": "Pérez", "sex": "female",
           "birth_date_known": "no", "estimated_age": "30", "nationality": "VE",
           "population": "migrant"}
    assert validate(participant, raw, TODAY).errors == {
        "consent": validate(participant, raw, TODAY).errors["consent"]}
    assert validate(participant, {**raw, "consent": ["given"]}, TODAY).ok


@pytest.mark.parametrize(("data", "message"), [
    ({"relevant": {"field": "later", "in": ["x"]}}, "later or unknown"),
    ({"type": "colour"}, "unknown type"),
    ({"type": "choice", "list": "missing"}, "unknown list"),
    ({"relevant": "undefined"}, "unknown condition"),
    ({"label": "Share (%)"}, "'%' in a label"),
])
def test_inconsistent_definitions_are_refused(data, message):
    definition = {
        "form": "x", "version": 1, "title": "X",
        "sections": [{"id": "s", "title": "S", "fields": [
            {"name": "first", "type": "text", "label": "First", **data},
            {"name": "later", "type": "text", "label": "Later"},
        ]}],
    }
    with pytest.raises(DefinitionError, match=message):
        parse(definition)
