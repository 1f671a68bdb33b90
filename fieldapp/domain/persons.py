"""Who a record is about. A person is a participant registration or an intake; an intake made for
a registered participant points at the participant, so the person stays one. Central may find that
two persons are one (duplicates registered at different posts) and merge them: a `person_merge`
record says which person survives; the person records themselves are never rewritten."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable

# A fixed namespace: the same course and person give the same enrolment uuid on every device.
_ENROLMENT = uuidlib.UUID("6f1d3c52-8a1e-4c55-9a57-2f0d6f8c1e01")
_MARK = uuidlib.UUID("0b7d9a3e-52c4-4f0e-8d61-93a2e4c7b5d2")
_CERTIFICATE = uuidlib.UUID("5c0e2f7a-1d3b-4a9e-b6c8-7e4d2a1f9b03")
_MERGE = uuidlib.UUID("3e8b1f4c-7a2d-4e6f-9c05-d81a6b2e4f17")
PERSON_FORMS = ("intake", "participant")
MERGE_FORM = "person_merge"
# Central's erasure of a person's records at their request (fieldapp/domain/subjects.py).
ERASURE_FORM = "erasure"
# Forms only central writes: a device that pushes one is refused.
CENTRAL_FORMS = (MERGE_FORM, ERASURE_FORM)
# The verdicts on a pair of persons, and which verdict may follow which (None: never judged).
# "unmerged" is a merge undone: the pair may be judged again.
MERGED, DISTINCT, UNMERGED = "merged", "distinct", "unmerged"
_NEXT = {None: {MERGED, DISTINCT}, UNMERGED: {MERGED, DISTINCT}, MERGED: {UNMERGED}, DISTINCT: set()}


def person_id(record: dict) -> str:
    """The person a participant or intake record is about: `person_id(intake) == intake["uuid"]`."""
    return record.get("person") or record["uuid"]


def enrolment_uuid(course: str, person: str) -> str:
    """The one enrolment uuid of a person on a course."""
    return str(uuidlib.uuid5(_ENROLMENT, f"{course}:{person}"))


def mark_uuid(session: str, person: str) -> str:
    """The one attendance-mark uuid of a person at a session; a new tap is a new revision."""
    return str(uuidlib.uuid5(_MARK, f"{session}:{person}"))


def certificate_uuid(course: str, person: str) -> str:
    """The one certificate uuid of a person for a course."""
    return str(uuidlib.uuid5(_CERTIFICATE, f"{course}:{person}"))


def pair(a: str, b: str) -> tuple[str, str]:
    """A pair of persons in its one order: `pair(b, a) == pair(a, b)`."""
    return (a, b) if a < b else (b, a)


def merge_uuid(a: str, b: str, post: str) -> str:
    """The uuid of the verdict on a pair of persons as kept for one post (either order of a, b)."""
    first, second = pair(a, b)
    return str(uuidlib.uuid5(_MERGE, f"{first}:{second}:{post}"))


def may_follow(current: str | None, verdict: str) -> bool:
    """Whether a pair judged `current` (None: never) may now be judged `verdict`."""
    return verdict in _NEXT.get(current, set())


def resolve(merges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each merged person's survivor, chains followed: `resolve([(a, b), (b, c)]) == {a: c, b: c}`.

    `merges` holds (merged, survivor) pairs. A cycle (which central never writes) resolves to its
    smallest id, so every id still resolves to exactly one person."""
    into = dict(merges)
    resolved: dict[str, str] = {}
    for start in into:
        path, seen, current = [start], {start: 0}, into[start]
        while current in into and current not in seen:
            seen[current] = len(path)
            path.append(current)
            current = into[current]
        if current in seen:  # came back round
            current = min(path[seen[current]:])
        if current != start:
            resolved[start] = current
    return resolved
