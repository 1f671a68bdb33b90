"""The record contract: content hashes and the resubmission outcome (DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Head:
    """What the receiver holds for a uuid: its latest revision."""

    form: str
    post: str
    revision: int
    hash: str


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    revision: int  # the revision stored, or the receiver's latest one
    code: str = ""  # machine-readable reason for rejected


def now() -> str:
    """UTC now as ISO 8601 with a Z: `now() == "2026-11-21T13:05:00.123456Z"`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def is_uuid(value: object) -> bool:
    """True for a canonical lowercase uuid string: `is_uuid(new_uuid())`."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuidlib.UUID(value)) == value
    except ValueError:
        return False


def content_hash(answers: dict) -> str:
    """A stable hash of the answers, whatever their key order: `content_hash({"a": 1})`."""
    canonical = json.dumps(answers, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def revision_hash(answers: dict, deleted: bool = False) -> str:
    """The hash a revision carries: a tombstone keeps the answers it deleted, and differs."""
    return content_hash({"_deleted": True, "answers": answers}) if deleted else content_hash(answers)


def decide(
    head: Head | None, *, form: str, post: str, base_revision: int, hash: str,
    stored_next_hash: str | None = None,
) -> Decision:
    """Apply the resubmission contract to one incoming revision.

    `base_revision` is the revision the sender edited (0 for a new record); `stored_next_hash` is
    the hash of the receiver's revision `base_revision + 1`, if it has one: equal to `hash`, the
    incoming revision was stored before (a resend after a lost acknowledgement), however many
    revisions came after it.
    """
    if head is None:
        if base_revision != 0:
            return Decision(Outcome.REJECTED, 0, "unknown_record")
        return Decision(Outcome.STORED, 1)
    if head.form != form or head.post != post:
        return Decision(Outcome.REJECTED, head.revision, "uuid_taken")
    if stored_next_hash == hash:
        return Decision(Outcome.DUPLICATE, base_revision + 1)
    if head.revision == base_revision:
        if head.hash == hash:  # an edit that changes nothing adds no revision
            return Decision(Outcome.DUPLICATE, head.revision)
        return Decision(Outcome.STORED, head.revision + 1)
    return Decision(Outcome.CONFLICT, head.revision)
