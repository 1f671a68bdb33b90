"""Central's summary page: counts over the live records of several posts, the training figures by
the rules of domain/trainings.py, SVG charts that are well-formed and escape what they draw, both
languages, and who may open it."""

from __future__ import annotations

import random
import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from fieldapp.domain import charts, persons
from fieldapp.forms import schema
from fieldapp.storage import migrations, records, summary
from tests.conftest import ACCOUNTS
from tests.sync.harness import intake_answers

TODAY = date.today()
SVG = re.compile(r"<svg\b.*?</svg>", re.S)
HOSTILE = 'Curso <script>alert("x")</script> & ]]> \x01 \'Ñandú\''


def _uuid() -> str:
    return str(uuidlib.uuid4())


def _save(db, form, answers, post, *, uuid=None, base=0, parent="", person="", deleted=False):
    uuid = uuid or _uuid()
    decision = records.save(db, records.Submission(
        uuid, schema.get(form), answers, post, "dev", "tester", base_revision=base, parent=parent,
        person=person, deleted=deleted))
    assert decision.outcome == "stored", decision
    return uuid


def _answers(rng, **overrides):
    return intake_answers(rng, arrival_date=overrides["interview_date"], **overrides)


def _intake(db, post, rng, *, deleted=False, **overrides):
    return _save(db, "intake", _answers(rng, **overrides), post, deleted=deleted)


@pytest.fixture
def central_app(app):
    app.config["MODE"] = "central"
    return app


