"""The outbox API (hop 1 of DESIGN.md): every queued record is answered under the resubmission
contract, one bad record never blocks the others, and what is answered is what is in SQLite."""

from __future__ import annotations

import json
import logging
import uuid as uuidlib
from datetime import date, timedelta

import pytest

from fieldapp.domain import persons
from fieldapp.storage import records
from fieldapp.web import api
from tests.conftest import POST_A, POST_B, csrf_token, make_course, make_session, valid_intake
from tests.test_enrolment import valid_participant

NOBODY = "00000000-0000-4000-8000-000000000000"
TODAY = date.today()


def token(client, lang="en") -> str:
    response = client.http.get(f"/{lang}/api/token")
    assert response.status_code == 200 and response.json["user"] == client.username
    return response.json["token"]


def send(client, batch, lang="en", csrf=None) -> list[dict]:
    """POST a batch as the device's script does; the per-record answers, in order."""
    response = client.http.post(f"/{lang}/api/outbox", json={"records": batch},
                                headers={"X-CSRFToken": csrf or token(client, lang)})
    assert response.status_code == 200, response.text
    assert response.json["ok"] is True and len(response.json["results"]) == len(batch)
    return response.json["results"]


def intake(**overrides) -> dict:
    fields = valid_intake(**overrides)
    return {"uuid": fields["uuid"], "kind": "intake", "fields": fields}


def participant(course, session=None, **overrides) -> dict:
    fields = valid_participant(**overrides)
    record = {"uuid": fields["uuid"], "kind": "participant", "fields": fields, "course": course}
    return record | ({"session": session} if session else {})


def mark(session, person, status="present", base=0) -> dict:
    return {"uuid": persons.mark_uuid(session, person), "kind": "mark", "session": session,
            "fields": {"mark": f"{person}:{base}:{status}"}}


def refit(record, drop=(), **fields) -> dict:
    """`record` with fields changed (None removes one) and top-level keys dropped."""
    changed = {k: v for k, v in {**record["fields"], **fields}.items() if v is not None}
    return {k: v for k, v in {**record, "fields": changed}.items() if k not in drop}


def outcomes(answers) -> list[tuple]:
    return [(a["outcome"], a.get("code")) for a in answers]


def marks(db, session) -> dict:
    return {m["person"]: (m["answers"]["status"], m["revision"])
            for m in records.children(db, session, "attendance")}


def enrolled(db, course) -> list[str]:
    return [e["person"] for e in records.children(db, course, "enrolment")]


@pytest.fixture
def officer(client_as):
    return client_as("officer")


@pytest.fixture
def training(client_as, officer):
    """A POST-A course with sessions today, next week and cancelled today, and Ana on its roster;
    another course with a session today, full with Beto. Both people registered through the API."""
    http = client_as("supervisor").http
    span = {"start_date": str(TODAY - timedelta(30)), "end_date": str(TODAY + timedelta(30))}
    t = {"course": make_course(http, **span), "other": make_course(http, capacity="1", **span)}
    t |= {"today": make_session(http, t["course"], date=TODAY.isoformat()),
          "later": make_session(http, t["course"], date=(TODAY + timedelta(7)).isoformat()),
          "cancelled": make_session(http, t["course"], date=TODAY.isoformat(), status="cancelled"),
          "elsewhere": make_session(http, t["other"], date=TODAY.isoformat())}
    ana, beto = participant(t["course"], given_names="Ana"), participant(t["other"], given_names="Beto")
    assert outcomes(send(officer, [ana, beto])) == [("stored", None)] * 2
    return t | {"ana": ana["uuid"]}


@pytest.fixture
def others(client_as, officer):
    """What a tampered record points at: an intake, a course, another post's course and participant."""
    post_b = make_course(client_as("central").http, post=POST_B)
    foreign, mine = participant(post_b), intake()
    send(client_as("officer_b"), [foreign])
    send(officer, [mine])
    return {"intake": mine["uuid"], "foreign": foreign["uuid"], "post_b": post_b,
            "a_course": make_course(client_as("supervisor").http)}


