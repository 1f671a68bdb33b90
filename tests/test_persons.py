"""Duplicate persons at central: proposals, merge, "not the same person", undo; the verdicts sync to
the posts as corrections, whose views then show a merged person once."""

from __future__ import annotations

import random
import re
import uuid as uuidlib
from datetime import date

import pytest

from fieldapp import accounts, create_app
from fieldapp.domain import dedup
from fieldapp.domain import persons as rules
from fieldapp.domain.records import revision_hash
from fieldapp.forms import schema
from fieldapp.forms.builder import answers_as_formdata
from fieldapp.forms.validate import validate
from fieldapp.storage import persons as store
from fieldapp.storage import records
from fieldapp.storage import sync as sync_store
from fieldapp.storage.db import write
from fieldapp.web import persons as persons_web
from sync import protocol
from tests.conftest import PASSWORD, Client
from tests.sync.harness import Central, Field, enrolled_device, intake_answers

MARIA = {"given_names": "María José", "first_surname": "García", "second_surname": "Núñez",
         "sex": "female", "birth_date_known": "yes", "birth_date": "1990-05-04", "nationality": "HT"}
DOCUMENT = {"doc_type": "passport", "doc_number": "AB123456", "doc_country": "HT"}


def clean(form: str, **raw) -> dict:
    result = validate(schema.get(form), answers_as_formdata(raw), date.today())
    assert result.ok, result.errors
    return result.answers


def intake(**overrides) -> dict:
    return intake_answers(random.Random(1), **{**MARIA, **DOCUMENT, **overrides})


def participant() -> dict:
    return clean("participant", consent=["given"], population="migrant", **MARIA)


def course() -> dict:
    return clean("course", title="Soldadura básica", area="vocational", start_date="2026-11-02",
                 end_date="2026-11-27", min_attendance="80", capacity="25")


def session() -> dict:
    return clean("session", date="2026-11-03", start_time="09:00", end_time="12:00", status="scheduled")


def save(db, form: str, answers: dict, *, post: str, uuid: str = "", parent: str = "",
         person: str = "") -> str:
    sub = records.Submission(uuid=uuid or str(uuidlib.uuid4()), definition=schema.get(form),
                             answers=answers, post=post, device=f"laptop-{post}", user="officer1",
                             parent=parent, person=person)
    assert records.save(db, sub).outcome == "stored"
    return sub.uuid


def enrol(db, post: str, course_uuid: str, session_uuid: str, person: str) -> list[str]:
    """Enrol a person and mark them present: the enrolment's and the mark's uuids."""
    return [save(db, "enrolment", {"status": "enrolled"}, post=post, parent=course_uuid, person=person,
                 uuid=rules.enrolment_uuid(course_uuid, person)),
            save(db, "attendance", {"status": "present"}, post=post, parent=session_uuid, person=person,
                 uuid=rules.mark_uuid(session_uuid, person))]


@pytest.fixture
def world(app, db):
    """At central: María José registered for a course at POST-A (a participant registration, then
    her intake) and, as an intake of her own, at POST-B with a course there too."""
    app.config["MODE"] = "central"
    w = {"p": save(db, "participant", participant(), post="POST-A")}
    w["ip"] = save(db, "intake", intake(), post="POST-A", person=w["p"])
    w["ca"] = save(db, "course", course(), post="POST-A")
    w["sa"] = save(db, "session", session(), post="POST-A", parent=w["ca"])
    w["a_records"] = [w["p"], w["ip"], *enrol(db, "POST-A", w["ca"], w["sa"], w["p"])]
    w["q"] = save(db, "intake", intake(notes="Otra vez."), post="POST-B")
    w["cb"] = save(db, "course", course(), post="POST-B")
    w["sb"] = save(db, "session", session(), post="POST-B", parent=w["cb"])
    w["b_records"] = [w["q"], *enrol(db, "POST-B", w["cb"], w["sb"], w["q"])]
    w["other"] = save(db, "intake", intake_answers(random.Random(9), given_names="Wilmer",
                                                   first_surname="Rojas", nationality="VE"),
                      post="POST-B")
    return w


def heads(db) -> dict[str, tuple]:
    """Every record but the verdicts: uuid -> (revision, hash, deleted, person)."""
    return {r[0]: r[1:] for r in db.execute(
        "SELECT uuid, revision, hash, deleted, person FROM records WHERE form != 'person_merge'")}