@pytest.fixture
def world(db):
    """Intakes of three posts (one deleted, one edited), and two courses with known figures."""
    rng = random.Random(6)
    # POST-A, January 2025: a woman of 34, a boy of 14, a woman with an estimated age of 70.
    _intake(db, "POST-A", rng, interview_date="2025-01-15", nationality="VE", sex="female",
            birth_date="1990-05-04", migratory_status="in_transit")
    _intake(db, "POST-A", rng, interview_date="2025-01-15", nationality="VE", sex="male",
            birth_date="2010-06-01", migratory_status="refugee")
    _intake(db, "POST-A", rng, interview_date="2025-01-20", nationality="CO", sex="female",
            birth_date_known="no", estimated_age="70",
            migratory_status="regular")
    # POST-A, March 2025: consent refused, so an age group and no migratory status.
    refused = _answers(rng, interview_date="2025-03-02", consent="refused", age_group="0_4",
                             nationality="HT", sex="female")
    _save(db, "intake", refused, "POST-A")
    # POST-B, March 2025: a man 24 years old to the day before his 25th birthday; a stateless person.
    _intake(db, "POST-B", rng, interview_date="2025-03-14", nationality="HT", sex="male",
            birth_date="2000-03-15", migratory_status="asylum_seeker")
    _intake(db, "POST-B", rng, interview_date="2025-03-10", nationality="XX", sex="other",
            birth_date="1980-01-01", migratory_status="in_transit")
    # A deleted intake counts nowhere; an edited one counts once, as it is now.
    _intake(db, "POST-B", rng, deleted=True, interview_date="2025-03-10", nationality="VE",
            sex="male", birth_date="1985-01-01", migratory_status="irregular")
    edited_answers = _answers(rng, interview_date="2025-03-11", nationality="VE",
                                    sex="male", birth_date="1970-01-01", migratory_status="irregular")
    edited = _save(db, "intake", edited_answers, "POST-B")
    _save(db, "intake", {**edited_answers, "nationality": "CO"}, "POST-B", uuid=edited, base=1)
    # POST-C, February 2025.
    _intake(db, "POST-C", rng, interview_date="2025-02-03", nationality="EC", sex="female",
            birth_date="1960-02-04", migratory_status="regular")

    # A finished course of POST-A: 3 sessions held, 1 cancelled; 75 % needed for a certificate.
    course = _save(db, "course", {"title": HOSTILE, "area": "vocational", "start_date": "2025-05-05",
                                  "end_date": "2025-05-30", "min_attendance": 75}, "POST-A")
    days = ["2025-05-05", "2025-05-06", "2025-05-07", "2025-05-08"]
    sessions = [_save(db, "session", {"date": d, "start_time": "09:00", "end_time": "12:00",
                                      "status": "cancelled" if i == 3 else "scheduled"},
                      "POST-A", parent=course) for i, d in enumerate(days)]
    people = [_save(db, "participant", {"consent": ["given"], "given_names": f"P{i}", "first_surname": "X",
                                        "sex": "female", "nationality": "VE", "population": "migrant"},
                    "POST-A")
              for i in range(7)]
    for i, person in enumerate(people):
        _save(db, "enrolment", {"status": "withdrawn" if i == 4 else "enrolled"}, "POST-A",
              uuid=persons.enrolment_uuid(course, person), parent=course, person=person)
    # P5's person record is deleted: off the roster, as on the course's own page.
    gone = records.get(db, people[5])
    _save(db, "participant", gone["answers"], "POST-A", uuid=people[5], base=1, deleted=True)
    marks = {
        0: ["present", "present", "present"],  # 3 of 3: completes
        1: ["present", "late", "absent", "present"],  # 2 of 3 (the cancelled one does not count)
        2: ["present", "present", "late"],  # 3 of 3: completes
        3: ["excused", "absent"],  # 0 of 3
        4: ["present", "present", "present"],  # withdrawn: not counted
        5: ["present", "present", "present"],  # no person record: not counted
    }
    for i, statuses in marks.items():
        for session, status in zip(sessions, statuses, strict=False):
            _save(db, "attendance", {"status": status}, "POST-A",
                  uuid=persons.mark_uuid(session, people[i]), parent=session, person=people[i])
    # A mark deleted afterwards counts for nothing (P3 was not there after all).
    mark = _save(db, "attendance", {"status": "present"}, "POST-A",
                 uuid=persons.mark_uuid(sessions[2], people[3]), parent=sessions[2],
                 person=people[3])
    _save(db, "attendance", {"status": "present"}, "POST-A", uuid=mark, base=1, deleted=True)
    for i in (0, 2, 6):
        certificate = _save(db, "certificate", {"number": f"FA-{i}", "minutes": 540,
                                                "issued_on": "2025-06-01"}, "POST-A",
                            parent=course, person=people[i])
    _save(db, "certificate", {"number": "FA-6", "minutes": 540, "issued_on": "2025-06-01"}, "POST-A",
          uuid=certificate, base=1, deleted=True)

    # A running course of POST-B: one session held, one to come.
    running = _save(db, "course", {"title": "Electricidad", "area": "vocational",
                                   "start_date": (TODAY - timedelta(days=1)).isoformat(),
                                   "end_date": (TODAY + timedelta(days=30)).isoformat(),
                                   "min_attendance": 80}, "POST-B")
    held = _save(db, "session", {"date": (TODAY - timedelta(days=1)).isoformat(),
                                 "start_time": "09:00", "end_time": "12:00", "status": "scheduled"},
                 "POST-B", parent=running)
    _save(db, "session", {"date": (TODAY + timedelta(days=7)).isoformat(), "start_time": "09:00",
                          "end_time": "12:00", "status": "scheduled"}, "POST-B", parent=running)
    learner = _save(db, "participant", {"consent": ["given"], "given_names": "Q", "first_surname": "Y",
                                        "sex": "male", "nationality": "CO", "population": "host"},
                    "POST-B")
    _save(db, "enrolment", {"status": "enrolled"}, "POST-B",
          uuid=persons.enrolment_uuid(running, learner), parent=running, person=learner)
    _save(db, "attendance", {"status": "present"}, "POST-B", uuid=persons.mark_uuid(held, learner),
          parent=held, person=learner)
    # A deleted course counts nowhere.
    dropped = _save(db, "course", {"title": "Borrado", "area": "other", "start_date": "2025-05-05",
                                   "end_date": "2025-05-30", "min_attendance": 80}, "POST-C")
    _save(db, "course", records.get(db, dropped)["answers"], "POST-C", uuid=dropped, base=1,
          deleted=True)
    return {"course": course, "running": running}


# ------------------------------------------------------------------ counts


