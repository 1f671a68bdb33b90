"""Property-based, stateful: random creates, edits and deletes on two field servers and central,
random clean and faulty syncs, conflicts resolved at central; after a final sync all three agree.

Each example gets two new posts (two field databases enrolled at the module's central server), so
examples do not see each other's records. The model remembers what was written where: which uuids
each field created and every revision a field made (with the revision it was made from), to check
that none is lost and that central applied each one on top of the revision it was made from.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fieldapp.domain.merge import merge
from fieldapp.forms import schema
from fieldapp.storage import db as storage_db
from fieldapp.storage import records
from fieldapp.storage import sync as store
from sync import client, server
from tests.sync.harness import Central, Field, central_edit, heads, integrity, revisions
from tests.sync.tcpproxy import FaultyProxy

SIDES = ("A", "B")
# The questions edits change, with a few values each (the intake's first notes among them, so an
# edit can also put a question back as it was). Every combination passes the intake form.
QUESTIONS = {
    "notes": ["Llegó por tierra.", "Nota A", "Nota B"],
    "occupation": ["isco_5", "isco_7", "isco_9"],
    "employment_status": ["unemployed", "employed", "student"],
}
CHANGES = st.tuples(st.sampled_from(list(QUESTIONS)), st.integers(0, 2))  # (question, value index)
EDITS = st.lists(CHANGES, min_size=1, max_size=3)  # successive edits of one record, between syncs
PICK = st.integers(min_value=0, max_value=10_000)  # an index into what exists when the rule runs
RECORDS = 3  # live records per post at most: few, so that edits on both sides often meet
FINAL_ROUNDS = 4

_examples = itertools.count(1)


def changed(record: dict, question: str, choice: int) -> dict:
    """`{question: value}` with the chosen value, or the next one if the record has that already:
    an edit that changes nothing would be no revision."""
    values = QUESTIONS[question]
    value = values[choice % len(values)]
    if record["answers"][question] == value:
        value = values[(choice + 1) % len(values)]
    return {question: value}


def live(conn, post: str) -> list[str]:
    """The uuids of a post's records that are not deleted, oldest first."""
    return [r[0] for r in conn.execute(
        "SELECT uuid FROM records WHERE post = ? AND deleted = 0 ORDER BY id", [post])]


def sync_until_quiet(field: Field) -> list[tuple[int, int]]:
    """Sync cleanly until a sync sends nothing and pulls nothing; (sent, pulled) per sync."""
    rounds = []
    for _ in range(FINAL_ROUNDS):
        done = field.sync()
        rounds.append((done.sent, done.pulled))
        if done.sent == 0 and done.pulled == 0:
            break
    return rounds


def central_revision(conn, uuid: str, revision: int) -> dict | None:
    row = conn.execute("SELECT hash, data, deleted, origin FROM revisions WHERE uuid = ? AND revision = ?",
                       [uuid, revision]).fetchone()
    if row is None:
        return None
    return {"hash": row[0], "answers": json.loads(row[1]), "deleted": bool(row[2]),
            "origin": row[3]}


@dataclass(frozen=True)
class FieldWrite:
    """A revision a field server made, and the one it was made from (None for a new record)."""

    side: str
    uuid: str
    revision: int
    hash: str
    answers: dict
    deleted: bool
    parent: dict | None  # records.get() of the record before the write


