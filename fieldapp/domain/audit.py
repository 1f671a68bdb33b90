"""The audit log's rules: what an event row is, how it is hashed into the chain, how a chain is
checked, which intake sections are sensitive enough that viewing them is an event, and how the
admin page's filters are read. No SQL, no Flask: storage/audit.py writes and reads the rows."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fieldapp.domain.records import canonical  # the one JSON text of a value


def N_(message: str) -> str:
    """Mark a message for translation; the caller translates it."""
    return message


# The hash the first row links to.
GENESIS = "0" * 64
# The columns a row's hash covers, in this order (all of them but the hash itself).
HASHED = ("seq", "at", "actor_kind", "actor_id", "actor_name", "event", "target_kind", "target_id",
          "details", "address", "prev_hash")
COLUMNS = (*HASHED, "hash")

ACTOR_KINDS = ("user", "device", "system", "anonymous")
EVENT = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
TARGET_KIND = re.compile(r"^[a-z][a-z_]{0,19}$")
TARGET_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.:@-]{0,127}$")

# Every event code fieldapp records. The admin page offers these in its filter; a code recorded
# by a later version is still shown and found by its code.
EVENTS = (
    "auth.login", "auth.login_failed", "auth.logout",
    "record.viewed", "record.created", "record.edited", "record.deleted",
    "sync.push", "sync.pull", "sync.finish", "sync.bundle_imported", "device.registered",
    "device.enrolled", "device.revoked",
    "sync.run", "sync.failed", "sync.enrolled", "sync.bundle_exported", "sync.receipt_imported",
    "export.started", "export.downloaded",
    "person.merged", "person.distinct", "person.unmerged",
    "account.created", "account.updated", "account.password_reset", "account.password_changed",
    "auth.login_throttled", "device.replaced",
    "backup.made", "backup.restored", "retention.purged",
    "subject.produced", "subject.corrected", "subject.erased", "subject.erased_at_post",
    "audit.anchored",
)

# Intake sections whose display is recorded as `record.viewed`: those the form marks sensitive
# (specific needs), and identity documents and migratory status, which are as harmful in the
# wrong hands. A rule here rather than a flag in the form files: it applies to every version.
AUDITED_SECTIONS = frozenset({"document", "migration", "needs"})


def audited_sections(sections: Iterable) -> list[str]:
    """The ids of the shown sections whose viewing is an event: `audited_sections(shown)`."""
    return [s.id for s in sections if s.sensitive or s.id in AUDITED_SECTIONS]


def row_hash(row: dict) -> str:
    """SHA-256 of a row's canonical encoding, the previous row's hash included (`prev_hash`)."""
    return hashlib.sha256(canonical([row[c] for c in HASHED]).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """The last row's number and hash, kept outside the table: what a deleted tail leaves behind."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Problem:
    """The first row where the chain breaks, and why (a code: see `PROBLEMS`)."""

    seq: int
    code: str
    last: int = 0  # the last row's number, for `truncated` and `no_anchor`
    anchor: int = 0  # the row the anchor records, for `truncated`


PROBLEMS = {
    "missing": N_("row %(seq)s is missing (deleted, or numbered out of sequence)"),
    "unlinked": N_("row %(seq)s does not follow the row before it (a row inserted, deleted or "
                   "moved)"),
    "altered": N_("row %(seq)s was altered: its content does not match its hash"),
    "truncated": N_("row %(seq)s and those after it are missing: the log ends at row %(last)s, "
                    "the anchor records row %(anchor)s (the last rows were deleted)"),
    "anchor_mismatch": N_("row %(seq)s differs from the one the anchor records: the log was "
                          "rewritten from there"),
    "no_anchor": N_("the anchor file is missing or unreadable, so deleted last rows could not be "
                    "detected (the log ends at row %(last)s)"),
}


@dataclass(frozen=True)
class Verdict:
    rows: int
    problem: Problem | None = None
    unanchored: int = 0  # rows after the anchor: written after it was last updated

    @property
    def ok(self) -> bool:
        return self.problem is None


def check(rows: Iterable[dict], anchor: Anchor | None) -> Verdict:
    """Walk a chain in `seq` order and name the first row that breaks it.

    Rows after the anchor are accepted (the anchor is updated after each commit, so a crash can
    leave it one step behind); a row the anchor names must be there, with the anchor's hash."""
    expected, previous, count, at_anchor = 1, GENESIS, 0, None
    for row in rows:
        if row["seq"] != expected:
            return Verdict(count, Problem(expected, "missing"))
        if row["prev_hash"] != previous:
            return Verdict(count, Problem(row["seq"], "unlinked"))
        if row_hash(row) != row["hash"]:
            return Verdict(count, Problem(row["seq"], "altered"))
        if anchor is not None and row["seq"] == anchor.seq:
            at_anchor = row["hash"]
        previous, expected, count = row["hash"], expected + 1, count + 1
    if anchor is None:
        return Verdict(count, Problem(1, "no_anchor", count) if count else None)
    if anchor.seq > count:
        return Verdict(count, Problem(count + 1, "truncated", count, anchor.seq))
    if anchor.seq and at_anchor != anchor.hash:
        return Verdict(count, Problem(anchor.seq, "anchor_mismatch"))
    return Verdict(count, None, count - anchor.seq)


# The admin page's filters ------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    event: str = ""
    user: str = ""  # a username or a device id, as the row's actor_name
    start: str = ""  # ISO date, inclusive (UTC)
    end: str = ""  # ISO date, inclusive (UTC)
    target: str = ""  # a record uuid, an account id, a device id…

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


ACTOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$")


def parse_filter(args) -> tuple[Filter, dict[str, str]]:
    """(filter, errors) from query arguments; errors map an argument to an English message."""
    values = {k: (args.get(k) or "").strip() for k in ("event", "user", "start", "end", "target")}
    errors = {}
    if values["event"] and not (EVENT.match(values["event"]) and len(values["event"]) <= 64):
        errors["event"] = N_("Choose an event from the list.")
    if values["user"] and not ACTOR_NAME.match(values["user"]):
        errors["user"] = N_("Enter a username or a device id, as the log shows them.")
    if values["target"] and not TARGET_ID.match(values["target"]):
        errors["target"] = N_("Enter an identifier as the log shows it (a record's uuid, an "
                              "account number, a device id).")
    for key in ("start", "end"):
        if values[key]:
            try:
                date.fromisoformat(values[key])
                if len(values[key]) != 10:
                    raise ValueError
            except ValueError:
                errors[key] = N_("Enter a date as YYYY-MM-DD.")
    if not errors.keys() & {"start", "end"} and values["start"] and values["end"] \
            and values["start"] > values["end"]:
        errors["end"] = N_("The end date is before the start date.")
    return Filter(**values), errors