def test_intakes_are_counted_by_every_dimension(db, world):
    counts = summary.intakes(db)
    assert counts.total == 8
    assert counts.by("post") == {"POST-A": 4, "POST-B": 3, "POST-C": 1}
    assert counts.by("month") == {"2025-01": 3, "2025-02": 1, "2025-03": 4}
    assert counts.pair("month", "post") == {
        ("2025-01", "POST-A"): 3, ("2025-02", "POST-C"): 1, ("2025-03", "POST-A"): 1,
        ("2025-03", "POST-B"): 3}
    assert counts.by("nationality") == {"VE": 2, "CO": 2, "HT": 2, "XX": 1, "EC": 1}
    assert counts.by("sex") == {"female": 4, "male": 3, "other": 1}
    assert counts.by("age_group") == {"25_59": 3, "12_17": 1, "60_plus": 2, "0_4": 1, "18_24": 1}
    assert counts.by("migratory_status") == {"in_transit": 2, "refugee": 1, "regular": 2,
                                             "asylum_seeker": 1, "irregular": 1, "": 1}
    assert counts.pair("age_group", "sex")["12_17", "male"] == 1


@pytest.mark.parametrize(("filters", "total", "by_post"), [
    (summary.Filters(post="POST-B"), 3, {"POST-B": 3}),
    (summary.Filters(first_month="2025-02"), 5, {"POST-A": 1, "POST-B": 3, "POST-C": 1}),
    (summary.Filters(last_month="2025-02"), 4, {"POST-A": 3, "POST-C": 1}),
    (summary.Filters(post="POST-A", first_month="2025-03", last_month="2025-03"), 1, {"POST-A": 1}),
    (summary.Filters(post="POST-Z"), 0, {}),
])
def test_filters_narrow_every_count(db, world, filters, total, by_post):
    counts = summary.intakes(db, filters)
    assert counts.total == total and counts.by("post") == by_post
    for dimension in ("nationality", "sex", "age_group", "migratory_status"):
        assert sum(counts.by(dimension).values()) == total


AGES = [  # (answers besides the interview date 2025-03-14, age group)
    ({"birth_date": "2000-03-15"}, "18_24"),  # 24, the day before the 25th birthday
    ({"birth_date": "2000-03-14"}, "25_59"),  # 25 on the day
    ({"birth_date": "2020-03-15"}, "0_4"),
    ({"birth_date": "2020-03-14"}, "5_11"),
    ({"birth_date": "2008-02-29"}, "12_17"),
    ({"birth_date": "2007-03-14"}, "18_24"),
    ({"birth_date": "1965-03-14"}, "60_plus"),
    ({"birth_date": "1965-03-15"}, "25_59"),
    ({"birth_date": "2025-03-14"}, "0_4"),  # born that day
    ({"estimated_age": 0}, "0_4"),
    ({"estimated_age": 11}, "5_11"),
    ({"estimated_age": 17}, "12_17"),
    ({"estimated_age": 18}, "18_24"),
    ({"estimated_age": 59}, "25_59"),
    ({"estimated_age": 120}, "60_plus"),
    ({"age_group": "5_11"}, "5_11"),  # asked when consent was refused
    ({}, ""),  # no age known
]


@pytest.mark.parametrize(("answers", "group"), AGES)
def test_the_age_group_is_the_age_at_the_interview(db, answers, group):
    _save(db, "intake", {"interview_date": "2025-03-14", **answers}, "POST-A")
    assert summary.intakes(db).by("age_group") == {group: 1}


def test_the_age_group_agrees_with_python_on_random_dates(db):
    rng, expected = random.Random(3), {}
    subs = []
    for _ in range(300):
        born = date(1900, 1, 1) + timedelta(days=rng.randint(0, 45000))
        seen = born + timedelta(days=rng.randint(0, 30000))
        age = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
        uuid = _uuid()
        expected[uuid] = next((code for top, code in migrations.AGE_GROUP_BOUNDS if age <= top),
                              "60_plus")
        subs.append(records.Submission(uuid, schema.get("intake"), {
            "interview_date": seen.isoformat(), "birth_date": born.isoformat()}, "POST-A", "d", "u"))
    records.save_batch(db, subs)
    found = dict(db.execute(f"SELECT uuid, {migrations.INTAKE_AGE_GROUP} FROM records").fetchall())
    assert found == expected


def test_each_count_reads_its_index_in_order(db):
    """The speed at 100,000 intakes comes from reading an index without sorting (bench/summary.py)."""
    for names, index in summary.PAIRS.items():
        columns = ", ".join(names)
        sql = (f"SELECT {columns}, count(*) FROM intake_facts WHERE month >= ? AND post = ?"
               f" GROUP BY {columns}")  # what summary.intakes asks, without its INDEXED BY
        plan = " / ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, ["2025-01", "P"]))
        assert f"USING COVERING INDEX {index}" in plan and "TEMP B-TREE" not in plan, (names, plan)


