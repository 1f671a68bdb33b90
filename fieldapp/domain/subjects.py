"""Data subject requests: which records are about a person, and the rules of erasing them.

A person is a group of person records (a participant registration or an intake, and every person
merged into it). Everything about them is: those records, the records that point at them (an
intake made for a registered participant, enrolments, attendance marks, certificates) and the
verdicts of central that name them (person_merge). An erasure empties every revision of each of
those records and leaves an `erasure` record per post: who, when, the request's reference and the
reason, and the person ids, never any personal data."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable

from fieldapp.domain.persons import ERASURE_FORM, MERGE_FORM

_ERASURE = uuidlib.UUID("9a4c2e71-3b5d-4f08-a6e2-c1d7b9f05e34")
REASONS = ("request", "consent_withdrawn", "unlawful", "other")
MAX_REFERENCE = 100
# What an erased revision holds instead of its answers and their hash: nothing to recognise them by.
ERASED_HASH = "erased"


def N_(message: str) -> str:
    """Marks a message for the catalogs; the caller translates it (pybabel's default keyword)."""
    return message


def erasure_uuid(request: str, post: str) -> str:
    """The uuid of an erasure's record kept for one post."""
    return str(uuidlib.uuid5(_ERASURE, f"{request}:{post}"))


def is_about(record: dict, ids: Iterable[str]) -> bool:
    """Whether a record is about any of these person ids: `is_about(intake, [intake["uuid"]])`."""
    ids = set(ids)
    if record["form"] == MERGE_FORM:
        answers = record.get("answers") or {}
        return answers.get("survivor") in ids or answers.get("merged") in ids
    if record["form"] == ERASURE_FORM:
        return False
    return record["uuid"] in ids or record.get("person", "") in ids


def check_request(reason: str, reference: str) -> dict[str, str]:
    """What is wrong with an erasure request (English source strings), by field."""
    errors = {}
    if reason not in REASONS:
        errors["reason"] = N_("Choose the reason for the erasure.")
    reference = reference.strip()
    if not reference:
        errors["reference"] = N_("Give the request's reference (not the person's name).")
    elif len(reference) > MAX_REFERENCE or any(ord(c) < 32 for c in reference):
        errors["reference"] = N_("A reference is at most 100 characters, on one line.")
    return errors


def erasure_answers(persons: list[str], reason: str, reference: str, records: int) -> dict:
    """The answers of an erasure's record for one post."""
    return {"persons": " ".join(sorted(persons)), "reason": reason, "reference": reference.strip(),
            "records": records}
