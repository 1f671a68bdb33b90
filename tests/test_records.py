"""Intake records: the record contract, revisions and history, search, and post isolation."""

from __future__ import annotations

import json
import threading
import uuid as uuidlib
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.domain.records import (
    Head,
    Outcome,
    canonical,
    decide,
    is_uuid,
    revision_hash,
    text_hash,
)
from fieldapp.forms import schema
from fieldapp.storage import records
from tests.conftest import POST_A, POST_B, valid_intake

INTAKE = schema.get("intake")


def _save(db, *, post=POST_A, uuid=None, base=0, **answers):
    answers = {"given_names": "Ana", "first_surname": "Pérez", **answers}
    sub = records.Submission(uuid or str(uuidlib.uuid4()), INTAKE, answers, post, "dev", "officer",
                             base_revision=base)
    return sub.uuid, records.save(db, sub)


# The resubmission contract, as a table: (receiver's head, base revision, same content?) -> outcome
# The receiver holds revisions 1 (h1), 2 (h2) and 3 (h3) of a record.
HEAD = Head(form="intake", post=POST_A, revision=3, hash="h3")
STORED_HASHES = {1: "h1", 2: "h2", 3: "h3"}
CONTRACT = [
    ("new uuid", None, 0, "h1", Outcome.STORED, 1),
    ("edit of an unknown record", None, 3, "h1", Outcome.REJECTED, 0),
    ("next revision", HEAD, 3, "h4", Outcome.STORED, 4),
    ("latest revision resent", HEAD, 2, "h3", Outcome.DUPLICATE, 3),
    ("an older revision resent", HEAD, 1, "h2", Outcome.DUPLICATE, 2),
    ("the creation resent", HEAD, 0, "h1", Outcome.DUPLICATE, 1),
    ("edit that changes nothing", HEAD, 3, "h3", Outcome.DUPLICATE, 3),
    ("stale base, new content", HEAD, 1, "h9", Outcome.CONFLICT, 3),
    ("a second creation, other content", HEAD, 0, "h9", Outcome.CONFLICT, 3),
    ("base from the future", HEAD, 5, "h9", Outcome.CONFLICT, 3),
]


@pytest.mark.parametrize(("case", "head", "base", "digest", "outcome", "revision"), CONTRACT,
                         ids=[c[0] for c in CONTRACT])
def test_resubmission_contract(case, head, base, digest, outcome, revision):
    stored = STORED_HASHES.get(base + 1) if head else None
    decision = decide(head, form="intake", post=POST_A, base_revision=base, hash=digest,
                      stored_next_hash=stored)
    assert (decision.outcome, decision.revision) == (outcome, revision)


def test_resending_an_older_revision_stores_nothing(db):
    u, _ = _save(db, notes="a")
    _save(db, uuid=u, base=1, notes="b")
    _save(db, uuid=u, base=2, notes="c")
    again = _save(db, uuid=u, base=1, notes="b")[1]
    assert (again.outcome, again.revision) == (Outcome.DUPLICATE, 2)
    assert [h["revision"] for h in records.history(db, u)] == [1, 2, 3]
    assert db.execute("SELECT count(*) FROM changes WHERE kind = 'record'").fetchone()[0] == 3


@pytest.mark.parametrize(("form", "post"), [("attendance", POST_A), ("intake", POST_B)])
def test_a_uuid_belongs_to_one_form_and_post(form, post):
    decision = decide(HEAD, form=form, post=post, base_revision=3, hash="h4")
    assert (decision.outcome, decision.code) == (Outcome.REJECTED, "uuid_taken")


def test_revision_hash_ignores_key_order():
    assert revision_hash({"a": 1, "b": [1, 2]}) == revision_hash({"b": [1, 2], "a": 1})
    assert revision_hash({"a": 1}) != revision_hash({"a": 2})


