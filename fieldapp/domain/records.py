"""The record contract: content hashes and the resubmission outcome (DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import orjson


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


@dataclass(slots=True)
class Head:
    """What the receiver holds for a uuid: its latest revision."""

    form: str
    post: str
    revision: int
    hash: str


@dataclass(slots=True)
class Decision:
    outcome: Outcome
    revision: int  # the revision stored, or the receiver's latest one
    code: str = ""  # machine-readable reason for rejected


def now() -> str:
    """UTC now as ISO 8601 with a Z: `now() == "2026-11-21T13:05:00.123456Z"`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uuid() -> str:
    return str(uuidlib.uuid4())


# What str(uuid.UUID(value)) writes: 8-4-4-4-12 lowercase hex digits.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_uuid(value: object) -> bool:
    """True for a canonical lowercase uuid string: `is_uuid(new_uuid())`."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(value) -> str:
    """The answers as the text that is hashed and stored: keys sorted, no spaces, non-ASCII as is,
    as `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes them.

    orjson writes that text about four times faster, and central hashes every revision it
    receives. What orjson will not write (an integer beyond 64 bits, a lone surrogate, deep
    nesting) the standard library does. Only a float may read differently (`1e-07` here is
    `1e-7` there): answers hold text, integers and lists, never floats."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return _canonical_json(value)


def revision_hash(answers: dict, deleted: bool = False) -> str:
    """The hash a revision carries: a tombstone keeps the answers it deleted, and differs."""
    return text_hash(canonical(answers), deleted)


def text_hash(text: str, deleted: bool = False) -> str:
    """`revision_hash` of answers already encoded by `canonical`, without encoding them again.

    A tombstone hashes `{"_deleted": True, "answers": answers}`, whose canonical text wraps the
    answers' own (its keys sort "_deleted" first)."""
    if deleted:
        text = f'{{"_deleted":true,"answers":{text}}}'
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