def verdict_records(db) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in db.execute(
        "SELECT uuid, post, revision, json_extract(data, '$.status') FROM records"
        " WHERE form = 'person_merge'")}


# Rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("merges", "expected"), [
    ([], {}),
    ([("a", "b")], {"a": "b"}),
    ([("a", "b"), ("b", "c")], {"a": "c", "b": "c"}),
    ([("b", "c"), ("a", "b"), ("d", "c")], {"a": "c", "b": "c", "d": "c"}),
    ([("a", "b"), ("b", "a")], {"b": "a"}),  # a cycle (never written) resolves to one person
    ([("x", "b"), ("a", "b"), ("b", "a")], {"x": "a", "b": "a"}),
])
def test_merges_resolve_through_chains(merges, expected):
    assert rules.resolve(merges) == expected


@pytest.mark.parametrize(("current", "verdict", "ok"), [
    (None, "merged", True), (None, "distinct", True), (None, "unmerged", False),
    ("merged", "unmerged", True), ("merged", "merged", False), ("merged", "distinct", False),
    ("unmerged", "merged", True), ("unmerged", "distinct", True), ("unmerged", "unmerged", False),
    ("distinct", "merged", False), ("distinct", "unmerged", False),
])
def test_which_verdict_may_follow_which(current, verdict, ok):
    assert rules.may_follow(current, verdict) is ok


def test_a_pairs_verdict_uuid_is_per_post_and_ignores_the_order():
    a, b = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    assert rules.merge_uuid(a, b, "POST-A") == rules.merge_uuid(b, a, "POST-A")
    assert rules.merge_uuid(a, b, "POST-A") != rules.merge_uuid(a, b, "POST-B")


# Storage ----------------------------------------------------------------------------------------


def test_people_are_one_per_person_described_by_their_latest_intake(db, world):
    found = {p.id: p for p in store.people(db)}
    assert set(found) == {world["p"], world["q"], world["other"]}  # ip is p's intake, not a person
    assert found[world["p"]].doc_number == "AB123456"  # from the intake, not the registration
    assert found[world["p"]].post == "POST-A" and found[world["q"]].post == "POST-B"
    assert found[world["q"]].given_names == "María José" and found[world["q"]].birth_date == "1990-05-04"
    # An anonymous intake (consent refused) is never proposed: it is left out.
    save(db, "intake", clean("intake", consent="refused", purpose="assistance", age_group="25_59",
                             sex="female", nationality="HT", interview_date="2026-01-05"), post="POST-A")
    assert {p.id for p in store.people(db)} == set(found)


def test_merge_and_undo_keep_every_linked_record(db, world):
    p, q = world["p"], world["q"]
    before = heads(db)
    store.set_verdict(db, q, p, "merged", by="central", score=90, reasons=["same_names"])
    assert store.links(db) == {p: q}
    assert store.group(db, q) == [q, p]
    linked = store.linked(db, store.group(db, q))
    assert {r["uuid"] for r in linked} == {*world["a_records"], *world["b_records"]}
    # Every intake, registration, enrolment and mark of both now resolves to the one kept.
    now_is = store.canonical(db, [rules.person_id(r) for r in linked])
    assert set(now_is.values()) == {q}
    assert store.counts(db, [q]) == {q: len(world["a_records"]) + len(world["b_records"])}
    # One verdict record per post the two belong to; the person records are untouched.
    assert verdict_records(db) == {rules.merge_uuid(p, q, "POST-A"): ("POST-A", 1, "merged"),
                                   rules.merge_uuid(p, q, "POST-B"): ("POST-B", 1, "merged")}
    assert heads(db) == before

    store.set_verdict(db, p, q, "unmerged", by="central")
    assert store.links(db) == {}
    assert {r["uuid"] for r in store.linked(db, store.group(db, q))} == set(world["b_records"])
    assert {r["uuid"] for r in store.linked(db, store.group(db, p))} == set(world["a_records"])
    assert {v[1:] for v in verdict_records(db).values()} == {(2, "unmerged")}
    assert heads(db) == before
    # History keeps the merge: the undo is a new revision, nothing was deleted.
    for uuid in verdict_records(db):
        assert [r["answers"]["status"] for r in records.history(db, uuid)] == ["merged", "unmerged"]
    # Undone, the pair may be merged again, the other way round.
    store.set_verdict(db, p, q, "merged", by="central")
    assert store.links(db) == {q: p}


