"""The validator runs each form's questions as generated code (`validate._generate`): it must
do what the plain loop over the questions, written out here as its docstring gives it, does,
for every form and any raw answers a browser, a replayed outbox or a synced record can bring.

The loop below normalises and checks multichoice answers as the validator did before it was
generated (commit 6ee8b13), so the faster ways it does those now are compared too."""

from __future__ import annotations

import ast
import io
import linecache
import tokenize
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.forms import schema
from fieldapp.forms.validate import _ABSENT, Error, NotText, _generate, _holds, _plan, _Question
from tests.conftest import valid_intake

TODAY = date(2026, 11, 22)
DEFINITIONS = sorted(schema.definitions().values(), key=lambda d: (d.form, d.version))
IDS = [f"{d.form}-{d.version}" for d in DEFINITIONS]


def _text(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NotText(type(value).__name__)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", value).strip()


def _normalise(value):
    if isinstance(value, list):
        seen = []
        for v in map(_text, value):
            if v and v not in seen:
                seen.append(v)
        return seen
    return _text(value)


def loop(definition, raw: dict, today: date):
    """The questions judged one after the other, as `_generate`'s docstring says."""
    fields = {f.name: f for f in definition.fields}
    answers, errors, applicable, required_if = {}, {}, {}, []
    for q in _plan(definition).questions:
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
        if q.multichoice:
            f = fields[q.name]
            if any(v not in f.codes for v in value):
                errors[q.name] = Error("unknown_choice")
            elif len(value) > 1 and any(v in f.exclusive for v in value):
                errors[q.name] = Error("exclusive_choice")
            else:
                answers[q.name] = value
            continue
        clean, error = q.check(value, today)
        if error:
            errors[q.name] = error
        else:
            answers[q.name] = clean
    return answers, errors, applicable, required_if


def generated(definition, raw: dict, today: date):
    answers, errors, applicable, required_if = {}, {}, {}, []
    _plan(definition).run(raw, today, answers, errors, applicable, required_if)
    return answers, errors, applicable, required_if


def outcome(judge, definition, raw: dict):
    """What a judge made of the answers, in order, or that it refused them as not text. Of the
    answers that apply, those a condition reads: the generated code keeps no others."""
    questions = _plan(definition).questions
    read = {c[0] for q in questions for _, c, _ in q.conditions} | {
        q.required_if[0] for q in questions if q.required_if is not None}
    try:
        answers, errors, applicable, required_if = judge(definition, raw, TODAY)
    except NotText:
        return "not text"
    return (list(answers.items()), list(errors.items()),
            [(k, v) for k, v in applicable.items() if k in read], [q.name for q in required_if])


def same(definition, raw: dict) -> None:
    assert outcome(generated, definition, raw) == outcome(loop, definition, raw), raw


TEXT = ["", "  ", "x", " Ana María ", "two\r\nlines", "cr\ronly ", "José\r\nMaría", "Nai\u0308ve", "Ａ",
        "a\u202eb", "tab\there",
        "x" * 2100, None]
TYPED = {"integer": ["0", "17", " 42 ", "-1", "999", "1000000000", "12a", "4.5"],
         "date": ["2000-02-29", "2001-02-29", "1990-13-01", "1899-12-31", "2999-01-01",
                  TODAY.isoformat(), "31/12/1990"],
         "time": ["08:30", "23:59", "24:00", "8:30"],
         "phone": ["+50212345678", "+502 1234-5678", "(502) 1234 5678", "12", "+0123456789"],
         "country": ["GTM", "VEN", "XX", "XXX", "gtm"]}


def answer(f):
    """Raw answers for one question, mostly of its own kind: its codes and values of its type,
    text of every sort, and lists, of codes for a multichoice and where one value is expected."""
    own = st.sampled_from(list(f.codes) + TYPED.get(f.type, []) + TEXT)
    if f.type == "multichoice":
        return st.one_of(st.lists(st.sampled_from(list(f.codes) + ["", " ", "other-code"]), max_size=4), own)
    return st.one_of(own, own, own, st.lists(own, max_size=2))


def raw_answers(definition):
    return st.fixed_dictionaries({}, optional={
        **{f.name: answer(f) for f in definition.answer_fields}, "unknown": st.just("x")})


@pytest.mark.parametrize("definition", DEFINITIONS, ids=IDS)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_generated_checks_do_what_the_loop_does(definition, data):
    same(definition, data.draw(raw_answers(definition)))


@pytest.mark.parametrize("definition", DEFINITIONS, ids=IDS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), odd=st.sampled_from([5, 2.5, True, {"a": 1}, b"x", [1], ["x", 2]]))
def test_an_answer_that_is_not_text_is_refused_alike(definition, data, odd):
    raw = data.draw(raw_answers(definition))
    raw[data.draw(st.sampled_from([f.name for f in definition.answer_fields]))] = odd
    same(definition, raw)


def test_every_one_question_change_to_a_valid_intake_is_judged_alike():
    """Consent given, every section applies: each question left out, blank, a list, and each of
    its codes and typed values in turn (the consent refused or not possible among them)."""
    intake = schema.get("intake")
    base = valid_intake()
    assert outcome(generated, intake, base)[1] == []  # valid: the changes below start from here
    for f in intake.answer_fields:
        changes = [_ABSENT, "", "  ", [base.get(f.name, "x")], *f.codes, *TYPED.get(f.type, [])]
        for value in changes:
            raw = {k: v for k, v in base.items() if k != f.name}
            if value is not _ABSENT:
                raw[f.name] = value
            same(intake, raw)


def test_names_and_codes_never_become_code():
    """Whatever a question is named, its name and codes are constants of the generated function's
    namespace: never in its text, and the answers keyed by them come out as given."""
    names = ["x'); import os #", "a\nb = 1", "s0", "value", "name0", '"""', "\u2028"]
    cond = (names[0], frozenset({"yes"}), False)

    def kept(value, today):
        return value, None

    questions = tuple(
        _Question(name=name, multichoice=False, conditions=((0, cond, True),) if i else (),
                  list_error="invalid_format", required=False, required_if=None, check=kept,
                  optional=True)
        for i, name in enumerate(names))
    run = _generate(questions)
    source = "".join(linecache.getlines(run.__code__.co_filename))
    texts = {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)
             and isinstance(node.value, str)}
    assert texts <= {"", "\r", "required", "invalid_format", "unknown_choice"}, texts
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type == tokenize.COMMENT]
    assert comments == [f"# question {i}" for i in range(len(names))]
    given = {name: f"answer {i}" for i, name in enumerate(names)}
    answers, errors = {}, {}
    run(given | {names[0]: "yes"}, TODAY, answers, errors, {}, [])
    assert (answers, errors) == (given | {names[0]: "yes"}, {})
    answers = {}
    run(given, TODAY, answers, {}, {}, [])
    assert answers == {names[0]: "answer 0"}  # the others' condition does not hold
