"""Who a record is about. A person is a participant registration or an intake; an intake made for
a registered participant points at the participant, so the person stays one."""

from __future__ import annotations

import uuid as uuidlib

# A fixed namespace: the same course and person give the same enrolment uuid on every device.
_ENROLMENT = uuidlib.UUID("6f1d3c52-8a1e-4c55-9a57-2f0d6f8c1e01")
_MARK = uuidlib.UUID("0b7d9a3e-52c4-4f0e-8d61-93a2e4c7b5d2")
_CERTIFICATE = uuidlib.UUID("5c0e2f7a-1d3b-4a9e-b6c8-7e4d2a1f9b03")
PERSON_FORMS = ("intake", "participant")


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