class SyncMachine(RuleBasedStateMachine):
    """Two posts A and B, central, and the network between them. Set `central`, `tmp`, `proxy`
    and `template` on the class before running it (see `run`)."""

    central: Central
    tmp: Path
    proxy: FaultyProxy
    template: Path  # an empty, migrated field database to copy

    def __init__(self):
        super().__init__()
        n = next(_examples)
        self.conn = self.central.db()
        self.fields: dict[str, Field] = {}
        for side in SIDES:
            self.fields[side] = self._new_field(f"S{n:04d}{side}")
        self.made: dict[str, set[str]] = {side: set() for side in SIDES}  # uuids created per side
        self.writes: list[FieldWrite] = []

    def _new_field(self, post: str) -> Field:
        """As harness.Field.create and .enrol, a little faster: a copy of a migrated database."""
        path = self.tmp / post / "fieldapp.db"
        path.parent.mkdir(parents=True)
        with sqlite3.connect(self.template) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        f = Field(path, post, db=storage_db.connect(path))
        f.enrol(self.central, server.register(self.conn, post=post, name="laptop", by="test")[1])
        return f

    # What the rules look at ------------------------------------------------------------------

    def _live_on_fields(self) -> dict[str, list[str]]:
        return {side: live(f.db, f.post) for side, f in self.fields.items()}

    def _live_on_field(self) -> bool:
        return any(self._live_on_fields().values())

    def _live_at_central(self) -> bool:
        return any(live(self.conn, f.post) for f in self.fields.values())

    def _open_conflicts(self) -> list[dict]:
        posts = {f.post for f in self.fields.values()}
        return [c for c in store.conflicts(self.conn, limit=10_000) if c["post"] in posts]

    def _pick(self, side: str, pick: int, conn=None) -> tuple[str, str]:
        """A live record of `side` (of the other side if it has none), as its field server holds
        it, or as central does with `conn`: (side, uuid)."""
        for s in (side, *(s for s in SIDES if s != side)):
            uuids = live(conn or self.fields[s].db, self.fields[s].post)
            if uuids:
                return s, uuids[pick % len(uuids)]
        raise AssertionError("no live record: the precondition should have said so")

    def _write(self, side: str, uuid: str | None, write) -> str:
        """Run `write()` on a field server and remember the revision it made; `uuid` None for a new
        record, whose uuid `write()` returns."""
        db = self.fields[side].db
        parent = records.get(db, uuid) if uuid else None
        made = write()
        uuid = uuid or made
        after = records.get(db, uuid)
        self.writes.append(FieldWrite(side, uuid, after["revision"], after["hash"], after["answers"],
                                      bool(after["deleted"]), parent))
        return uuid

    # Writes on a field server ----------------------------------------------------------------

    @precondition(lambda self: min(map(len, self._live_on_fields().values())) < RECORDS)
    @rule(side=st.sampled_from(SIDES), seed=st.integers(0, 2**32 - 1))
    def create(self, side, seed):
        if len(self._live_on_fields()[side]) >= RECORDS:
            side = next(s for s in SIDES if s != side)
        f = self.fields[side]
        self.made[side].add(self._write(side, None, lambda: f.intake(random.Random(seed))))

    @precondition(_live_on_field)
    @rule(side=st.sampled_from(SIDES), pick=PICK, changes=EDITS)
    def edit(self, side, pick, changes):
        """Edit a record once, or a few times over (each a revision)."""
        side, uuid = self._pick(side, pick)
        self._edit(side, uuid, changes)

    def _edit(self, side: str, uuid: str, changes: list[tuple[str, int]]) -> None:
        f = self.fields[side]
        for change in changes:
            self._write(side, uuid, lambda c=change: f.edit(uuid, **changed(records.get(f.db, uuid), *c)))

    @precondition(lambda self: max(map(len, self._live_on_fields().values())) > 1)
    @rule(side=st.sampled_from(SIDES), pick=PICK)
    def delete(self, side, pick):
        """Delete a record, never a post's last live one (more to edit, more to meet)."""
        if len(self._live_on_fields()[side]) < 2:
            side = next(s for s in SIDES if s != side)
        side, uuid = self._pick(side, pick)
        self._write(side, uuid, lambda: self.fields[side].delete(uuid))

    # Central's side --------------------------------------------------------------------------

    @precondition(_live_at_central)
    @rule(side=st.sampled_from(SIDES), pick=PICK, change=CHANGES)
    def edit_at_central(self, side, pick, change):
        _, uuid = self._pick(side, pick, self.conn)
        central_edit(self.conn, uuid, **changed(records.get(self.conn, uuid), *change))

    @precondition(_live_at_central)
    @rule(side=st.sampled_from(SIDES), pick=PICK, ours=CHANGES, theirs=EDITS, same=st.booleans())
    def edit_on_both_sides(self, side, pick, ours, theirs, same):
        """Central and the post edit the same record before the post syncs again, the same
        question first or each its own."""
        side, uuid = self._pick(side, pick, self.conn)
        if same:
            theirs = [(ours[0], theirs[0][1]), *theirs[1:]]
        central_edit(self.conn, uuid, **changed(records.get(self.conn, uuid), *ours))
        if not records.get(self.fields[side].db, uuid)["deleted"]:  # else central's edit meets that
            self._edit(side, uuid, theirs)

    @precondition(lambda self: bool(self._open_conflicts()))
    @rule(pick=PICK, theirs=st.fixed_dictionaries({q: st.booleans() for q in [*QUESTIONS, "deleted"]}))
    def resolve_conflict(self, pick, theirs):
        """Central staff decide an open conflict: per question central's value or the field's, and
        whether the record is deleted, as central has it or as the field's version says."""
        open_ = self._open_conflicts()
        conflict = open_[pick % len(open_)]
        head = records.get(self.conn, conflict["uuid"])
        chosen = {**head["answers"], **{q: conflict["answers"][q] for q in QUESTIONS if theirs[q]}}
        deleted = bool(conflict["deleted"] if theirs["deleted"] else head["deleted"])
        sub = records.Submission(
            uuid=conflict["uuid"], definition=schema.get(head["form"]), answers=chosen,
            post=head["post"], device="central", user="central1", base_revision=head["revision"],
            parent=head["parent"], person=head["person"], deleted=deleted)
        self._resolve(conflict, sub)

    @precondition(lambda self: bool(self._open_conflicts()))
    @rule(pick=PICK)
    def keep_centrals_version(self, pick):
        """Central staff close an open conflict keeping central's version as it is."""
        open_ = self._open_conflicts()
        self._resolve(open_[pick % len(open_)], None)

    def _resolve(self, conflict: dict, sub: records.Submission | None) -> None:
        decision = store.resolve(self.conn, conflict["id"], sub, by="central1")
        assert decision.outcome in ("stored", "duplicate"), decision
        assert store.conflict(self.conn, conflict["id"])["status"] == "resolved"

    # The network -----------------------------------------------------------------------------

    @rule(side=st.sampled_from(SIDES), batch_size=st.sampled_from([1, 2, 500]))
    def sync(self, side, batch_size):
        self.fields[side].sync(batch_size=batch_size)

    @rule(side=st.sampled_from(SIDES), seed=st.integers(0, 2**32 - 1),
          batch_size=st.sampled_from([1, 2, 500]),
          cut_request=st.sampled_from([0.0, 0.2, 0.5]), cut_response=st.sampled_from([0.0, 0.2, 0.5]),
          reset=st.sampled_from([0.0, 0.2]))
    def sync_through_faults(self, side, seed, batch_size, cut_request, cut_response, reset):
        """One sync through the faulty proxy, no retries: it may stop anywhere, or get through."""
        proxy = self.proxy
        with proxy.lock:
            proxy.rng = random.Random(seed)
        proxy.set(cut_request=cut_request, cut_response=cut_response, reset=reset, delay=0.0)
        try:
            self.fields[side].sync(proxy.url, batch_size=batch_size, attempts=1, backoff=0.0)
        except client.SyncError:
            pass
        finally:
            proxy.clean()

    # Invariants ------------------------------------------------------------------------------

    @invariant()
    def each_post_holds_its_own_records_only(self):
        for side, f in self.fields.items():
            others = f.db.execute("SELECT count(*) FROM records WHERE post != ?", [f.post]).fetchone()[0]
            assert others == 0, f"field {f.post} holds records of another post"
            made = sorted(self.made[side])
            if made:
                marks = ", ".join("?" * len(made))
                wrong = self.conn.execute(
                    f"SELECT uuid, post FROM records WHERE uuid IN ({marks}) AND post != ?",
                    [*made, f.post]).fetchall()
                assert wrong == [], f"central holds records of {f.post} under another post: {wrong}"

    # The end: a final sync, then everyone agrees ----------------------------------------------

    def teardown(self):
        try:
            self._converge()
        finally:
            self.conn.close()
            for f in self.fields.values():
                f.db.close()

    def _converge(self):
        for f in self.fields.values():
            rounds = sync_until_quiet(f)
            assert rounds[-1] == (0, 0), f"{f.post} still sends or pulls after {rounds}"
        conn = self.central.db()  # a fresh connection: nothing cached
        try:
            for side, f in self.fields.items():
                assert store.pending_count(f.db, int(store.state(f.db)["push_checkpoint"])) == 0
                assert heads(f.db, f.post) == heads(conn, f.post), f"heads of {f.post} differ"
                assert revisions(f.db, f.post) == revisions(conn, f.post), f"revisions of {f.post} differ"
                assert self.made[side] <= set(heads(conn, f.post)), f"records of {f.post} missing at central"
                numbered = {}
                for (uuid, revision), digest in sorted(revisions(conn, f.post).items()):
                    numbered.setdefault(uuid, []).append((revision, digest))
                for uuid, (revision, digest, _) in heads(conn, f.post).items():
                    assert [r for r, _ in numbered[uuid]] == list(range(1, revision + 1)), \
                        f"{uuid}: revisions {[r for r, _ in numbered[uuid]]} at central, head {revision}"
                    assert numbered[uuid][-1][1] == digest, f"{uuid}: the head is not the last revision"
                assert integrity(f.db) == "ok"
            for w in self.writes:
                kept = conn.execute(
                    "SELECT 1 FROM revisions WHERE uuid = ? AND hash = ?"
                    " UNION ALL SELECT 1 FROM conflicts WHERE uuid = ? AND hash = ?",
                    [w.uuid, w.hash, w.uuid, w.hash]).fetchone()
                assert kept, f"{w} is lost: neither a revision nor a conflict at central"
            assert integrity(conn) == "ok"
            for f in self.fields.values():
                self._check_bases(conn, f)
        finally:
            conn.close()

    def _check_bases(self, conn, f: Field) -> None:
        """Central applied each revision of a field on top of the revision the field made it from:
        stored it as the next revision only if central's previous one is that revision, merged it
        with that revision as the common base. Else an edit made at central is overwritten and
        nobody is told."""
        made = {}  # (uuid, revision, hash) -> the answers of each revision the field made it from
        for w in self.writes:
            if w.parent is not None and self.fields[w.side] is f:
                made.setdefault((w.uuid, w.revision, w.hash), {})[w.parent["hash"]] = w
        for uuid, revision, digest in conn.execute(
                "SELECT uuid, revision, hash FROM revisions WHERE origin = ? AND revision > 1"
                " ORDER BY uuid, revision", [f.device]):
            below = central_revision(conn, uuid, revision - 1)
            writes = made.get((uuid, revision, digest), {})
            if below and below["hash"] in writes:
                continue
            why = (f"central has no revision {revision - 1}" if below is None else
                   f"central's revision {revision - 1} is not the one the field made it from:"
                   f" {diff(below['answers'], next(iter(writes.values())).parent['answers'])}"
                   " (central's, the field's)" if writes else "the field made no such revision")
            raise AssertionError(f"{uuid}: central stored revision {revision} of post {f.post}, but {why}")
        for uuid, base, head, digest, resolution in conn.execute(
                "SELECT uuid, base_revision, head_revision, hash, resolution_revision FROM conflicts"
                " WHERE post = ? AND status = 'merged'", [f.post]):
            ours = central_revision(conn, uuid, head)
            actual = central_revision(conn, uuid, resolution)["answers"]
            expected = [merge(w.parent["answers"], ours["answers"], w.answers, ours_deleted=ours["deleted"],
                              theirs_deleted=w.deleted).answers
                        for w in made.get((uuid, base + 1, digest), {}).values()]
            assert actual in expected, (
                f"{uuid}: merging the field's revision {base + 1} into central's revision {head} gave"
                f" {[diff(actual, e) for e in expected]} (actual, expected)")