# 1. Intakes: every outcome of the contract, checked in the database.
@pytest.mark.parametrize(("who", "post"), [
    ("officer", POST_A), ("supervisor", POST_A), ("officer_b", POST_B)])
def test_a_new_intake_is_stored_as_revision_1_by_the_user_at_their_post(db, client_as, who, post):
    record = intake()
    assert send(client_as(who), [record]) == [{
        "uuid": record["uuid"], "outcome": "stored", "location": f"/en/records/{record['uuid']}"}]
    stored = records.get(db, record["uuid"])
    assert (stored["form"], stored["created_by"], stored["post"], stored["revision"]) == (
        "intake", who, post, 1)
    assert stored["answers"]["migration_reasons"] == ["economic", "family"]
    assert len(records.history(db, record["uuid"])) == 1 and records.count(db, "intake", None) == 1


MAJO = {"base_revision": "1", "given_names": "Majo"}


@pytest.mark.parametrize(("case", "before", "resend", "outcome", "revision", "names"), [
    ("the identical record again", [], {}, "duplicate", 1, "María José"),
    ("other answers on the same base", [], {"given_names": "Otra"}, "conflict", 1, "María José"),
    ("a base revision the server never had", [], {"base_revision": "4"}, "conflict", 1, "María José"),
    ("the next revision", [], MAJO, "stored", 2, "Majo"),
    ("an edit that changes nothing", [], {"base_revision": "1"}, "duplicate", 1, "María José"),
    ("revision 1 again after revision 2", [MAJO], {}, "duplicate", 2, "Majo"),
    ("a stale edit after revision 2", [MAJO], {"base_revision": "1", "given_names": "Mary"}, "conflict", 2,
     "Majo"),
])
@pytest.mark.parametrize("together", [False, True], ids=["one by one", "in one batch"])
def test_resending_an_intake_follows_the_resubmission_contract_whether_batched_or_not(
        db, officer, case, before, resend, outcome, revision, names, together):
    first = intake()
    batch = [first, *(refit(first, **changes) for changes in before), refit(first, **resend)]
    answer = send(officer, batch)[-1] if together else [send(officer, [r])[0] for r in batch][-1]
    assert answer["outcome"] == outcome and ("location" in answer) is (outcome != "conflict")
    if outcome == "conflict":
        assert answer["code"] == "conflict" and "Someone else changed" in answer["message"]
    stored = records.get(db, first["uuid"])
    assert (stored["revision"], stored["answers"]["given_names"]) == (revision, names)
    assert len(records.history(db, first["uuid"])) == revision and records.count(db, "intake", POST_A) == 1


@pytest.mark.parametrize(("case", "changes", "field"), [
    ("a required answer missing", {"given_names": None}, "given_names"),
    ("consent missing", {"consent": None}, "consent"),
    ("a date that does not exist", {"birth_date": "1990-02-30"}, "birth_date"),
    ("a date in the future", {"interview_date": "2099-01-01"}, "interview_date"),
    ("a choice not offered", {"sex": "robot"}, "sex"),
    ("a lone surrogate", {"given_names": "Ana\ud800"}, "given_names"),
])
def test_an_invalid_intake_is_rejected_with_field_errors_in_the_pages_language(db, officer, case, changes,
                                                                               field):
    record = intake(**changes)
    en, es = (send(officer, [record], lang)[0] for lang in ("en", "es"))
    for answer in (en, es):
        assert (answer["outcome"], answer["code"], answer["uuid"]) == ("rejected", "invalid", record["uuid"])
        assert list(answer["errors"]) == [field] and answer["problems"] == [] and "location" not in answer
    assert en["message"].startswith("Some answers need correcting")
    assert es["message"] != en["message"] and es["errors"][field] != en["errors"][field]
    assert records.get(db, record["uuid"]) is None and records.count(db, "intake", None) == 0