def test_participant_registrations_by_post(db, world):
    assert summary.participants_by_post(db) == {"POST-A": 6, "POST-B": 1}
    assert summary.participants_by_post(db, summary.Filters(post="POST-B")) == {"POST-B": 1}
    assert summary.participants_by_post(db, summary.Filters(last_month="2000-01")) == {}


def test_posts_are_every_post_with_records(db, world):
    assert summary.posts(db) == ["POST-A", "POST-B", "POST-C"]


def test_training_figures_follow_the_training_rules(db, world):
    figures = {c.uuid: c for c in summary.courses(db, TODAY)}
    assert set(figures) == {world["course"], world["running"]}
    done = figures[world["course"]]
    assert (done.over, done.sessions_held, done.enrolled, done.qualifying, done.completed,
            done.certified) == (True, 3, 5, 2, 2, 2)
    # 3 + 2 + 3 + 0 + 0 attended of 5 x 3 possible; P6 is enrolled and never came.
    assert (done.attended, done.possible) == (8, 15)
    running = figures[world["running"]]
    assert (running.over, running.sessions_held, running.enrolled, running.completed) == (
        False, 1, 1, None)
    assert running.qualifying == 1 and running.attendance_rate == 1
    by_post = summary.training_by_post(list(figures.values()))
    assert by_post["POST-A"].completed == 2 and by_post["POST-B"].completed == 0
    assert by_post["POST-B"].enrolled == 1 and "POST-C" not in by_post


def test_the_course_figures_match_the_course_s_own_summary(central_app, db, world, client_as):
    page = client_as("central").get(f"/en/courses/{world['course']}/summary").text
    assert page.count(">qualifies<") == 2
    assert summary.courses(db, TODAY)[0].qualifying == 2


def test_courses_are_filtered_by_post_and_first_day(db, world):
    assert [c.uuid for c in summary.courses(db, TODAY, summary.Filters(post="POST-B"))] == [
        world["running"]]
    assert [c.uuid for c in summary.courses(db, TODAY, summary.Filters(
        first_month="2025-05", last_month="2025-05"))] == [world["course"]]


# ------------------------------------------------------------------ charts


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.find("{http://www.w3.org/2000/svg}title").text == root.get("aria-label")
    assert root.get("style") is None and not root.findall(".//*[@style]")
    assert not root.findall(".//{http://www.w3.org/2000/svg}script")
    return root


CHARTS = {
    "horizontal": lambda label: charts.horizontal_bars(
        "c1", label, [charts.Bar(label, 3, "3"), charts.Bar("VE", 0, "0")], desc=label),
    "percentage": lambda label: charts.percentage_bars(
        "c2", label, [charts.Bar(label, 0.5, "50 %"), charts.Bar("x", 1.4, "140 %")],
        lambda v: f"{v:.0%}"),
    "stacked": lambda label: charts.stacked_columns(
        "c3", label, ["ene 2025", label, "mar 2025"],
        [charts.Series(label, [1, 0, 5], ["1", "0", "5"]), charts.Series("B", [2, 2, 0], ["2", "2", "0"])],
        str),
    "empty": lambda label: charts.horizontal_bars("c4", label, []),
}


@pytest.mark.parametrize("kind", CHARTS)
def test_charts_are_well_formed_and_escape_every_label(kind):
    svg = CHARTS[kind](HOSTILE)
    root = _parse(svg)
    assert "<script" not in svg and "\x01" not in svg
    texts = " ".join(t for t in root.itertext())
    clean = HOSTILE.replace("\x01", "")
    assert clean in texts or clean[:20] in texts


