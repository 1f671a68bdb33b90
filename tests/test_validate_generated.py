"""The validator runs each form's questions as generated code (`validate._generate`): it must
do what the plain loop over the questions, written out here as its docstring gives it, does,
for every form and any raw answers a browser, a replayed outbox or a synced record can bring."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.forms import schema
from fieldapp.forms.validate import _ABSENT, Error, NotText, _holds, _normalise, _plan

TODAY = date(2026, 11, 22)
DEFINITIONS = sorted(schema.definitions().values(), key=lambda d: (d.form, d.version))


def loop(questions, raw: dict, today: date):
    """The questions judged one after the other, as `_generate`'s docstring says."""
    answers, errors, applicable, required_if = {}, {}, {}, []
    for q in questions:
        value = raw.get(q.name, _ABSENT)
        if value is _ABSENT:
            if q.optional:
                continue
            value = [] if q.multichoice else ""
        else:
            value = _normalise(value)
        if not all(_holds(condition, applicable) for _, condition, _ in q.conditions):
            continue
        applicable[q.name] = value
        if isinstance(value, list) and not q.multichoice:
            errors[q.name] = Error(q.list_error)
            continue
        if q.multichoice and not isinstance(value, list):
            value = [value] if value else []
        if not value:
            if q.required:
                errors[q.name] = Error("required")
            elif q.required_if is not None:
                errors[q.name] = None
                required_if.append(q)
            continue
        clean, error = q.check(value, today)
        if error:
            errors[q.name] = error
        else:
            answers[q.name] = clean
    return answers, errors, applicable, required_if


def generated(run, raw: dict, today: date):
    answers, errors, applicable, required_if = {}, {}, {}, []
    run(raw, today, answers, errors, applicable, required_if)
    return answers, errors, applicable, required_if


def outcome(judge, questions, *args):
    """What a judge made of the answers, in order, or that it refused them as not text. Of the
    answers that apply, those a condition reads: the generated code keeps no others."""
    read = {c[0] for q in questions for _, c, _ in q.conditions} | {
        q.required_if[0] for q in questions if q.required_if is not None}
    try:
        answers, errors, applicable, required_if = judge(*args)
    except NotText:
        return "not text"
    return (list(answers.items()), list(errors.items()),
            [(k, v) for k, v in applicable.items() if k in read], [q.name for q in required_if])


def values_for(definition):
    """Raw values that reach every branch: each question's codes, empty and blank answers,
    lists where one value is expected and one value where a list is, text with CR and accents,
    numbers and dates in and out of range, and what is not text at all."""
    codes = sorted({code for f in definition.fields for code in f.codes})
    text = st.sampled_from(codes + ["", "  ", "x", " 12 ", "-3", "1990-01-31", "2999-01-01", "13:45",
                                    "+50212345678", "José\r\nMaría", "Ａ", "Nai\u0308ve", "GTM",
                                    "a\u202eb", "x" * 2100])
    one = st.one_of(text, st.lists(text, max_size=3), st.sampled_from([None, 5, 2.5, {"a": 1}]))
    names = [f.name for f in definition.answer_fields] + ["unknown"]
    return st.dictionaries(st.sampled_from(names), one, max_size=len(names))


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: f"{d.form}-{d.version}")
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_generated_checks_do_what_the_loop_does(definition, data):
    plan = _plan(definition)
    raw = data.draw(values_for(definition))
    assert outcome(generated, plan.questions, plan.run, raw, TODAY) == \
        outcome(loop, plan.questions, plan.questions, raw, TODAY)


def test_a_question_name_is_never_part_of_the_code():
    """Names and codes are constants of the generated function's namespace: a name that would be
    code, were it spelled into the text, stays a name."""
    definition = schema.get("intake")
    plan = _plan(definition)
    names = {q.name for q in plan.questions}
    source_constants = set(plan.run.__code__.co_consts)
    assert not names & {c for c in source_constants if isinstance(c, str)}