@pytest.mark.parametrize(("case", "tamper", "code"), [
    ("fields name another uuid", lambda r, o: refit(r, uuid=str(uuidlib.uuid4())), "malformed"),
    ("fields have no uuid", lambda r, o: refit(r, uuid=None), "malformed"),
    ("a nonsense form version", lambda r, o: refit(r, form_version="nonsense"), "invalid"),
    ("a form version never shipped", lambda r, o: refit(r, form_version="99"), "invalid"),
    ("a base revision that is no number", lambda r, o: refit(r, base_revision="x"), "invalid"),
    ("an edit of a record never stored", lambda r, o: refit(r, base_revision="3"), "refused"),
    ("person is no one", lambda r, o: refit(r, person=NOBODY), "refused"),
    ("person is an intake", lambda r, o: refit(r, person=o["intake"]), "refused"),
    ("person is another post's participant", lambda r, o: refit(r, person=o["foreign"]), "refused"),
    ("the uuid of a course", lambda r, o: refit(r, uuid=o["a_course"]) | {"uuid": o["a_course"]}, "refused"),
])
def test_a_tampered_intake_is_rejected_and_nothing_is_stored(db, officer, others, case, tamper, code):
    record = tamper(intake(), others)
    [answer] = send(officer, [record])
    assert (answer["outcome"], answer["code"], answer["uuid"]) == ("rejected", code, record["uuid"])
    if code != "malformed":  # the form is answered, with why it cannot be stored
        assert answer["errors"] == {} and "The form was altered" in answer["problems"][0]
    assert records.count(db, "intake", None) == 1  # `others`' own intake
    if record["uuid"] == others["a_course"]:
        assert len(records.history(db, others["a_course"])) == 1
    else:
        assert records.get(db, record["uuid"]) is None


# 2. Batches: each record on its own.
def test_one_bad_record_in_a_batch_does_not_block_the_others_and_a_retried_batch_doubles_nothing(
        db, officer):
    good, invalid, unknown, other = intake(), intake(sex=None), intake(), intake(given_names="Pedro")
    batch = [good, invalid, "not a record", unknown | {"kind": "course"}, other]
    for saved in ("stored", "duplicate"):
        answers = send(officer, batch)
        assert outcomes(answers) == [(saved, None), ("rejected", "invalid"), ("rejected", "malformed"),
                                     ("rejected", "malformed"), (saved, None)]
        assert [a["uuid"] for a in answers] == [good["uuid"], invalid["uuid"], None, unknown["uuid"],
                                                other["uuid"]]
        assert records.count(db, "intake", POST_A) == 2
        assert [records.get(db, r["uuid"])["revision"] for r in (good, other)] == [1, 1]
        assert records.get(db, invalid["uuid"]) is records.get(db, unknown["uuid"]) is None


# 3. Participants: registration, enrolment and a walk-in's mark travel as one record.
@pytest.mark.parametrize(("resend", "outcome"), [({}, "duplicate"), ({"given_names": "Otra"}, "conflict")])
@pytest.mark.parametrize("walk_in", [False, True])
def test_a_participant_is_registered_and_enrolled_once_however_often_it_is_sent(
        db, officer, training, walk_in, resend, outcome):
    course, session = training["course"], training["today"]
    record = participant(course, session if walk_in else None, given_names="Carla")
    [first], [again] = send(officer, [record]), send(officer, [refit(record, **resend)])
    assert (first["outcome"], again["outcome"]) == ("stored", outcome)
    assert first["location"] == (f"/en/sessions/{session}/checkin" if walk_in else f"/en/courses/{course}")
    stored = records.get(db, record["uuid"])
    assert (stored["form"], stored["post"], stored["created_by"], stored["revision"], stored["title"]) == (
        "participant", POST_A, "officer", 1, "Carla Rojas")
    assert enrolled(db, course) == [training["ana"], record["uuid"]]
    assert marks(db, session) == ({record["uuid"]: ("present", 1)} if walk_in else {})


