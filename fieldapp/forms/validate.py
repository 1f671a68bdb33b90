"""The one validator: raw answers in, clean answers (codes, ISO dates, ints) and error codes out.

Used by the web forms and by the replay and sync endpoints, so every door applies the same rules.
Errors are language-neutral codes with parameters; fieldapp.forms.messages translates them.

Central runs every synced record through it, so a definition is compiled once into a plan: per
question its conditions, its empty value and a check made for its type (limits, regexes and code
sets looked up once), rather than read from the definition for every answer. The plan's questions
are then written out as one Python function (`_generate`), straight-line code with each question's
name, conditions and flags in place: a loop over the questions reading them spent seven times more
time per question than the checks themselves.
"""

from __future__ import annotations

import itertools
import linecache
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from fieldapp.forms import countries
from fieldapp.forms.schema import Condition, Field, FormDefinition

DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 2000, "phone": 30}
_INTEGER = re.compile(r"^-?[0-9]{1,9}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
# Control characters (Unicode category Cc), lone surrogates (Cs), and invisible characters that
# reorder or split text (line and paragraph separators, bidirectional embeddings and isolates):
# refused so a name reads and searches as typed. A text area keeps its line breaks and tabs.
_INVISIBLE = "\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_INVISIBLE}]")
_CONTROL_MULTILINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_INVISIBLE}]")


class NotText(TypeError):
    """A value that is neither text nor a list of text (a file upload, say)."""


@dataclass(frozen=True)
class Error:
    code: str
    params: dict = field(default_factory=dict)


@dataclass
class Result:
    answers: dict
    errors: dict[str, Error]

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NotText(type(value).__name__)
    # Browsers send line breaks as CRLF; count and store them as one character.
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not value.isascii():  # ASCII text is in NFC already
        value = unicodedata.normalize("NFC", value)
    return value.strip()


def _normalise(value) -> str | list[str]:
    if isinstance(value, list):
        seen = []
        for v in value:
            # What _text makes of ASCII text without CR (the usual code), without a call
            v = v.strip() if isinstance(v, str) and v.isascii() and "\r" not in v else _text(v)
            if v and v not in seen:
                seen.append(v)
        return seen
    return _text(value)


# A compiled condition: (field, codes, negate), as schema.Condition.holds reads it.
_Cond = tuple[str, frozenset, bool]


def _compile_condition(c: Condition) -> _Cond:
    return (c.field, frozenset(c.values), c.negate)


def _holds(condition: _Cond, answers: dict) -> bool:
    name, values, negate = condition
    value = answers.get(name)
    # Nothing chosen is the empty code "", for a multichoice as for a choice (as in form.js).
    if isinstance(value, list):
        found = any(v in values for v in value) if value else "" in values
    else:
        found = (value or "") in values
    return not found if negate else found


Check = Callable[[object, date], tuple]  # (value, today) -> (clean value, None) or (None, Error)


def _text_check(f: Field) -> Check:
    control = _CONTROL_MULTILINE if f.type == "textarea" else _CONTROL
    limit = f.max_length or DEFAULT_MAX_LENGTH[f.type]
    phone = f.type == "phone"
    pattern = re.compile(f.pattern).fullmatch if f.pattern and not phone else None

    def check(value, today):
        if control.search(value):
            return None, Error("control_characters")
        if len(value) > limit:
            return None, Error("too_long", {"max": limit})
        if phone:
            value = _PHONE_SEPARATORS.sub("", value)
            if not _PHONE.match(value):
                return None, Error("invalid_phone")
        elif pattern is not None and not pattern(value):
            return None, Error("invalid_format")
        return value, None

    return check


def _integer_check(f: Field) -> Check:
    low, high = f.min, f.max

    def check(value, today):
        if not _INTEGER.match(value):
            return None, Error("not_integer")
        number = int(value)
        if low is not None and number < low:
            return None, Error("too_small", {"min": low})
        if high is not None and number > high:
            return None, Error("too_large", {"max": high})
        return number, None

    return check


