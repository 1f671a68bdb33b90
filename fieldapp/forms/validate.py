"""The one validator: raw answers in, clean answers (codes, ISO dates, ints) and error codes out.

Used by the web forms and, later, by the replay and sync endpoints, so every door applies the same
rules. Errors are language-neutral codes with parameters; fieldapp.forms.messages translates them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from fieldapp.forms import countries
from fieldapp.forms.schema import Field, FormDefinition

DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 2000, "phone": 30}
_INTEGER = re.compile(r"^-?[0-9]{1,9}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_MULTILINE_OK = {"\n", "\t"}
# Invisible characters that reorder or split text: refused so a name reads and searches as typed.
_INVISIBLE = {"\u2028", "\u2029"} | {chr(c) for c in range(0x202A, 0x202F)} | {
    chr(c) for c in range(0x2066, 0x206A)}


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
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _normalise(value) -> str | list[str]:
    if isinstance(value, list):
        seen = []
        for v in map(_text, value):
            if v and v not in seen:
                seen.append(v)
        return seen
    return _text(value)


def _has_control(text: str, multiline: bool) -> bool:
    for c in text:
        if multiline and c in _MULTILINE_OK:
            continue
        if unicodedata.category(c) in ("Cc", "Cs") or c in _INVISIBLE:
            return True
    return False


def _applicable(definition: FormDefinition, raw: dict) -> dict:
    """The normalised answers to the questions that apply, in form order (an irrelevant answer
    counts as empty for the questions after it); absent keys are questions that do not apply."""
    effective: dict = {}
    for section in definition.sections:
        for f in section.fields:
            if f.type == "note":
                continue
            value = _normalise(raw.get(f.name, [] if f.type == "multichoice" else ""))
            if all(c is None or c.holds(effective) for c in (section.relevant, f.relevant)):
                effective[f.name] = value
    return effective


def _check(f: Field, value, today: date):
    """Validate one non-empty value; return (clean value, None) or (None, Error)."""
    if f.type in ("text", "textarea", "phone"):
        if _has_control(value, multiline=f.type == "textarea"):
            return None, Error("control_characters")
        limit = f.max_length or DEFAULT_MAX_LENGTH[f.type]
        if len(value) > limit:
            return None, Error("too_long", {"max": limit})
        if f.type == "phone":
            value = _PHONE_SEPARATORS.sub("", value)
            if not _PHONE.match(value):
                return None, Error("invalid_phone")
        elif f.pattern and not re.fullmatch(f.pattern, value):
            return None, Error("invalid_format")
        return value, None
    if f.type == "integer":
        if not _INTEGER.match(value):
            return None, Error("not_integer")
        number = int(value)
        if f.min is not None and number < f.min:
            return None, Error("too_small", {"min": f.min})
        if f.max is not None and number > f.max:
            return None, Error("too_large", {"max": f.max})
        return number, None
    if f.type == "date":
        try:
            if not _DATE.match(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            return None, Error("invalid_date")
        if f.min and day < date.fromisoformat(f.min):
            return None, Error("date_too_early", {"min": f.min})
        if f.not_future and day > today:
            return None, Error("date_in_future")
        return value, None
    if f.type == "time":  # 24-hour HH:MM; browsers send seconds only when asked for them
        return (value, None) if _TIME.match(value) else (None, Error("invalid_time"))
    if f.type == "choice":
        return (value, None) if value in f.codes else (None, Error("unknown_choice"))
    if f.type == "multichoice":
        if any(v not in f.codes for v in value):
            return None, Error("unknown_choice")
        if len(value) > 1 and any(v in f.exclusive for v in value):
            return None, Error("exclusive_choice")
        return value, None
    if f.type == "country":
        ok = value in countries.codes() or value in f.extra
        return (value, None) if ok else (None, Error("unknown_country"))
    raise AssertionError(f"unhandled field type {f.type}")


def validate(definition: FormDefinition, raw: dict, today: date) -> Result:
    """Validate `raw` answers against `definition`: `validate(intake, {"consent": "given"}, today)`.

    Irrelevant answers are dropped (a refused consent keeps only the anonymous minimum); empty
    optional answers are left out of the clean answers.
    """
    answers: dict = {}
    errors: dict[str, Error] = {}
    try:
        applicable = _applicable(definition, raw)
    except NotText:
        return Result({}, {"_form": Error("not_text")})
    for f in definition.answer_fields:
        if f.name not in applicable:
            continue
        value = applicable[f.name]
        if f.type != "multichoice" and isinstance(value, list):
            errors[f.name] = Error("unknown_choice" if f.choices else "invalid_format")
            continue
        if f.type == "multichoice" and not isinstance(value, list):
            value = [value] if value else []
        if not value:
            if f.required or (f.required_if and f.required_if.holds(applicable)):
                errors[f.name] = Error("required")
            continue
        clean, error = _check(f, value, today)
        if error:
            errors[f.name] = error
        else:
            answers[f.name] = clean
    _check_date_order(definition, answers, errors)
    return Result(answers, errors)


def _check_date_order(definition: FormDefinition, answers: dict, errors: dict) -> None:
    for f in definition.answer_fields:
        if f.type != "date" or f.name not in answers:
            continue
        day = answers[f.name]  # ISO strings compare in date order
        if f.not_before and answers.get(f.not_before, "") > day:
            label = definition.fields_by_name[f.not_before].label
            errors[f.name] = Error("date_before_other", {"other": label})
            answers.pop(f.name)
        elif f.not_after and day > answers.get(f.not_after, "9999-12-31"):
            label = definition.fields_by_name[f.not_after].label
            errors[f.name] = Error("date_after_other", {"other": label})
            answers.pop(f.name)