@pytest.mark.parametrize(("case", "who", "course", "session", "changes", "code"), [
    ("a walk-in at a session of another course", "officer", "course", "elsewhere", {}, "session_closed"),
    ("a walk-in at the course itself", "officer", "course", "course", {}, "session_closed"),
    ("a walk-in at a session that does not exist", "officer", "course", NOBODY, {}, "session_closed"),
    ("a walk-in at no uuid at all", "officer", "course", "today's session", {}, "malformed"),
    ("a walk-in at a cancelled session", "officer", "course", "cancelled", {}, "session_closed"),
    ("a walk-in with invalid answers", "officer", "course", "today", {"consent": None}, "invalid"),
    ("a walk-in at a full course", "officer", "other", "elsewhere", {}, "refused"),
    ("an officer of another post", "officer_b", "course", "today", {}, "not_found"),
    ("a course of another post", "officer", "post_b", None, {}, "not_found"),
    ("a course that does not exist", "officer", NOBODY, None, {}, "not_found"),
    ("a session given as the course", "officer", "today", None, {}, "not_found"),
    ("no course at all", "officer", None, None, {}, "malformed"),
])
def test_a_participant_that_cannot_be_stored_leaves_no_registration_enrolment_or_mark(
        db, client_as, training, others, case, who, course, session, changes, code):
    known = {**training, **others}
    courses = [training["course"], training["other"], others["post_b"]]
    before = [enrolled(db, c) for c in courses]
    record = refit(participant(known.get(course, course), known.get(session, session)), **changes)
    [answer] = send(client_as(who), [record], lang="es")
    assert (answer["outcome"], answer["code"], answer["uuid"]) == ("rejected", code, record["uuid"])
    assert answer["message"] not in (str(api.GONE), str(api.MALFORMED))  # in Spanish
    assert records.get(db, record["uuid"]) is None and [enrolled(db, c) for c in courses] == before
    assert all(marks(db, training[s]) == {} for s in ("today", "cancelled", "elsewhere"))


# 4. Marks: what a check-in tap can be answered through the API.
def _other_uuid(make):
    return lambda t: mark(t["today"], t["ana"]) | {"uuid": make(t)}


@pytest.mark.parametrize(("case", "who", "build", "code"), [
    ("a first tap", "officer", lambda t: mark(t["today"], t["ana"]), None),
    ("not on the roster", "officer", lambda t: mark(t["today"], NOBODY), "not_on_roster"),
    ("a cancelled session", "officer", lambda t: mark(t["cancelled"], t["ana"]), "session_cancelled"),
    ("an unknown status", "officer", lambda t: mark(t["today"], t["ana"], "asleep"), "unknown_status"),
    ("the mark uuid of another person", "officer",
     _other_uuid(lambda t: persons.mark_uuid(t["today"], NOBODY)), "malformed"),
    ("the mark uuid of another session", "officer",
     _other_uuid(lambda t: persons.mark_uuid(t["later"], t["ana"])), "malformed"),
    ("a random uuid", "officer", _other_uuid(lambda t: str(uuidlib.uuid4())), "malformed"),
    ("no session", "officer", lambda t: refit(mark(t["today"], t["ana"]), drop=["session"]), "malformed"),
    ("an unknown session", "officer", lambda t: mark(NOBODY, t["ana"]), "not_found"),
    ("a course given as the session", "officer", lambda t: mark(t["course"], t["ana"]), "not_found"),
    ("a session of another post", "officer_b", lambda t: mark(t["today"], t["ana"]), "not_found"),
])
def test_a_mark_is_stored_or_rejected_with_its_code(db, client_as, training, case, who, build, code):
    record = build(training)
    [answer] = send(client_as(who), [record])
    assert (answer["uuid"], answer["outcome"], answer.get("code")) == (
        record["uuid"], "rejected" if code else "stored", code)
    assert marks(db, training["today"]) == ({} if code else {training["ana"]: ("present", 1)})
    assert marks(db, training["later"]) == marks(db, training["cancelled"]) == {}


