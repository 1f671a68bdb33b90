"""Every capture form, posted with hostile input: the answer is a page with a message (4xx) or a
stored record (a redirect) whose answers the validator accepts — never a 5xx, and nothing stored
for a refusal.

Forms with no page of their own: enrolment (made by the enrol and walk-in views, tested through
them), certificate (issued by a button, no fields) and person_merge (central's verdict, tested by
tests/test_persons.py)."""

from __future__ import annotations

import re
import uuid as uuidlib
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldapp.domain import persons
from fieldapp.forms import schema
from tests.conftest import csrf_token, make_course, make_session, valid_course, valid_intake, valid_session
from tests.fuzz.strategies import BAD_BYTES, mutated
from tests.test_enrolment import valid_participant

FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HIDDEN = frozenset({"uuid"})  # a fresh uuid per example, so a valid example is a new record
PAGES_FOR = {"intake", "participant", "course", "session", "attendance"}
NO_PAGE = {"enrolment", "certificate", "person_merge", "erasure"}


def test_every_form_definition_is_fuzzed_or_says_why_not():
    assert {name for name, _ in schema.definitions()} == PAGES_FOR | NO_PAGE


def _count(db) -> tuple[int, int]:
    return (db.execute("SELECT count(*) FROM records").fetchone()[0],
            db.execute("SELECT count(*) FROM revisions").fetchone()[0])


def _targets(client_as):
    """(form, who, URL, a valid submission maker) for each capture page, and its edit page."""
    supervisor, officer = client_as("supervisor"), client_as("officer")
    course = make_course(supervisor.http)
    session = make_session(supervisor.http, course)
    person = valid_participant()
    page = officer.get(f"/en/courses/{course}/participants/new")
    assert officer.http.post(f"/en/courses/{course}/participants/new", data={
        "csrf_token": csrf_token(page.text), **person}).status_code == 302
    intake = valid_intake()
    page = officer.get("/en/intake/new")
    assert officer.http.post("/en/intake/new", data={"csrf_token": csrf_token(page.text), **intake}
                             ).status_code == 302
    mark = persons.mark_uuid(session, person["uuid"])
    return [
        ("intake", officer, "/en/intake/new", lambda: valid_intake()),
        ("intake", officer, f"/en/records/{intake['uuid']}/edit",
         lambda: valid_intake(uuid=intake["uuid"], base_revision="1")),
        ("participant", officer, f"/en/courses/{course}/participants/new", lambda: valid_participant()),
        ("course", supervisor, "/en/courses/new", lambda: valid_course()),
        ("course", supervisor, f"/en/courses/{course}/edit",
         lambda: valid_course(uuid=course, base_revision="1")),
        ("session", supervisor, f"/en/courses/{course}/sessions/new", lambda: valid_session()),
        ("session", supervisor, f"/en/sessions/{session}/edit",
         lambda: valid_session(uuid=session, base_revision="1")),
        ("attendance", officer, f"/en/sessions/{session}/attendance/{person['uuid']}",
         lambda: {"uuid": mark, "base_revision": "0", "form_version": "1", "status": "present"}),
    ]


def _check(response, db, before):
    assert response.status_code < 500, response.text[:2000]
    if response.status_code == 302:
        return  # stored: the validator accepted it (the form's own tests check what is stored)
    assert response.status_code in (200, 400, 404, 409, 413, 422), response.status_code
    assert _count(db) == before
    # A refusal says why, on a page (there is always a heading and a message).
    assert re.search(r"<h1>[^<]+</h1>", response.text) or "error" in response.text


def test_hostile_form_posts_get_a_message_and_store_nothing(app, client_as, db):
    targets = _targets(client_as)
    tokens = {id(who): csrf_token(who.get(url).text) for _, who, url, _ in targets}

    @FUZZ
    @given(target=st.sampled_from(targets), data=st.data(), csrf=st.sampled_from(["ok", "none", "bad"]))
    def post(target, data, csrf):
        form, who, url, valid = target
        submission = valid()
        if url.endswith("/new") and form != "attendance":
            submission["uuid"] = str(uuidlib.uuid4())
        body = data.draw(mutated(submission, keep=HIDDEN))
        if csrf != "none":
            body["csrf_token"] = tokens[id(who)] if csrf == "ok" else "forged-token"
        before = _count(db)
        response = who.http.post(url, data=body)
        _check(response, db, before)
        if csrf != "ok":
            assert response.status_code == 400

    post()


def test_invalid_utf8_and_encoded_surrogates_in_form_bodies(app, client_as, db):
    targets = _targets(client_as)
    tokens = {id(who): csrf_token(who.get(url).text) for _, who, url, _ in targets}

    @FUZZ
    @given(target=st.sampled_from(targets), data=st.data(), bad=BAD_BYTES)
    def post(target, data, bad):
        form, who, url, valid = target
        submission = dict(valid(), csrf_token=tokens[id(who)])
        name = data.draw(st.sampled_from(sorted(k for k in submission if k != "csrf_token")))
        parts = []
        for key, value in submission.items():
            for v in value if isinstance(value, list) else [value]:
                raw = bad if key == name else quote_from_bytes(str(v).encode()).encode()
                parts.append(quote_from_bytes(key.encode()).encode() + b"=" + raw)
        before = _count(db)
        response = who.http.post(url, data=b"&".join(parts),
                                 content_type="application/x-www-form-urlencoded")
        _check(response, db, before)

    post()


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data; boundary=x",
                                     "application/x-www-form-urlencoded; charset=latin-1", ""]),
       body=st.binary(max_size=2000))
def test_any_body_of_any_type_is_refused_cleanly(app, client_as, db, content_type, body):
    officer = getattr(app, "_fuzz_officer", None) or client_as("officer")
    app._fuzz_officer = officer
    before = _count(db)
    response = officer.http.post("/en/intake/new", data=body, content_type=content_type)
    assert response.status_code in (400, 413, 422) and _count(db) == before