@pytest.mark.parametrize(("first", "then", "code"), [
    ("merged", "merged", "judged"),
    ("merged", "distinct", "judged"),
    ("distinct", "merged", "judged"),
    ("distinct", "unmerged", "judged"),
    (None, "unmerged", "judged"),
])
def test_a_verdict_that_may_not_follow_is_refused_and_changes_nothing(db, world, first, then, code):
    p, q = world["p"], world["q"]
    if first:
        store.set_verdict(db, q, p, first, by="central")
    before = verdict_records(db)
    with pytest.raises(store.VerdictRefused) as refused:
        store.set_verdict(db, q, p, then, by="central")
    assert refused.value.code == code and verdict_records(db) == before


def test_a_merged_person_cannot_be_merged_into_a_third(db, world):
    p, q, other = world["p"], world["q"], world["other"]
    store.set_verdict(db, q, p, "merged", by="central")
    with pytest.raises(store.VerdictRefused) as refused:
        store.set_verdict(db, other, p, "merged", by="central")
    assert refused.value.code == "already_merged"
    with pytest.raises(store.VerdictRefused) as refused:
        store.set_verdict(db, q, str(uuidlib.uuid4()), "merged", by="central")
    assert refused.value.code == "unknown_person"


def test_not_the_same_person_is_not_proposed_again(db, world):
    p, q = world["p"], world["q"]
    run = store.look_again(db, by="central")
    assert run["persons"] == 3 and run["pairs"] >= 1
    [pair] = [x for x in store.proposals(db) if {x.a, x.b} == {p, q}]
    assert pair.score >= dedup.THRESHOLD and set(pair.reasons) <= set(dedup.REASONS)
    assert store.proposal(db, q, p) == pair
    store.set_verdict(db, pair.a, pair.b, "distinct", by="central", score=pair.score,
                      reasons=pair.reasons)
    assert store.proposal(db, p, q) is None and pair not in store.proposals(db)
    assert rules.pair(p, q) in store.judged(db)
    store.look_again(db, by="central")
    assert all({x.a, x.b} != {p, q} for x in store.proposals(db))


def test_a_merged_person_is_not_proposed_with_a_third(db, world):
    p, q = world["p"], world["q"]
    third = save(db, "intake", intake(), post="POST-C")
    store.look_again(db, by="central")
    assert {rules.pair(p, third), rules.pair(q, third)} <= {(x.a, x.b) for x in store.proposals(db)}
    store.set_verdict(db, q, p, "merged", by="central")
    proposed = {(x.a, x.b) for x in store.proposals(db)}  # the last run, as it stands now
    assert rules.pair(q, third) in proposed and rules.pair(p, third) not in proposed
    store.look_again(db, by="central")
    assert {(x.a, x.b) for x in store.proposals(db)} == {rules.pair(q, third)}


# A device may not push a verdict ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_device_pushing_a_verdict_is_refused(app, db, world, lang):
    token, _ = enrolled_device(db, "POST-A")
    answers = {"survivor": world["p"], "merged": world["ip"], "status": "merged", "score": 90}
    uuid = rules.merge_uuid(world["p"], world["ip"], "POST-A")
    item = {"uuid": uuid, "form": "person_merge", "v": 1, "base": 0, "base_hash": "",
            "hash": revision_hash(answers), "deleted": False, "answers": answers,
            "parent": "", "person": "", "by": "officer1", "at": "2026-11-20T10:00:00Z"}
    response = app.test_client().post(
        f"/{lang}/sync/v1/push", data=protocol.encode({"sync": "s", "batch": "b", "records": [item]}),
        headers={protocol.PROTOCOL_HEADER: str(protocol.VERSION), "Authorization": f"Bearer {token}",
                 "Content-Type": "application/json", "Content-Encoding": "gzip"})
    [result] = response.get_json()["results"]
    assert result["outcome"] == "rejected" and result["code"] == "central_only"
    assert "central office" in result["message"] or lang == "es"
    assert records.get(db, uuid) is None and store.links(db) == {}


# Pages ------------------------------------------------------------------------------------------


@pytest.fixture
def staff(app, client_as, world):
    return client_as("central")


def look_again(staff, lang="en"):
    """Press "Look again" and wait for the finder's thread to finish."""
    response = staff.post_form(f"/{lang}/central/persons/", {}, url=f"/{lang}/central/persons/look-again")
    assert response.status_code == 303
    if thread := persons_web.looking(staff.app.config["DATABASE"]):
        thread.join()