def test_stacked_columns_draw_one_rect_per_nonzero_value_with_its_tooltip():
    root = _parse(CHARTS["stacked"]("Intakes"))
    ns = "{http://www.w3.org/2000/svg}"
    tips = [r.find(f"{ns}title").text for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert tips == ["ene 2025 · Intakes: 1", "ene 2025 · B: 2", "Intakes · B: 2", "mar 2025 · Intakes: 5"]


@pytest.mark.parametrize(("top", "ticks"), [
    (0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (93, [0, 20, 40, 60, 80, 100]),
    (1000, [0, 200, 400, 600, 800, 1000]), (12345, [0, 5000, 10000, 15000]),
])
def test_axis_ticks_are_round(top, ticks):
    assert charts.nice_ticks(top) == ticks


# ------------------------------------------------------------------ the page


def _totals(page: str) -> list[str]:
    """Intakes, participant registrations, courses: the figures of the page's lead."""
    return re.findall(r"<strong>([^<]*)</strong>", re.search(r'id="totals">(.*?)</p>', page).group(1))


@pytest.mark.parametrize(("lang", "expected", "absent"), [
    ("en", ["Summary of all posts", "Intakes by nationality", "Haiti", "Stateless", "Female",
            "12–17 years", "Asylum seeker", "in progress", "Jan 2025"], ["Resumen de todos"]),
    ("es", ["Resumen de todos los puestos", "Registros por nacionalidad", "Haití",
            "Apátrida", "Femenino", "12–17 años", "Solicitante de asilo", "en curso", "ene 2025"],
     ["Summary of all posts", "Intakes by nationality"]),
])
def test_the_page_shows_every_table_and_chart_in_both_languages(central_app, world, client_as, lang,
                                                                expected, absent):
    response = client_as("central").get(f"/{lang}/central/summary/")
    assert response.status_code == 200
    page = response.text
    for text in expected:
        assert text in page, text
    for text in absent:
        assert text not in page, text
    for table in ("months", "posts", "nationalities", "age-sex", "statuses", "training", "courses"):
        assert f'id="{table}"' in page
    svgs = SVG.findall(page)
    assert len(svgs) == 3  # registrations, nationalities, attendance
    for svg in svgs:
        _parse(svg)
    assert "<script>" not in page and " style=" not in page and "<style" not in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)" in page


def test_the_page_counts_what_storage_counts(central_app, world, client_as):
    page = client_as("central").get("/en/central/summary/").text
    assert _totals(page) == ["8", "7", "2"]
    months = re.search(r'<table id="months">.*?</table>', page, re.S).group(0)
    assert re.search(r"Feb 2025</th>(<td class=\"num\">\d</td>){3}", months)
    assert re.findall(r"<tr><th scope=\"row\">Mar 2025</th>(.*?)</tr>", months) == [
        '<td class="num">1</td><td class="num">3</td><td class="num">0</td><td class="num">4</td>']


def test_filters_on_the_page(central_app, world, client_as):
    central = client_as("central")
    page = central.get("/en/central/summary/?post=POST-B&from=2025-03&to=2025-03").text
    # The participant was registered and the running course began lately, not in March 2025.
    assert _totals(page) == ["3", "0", "0"]
    assert '<option value="POST-B" selected>' in page
    assert _totals(central.get("/en/central/summary/?post=POST-B").text) == ["3", "1", "1"]


@pytest.mark.parametrize(("query", "message"), [
    ("post=NOPE", "There are no records of post NOPE."),
    ("from=2025-13", "Give each month as year and month"),
    ("to=March", "Give each month as year and month"),
    ("from=2025-04&to=2025-03", "The first month comes after the last month."),
    ("post=%3Cb%3E", "There are no records of post &lt;b&gt;."),
])
def test_bad_filters_get_a_clear_400(central_app, world, client_as, query, message):
    response = client_as("central").get(f"/en/central/summary/?{query}")
    assert response.status_code == 400 and message in response.text
    assert 'id="totals"' not in response.text


def test_the_page_is_empty_but_fine_without_records(central_app, client_as):
    page = client_as("central").get("/es/central/summary/")
    assert page.status_code == 200 and "<svg" not in page.text


@pytest.mark.parametrize("who", [None, *ACCOUNTS])
def test_only_central_staff_open_it_and_only_at_central(app, client_as, who, world):
    for mode in ("central", "field"):
        app.config["MODE"] = mode
        response = client_as(who).get("/en/central/summary/")
        role = ACCOUNTS[who][0] if who else None
        if role is None:
            assert response.status_code == 302 and response.location.startswith("/en/login")
        elif role != "central":
            assert response.status_code == 403
        else:
            assert response.status_code == (200 if mode == "central" else 404)
        assert "Haiti" not in response.text or (role == "central" and mode == "central")


def test_central_staff_find_it_in_the_menu(central_app, client_as):
    assert 'href="/en/central/summary/"' in client_as("central").get("/en/central/").text
    assert "/central/summary/" not in client_as("admin").get("/en/central/").text
