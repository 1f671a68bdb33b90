"""Central's sync endpoints against bad input: each gets a clear 4xx with a code and changes nothing.
Also the protocol's unit rules: item shape, versions, the merge table, per-record outcomes."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from fieldapp.domain.merge import DELETED, merge
from fieldapp.domain.records import revision_hash
from fieldapp.storage import records
from fieldapp.storage import sync as store
from sync import protocol
from sync import server as sync_server
from tests.sync.harness import Field, enrolled_device, intake_answers

HEADERS = {protocol.PROTOCOL_HEADER: str(protocol.VERSION)}


@pytest.fixture
def central_app(app):
    app.config["MODE"] = "central"
    return app


@pytest.fixture
def device(central_app, db):
    """An enrolled device of POST-A: (token, device row)."""
    token, device_id = enrolled_device(db)
    return token, store.device(db, device_id)


def _item(**overrides) -> dict:
    answers = overrides.pop("answers", None) or intake_answers(random.Random(5))
    item = {"uuid": "4f6b1a9e-7c1d-4a8e-9b2f-1e3d5c7a9b0d", "form": "intake", "v": 1, "base": 0,
            "base_hash": "", "hash": revision_hash(answers), "deleted": False,
            "answers": answers, "parent": "", "person": "", "by": "officer1",
            "at": "2026-11-20T10:00:00Z"}
    item.update(overrides)
    return item


def _push(http, token, payload, *, raw: bytes | None = None, headers=None, lang="en"):
    body = raw if raw is not None else protocol.encode(payload)
    return http.post(f"/{lang}/sync/v1/push", data=body, headers={
        **HEADERS, "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Content-Encoding": "gzip", **(headers or {})})


def _count(db) -> tuple[int, int]:
    return (db.execute("SELECT count(*) FROM records").fetchone()[0],
            db.execute("SELECT count(*) FROM sync_batches").fetchone()[0])


BATCH = {"sync": "s1", "batch": "b1"}


@pytest.mark.parametrize(("case", "status", "code"), [
    ("not gzip", 400, "bad_gzip"),
    ("cut short", 400, "bad_gzip"),
    ("not json", 400, "bad_json"),
    ("a list", 400, "bad_json"),
    ("no batch id", 400, "bad_batch"),
    ("records not a list", 400, "bad_batch"),
    ("too many", 413, "too_many"),
    ("unknown field", 400, "unknown_fields"),
    ("missing field", 400, "missing_fields"),
    ("malformed uuid", 400, "malformed"),
    ("altered answers", 400, "hash_mismatch"),
    ("wrong content type", 415, "content_type"),
    ("gzip bomb", 413, "too_large"),
    ("a lone surrogate", 400, "bad_json"),
    ("NaN", 400, "bad_json"),
    ("nested deep", 400, "malformed"),
])
def test_a_bad_push_is_refused_with_a_code_and_changes_nothing(central_app, db, device, case, status, code):
    token = device[0]
    good = protocol.dump({**BATCH, "records": [_item()]})
    raw, headers = None, None
    if case == "not gzip":
        raw = good
    elif case == "cut short":
        raw = gzip.compress(good)[:-30]
    elif case == "not json":
        raw = gzip.compress(b"{records: oops")
    elif case == "a list":
        raw = gzip.compress(b"[1, 2]")
    elif case == "no batch id":
        raw = protocol.encode({"records": [_item()]})
    elif case == "records not a list":
        raw = protocol.encode({**BATCH, "records": {"a": 1}})
    elif case == "too many":
        raw = protocol.encode({**BATCH, "records": [_item()] * (protocol.MAX_BATCH + 1)})
    elif case == "unknown field":
        raw = protocol.encode({**BATCH, "records": [_item(), {**_item(), "extra": 1}]})
    elif case == "missing field":
        bad = _item()
        del bad["by"]
        raw = protocol.encode({**BATCH, "records": [_item(), bad]})
    elif case == "malformed uuid":
        raw = protocol.encode({**BATCH, "records": [_item(uuid="123")]})
    elif case == "altered answers":
        bad = _item()
        bad["answers"] = {**bad["answers"], "given_names": "Otro"}
        raw = protocol.encode({**BATCH, "records": [_item(uuid="5f6b1a9e-7c1d-4a8e-9b2f-1e3d5c7a9b0d"), bad]})
    elif case == "wrong content type":
        raw, headers = protocol.encode({**BATCH, "records": []}), {"Content-Type": "text/plain"}
    elif case == "gzip bomb":
        raw = gzip.compress(b'{"sync": "' + b" " * (protocol.MAX_BODY + 10) + b'"}')
    elif case == "a lone surrogate":  # JSON may spell one; no text holds one, nor hashes
        raw = gzip.compress(good.replace(b'"by":"officer1"', b'"by":"officer\\ud800"'))
    elif case == "NaN":
        raw = gzip.compress(good.replace(b'"v":1', b'"v":NaN'))
    elif case == "nested deep":  # deeper than the hash is computed: refused, not a server error
        deep = b"[" * 1000 + b"]" * 1000
        raw = gzip.compress(good.replace(b'"answers":{', b'"answers":{"x":' + deep + b","))
    before = _count(db)
    response = _push(central_app.test_client(), token, None, raw=raw, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    assert _count(db) == before


def test_a_record_with_invalid_answers_or_another_posts_uuid_is_rejected_alone(central_app, db, device):
    token, _ = device
    http = central_app.test_client()
    other = sync_server.register(db, post="POST-B", name="b", by="test")[0]
    taken = "6f6b1a9e-7c1d-4a8e-9b2f-1e3d5c7a9b0d"
    records.save(db, records.Submission(uuid=taken, definition=__import__(
        "fieldapp.forms.schema", fromlist=["get"]).get("intake"), answers=intake_answers(random.Random(1)),
        post="POST-B", device=other, user="x"))
    invalid = _item(uuid="7f6b1a9e-7c1d-4a8e-9b2f-1e3d5c7a9b0d",
                    answers={**intake_answers(random.Random(2)), "sex": "unknown-code"})
    good = _item()
    response = _push(http, token, {**BATCH, "records": [invalid, _item(uuid=taken), good]}, lang="es")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["outcome"], r.get("code")) for r in results] == [
        ("rejected", "invalid"), ("rejected", "uuid_taken"), ("stored", None)]
    assert "sex" in results[0]["message"] and "válidas" in results[0]["message"]
    assert records.get(db, taken)["post"] == "POST-B" and records.get(db, invalid["uuid"]) is None
    # The same batch again, asked in English: the same outcomes, messages in English, nothing new.
    again = _push(http, token, {**BATCH, "records": [invalid, _item(uuid=taken), good]}).get_json()
    assert [r["outcome"] for r in again["results"]] == ["rejected", "rejected", "stored"]
    assert "not valid" in again["results"][0]["message"]
    assert db.execute("SELECT count(*) FROM revisions WHERE uuid = ?", [good["uuid"]]).fetchone()[0] == 1


@pytest.mark.parametrize(("header", "status", "code", "words"), [
    (None, 426, "no_protocol", "Upgrade fieldapp on the field server"),
    ("0", 426, "upgrade_field", "Upgrade fieldapp on the field server"),
    (str(protocol.VERSION + 1), 409, "upgrade_central", "upgrade fieldapp on the central server"),
    ("one", 426, "no_protocol", "Upgrade"),
])
def test_a_protocol_mismatch_says_which_side_to_upgrade(central_app, device, header, status, code, words):
    headers = {"Authorization": f"Bearer {device[0]}", "Content-Type": "application/json"}
    if header is not None:
        headers[protocol.PROTOCOL_HEADER] = header
    response = central_app.test_client().post("/en/sync/v1/pull", json={"cursor": 0}, headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code and words in response.get_json()["error"]["message"]
    assert response.headers[protocol.PROTOCOL_HEADER] == str(protocol.VERSION)


@pytest.mark.parametrize("token", ["", "not-a-token", "revoked"])
def test_an_unknown_or_revoked_device_gets_401(central_app, db, device, token):
    if token == "revoked":
        token = device[0]
        store.revoke(db, device[1]["id"])
    before = _count(db)
    response = _push(central_app.test_client(), token, {**BATCH, "records": [_item()]})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unknown_device"
    assert _count(db) == before


@pytest.mark.parametrize("body", [{"cursor": -1}, {"cursor": 2**63}, {"cursor": "0"}, {"limit": True}])
def test_a_bad_pull_cursor_is_a_400(central_app, device, body):
    response = central_app.test_client().post("/en/sync/v1/pull", json=body, headers={
        **HEADERS, "Authorization": f"Bearer {device[0]}"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_cursor"


def test_the_sync_api_is_closed_on_a_field_server(app, db):
    response = app.test_client().post("/en/sync/v1/pull", json={}, headers=HEADERS)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_central"


def test_enrolment_is_one_time_and_a_lost_answer_can_be_asked_again(central_app, db):
    http = central_app.test_client()
    _, code = sync_server.register(db, post="POST-A", name="laptop", by="test")
    token = protocol.new_token()
    body = {"code": code.lower().replace("-", " "), "post": "POST-A",
            "token_hash": protocol.secret_hash(token), "signing_key": protocol.signing_key(token)}
    wrong_post = http.post("/en/sync/v1/enrol", json={**body, "post": "POST-B"}, headers=HEADERS)
    assert wrong_post.status_code == 409 and wrong_post.get_json()["error"]["code"] == "wrong_post"
    first = http.post("/en/sync/v1/enrol", json=body, headers=HEADERS)
    assert first.status_code == 200 and "token" not in first.get_json()
    again = http.post("/en/sync/v1/enrol", json=body, headers=HEADERS)  # the same device retrying
    assert again.status_code == 200 and again.get_json()["device"] == first.get_json()["device"]
    other = protocol.new_token()
    stolen = http.post("/en/sync/v1/enrol", json={**body, "token_hash": protocol.secret_hash(other),
                                                 "signing_key": protocol.signing_key(other)}, headers=HEADERS)
    assert stolen.status_code == 401 and stolen.get_json()["error"]["code"] == "bad_code"
    stored = db.execute("SELECT token_hash FROM devices").fetchone()[0]
    assert stored == protocol.secret_hash(token) and token not in json.dumps(store.devices(db))


# The merge rule, case by case: (base, central's, the post's) -> merged answers or overlapping fields.
MERGES = [
    ({"a": 1}, {"a": 1}, {"a": 2}, {"a": 2}, ()),  # changed at the post only
    ({"a": 1}, {"a": 2}, {"a": 1}, {"a": 2}, ()),  # changed at central only
    ({"a": 1}, {"a": 2}, {"a": 2}, {"a": 2}, ()),  # the same change on both sides
    ({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 3}, {"a": 2, "b": 3}, ()),  # different fields
    ({"a": 1}, {"a": 2}, {"a": 3}, None, ("a",)),  # the same field, different values
    ({"a": 1}, {"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2}, ()),  # added at central
    ({"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1}, {"a": 1}, ()),  # removed at the post
    ({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 3}, None, ("b",)),  # removed here, changed there
    ({}, {"a": 1}, {"a": 2}, None, ("a",)),  # unknown base: every difference is for a person
]


@pytest.mark.parametrize(("base", "ours", "theirs", "merged", "overlap"), MERGES)
def test_merge_rules(base, ours, theirs, merged, overlap):
    result = merge(base, ours, theirs)
    assert result.answers == merged and result.overlap == overlap


@pytest.mark.parametrize(("ours_deleted", "theirs_deleted", "mergeable"), [
    (True, False, False), (False, True, False), (True, True, True)])
def test_a_delete_meeting_an_edit_is_for_a_person(ours_deleted, theirs_deleted, mergeable):
    result = merge({"a": 1}, {"a": 1}, {"a": 2}, ours_deleted=ours_deleted, theirs_deleted=theirs_deleted)
    assert (result.answers is not None) is mergeable
    if not mergeable:
        assert result.overlap == (DELETED,)


def test_central_keeps_a_correction_when_the_post_edits_its_own_conflicting_version(central, make_field):
    """The same revision number can name two versions: the device's one that met a conflict and
    central's. An edit of the device's version must not pass for an edit of central's."""
    field = make_field()
    uuid = field.intake()
    field.sync()
    central.edit(uuid, notes="Oficina.")
    field.edit(uuid, notes="Puesto.")
    # The push meets central's correction (a conflict); the pull never happens (cut here).
    client_central = field.central()
    from sync import client

    progress = client.Progress()
    client._push(field.db, client_central, "s", 500, progress, [], [], lambda p: None)
    assert progress.counts["conflict"] == 1
    field.edit(uuid, occupation="isco_5")  # base 2: the post's own revision 2
    field.sync()
    field.sync()
    conn = central.db()
    assert records.get(conn, uuid)["answers"]["notes"] == "Oficina."  # not overwritten
    assert len(store.conflicts(conn)) == 2  # both of the post's versions wait for a person
    assert records.get(field.db, uuid)["answers"] == records.get(conn, uuid)["answers"]
    conn.close()