def test_one_look_at_a_time(staff, db, world):
    with write(db):  # the finder's thread waits to store its run
        look_again_page = staff.post_form("/en/central/persons/", {},
                                          url="/en/central/persons/look-again")
        thread = persons_web.looking(staff.app.config["DATABASE"])
        assert thread is not None and 'id="looking"' in staff.get(look_again_page.location).text
        again = staff.post_form("/en/central/persons/", {}, url="/en/central/persons/look-again")
        assert "Someone is looking for duplicates already" in staff.get(again.location).text
    thread.join()
    page = staff.get("/en/central/persons/").text
    assert 'id="looking"' not in page and 'id="last-run"' in page


@pytest.mark.parametrize(("lang", "country", "born"), [("en", "Haiti", "May 4, 1990"),
                                                        ("es", "Haití", "4 may 1990")])
def test_the_proposed_pairs_page(staff, db, world, lang, country, born):
    first = staff.get(f"/{lang}/central/persons/")
    assert first.status_code == 200 and 'id="last-run"' not in first.text
    look_again(staff, lang)
    page = staff.get(f"/{lang}/central/persons/").text
    assert f'lang="{lang}"' in page and 'id="last-run"' in page
    [pair] = [x for x in re.findall(r'data-pair="([^"]+)"', page)]
    assert set(pair.split()) == {world["p"], world["q"]}
    assert page.count(country) >= 2 and page.count(born) == 2 and "AB123456" in page
    assert "POST-A" in page and "POST-B" in page
    assert f'href="/{lang}/central/persons/{world["p"]}"' in page
    if lang == "en":
        proposed = store.proposal(db, world["p"], world["q"])
        assert all(dedup.REASONS[code] in page for code in proposed.reasons)
        assert f"Score {proposed.score} of 100" in page


@pytest.fixture
def central_db(db, staff):
    return db


def test_merging_from_the_page_then_undoing(staff, central_db, world):
    p, q = world["p"], world["q"]
    look_again(staff)
    merged = staff.post_form("/en/central/persons/", {"a": p, "b": q, "survivor": q},
                             url="/en/central/persons/merge")
    assert merged.status_code == 303
    assert store.links(central_db) == {p: q}
    assert "data-pair" not in staff.get("/en/central/persons/").text
    listed = staff.get("/en/central/persons/merges").text
    assert f'data-pair="{q} {p}"' in listed
    # The kept person's page lists every record of both; the merged one's page leads there.
    person = staff.get(f"/en/central/persons/{q}").text
    assert set(re.findall(r'data-uuid="([^"]+)"', person)) == {*world["a_records"], *world["b_records"]}
    assert staff.get(f"/en/central/persons/{p}").location.endswith(f"/en/central/persons/{q}")
    undone = staff.post_form("/en/central/persons/merges", {"a": q, "b": p},
                             url="/en/central/persons/merges/undo")
    assert undone.status_code == 303 and store.links(central_db) == {}
    assert 'id="no-merges"' in staff.get("/es/central/persons/merges").text
    assert f'data-pair="{rules.pair(p, q)[0]} {rules.pair(p, q)[1]}"' in staff.get(
        "/en/central/persons/").text  # undone, proposed again


def test_not_the_same_person_from_the_page(staff, central_db, world):
    look_again(staff)
    response = staff.post_form("/es/central/persons/", {"a": world["q"], "b": world["p"]},
                               url="/es/central/persons/distinct")
    assert response.status_code == 303
    assert rules.pair(world["p"], world["q"]) in store.judged(central_db)
    assert 'id="no-pairs"' in staff.get("/es/central/persons/").text


UNKNOWN = "6a0a4b8e-1111-4c2d-9e3f-000000000000"


