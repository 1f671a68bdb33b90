"""Data subject requests at central: produce everything held about a person (every record and
revision, in English or Spanish), correct it, erase it; bad input changes nothing."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from fieldapp.domain import persons as rules
from fieldapp.forms import schema
from fieldapp.storage import persons as person_store
from fieldapp.storage import records
from fieldapp.storage import subjects as store
from tests.conftest import csrf_token, database_bytes
from tests.test_intake_facts import BY_SQL, KEPT
from tests.test_persons import MARIA, course, enrol, intake, participant, save, session

MARKERS = ("Zorbaxquel", "Qwyndolin", "ZX9876543", "Nota-secreta-77")


@pytest.fixture
def world(app, db):
    """At central: Zorbaxquel registered for a course at POST-A (a registration, then her intake,
    corrected once), enrolled and marked; her duplicate intake at POST-B merged into her; and
    someone else, who must stay as they are."""
    app.config["MODE"] = "central"
    name = {**MARIA, "given_names": "Zorbaxquel", "first_surname": "Qwyndolin"}
    w = {"p": save(db, "participant", {**participant(), **name}, post="POST-A")}
    w["ip"] = save(db, "intake", intake(**name, doc_number="ZX9876543", notes="Nota-secreta-77"),
                   post="POST-A", person=w["p"])
    record = records.get(db, w["ip"])
    records.save(db, records.Submission(
        uuid=w["ip"], definition=schema.get("intake"),
        answers={**record["answers"], "occupation": "isco_5"}, post="POST-A", device="laptop-POST-A",
        user="officer2", base_revision=1, person=w["p"]))
    w["ca"] = save(db, "course", course(), post="POST-A")
    w["sa"] = save(db, "session", session(), post="POST-A", parent=w["ca"])
    w["ea"], w["ma"] = enrol(db, "POST-A", w["ca"], w["sa"], w["p"])
    w["b"] = save(db, "intake", intake(**name, doc_number="ZX9876543"), post="POST-B")
    person_store.set_verdict(db, w["p"], w["b"], rules.MERGED, by="central")
    w["other"] = save(db, "intake", intake(given_names="Otra", first_surname="Persona",
                                           doc_number="OT1234567"), post="POST-A")
    return w


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Cache-Control"] == "no-store"
    return response


def test_search_finds_the_person_once_as_they_now_are(world, client_as):
    central = client_as("central")
    for q in ("zorbax", "Qwyndolin", "zx98765"):
        page = _page(central, f"/en/central/subjects/?q={q}")
        assert page.text.count(f'data-person="{world["p"]}"') == 1, q
        assert world["b"] not in page.text and world["other"] not in page.text
    assert 'id="none"' in _page(central, "/en/central/subjects/?q=nobodyhere").text


@pytest.mark.parametrize(("lang", "words"), [("en", ("Revision 2", "Given names", "Female")),
                                              ("es", ("Nombres", "Femenino"))])
def test_the_report_holds_every_record_and_revision_in_the_chosen_language(world, client_as, lang, words):
    central = client_as("central")
    page = _page(central, f"/{lang}/central/subjects/{world['p']}").text
    for key in ("p", "ip", "ea", "ma", "b"):
        assert f'data-uuid="{world[key]}"' in page, key
    verdict = rules.merge_uuid(world["p"], world["b"], "POST-A")
    assert f'data-uuid="{verdict}"' in page  # the merge link
    assert world["other"] not in page
    for word in (*words, "Zorbaxquel", "Nota-secreta-77", "officer2"):
        assert word in page, word
    # A merged person's or an intake's page leads to the person as they now are.
    for other in ("b", "ip"):
        assert central.get(f"/en/central/subjects/{world[other]}").location.endswith(
            f"/en/central/subjects/{world['p']}")


def test_the_download_holds_the_page_and_every_revision_as_json(world, client_as):
    response = _page(client_as("central"), f"/es/central/subjects/{world['p']}/download")
    assert response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as z:
        data = json.loads(z.read("records.json"))
        assert "Nombres" in z.read("report.html").decode()
    held = {r["uuid"]: r for r in data["records"]}
    assert world["ip"] in held and world["b"] in held and world["ea"] in held
    assert [r["revision"] for r in held[world["ip"]]["revisions"]] == [1, 2]
    assert held[world["ip"]]["revisions"][0]["answers"]["notes"] == "Nota-secreta-77"
    assert data["merged"] == [world["b"]]


def _post(client, page_url, url, data):
    page = client.get(page_url)
    return client.http.post(url, data={"csrf_token": csrf_token(page.text), **data})


def test_a_correction_is_a_new_revision_that_the_post_pulls(world, client_as, db):
    central = client_as("central")
    report = f"/en/central/subjects/{world['p']}"
    done = _post(central, report, f"{report}/correct",
                 {"record": world["ip"], "field": "first_surname", "value": "Corregida"})
    assert done.status_code == 303
    record = records.get(db, world["ip"])
    assert record["revision"] == 3 and record["answers"]["first_surname"] == "Corregida"
    feed = db.execute("SELECT origin, post FROM changes WHERE uuid = ? ORDER BY seq DESC LIMIT 1",
                      [world["ip"]]).fetchone()
    assert feed == ("", "POST-A")  # central's own change, in the post's feed


@pytest.mark.parametrize("data", [
    {"field": "birth_date", "value": "2990-01-01"},  # in the future
    {"field": "sex", "value": "unknown-code"},
    {"field": "no_such_question", "value": "x"},
    {"field": "given_names", "value": ""},  # required
])
def test_a_bad_correction_is_refused_and_changes_nothing(world, client_as, db, data):
    central = client_as("central")
    report = f"/en/central/subjects/{world['p']}"
    before = records.history(db, world["ip"])
    response = _post(central, report, f"{report}/correct", {"record": world["ip"], **data})
    assert response.status_code == 400
    assert records.history(db, world["ip"]) == before


def _snapshot(db):
    return [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("records", "revisions", "changes", "erasures")]


@pytest.mark.parametrize(("who", "person", "data", "status"), [
    ("central", "p", {"reference": "DSR-1"}, 400),  # no reason
    ("central", "p", {"reason": "request"}, 400),  # no reference
    ("central", "p", {"reason": "request", "reference": "  "}, 400),
    ("central", "p", {"reason": "because", "reference": "DSR-1"}, 400),
    ("central", "p", {"reason": "request", "reference": "x" * 101}, 400),
    ("central", "unknown", {"reason": "request", "reference": "DSR-1"}, 404),
    ("central", "ca", {"reason": "request", "reference": "DSR-1"}, 404),  # a course, not a person
    ("central", "p", {"reason": "request", "reference": "DSR-1"}, 200),  # the confirmation page
    ("supervisor", "p", {"reason": "request", "reference": "DSR-1", "confirm": "yes"}, 403),
    ("officer", "p", {"reason": "request", "reference": "DSR-1", "confirm": "yes"}, 403),
])
def test_an_erasure_that_is_not_confirmed_or_not_allowed_changes_nothing(
        world, client_as, db, app, who, person, data, status):
    app.config["WTF_CSRF_ENABLED"] = False
    before = _snapshot(db)
    target = world.get(person, "00000000-0000-4000-8000-000000000000")
    response = client_as(who).http.post(f"/en/central/subjects/{target}/erase", data=data)
    assert response.status_code == status
    assert _snapshot(db) == before


def test_an_erasure_leaves_a_tombstone_and_nothing_readable(world, client_as, db, app, tmp_path):
    assert b"Zorbaxquel" in _raw(app.config["DATABASE"], db)  # what the last check looks for
    central = client_as("central")
    report = f"/en/central/subjects/{world['p']}"
    confirm = _post(central, report, f"{report}/erase", {"reason": "request", "reference": "DSR-2026-014"})
    assert confirm.status_code == 200 and "Zorbaxquel" in confirm.text
    done = central.http.post(f"{report}/erase", data={
        "csrf_token": csrf_token(confirm.text), "reason": "request", "reference": "DSR-2026-014",
        "confirm": "yes"})
    assert done.status_code == 303
    # Every record and revision emptied; the other person untouched.
    for key in ("p", "ip", "ea", "ma", "b"):
        record = records.get(db, world[key])
        assert record["deleted"] and record["answers"] == {}, key
        assert all(r["answers"] == {} for r in records.history(db, world[key])), key
    assert records.get(db, world["other"])["answers"]["given_names"] == "Otra"
    # The summary no longer counts the erased intake.
    assert db.execute(KEPT).fetchall() == db.execute(BY_SQL).fetchall()
    assert db.execute("SELECT count(*) FROM intake_facts WHERE record IN (SELECT id FROM records"
                      " WHERE uuid = ?)", [world["ip"]]).fetchone() == (0,)
    # The tombstones: one erasure record per post, no personal data.
    tombstones = store.erasures(db)
    assert sorted(t["post"] for t in tombstones) == ["POST-A", "POST-B"]
    assert {t["reference"] for t in tombstones} == {"DSR-2026-014"}
    assert all(t["by"] == "central" for t in tombstones)
    # The pages: search, the person's report, records, summary, duplicates.
    for q in ("zorbax", "ZX9876543", "qwyndolin"):
        assert 'id="none"' in _page(central, f"/en/central/subjects/?q={q}").text
    assert "DSR-2026-014" in _page(central, "/en/central/subjects/").text
    assert central.get(report).status_code == 404
    for url in ("/en/central/records?q=zorbax", "/en/central/records?form=participant",
                "/en/central/summary/", "/en/central/persons/", "/en/central/persons/merges",
                f"/en/records/{world['ip']}"):
        response = central.get(url)
        assert response.status_code in (200, 404), url
        for marker in MARKERS:
            assert marker not in response.text, (url, marker)
    # An export of every intake and participant.
    from fieldapp import exports
    from fieldapp.domain.filters import Filter
    from fieldapp.forms import export

    for form in ("intake", "participant", "enrolment", "attendance"):
        req = exports.Request(dataset=form, format="csv", purpose="test", flt=Filter(form=form),
                              incremental=False, options=export.Options(
                                  labels="both", lang="en", headers="variables", profile="full",
                                  key=b"k"))
        job = exports.start(db, req, username="central")
        exports.write(db, job, tmp_path / f"{form}.csv", secret_key="test-secret")
        text = (tmp_path / f"{form}.csv").read_text(encoding="utf-8")
        for marker in MARKERS:
            assert marker not in text, (form, marker)
    # And the database file itself, once the app's connections are closed.
    _assert_file_clean(app.config["DATABASE"], db)


def _raw(path, *connections) -> bytes:
    for conn in connections:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return database_bytes(path)


def _assert_file_clean(path, *connections):
    raw = _raw(path, *connections)
    for marker in MARKERS:
        for form in (marker, marker.lower()):
            assert form.encode() not in raw, form