# The hashes as the protocol defines them (docs/sync-protocol.md), spelled out independently.
def _spec_hash(answers: dict, deleted: bool) -> str:
    import hashlib

    value = {"_deleted": True, "answers": answers} if deleted else answers
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("answers", [
    {}, {"a": 1}, {"given_names": "María José", "notes": "línea 1\nlínea 2 \"citada\" \\ \u2028"},
    {"z": ["b", "a"], "a": {"nested": [1, 2, {"k": "ñ"}]}, "_deleted": "x", "answers": 3},
    {"emoji": "\U0001F600", "zero": 0, "neg": -5, "list": []},
])
@pytest.mark.parametrize("deleted", [False, True])
def test_hashing_the_canonical_text_is_the_revision_hash(answers, deleted):
    assert revision_hash(answers, deleted) == _spec_hash(answers, deleted)
    assert text_hash(canonical(answers), deleted) == _spec_hash(answers, deleted)
    assert json.loads(canonical(answers)) == answers


# What answers can hold, and more: text of any kind (control characters, line separators, emoji),
# integers beyond 64 bits, booleans, null, nested lists and objects. Not floats: no form makes
# one, and orjson writes some of them differently (`1e-7` for `1e-07`).
_ANSWER_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25)


@settings(max_examples=1000, deadline=None)
@given(_ANSWER_LIKE)
def test_canonical_is_the_json_text_the_protocol_defines(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(value) == expected


def test_canonical_writes_what_orjson_refuses_as_json_does():
    for value in ({"big": 2**64}, {"s": "a\ud800b"}):
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical(value) == expected
    deep: list = []
    for _ in range(300):  # deeper than orjson writes
        deep = [deep]
    assert canonical({"x": deep}) == json.dumps({"x": deep}, separators=(",", ":"))


@pytest.mark.parametrize("value", [
    str(uuidlib.uuid4()), "00000000-0000-0000-0000-000000000000", str(uuidlib.uuid1()),
    str(uuidlib.uuid4()).upper(), "{" + str(uuidlib.uuid4()) + "}", "urn:uuid:" + str(uuidlib.uuid4()),
    str(uuidlib.uuid4()) + "\n", str(uuidlib.uuid4())[:-1] + "g", str(uuidlib.uuid4()).replace("-", ""),
    str(uuidlib.uuid4())[:35], "", "-" * 36, "٣" * 8 + "-" + str(uuidlib.uuid4())[9:], None, 12, b"x",
])
def test_is_uuid_accepts_what_the_uuid_module_writes_and_nothing_else(value):
    def by_the_module(v) -> bool:
        try:
            return isinstance(v, str) and len(v) == 36 and str(uuidlib.UUID(v)) == v
        except ValueError:
            return False

    assert is_uuid(value) == by_the_module(value)


def test_a_revision_is_stored_as_its_canonical_text(db):
    u, decision = _save(db, given_names="María", first_surname="Núñez")
    assert decision.outcome is Outcome.STORED
    data, head_hash = db.execute("SELECT data, hash FROM records WHERE uuid = ?", [u]).fetchone()
    (history,) = db.execute("SELECT data FROM revisions WHERE uuid = ?", [u]).fetchone()
    assert data == history == canonical(json.loads(data))
    assert head_hash == _spec_hash(json.loads(data), False)


def test_double_submit_of_the_same_form_stores_one_record(db, client_as):
    officer = client_as("officer")
    data = valid_intake()
    first = officer.post_form("/en/intake/new", data)
    second = officer.post_form("/en/intake/new", data)
    assert first.status_code == second.status_code == 302
    assert first.location == second.location == f"/en/records/{data['uuid']}"
    assert records.count(db, "intake", None) == 1
    assert len(records.history(db, data["uuid"])) == 1
    assert db.execute("SELECT count(*) FROM changes WHERE kind = 'record'").fetchone()[0] == 1
    assert "already saved" in officer.get(second.location).text


def test_record_carries_the_contract_fields(db, client_as):
    data = valid_intake()
    client_as("officer").post_form("/en/intake/new", data)
    record = records.get(db, data["uuid"])
    assert record["form"] == "intake" and record["form_version"] == 1
    assert record["post"] == POST_A and record["device"] == "device-test"
    assert record["created_by"] == "officer" and record["revision"] == 1
    assert record["created_at"].endswith("Z") and record["hash"] == revision_hash(record["answers"])
    assert record["answers"]["migration_reasons"] == ["economic", "family"]


def test_an_edit_is_a_new_revision_and_history_keeps_the_old(db, client_as):
    officer = client_as("officer")
    data = valid_intake()
    officer.post_form("/en/intake/new", data)
    edit_url = f"/en/records/{data['uuid']}/edit"
    edited = dict(data, base_revision="1", first_surname="Gómez")
    response = officer.post_form(edit_url, edited)
    assert response.status_code == 302

    assert records.get(db, data["uuid"])["answers"]["first_surname"] == "Gómez"
    history = records.history(db, data["uuid"])
    assert [(h["revision"], h["answers"]["first_surname"]) for h in history] == [
        (1, "García"), (2, "Gómez")]
    page = officer.get(f"/en/records/{data['uuid']}").text
    assert "Revision 2" in page
    assert '<span class="meta">changed: First surname</span>' in page
    old = officer.get(f"/en/records/{data['uuid']}?revision=1").text
    assert "García" in old and "earlier version" in old


def test_edit_form_is_prefilled_with_the_latest_answers(client_as):
    officer = client_as("officer")
    data = valid_intake()
    officer.post_form("/en/intake/new", data)
    page = officer.get(f"/en/records/{data['uuid']}/edit").text
    assert 'value="María José"' in page
    assert 'name="base_revision" type="hidden" value="1"' in page
    assert 'value="VE" selected' in page


def test_a_stale_edit_is_a_conflict_and_keeps_the_input(db, client_as):
    officer, supervisor = client_as("officer"), client_as("supervisor")
    data = valid_intake()
    officer.post_form("/en/intake/new", data)
    url = f"/en/records/{data['uuid']}/edit"
    assert supervisor.post_form(url, dict(data, base_revision="1", notes="first")).status_code == 302
    response = officer.post_form(url, dict(data, base_revision="1", notes="second edit"))
    assert response.status_code == 422
    assert "changed this record since you opened it" in response.text
    assert "second edit" in response.text
    assert records.get(db, data["uuid"])["answers"]["notes"] == "first"
    assert len(records.history(db, data["uuid"])) == 2


def test_edit_posting_another_uuid_is_refused(db, client_as):
    officer = client_as("officer")
    a, b = valid_intake(), valid_intake(given_names="Otra")
    officer.post_form("/en/intake/new", a)
    officer.post_form("/en/intake/new", b)
    response = officer.post_form(f"/en/records/{a['uuid']}/edit",
                                 dict(b, base_revision="1", notes="x"))
    assert response.status_code == 422
    assert [h["revision"] for h in records.history(db, b["uuid"])] == [1]


def test_refused_consent_stores_an_anonymous_record(db, client_as):
    data = valid_intake(consent="refused", age_group="25_59")
    response = client_as("officer").post_form("/en/intake/new", data)
    assert response.status_code == 302
    record = records.get(db, data["uuid"])
    assert record["title"] == "" and record["doc_key"] == ""
    assert "García" not in json.dumps(record["answers"], ensure_ascii=False)
    assert "AB123456" not in json.dumps(record["answers"])


SEARCH = [
    ("maria", True), ("MARÍA", True), ("garcia", True), ("garc", True), ("nunez", True),
    ("jose garcia", True), ("garcia maria", True), ("ab123456", True), ("AB-1234", True),
    ("ab 123", True), ("pedro", False), ("123456", False), ("%", False), ("\"", False),
    ("' OR 1=1 --", False), ("NEAR(", False),
]


@pytest.mark.parametrize(("query", "found"), SEARCH)
def test_search_by_name_or_document(db, client_as, query, found):
    officer = client_as("officer")
    officer.post_form("/en/intake/new", valid_intake())
    _save(db, given_names="Pedro", first_surname="Luna", post=POST_B)
    response = officer.get("/en/records", query_string={"q": query})
    assert response.status_code == 200
    assert ("María José García Núñez" in response.text) is found


def test_search_pages_through_many_records(app, db, client_as):
    app.config["PAGE_SIZE"] = 10
    for i in range(25):
        _save(db, given_names=f"Rosa{i:02d}", first_surname="Quispe")
    officer = client_as("officer")
    seen, url = [], "/en/records?q=quispe"
    while url:
        page = officer.get(url).text
        seen += [n for n in (f"Rosa{i:02d}" for i in range(25)) if n + " Quispe" in page]
        marker = 'href="/en/records?'
        url = None
        if "Older records" in page:
            start = page.rindex(marker) + len('href="')
            url = page[start:page.index('"', start)].replace("&amp;", "&")
    assert sorted(seen) == [f"Rosa{i:02d}" for i in range(25)]
    assert len(seen) == 25  # every record once, no page repeats one


def test_officers_see_only_their_posts_records(db, client_as):
    uuid_b, _ = _save(db, given_names="Pedro", first_surname="Luna", post=POST_B)
    officer = client_as("officer")
    assert "Pedro Luna" not in officer.get("/en/records").text
    assert officer.get(f"/en/records/{uuid_b}").status_code == 404
    assert officer.get(f"/en/records/{uuid_b}/edit").status_code == 404
    assert "Pedro Luna" in client_as("officer_b").get("/en/records").text
    assert "Pedro Luna" in client_as("central").get("/en/records").text


def test_edit_keeps_the_records_post(db, client_as):
    uuid_b, _ = _save(db, post=POST_B, **{k: v for k, v in valid_intake().items()
                                            if k not in ("uuid", "base_revision", "form_version")})
    central = client_as("central")
    data = dict(valid_intake(), uuid=uuid_b, base_revision="1", notes="central fix")
    assert central.post_form(f"/en/records/{uuid_b}/edit", data).status_code == 302
    assert records.get(db, uuid_b)["post"] == POST_B


def test_concurrent_writers_lose_nothing(db, app):
    """Many threads saving at once: one writer at a time, every record stored exactly once."""
    from fieldapp.storage.db import connect

    errors, uuids = [], [str(uuidlib.uuid4()) for _ in range(40)]

    def worker(chunk):
        conn = connect(app.config["DATABASE"])
        try:
            for u in chunk:
                for _ in range(2):  # each sent twice: the second is a duplicate
                    _save(conn, uuid=u)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(uuids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert records.count(db, "intake", None) == 40
    assert db.execute("SELECT count(*) FROM changes WHERE kind = 'record'").fetchone()[0] == 40


def test_storage_settings(db):
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_migrations_are_recorded_and_idempotent(db):
    from fieldapp.storage import migrations

    names = [m.name for m in migrations.migrations.pending(db)] + [
        m.name for m in migrations.migrations.applied(db)]
    assert migrations.schema_version(db) == sorted(names)[-1]
    assert migrations.apply(db) == []


def test_change_feed_follows_commit_order(db):
    first, _ = _save(db)
    _save(db, uuid=first, base=1, notes="x")
    second, _ = _save(db)
    _save(db, uuid=first, base=1, notes="x")  # a duplicate adds nothing to the feed
    feed = [tuple(r) for r in db.execute(
        "SELECT uuid, revision FROM changes WHERE kind = 'record' ORDER BY seq")]
    assert feed == [(first, 1), (first, 2), (second, 1)]
    first = db.execute("SELECT at FROM changes WHERE kind = 'record'").fetchone()[0]
    assert date.today().isoformat()[:4] in first


def test_earlier_answers_are_withheld_once_a_record_is_anonymous(db, client_as):
    officer = client_as("officer")
    data = valid_intake()
    officer.post_form("/en/intake/new", data)
    url = f"/en/records/{data['uuid']}"
    refused = dict(data, base_revision="1", consent="refused", age_group="25_59")
    assert officer.post_form(url + "/edit", refused).status_code == 302
    earlier = officer.get(url + "?revision=1").text
    assert "María José" not in earlier and "AB123456" not in earlier
    assert "now anonymous" in earlier
    assert "María José" not in officer.get(url).text


def test_links_are_kept_and_queryable(db):
    course, _ = _save(db)
    person, _ = _save(db)
    enrolment = records.Submission(str(uuidlib.uuid4()), INTAKE, {"notes": "x"}, POST_A, "dev",
                                   "officer", parent=course, person=person)
    records.save(db, enrolment)
    edited = records.Submission(enrolment.uuid, INTAKE, {"notes": "y"}, POST_A, "dev", "officer",
                                base_revision=1)
    records.save(db, edited)  # an edit does not move the record
    [child] = records.children(db, course, "intake")
    assert (child["uuid"], child["person"], child["revision"]) == (enrolment.uuid, person, 2)
    assert [r["uuid"] for r in records.about_person(db, person, "intake")] == [enrolment.uuid]
    assert records.children(db, person, "intake") == []