def test_a_mark_sent_again_is_a_duplicate_and_a_stale_one_a_conflict(db, officer, training):
    session, ana = training["today"], training["ana"]
    answers = send(officer, [mark(session, ana), mark(session, ana), mark(session, ana, "late", base=1),
                             mark(session, ana, "absent", base=1)])
    assert outcomes(answers) == [("stored", None), ("duplicate", None), ("stored", None),
                                 ("conflict", "conflict")]
    assert (answers[3]["status"], answers[3]["revision"]) == ("late", 2)
    assert marks(db, session) == {ana: ("late", 2)}
    history = records.history(db, persons.mark_uuid(session, ana))
    assert [h["answers"]["status"] for h in history] == ["present", "late"]


# 5. Malformed payloads and records.
def _raw(text, content_type="application/json"):
    return lambda: {"data": text, "content_type": content_type}


@pytest.mark.parametrize(("case", "body", "status", "code"), [
    ("a form-encoded body", lambda: {"data": {"records": "[]"}}, 400, "bad_payload"),
    ("a JSON list", lambda: {"json": [intake()]}, 400, "bad_payload"),
    ("records that are an object", lambda: {"json": {"records": intake()}}, 400, "bad_payload"),
    ("records that are null", lambda: {"json": {"records": None}}, 400, "bad_payload"),
    ("no records", lambda: {"json": {"record": [intake()]}}, 400, "bad_payload"),
    ("JSON that does not parse", _raw('{"records": ['), 400, "bad_payload"),
    ("JSON labelled as text", _raw(json.dumps({"records": [intake()]}), "text/plain"), 400, "bad_payload"),
    ("more than MAX_RECORDS records",
     lambda: {"json": {"records": [intake() for _ in range(api.MAX_RECORDS + 1)]}}, 413, "too_many"),
    ("more than MAX_CONTENT_LENGTH bytes", lambda: {"json": {"records": [intake(notes="x" * 2**20)]}}, 413,
     "too_large"),
    ("deeply nested JSON", _raw("[" * 50_000 + "]" * 50_000), 400, "bad_payload"),
])
def test_a_malformed_payload_is_refused_whole_with_a_json_error_and_nothing_stored(db, officer, case, body,
                                                                                   status, code):
    response = officer.http.post("/en/api/outbox", headers={"X-CSRFToken": token(officer)}, **body())
    assert response.status_code == status
    assert response.json["ok"] is False and response.json["error"]["code"] == code
    assert response.json["error"]["message"] and records.count(db, "intake", None) == 0


def _fields(**extra):
    return lambda r: refit(r, **extra)


@pytest.mark.parametrize(("case", "spoil", "same_uuid"), [
    ("a record that is a string", lambda r: "intake", False),
    ("a record that is a list", lambda r: [r], False),
    ("a record that is null", lambda r: None, False),
    ("an unknown kind", lambda r: r | {"kind": "course"}, True),
    ("no kind", lambda r: refit(r, drop=["kind"]), True),
    ("no uuid", lambda r: refit(r, drop=["uuid"]), False),
    ("a uuid that is not one", lambda r: r | {"uuid": "1234"}, False),
    ("an uppercase uuid", lambda r: r | {"uuid": r["uuid"].upper()}, False),
    ("fields that are a list", lambda r: r | {"fields": list(r["fields"].items())}, True),
    ("fields that are a string", lambda r: r | {"fields": "consent=given"}, True),
    ("no fields", lambda r: refit(r, drop=["fields"]), True),
    ("a number as a value", _fields(experience_years=5), True),
    ("a list holding a number", _fields(migration_reasons=["economic", 1]), True),
    ("an object as a value", _fields(notes={"text": "x"}), True),
    ("null inside a list", _fields(languages=["es", None]), True),
    ("too many fields", _fields(**{f"x{i}": "" for i in range(api.MAX_FIELDS)}), True),
    ("a field name longer than 64", _fields(**{"n" * 65: ""}), True),
    ("more values than MAX_VALUES", _fields(languages=["es"] * (api.MAX_VALUES + 1)), True),
])
def test_a_malformed_record_is_rejected_as_malformed_and_nothing_is_stored(db, officer, case, spoil,
                                                                           same_uuid):
    record = intake()
    [answer] = send(officer, [spoil(record)])
    assert answer == {"uuid": record["uuid"] if same_uuid else None, "outcome": "rejected",
                      "code": "malformed", "message": str(api.MALFORMED)}
    assert records.get(db, record["uuid"]) is None and records.count(db, "intake", None) == 0