def test_a_corrected_record_that_central_refused_is_stored(central, make_field):
    field = make_field()
    uuid = field.intake()
    field.sync()
    # An edit central refuses (a birth date in the future), then its correction.
    field.edit(uuid, birth_date="2999-01-01")
    assert field.sync().counts["rejected"] == 1
    assert [o["code"] for o in store.outcomes(field.db, "rejected")] == ["invalid"]
    field.edit(uuid, birth_date="1991-02-03")
    done = field.sync()
    assert done.counts["stored"] == 1 and done.counts["conflict"] == 0
    assert store.outcomes(field.db, "rejected") == []
    conn = central.db()
    record = records.get(conn, uuid)
    assert record["revision"] == 3 and record["answers"]["birth_date"] == "1991-02-03"
    conn.close()


def test_a_field_server_refuses_records_of_a_form_version_it_does_not_know(tmp_path):
    field = Field.create(tmp_path, "POST-A")
    state = {"uuid": "8f6b1a9e-7c1d-4a8e-9b2f-1e3d5c7a9b0d", "form": "intake", "post": "POST-A",
             "parent": "", "person": "", "revisions": [{"rev": 1, "v": 99, "answers": {}, "hash": "x",
                                                        "deleted": False, "device": "d", "by": "u",
                                                        "at": "2026-01-01T00:00:00Z"}]}
    with pytest.raises(store.UnknownForm):
        store.adopt(field.db, [state], [], 10)
    assert store.state(field.db).get("pull_cursor") is None and records.get(field.db, state["uuid"]) is None
    field.db.close()