@pytest.mark.parametrize(("action", "data", "status", "text"), [
    ("merge", {}, 400, "does not name two different persons"),
    ("merge", {"a": "x", "b": "y", "survivor": "x"}, 400, "does not name two different persons"),
    ("merge", {"a": "p", "b": "q", "survivor": "other"}, 400, "does not name two different persons"),
    ("merge", {"a": "p", "b": "p", "survivor": "p"}, 400, "does not name two different persons"),
    ("merge", {"a": UNKNOWN, "b": "q", "survivor": "q"}, 404, "was not found"),
    ("merge", {"a": "ip", "b": "q", "survivor": "q"}, 409, "not among the proposed pairs"),
    ("merge", {"a": "other", "b": "q", "survivor": "q"}, 409, "not among the proposed pairs"),
    ("merge", {"a": "p", "b": "q", "survivor": "q", "judged": "distinct"}, 409, "judged already"),
    ("distinct", {"a": "p", "b": "q", "judged": "merged"}, 409, "one person already"),
    ("distinct", {"a": "p"}, 400, "does not name two different persons"),
    ("undo", {"a": "p", "b": "q"}, 409, "nothing to undo"),
    ("undo", {"a": "p", "b": UNKNOWN}, 404, "was not found"),
    ("undo", {"a": "p", "b": "q", "judged": "distinct"}, 409, "nothing to undo"),
])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(staff, central_db, world, action, data,
                                                        status, text):
    look_again(staff)
    data = dict(data)
    if judged := data.pop("judged", None):
        store.set_verdict(central_db, world["q"], world["p"], judged, by="central")
    data = {k: world.get(v, v) for k, v in data.items()}
    before = verdict_records(central_db)
    url = {"merge": "/en/central/persons/merge", "distinct": "/en/central/persons/distinct",
           "undo": "/en/central/persons/merges/undo"}[action]
    response = staff.post_form("/en/central/persons/", data, url=url)
    assert response.status_code == status and text in response.text
    assert verdict_records(central_db) == before


def test_a_post_without_csrf_is_refused(staff, central_db, world):
    look_again(staff)
    response = staff.http.post("/en/central/persons/merge",
                               data={"a": world["p"], "b": world["q"], "survivor": world["q"]})
    assert response.status_code == 400 and store.links(central_db) == {}


@pytest.mark.parametrize("person", [UNKNOWN, "not-a-uuid", "ca"])
def test_a_person_page_of_no_person_is_not_found(staff, world, person):
    assert staff.get(f"/en/central/persons/{world.get(person, person)}").status_code == 404


def test_an_intakes_person_page_is_its_participants(staff, world):
    response = staff.get(f"/en/central/persons/{world['ip']}")
    assert response.location.endswith(f"/central/persons/{world['p']}")


@pytest.mark.parametrize("page", ["abc", "-3", "999"])
def test_any_page_number_shows_a_page(staff, world, page):
    look_again(staff)
    assert staff.get(f"/en/central/persons/?page={page}").status_code == 200


def test_the_pages_are_central_only(app, client_as, world):
    app.config["MODE"] = "field"
    assert client_as("central").get("/en/central/persons/").status_code == 404


# The post's views -----------------------------------------------------------------------------


def test_at_the_post_a_merged_person_is_on_a_course_once_with_all_her_attendance(db, client_as):
    """Registered twice at one post, enrolled twice, each marked at one of two sessions: once
    central's verdict is here (as a pull brings it), the post sees one person who attended both."""
    p = save(db, "participant", participant(), post="POST-A")
    i = save(db, "intake", intake(), post="POST-A")
    course_uuid = save(db, "course", course(), post="POST-A")
    first = save(db, "session", session(), post="POST-A", parent=course_uuid)
    second = save(db, "session", clean("session", date="2026-11-04", start_time="09:00",
                                       end_time="12:00", status="scheduled"),
                  post="POST-A", parent=course_uuid)
    enrol(db, "POST-A", course_uuid, first, p)
    enrol(db, "POST-A", course_uuid, second, i)
    officer = client_as("officer")

    def attended() -> list[str]:  # sessions attended, per participant
        page = officer.get(f"/en/courses/{course_uuid}/summary").text.split("<h2>Sessions")[0]
        return re.findall(r"<td>(\d+ / \d+)</td>", page)

    assert attended() == ["1 / 2", "1 / 2"]
    store.set_verdict(db, p, i, "merged", by="central", device="central")
    page = officer.get(f"/en/courses/{course_uuid}").text
    assert "Participants (1" in page
    assert attended() == ["2 / 2"]
    # Searching finds her once, enrolled; enrolling her other record is refused.
    found = officer.get(f"/en/courses/{course_uuid}/enrol?q=Garc%C3%ADa").text
    assert found.count('class="person"') == 1 and "Already enrolled" in found
    before = heads(db)
    refused = officer.post_form(f"/en/courses/{course_uuid}/enrol?q=x", {"person": i},
                                url=f"/en/courses/{course_uuid}/enrol")
    assert "already on the course" in officer.get(refused.location).text
    assert heads(db) == before