def test_the_limits_are_inclusive_and_payload_errors_follow_the_language(db, officer):
    record = intake()
    padding = {f"x{i}": [""] * api.MAX_VALUES for i in range(api.MAX_FIELDS - 1 - len(record["fields"]))}
    assert outcomes(send(officer, [refit(record, **padding, **{"n" * 64: ""})])) == [("stored", None)]
    assert "x0" not in records.get(db, record["uuid"])["answers"]  # names no form has are ignored
    assert outcomes(send(officer, [{}] * api.MAX_RECORDS)) == [("rejected", "malformed")] * api.MAX_RECORDS
    assert send(officer, []) == []
    en, es = (officer.http.post(f"/{lang}/api/outbox", json=[], headers={"X-CSRFToken": token(officer)})
              .json["error"]["message"] for lang in ("en", "es"))
    assert en.startswith("What was sent is not a list of records") and es != en


# 6. Authentication and CSRF: a refused request is a JSON error in the page's language, never a redirect.
TITLES = {400: "The request could not be understood", 401: "Please log in", 403: "You do not have access"}


@pytest.mark.parametrize(("case", "who", "request_", "header", "status", "code"), [
    ("an anonymous GET of a token", None, "GET /en/api/token", None, 401, "login"),
    ("an anonymous GET of a token in Spanish", None, "GET /es/api/token", None, 401, "login"),
    ("an anonymous GET of the shell", None, "GET /en/api/shell", None, 401, "login"),
    ("an anonymous POST with the login page's token", None, "POST", "page", 401, "login"),
    ("an anonymous POST without a token: CSRF is checked first", None, "POST", None, 400, "csrf"),
    ("an admin's POST", "admin", "POST", "page", 403, "forbidden"),
    ("central office's POST", "central", "POST", "page", 403, "forbidden"),
    ("a POST in Spanish by central office", "central", "POST /es/api/outbox", "page", 403, "forbidden"),
    ("an admin's GET of a token: only those who capture send", "admin", "GET /en/api/token", None, 403,
     "forbidden"),
    ("a POST without the X-CSRFToken header", "officer", "POST", None, 400, "csrf"),
    ("a POST with a made-up token", "officer", "POST", "bogus", 400, "csrf"),
    ("a POST with another user's token", "officer", "POST", "officer_b", 400, "csrf"),
    ("a POST with the token in the JSON body only", "officer", "POST", "body", 400, "csrf"),
    ("a POST with a page's token from before a new login", "officer", "POST", "stale", 400, "csrf"),
])
def test_a_request_that_is_not_allowed_is_a_json_error_and_stores_nothing(db, client_as, case, who, request_,
                                                                          header, status, code):
    client = client_as(who)
    value = {"page": lambda: csrf_token(client.get("/en/login").text), "api": lambda: token(client),
             "bogus": lambda: "bogus", "officer_b": lambda: token(client_as("officer_b")),
             # a page's token, then a new login (a new session) before it is used
             "stale": lambda: (csrf_token(client.get("/en/intake/new").text), client.login(who))[0],
             }.get(header, lambda: None)()
    method, _, path = request_.partition(" ")
    body = {"records": [intake()]} | ({"csrf_token": token(client)} if header == "body" else {})
    headers = {"X-CSRFToken": value} if value else {}
    response = client.http.open(path or "/en/api/outbox", method=method, headers=headers,
                                json=body if method == "POST" else None)
    assert (response.status_code, response.json["ok"], response.json["error"]["code"]) == (
        status, False, code)
    assert (TITLES[status] in response.json["error"]["message"]) is ("/es/" not in path)
    assert records.count(db, "intake", None) == 0