def diff(a: dict, b: dict | None) -> dict:
    b = b or {}
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def run(machine: type[SyncMachine], central: Central, tmp: Path, **options) -> None:
    machine.central, machine.tmp = central, tmp
    template = Field.create(tmp / "template", "TEMPLATE")
    template.db.close()
    machine.template = template.path
    machine.proxy = FaultyProxy(central.port)
    try:
        run_state_machine_as_test(machine, settings=settings(
            deadline=None, derandomize=True, database=None, suppress_health_check=[
                HealthCheck.too_slow, HealthCheck.function_scoped_fixture], **options))
    finally:
        machine.proxy.close()


def test_sync_state_machine(central, tmp_path_factory):
    """Whatever happens on the way, a final sync leaves field servers and central agreeing on every
    record and revision, every field revision kept at central, none applied on the wrong base."""
    run(SyncMachine, central, tmp_path_factory.mktemp("stateful"), max_examples=35,
        stateful_step_count=40)


# What the machine found, as a plain test ----------------------------------------------------


def test_a_third_edit_after_two_conflicts_does_not_overwrite_centrals_version(central, make_field):
    """A field revision numbered past central's head because the field's earlier ones met
    conflicts was once stored there with a gap, over central's version (the machine's first find)."""
    field = make_field()
    uuid = field.intake()
    field.sync()
    conn = central.db()
    try:
        central_edit(conn, uuid, notes="Nota de la oficina.")  # central: revision 2
        field.edit(uuid, notes="Nota del puesto.")  # the field: revision 2 (base 1)
        field.edit(uuid, occupation="isco_5")  # revision 3 (base 2, the field's own 2)
        field.edit(uuid, occupation="isco_9")  # revision 4 (base 3: central has no revision 3)
        done = field.sync()
        # The field's revisions 2 and 3 wait at central as conflicts; so must its revision 4,
        # made on top of them: until central staff decide, central's version stands.
        record = records.get(conn, uuid)
        assert record["answers"]["notes"] == "Nota de la oficina.", record["answers"]["notes"]
        assert done.counts["conflict"] == 3, done.counts
        assert [r["revision"] for r in records.history(conn, uuid)] == list(range(1, record["revision"] + 1))
    finally:
        conn.close()