# A round trip through a real central server -----------------------------------------------------


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    c = Central(tmp_path_factory.mktemp("central")).start()
    yield c
    c.stop()


def roster_size(client: Client, course_uuid: str) -> int:
    page = client.get(f"/en/courses/{course_uuid}").text
    return page.split('<ol class="roster">')[1].split("</ol>")[0].count("<li>")


def test_merges_and_their_undo_sync_to_the_posts(central, tmp_path):
    a, b = Field.create(tmp_path / "a", "PERSONS-A"), Field.create(tmp_path / "b", "PERSONS-B")
    a.enrol(central), b.enrol(central)
    # At post A, María José was registered twice: for a course, and later by an intake.
    p = a.save("participant", participant())
    i = a.save("intake", intake(notes="Segundo registro."))
    course_uuid = a.save("course", course())
    session_uuid = a.save("session", session(), parent=course_uuid)
    for person in (p, i):
        a.save("enrolment", {"status": "enrolled"}, uuid=rules.enrolment_uuid(course_uuid, person),
               parent=course_uuid, person=person)
        a.save("attendance", {"status": "present"}, uuid=rules.mark_uuid(session_uuid, person),
               parent=session_uuid, person=person)
    q = b.save("intake", intake())  # and at post B
    a.sync(), b.sync()
    accounts.create(a.db, username="sup", password=PASSWORD, role="supervisor", post=a.post)
    field_app = create_app({"SECRET_KEY": "x", "DATABASE": str(a.path), "POST": a.post,
                            "DEVICE_ID": "laptop-a", "TESTING": True}, instance=tmp_path)
    at_post = Client(field_app, "sup")
    assert roster_size(at_post, course_uuid) == 2

    conn = central.db()
    try:
        store.look_again(conn, by="central1")
        proposed = {(x.a, x.b) for x in store.proposals(conn)}
        assert {rules.pair(p, i), rules.pair(i, q), rules.pair(p, q)} <= proposed
        store.set_verdict(conn, q, i, "merged", by="central1")
        store.set_verdict(conn, q, p, "merged", by="central1")
    finally:
        conn.close()
    assert a.sync().pulled == 2 and b.sync().pulled == 2  # a verdict record per pair and post
    for field in (a, b):
        assert store.links(field.db) == {i: q, p: q}
    # The post resolves the person: on the roster once, with her attendance.
    assert roster_size(at_post, course_uuid) == 1
    assert "Participants (1" in at_post.get(f"/en/courses/{course_uuid}").text

    # A correction at the post to the merged person's intake syncs; the merge holds.
    a.edit(i, notes="Corregido en el puesto.")
    assert a.sync().counts["stored"] == 1
    conn = central.db()
    try:
        assert records.get(conn, i)["answers"]["notes"] == "Corregido en el puesto."
        assert store.links(conn) == {i: q, p: q}
        store.set_verdict(conn, q, i, "unmerged", by="central1")
    finally:
        conn.close()
    assert a.sync().pulled == 1 and b.sync().pulled == 1
    for field in (a, b):
        assert store.links(field.db) == {p: q}
    assert roster_size(at_post, course_uuid) == 2
    assert records.get(a.db, i)["revision"] == 2 and store.links(a.db) == {p: q}
    for field in (a, b):
        field.db.close()


def test_a_verdict_made_at_a_post_is_refused_by_central(central, tmp_path):
    a = Field.create(tmp_path / "a", "PERSONS-C")
    a.enrol(central)
    p, i = a.save("participant", participant()), a.save("intake", intake())
    uuid = a.save("person_merge", {"survivor": p, "merged": i, "status": "merged", "score": 90},
                  uuid=rules.merge_uuid(p, i, a.post))
    done = a.sync()
    assert done.counts["rejected"] == 1 and done.counts["stored"] == 2
    [outcome] = sync_store.outcomes(a.db, "rejected")
    assert outcome["uuid"] == uuid and outcome["code"] == "central_only"
    assert "central office" in outcome["message"]
    conn = central.db()
    try:
        assert records.get(conn, uuid) is None and not {p, i} & set(store.links(conn))
    finally:
        conn.close()
    a.db.close()
