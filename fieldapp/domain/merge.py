"""Edits in two places: a three-way merge of answers, field by field (DESIGN.md, hop 2).

`base` is the revision both sides started from, `ours` the receiver's latest, `theirs` the
incoming one. A field changed on one side only takes that side's value; a field changed on both
sides to the same value is no conflict; a field changed on both sides to different values is.
"""

from __future__ import annotations

from dataclasses import dataclass

DELETED = "_deleted"  # how a tombstone takes part in a merge: as a field that changed


@dataclass(frozen=True)
class Merge:
    answers: dict | None  # None when some field was changed on both sides
    overlap: tuple[str, ...]  # the fields changed on both sides, to different values
    changed: tuple[str, ...]  # the fields the incoming version changed


_ABSENT = object()


def merge(base: dict, ours: dict, theirs: dict, *, ours_deleted: bool = False,
          theirs_deleted: bool = False) -> Merge:
    """`merge({"a": 1}, {"a": 2}, {"a": 1, "b": 3}).answers == {"a": 2, "b": 3}`."""
    changed = tuple(sorted(n for n in set(base) | set(theirs) if base.get(n, _ABSENT)
                           != theirs.get(n, _ABSENT)))
    if ours_deleted or theirs_deleted:
        # A delete met an edit, or two deletes met: a person judges the first, the second agrees.
        if ours_deleted and theirs_deleted:
            return Merge(dict(ours), (), changed)
        return Merge(None, (DELETED,), changed)
    merged: dict = {}
    overlap = []
    for name in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = (side.get(name, _ABSENT) for side in (base, ours, theirs))
        if o == t or t == b:
            value = o
        elif o == b:
            value = t
        else:
            overlap.append(name)
            continue
        if value is not _ABSENT:
            merged[name] = value
    if overlap:
        return Merge(None, tuple(overlap), changed)
    return Merge(merged, (), changed)
