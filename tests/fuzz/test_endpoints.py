"""The JSON endpoints with hostile input — the outbox replay (hop 1) and central's sync push, pull and
finish (hop 2): every answer is a 2xx with per-record outcomes or a 4xx JSON error with a message,
never a 5xx; rows are stored only for records answered `stored`."""

from __future__ import annotations

import gzip
import json
import random
import uuid as uuidlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldapp.domain.records import revision_hash
from sync import protocol
from tests.conftest import make_course, make_session, valid_intake
from tests.fuzz.strategies import JSON, TEXT, mutated
from tests.sync.harness import enrolled_device, intake_answers
from tests.test_enrolment import valid_participant

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _count(db) -> tuple[int, int]:
    return (db.execute("SELECT count(*) FROM records").fetchone()[0],
            db.execute("SELECT count(*) FROM revisions").fetchone()[0])


def _is_error(response) -> bool:
    body = response.get_json(silent=True)
    return (isinstance(body, dict) and body.get("ok") is False
            and bool(body["error"]["code"]) and len(body["error"]["message"]) > 10)


# ------------------------------------------------------------------ the outbox replay (hop 1)


def _outbox_records(course: str, session: str, person: str):
    intake = valid_intake()
    part = valid_participant()
    templates = [
        {"uuid": intake["uuid"], "kind": "intake", "fields": intake},
        {"uuid": part["uuid"], "kind": "participant", "course": course, "fields": part},
        {"uuid": part["uuid"], "kind": "participant", "course": course, "session": session, "fields": part},
    ]
    record = st.one_of(
        st.sampled_from(templates).flatmap(lambda t: st.fixed_dictionaries({
            "uuid": st.just(t["uuid"]), "kind": st.just(t["kind"]),
            "fields": mutated(t["fields"], keep=frozenset({"uuid"})),
            **{k: st.one_of(st.just(t[k]), TEXT) for k in ("course", "session") if k in t}})),
        st.sampled_from(templates).flatmap(lambda t: mutated(t)),
        st.builds(lambda status, base: {"uuid": None, "kind": "mark", "session": session,
                                        "fields": {"mark": f"{person}:{base}:{status}"}},
                  TEXT, st.one_of(st.integers(-2, 3), TEXT)),
        JSON,
    )
    return st.one_of(st.lists(record, max_size=4).map(lambda rs: {"records": rs}), JSON)


def test_hostile_outbox_replays_never_fail_and_store_only_what_is_stored(app, client_as, db):
    supervisor, officer = client_as("supervisor"), client_as("officer")
    course = make_course(supervisor.http)
    session = make_session(supervisor.http, course)
    person = valid_participant()
    page = officer.get(f"/en/courses/{course}/participants/new")
    from tests.conftest import csrf_token

    officer.http.post(f"/en/courses/{course}/participants/new",
                      data={"csrf_token": csrf_token(page.text), **person})
    token = officer.get("/en/api/token").json["token"]

    @FUZZ
    @given(payload=_outbox_records(course, session, person["uuid"]))
    def replay(payload):
        before = _count(db)
        response = officer.http.post("/en/api/outbox", json=payload, headers={"X-CSRFToken": token})
        assert response.status_code < 500
        if response.status_code != 200:
            assert response.status_code in (400, 413) and _is_error(response)
            assert _count(db) == before
            return
        results = response.json["results"]
        assert all(r["outcome"] in ("stored", "duplicate", "conflict", "rejected") for r in results)
        assert all(r.get("code") != "server_error" for r in results), results  # a 500 in disguise
        assert all(r["message"] for r in results if r["outcome"] == "rejected")
        # (a walk-in participant stores its enrolment and mark too: no exact count per record)
        if not any(r["outcome"] in ("stored", "conflict") for r in results):
            assert _count(db) == before

    replay()


# ------------------------------------------------------------------ central's sync API (hop 2)


@pytest.fixture
def device(app, db):
    app.config["MODE"] = "central"
    token, _ = enrolled_device(db)
    return token


def _item(rng_seed: int) -> dict:
    answers = intake_answers(random.Random(rng_seed))
    return {"uuid": str(uuidlib.UUID(int=rng_seed + 1, version=4)), "form": "intake", "v": 1, "base": 0,
            "base_hash": "", "hash": revision_hash(answers), "deleted": False,
            "answers": answers, "parent": "", "person": "", "by": "officer1",
            "at": "2026-11-20T10:00:00Z"}


@st.composite
def push_bodies(draw):
    kind = draw(st.sampled_from(["json", "batch", "item", "answers"]))
    if kind == "json":
        return draw(JSON)
    items = [_item(draw(st.integers(0, 10_000))) for _ in range(draw(st.integers(0, 3)))]
    if kind == "item" and items:
        items[0] = draw(mutated(items[0]))
    if kind == "answers" and items:
        # answers changed, the hash made to match: only the form validator can refuse it
        answers = draw(mutated(items[0]["answers"]))
        items[0] = dict(items[0], answers=answers, hash=revision_hash(answers))
    body = {"sync": "s1", "batch": draw(st.text(min_size=1, max_size=20)), "records": items}
    return draw(mutated(body, keep=frozenset({"records"}))) if kind == "batch" else body


def _post(http, token, path, body, gzipped: bool):
    raw = json.dumps(body).encode()
    return http.post(f"/en/sync/v1/{path}", data=gzip.compress(raw) if gzipped else raw, headers={
        protocol.PROTOCOL_HEADER: "1", "Authorization": f"Bearer {token}",
        "Content-Type": "application/json", **({"Content-Encoding": "gzip"} if gzipped else {})})


def test_hostile_pushes_never_fail_and_store_only_what_is_stored(app, db, device):
    http = app.test_client()

    @FUZZ
    @given(body=push_bodies(), gzipped=st.booleans())
    def push(body, gzipped):
        before = _count(db)
        response = _post(http, device, "push", body, gzipped)
        assert response.status_code < 500, response.text
        if response.status_code != 200:
            assert 400 <= response.status_code < 500 and _is_error(response)
            assert _count(db) == before
            return
        results = response.get_json()["results"]
        assert all(r["message"] for r in results if r["outcome"] == "rejected")
        if not any(r["outcome"] in ("stored", "conflict") for r in results):
            assert _count(db) == before

    push()


@FUZZ
@given(path=st.sampled_from(["pull", "finish", "enrol"]), body=JSON, gzipped=st.booleans())
def test_hostile_pulls_finishes_and_enrolments_are_4xx_or_answers(app, db, device, path, body, gzipped):
    before = _count(db)
    response = _post(app.test_client(), device, path, body, gzipped)
    assert response.status_code < 500, response.text
    assert response.status_code == 200 or _is_error(response)
    assert _count(db) == before


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["push", "pull", "finish", "enrol"]), raw=st.binary(max_size=3000),
       encoding=st.sampled_from(["gzip", "", "deflate", "br", "GZIP"]),
       headers=st.dictionaries(st.sampled_from([protocol.PROTOCOL_HEADER, protocol.CLOCK_HEADER,
                                                protocol.APP_HEADER, "Authorization"]),
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                       max_size=60), max_size=3))
def test_any_bytes_with_any_headers_are_refused_cleanly(app, db, device, path, raw, encoding, headers):
    before = _count(db)
    response = app.test_client().post(f"/en/sync/v1/{path}", data=raw, headers={
        protocol.PROTOCOL_HEADER: "1", "Authorization": f"Bearer {device}",
        "Content-Type": "application/json", "Content-Encoding": encoding, **headers})
    assert 400 <= response.status_code < 500 and _is_error(response), response.text
    assert _count(db) == before