@pytest.mark.parametrize(("source", "new_login"), [
    ("/en/api/token", False), ("/es/api/token", False), ("/en/intake/new", False), ("/en/api/token", True)])
def test_a_token_from_the_api_or_a_page_works_and_records_carry_none_of_their_own(db, officer, source,
                                                                                  new_login):
    if new_login:  # pages opened before it hold a dead token (above); the API gives a live one
        officer.login("officer")
    page = officer.get(source)
    fresh = page.json["token"] if page.is_json else csrf_token(page.text)
    record = refit(intake(), csrf_token="not a token at all")
    assert outcomes(send(officer, [record], csrf=fresh)) == [("stored", None)]
    assert "csrf_token" not in records.get(db, record["uuid"])["answers"]


# 7. The shell: the pages a device keeps for working offline.
@pytest.mark.parametrize(("who", "captures", "sessions"), [
    ("officer", True, True), ("supervisor", True, True), ("officer_b", True, False),
    ("admin", False, False), ("central", False, False),
])
def test_the_shell_lists_the_pages_to_keep_offline_in_both_languages(officer, client_as, training, who,
                                                                     captures, sessions):
    send(officer, [intake()])
    body = client_as(who).get("/en/api/shell").json
    pages, t = body["pages"], training
    assert body["ok"] and body["user"] == who
    for lang in ("en", "es"):
        assert f"/{lang}/" in pages
        assert (f"/{lang}/intake/new" in pages) is (f"/{lang}/outbox" in pages) is captures
        for s, course in ((t["today"], t["course"]), (t["elsewhere"], t["other"])):
            today = {f"/{lang}/sessions/{s}/checkin",
                     f"/{lang}/courses/{course}/participants/new?session={s}"}
            assert (today <= set(pages)) is sessions
    assert not [p for p in pages if t["later"] in p or t["cancelled"] in p or "/records" in p]
    assert sorted(set(pages)) == sorted(pages) and len(pages) == 2 * (1 + 2 * captures + 4 * sessions)


# 8. A record the server fails on: rejected alone, rolled back whole, logged without its data.
def test_a_record_the_database_fails_on_is_rejected_alone_and_leaves_nothing_behind(db, officer, training,
                                                                                    caplog):
    db.execute("CREATE TRIGGER refuse_marks BEFORE INSERT ON records WHEN NEW.form = 'attendance'"
               " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")  # a real SQLite fault, no mock
    walk_in, good = participant(training["course"], training["today"], given_names="Carla"), intake()
    with caplog.at_level(logging.ERROR, logger="fieldapp.web.api"):
        answers = send(officer, [walk_in, good, mark(training["today"], training["ana"])], "es")
    assert outcomes(answers) == [("rejected", "server_error"), ("stored", None), ("rejected", "server_error")]
    assert answers[0]["uuid"] == walk_in["uuid"] and "location" not in answers[0]
    assert answers[0]["message"] not in ("", str(api.FAILED))  # in Spanish
    assert records.get(db, walk_in["uuid"]) is None  # the participant's enrolment rolled it back
    assert enrolled(db, training["course"]) == [training["ana"]] and marks(db, training["today"]) == {}
    assert records.get(db, good["uuid"])["revision"] == 1
    assert "participant record failed: IntegrityError" in caplog.text and "mark record failed" in caplog.text
    assert "Carla" not in caplog.text and "disk trouble" not in caplog.text
