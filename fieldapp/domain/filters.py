"""Filters on the merged records at central: one definition for the records page and exports.

`parse` checks what a person typed (or a URL carried) and says what is wrong, field by field, in
English source strings the caller translates; nothing is queried with a filter that did not parse.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from datetime import date

from fieldapp.domain.records import is_uuid


def N_(message: str) -> str:
    """Mark a message for translation; the caller translates it."""
    return message


# The forms central browses and exports, in the order people look for them.
FORMS = ("intake", "participant", "course", "session", "enrolment", "attendance", "certificate")
# Answers of a person that filter records about people (intake, participant) and, through the
# record's person, those that point at one (enrolment, attendance, certificate).
PERSON_FILTERS = ("nationality", "sex", "age_group", "migratory_status")
PERSON_FORMS = ("intake", "participant")
POST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MAX_TEXT = 100


@dataclass(frozen=True)
class Filter:
    form: str = "intake"
    post: str = ""
    start: str = ""  # capture date from (ISO date, inclusive)
    end: str = ""  # capture date to (inclusive)
    nationality: str = ""
    sex: str = ""
    age_group: str = ""
    migratory_status: str = ""
    course: str = ""  # uuid of a course
    q: str = ""  # name or document number

    def as_dict(self) -> dict[str, str]:
        """The filters that are set (for URLs, the audit log and exports' names)."""
        return {k: v for k, v in asdict(self).items() if v}

    @property
    def person_answers(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in PERSON_FILTERS if getattr(self, k)}


NAMES = tuple(f.name for f in fields(Filter))


def parse(args, *, choices: dict[str, tuple[str, ...]], countries: frozenset[str]) -> tuple[Filter, dict]:
    """(filter, errors) from query arguments; `errors` maps an argument to an English message.

    `choices` holds the codes each choice filter accepts (from the intake form), `countries` the
    nationality codes. Unknown arguments are ignored, as everywhere on the web.
    """
    values = {name: (args.get(name) or "").strip() for name in NAMES}
    errors: dict[str, str] = {}
    values["form"] = values["form"] or "intake"
    if values["form"] not in FORMS:
        errors["form"] = N_("Choose one of the forms in the list.")
    if values["post"] and not POST.match(values["post"]):
        errors["post"] = N_("A post code has letters, digits, dots, dashes or underscores.")
    for name in ("start", "end"):
        if values[name]:
            try:
                values[name] = date.fromisoformat(values[name]).isoformat()
            except ValueError:
                errors[name] = N_("Enter a date as YYYY-MM-DD.")
    if values["start"] and values["end"] and "start" not in errors and "end" not in errors \
            and values["start"] > values["end"]:
        errors["end"] = N_("The end date is before the start date.")
    if values["nationality"]:
        values["nationality"] = values["nationality"].upper()
        if values["nationality"] not in countries:
            errors["nationality"] = N_("Choose a country from the list.")
    for name in ("sex", "age_group", "migratory_status"):
        if values[name] and values[name] not in choices.get(name, ()):
            errors[name] = N_("Choose one of the answers in the list.")
    if values["course"] and not is_uuid(values["course"]):
        errors["course"] = N_("Choose a course from the list.")
    if len(values["q"]) > MAX_TEXT:
        errors["q"] = N_("Search for at most 100 characters.")
    return Filter(**values) if not errors else Filter(), errors
