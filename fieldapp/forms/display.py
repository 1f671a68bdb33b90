"""Answers shown to people: labels in the reader's language, dates and numbers formatted by Babel."""

from __future__ import annotations

from datetime import date, time

from flask_babel import format_date, format_decimal, format_time

from fieldapp.forms.builder import choice_label
from fieldapp.forms.schema import Field, FormDefinition, Section


def value(f: Field, answer) -> str:
    """One stored answer as text: codes become labels, ISO dates become local dates."""
    if answer is None or answer == "" or answer == []:
        return ""
    if f.type in ("choice", "country"):
        return choice_label(f, answer)
    if f.type == "multichoice":
        return ", ".join(choice_label(f, code) for code in answer)
    if f.type == "date":
        return format_date(date.fromisoformat(answer), "medium")
    if f.type == "integer":
        return format_decimal(answer)
    if f.type == "time":
        return format_time(time.fromisoformat(answer), "short")
    return str(answer)


def sections(definition: FormDefinition, answers: dict, *, sensitive: bool) -> list:
    """[(section, [(field, text)])] for the answered fields, sensitive sections only if allowed."""
    shown: list[tuple[Section, list]] = []
    for section in definition.sections:
        if section.sensitive and not sensitive:
            continue
        rows = [(f, value(f, answers.get(f.name))) for f in section.fields if f.name in answers]
        if rows:
            shown.append((section, rows))
    return shown


def changed_fields(definition: FormDefinition, before: dict, after: dict, *, sensitive: bool):
    """The fields whose answers differ between two revisions, in form order."""
    hidden = {f.name for s in definition.sections if s.sensitive and not sensitive for f in s.fields}
    return [
        f for f in definition.answer_fields
        if f.name not in hidden and before.get(f.name) != after.get(f.name)
    ]