def _date_check(f: Field) -> Check:
    earliest = date.fromisoformat(f.min) if f.min else None
    not_future = f.not_future

    def check(value, today):
        try:
            if not _DATE.match(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            return None, Error("invalid_date")
        if earliest is not None and day < earliest:
            return None, Error("date_too_early", {"min": f.min})
        if not_future and day > today:
            return None, Error("date_in_future")
        return value, None

    return check


def _time_check(f: Field) -> Check:
    def check(value, today):  # 24-hour HH:MM; browsers send seconds only when asked for them
        return (value, None) if _TIME.match(value) else (None, Error("invalid_time"))

    return check


def _choice_check(f: Field) -> Check:
    codes = frozenset(f.codes)

    def check(value, today):
        return (value, None) if value in codes else (None, Error("unknown_choice"))

    check.codes = codes  # `_generate` tests membership in place, without the call
    return check


def _multichoice_check(f: Field) -> Check:
    codes, exclusive = frozenset(f.codes), frozenset(f.exclusive)

    def check(value, today):  # `value`: a list of text (`_normalise`)
        if not codes.issuperset(value):
            return None, Error("unknown_choice")
        if len(value) > 1 and not exclusive.isdisjoint(value):
            return None, Error("exclusive_choice")
        return value, None

    return check


def _country_check(f: Field) -> Check:
    known = countries.codes() | frozenset(f.extra)

    def check(value, today):
        return (value, None) if value in known else (None, Error("unknown_country"))

    check.codes = known
    return check


def _unknown_check(f: Field) -> Check:
    def check(value, today):
        raise AssertionError(f"unhandled field type {f.type}")

    return check


_CHECKS = {"text": _text_check, "textarea": _text_check, "phone": _text_check,
           "integer": _integer_check, "date": _date_check, "time": _time_check,
           "choice": _choice_check, "multichoice": _multichoice_check, "country": _country_check}


@dataclass(frozen=True)
class _Question:
    name: str
    multichoice: bool
    # The section's and the question's relevance: (number, condition, settled). A settled one
    # is on an earlier question, whose answer is final by now: judged once per validation.
    conditions: tuple[tuple[int, _Cond, bool], ...]
    list_error: str  # the error for a list where one value is expected
    required: bool
    required_if: _Cond | None
    check: Check
    # Neither required nor required_if: left unanswered, there is nothing to judge (its conditions
    # included: an answer absent counts as empty in later questions' conditions as one irrelevant)
    optional: bool


@dataclass(frozen=True)
class _Plan:
    questions: tuple[_Question, ...]
    # Dates that must not fall before or after another question's: (name, before, after, labels)
    date_order: tuple[tuple[str, str, str, str, str], ...]
    # The questions as code: run(raw, today, answers, errors, applicable, required_if), filling
    # the four from the raw answers as the loop in `_generate`'s docstring would.
    run: Callable


_generated = itertools.count(1)  # a file name for each generated function


def _generate(questions: tuple[_Question, ...]) -> Callable:
    """The questions' checks as one function, each question a block of code, as if this loop
    were unrolled (the names are `validate`'s):

        for q in questions:
            value = raw.get(q.name, _ABSENT)
            if value is _ABSENT:
                if q.optional:
                    continue  # nothing to judge, its conditions included
                value = [] if q.multichoice else ""
            else:
                value = _normalise(value)  # inline for ASCII text without CR, the usual answer
            if not all(_holds(condition, applicable) for _, condition, _ in q.conditions):
                continue  # the question does not apply: its answer is dropped
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
                    errors[q.name] = None  # judged once every answer is known
                    required_if.append(q)
                continue
            clean, error = q.check(value, today)
            if error:
                errors[q.name] = error
            else:
                answers[q.name] = clean

    A settled condition (on an earlier question, final by then) is judged once per call, into a
    local `s<number>`; `applicable` gets only the answers some condition reads. Names and codes
    reach the code as constants of its namespace, never spelled into its text.
    """
    env = {"_ABSENT": _ABSENT, "_normalise": _normalise, "_holds": _holds, "Error": Error}
    settled = sorted({number for q in questions for number, _, final in q.conditions if final})
    read = {condition[0] for q in questions for _, condition, _ in q.conditions}
    read |= {q.required_if[0] for q in questions if q.required_if is not None}
    code = ["def run(raw, today, answers, errors, applicable, required_if):"]
    code += [f"    s{number} = None" for number in settled]
    for i, q in enumerate(questions):
        env[f"name{i}"], env[f"q{i}"], env[f"check{i}"] = q.name, q, q.check
        block = [
            f"value = raw.get(name{i}, _ABSENT)",
            "if value is _ABSENT:",
            "    pass" if q.optional else f"    value = {'[]' if q.multichoice else repr('')}",
            "elif isinstance(value, str) and value.isascii() and '\\r' not in value:",
            "    value = value.strip()",
            "else:",
            "    value = _normalise(value)",
        ]
        holds = []
        for number, condition, final in dict.fromkeys(q.conditions):  # a section's and its question's
            env[f"cond{number}"] = condition
            judged = f"_holds(cond{number}, applicable)"
            holds.append(f"(s{number} if s{number} is not None else (s{number} := {judged}))"
                         if final else judged)
        applies = " and ".join(["value is not _ABSENT"] * q.optional + holds) or "True"
        block.append(f"if {applies}:")
        body = [f"applicable[name{i}] = value"] if q.name in read else []
        if q.multichoice:
            body += ["if not isinstance(value, list):", "    value = [value] if value else []",
                     "if not value:"]
        else:
            body += ["if isinstance(value, list):", f"    errors[name{i}] = Error({q.list_error!r})",
                     "elif not value:"]
        if q.required:
            body.append(f"    errors[name{i}] = Error('required')")
        elif q.required_if is not None:
            body += [f"    errors[name{i}] = None", f"    required_if.append(q{i})"]
        else:
            body.append("    pass")
        codes = getattr(q.check, "codes", None)
        if codes is not None:  # a choice or country: the answer is one of the codes, kept as is
            env[f"codes{i}"] = codes
            body += [f"elif value in codes{i}:", f"    answers[name{i}] = value", "else:",
                     f"    clean, error = check{i}(value, today)", f"    errors[name{i}] = error"]
        else:
            body += ["else:", f"    clean, error = check{i}(value, today)", "    if error:",
                     f"        errors[name{i}] = error", "    else:", f"        answers[name{i}] = clean"]
        block += ["    " + line for line in body]
        code += [f"    # question {i}"] + ["    " + line for line in block]
    code.append("    return None")
    # Kept where tracebacks and debuggers look for a file's lines, under a name of its own
    source = "\n".join(code) + "\n"
    filename = f"<fieldapp.forms.validate: generated {next(_generated)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), env)
    return env["run"]


def _compile(definition: FormDefinition) -> _Plan:
    questions = []
    numbers: dict[_Cond, int] = {}
    for section in definition.sections:
        for f in section.fields:
            if f.type == "note":
                continue
            earlier = {q.name for q in questions}
            conditions = tuple(
                (numbers.setdefault(cond, len(numbers)), cond, cond[0] in earlier)
                for cond in (_compile_condition(c) for c in (section.relevant, f.relevant) if c))
            questions.append(_Question(
                name=f.name, multichoice=f.type == "multichoice", conditions=conditions,
                list_error="unknown_choice" if f.choices else "invalid_format",
                required=f.required,
                required_if=_compile_condition(f.required_if) if f.required_if else None,
                check=_CHECKS.get(f.type, _unknown_check)(f),
                optional=not f.required and not f.required_if,
            ))
    labels = {f.name: f.label for f in definition.fields}
    date_order = tuple(
        (f.name, f.not_before, f.not_after, labels.get(f.not_before, ""), labels.get(f.not_after, ""))
        for f in definition.answer_fields if f.type == "date" and (f.not_before or f.not_after))
    return _Plan(tuple(questions), date_order, _generate(tuple(questions)))


# Compiled plans by definition; the definition is kept so that its id is never reused meanwhile.
_plans: dict[int, tuple[FormDefinition, _Plan]] = {}


def _plan(definition: FormDefinition) -> _Plan:
    entry = _plans.get(id(definition))
    if entry is None or entry[0] is not definition:
        entry = _plans[id(definition)] = (definition, _compile(definition))
    return entry[1]


_ABSENT = object()


def validate(definition: FormDefinition, raw: dict, today: date) -> Result:
    """Validate `raw` answers against `definition`: `validate(intake, {"consent": "given"}, today)`.

    Irrelevant answers are dropped (a refused consent keeps only the anonymous minimum); empty
    optional answers are left out of the clean answers.
    """
    answers: dict = {}
    errors: dict[str, Error | None] = {}
    # The normalised answers to the questions that apply and that some condition reads, in form
    # order (an irrelevant answer counts as empty for the questions after it); absent keys are
    # questions that do not apply, or that no condition reads.
    applicable: dict = {}
    # Empty answers required only if a condition holds: judged once every answer is known.
    required_if: list[_Question] = []
    plan = _plan(definition)
    try:
        plan.run(raw, today, answers, errors, applicable, required_if)
    except NotText:
        return Result({}, {"_form": Error("not_text")})
    for q in required_if:
        if _holds(q.required_if, applicable):
            errors[q.name] = Error("required")
        else:
            del errors[q.name]
    for name, not_before, not_after, before_label, after_label in plan.date_order:
        if name not in answers:
            continue
        day = answers[name]  # ISO strings compare in date order
        if not_before and answers.get(not_before, "") > day:
            errors[name] = Error("date_before_other", {"other": before_label})
            answers.pop(name)
        elif not_after and day > answers.get(not_after, "9999-12-31"):
            errors[name] = Error("date_after_other", {"other": after_label})
            answers.pop(name)
    return Result(answers, errors)
