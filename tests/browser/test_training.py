"""A training course from start to certificates, through a real server in Debian's Chromium on a phone.

The issue's story: a supervisor creates a course with two sessions; an officer enrols three people
(one found from intake, one new, one walk-in), takes attendance in Spanish, and prints a certificate.

Selectors use ids, hrefs and answer codes, never wording: the Spanish catalog changes independently.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from babel.dates import format_date
from playwright.sync_api import Page, expect

from .conftest import PHONE, Server, log_in, log_in_as
from .test_intake import assert_no_horizontal_scroll, choose, expect_spanish, unique_word

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"
CERTIFICATE_NUMBER = re.compile(r"^FA-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]$")


def save(page: Page) -> None:
    page.locator("#record-form button[type=submit]").click()


def course_path(page: Page, server: Server, lang: str = "en") -> str:
    """The path of the course page the browser is on."""
    expect(page).to_have_url(re.compile(re.escape(f"{server.url}/{lang}/courses/") + UUID + "$"))
    return re.search(rf"/courses/{UUID}$", page.url).group(0)


def add_session(page: Page, server: Server, course: str, day: date, start: str, end: str,
                place: str) -> None:
    page.locator(f"main a[href='/en{course}/sessions/new']").click()
    expect(page).to_have_url(f"{server.url}/en{course}/sessions/new")
    expect(page.locator("input[name='status'][value='scheduled']")).to_be_checked()
    page.fill("#f-date", day.isoformat())
    page.fill("#f-start_time", start)
    page.fill("#f-end_time", end)
    page.fill("#f-place", place)
    save(page)
    expect(page).to_have_url(f"{server.url}/en{course}")
    expect(page.locator("#error-summary")).to_have_count(0)


def create_intake(page: Page, server: Server, given: str, first: str, second: str) -> str:
    """A consented intake saved through the form; the path of the saved record."""
    page.locator("nav.menu a[href='/en/intake/new']").click()
    expect(page).to_have_url(server.url + "/en/intake/new")
    choose(page, "consent", "given")
    page.select_option("#f-purpose", "assistance")
    page.fill("#f-given_names", given)
    page.fill("#f-first_surname", first)
    page.fill("#f-second_surname", second)
    choose(page, "sex", "female")
    choose(page, "birth_date_known", "yes")
    page.fill("#f-birth_date", "1988-09-30")
    page.select_option("#f-nationality", "VE")
    page.select_option("#f-residence_country", "CO")
    page.select_option("#f-doc_type", "passport")
    page.fill("#f-doc_number", "CD7654321")
    page.select_option("#f-doc_country", "VE")
    page.select_option("#f-migratory_status", "irregular")
    page.fill("#f-arrival_date", "2023-05-20")
    choose(page, "migration_reasons", "economic")
    choose(page, "travelling", "alone")
    choose(page, "unaccompanied_minor", "no")
    save(page)
    expect(page).to_have_url(re.compile(re.escape(server.url) + rf"/en/records/{UUID}$"))
    expect(page.locator("main h1")).to_have_text(f"{given} {first} {second}")
    expect(page.locator(".flash.success")).to_be_visible()
    return re.search(rf"/records/{UUID}$", page.url).group(0)


def fill_participant(page: Page, given: str, first: str, sex: str, population: str) -> None:
    """The short participant registration (the same in English and Spanish: ids and codes)."""
    choose(page, "consent", "given")
    page.fill("#f-given_names", given)
    page.fill("#f-first_surname", first)
    choose(page, "sex", sex)
    choose(page, "birth_date_known", "no")
    expect(page.locator("#w-birth_date")).to_be_hidden()
    page.fill("#f-estimated_age", "31")
    page.select_option("#f-nationality", "VE")
    choose(page, "population", population)


def tap_present(page: Page, row) -> None:
    """Tap "Present" in a roster row; the mark goes through the outbox at once, the page stays."""
    url = page.url
    page.evaluate("() => { window.__noReload = 1; }")
    button = row.locator("button.mark.present")
    expect(button).to_have_attribute("aria-pressed", "false")
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith("/api/outbox")) as answer:
        button.click()
    assert answer.value.status == 200, answer.value.text()
    [body] = answer.value.json()["results"]
    assert body["outcome"] == "stored" and body["status"] == "present" and body["revision"] == 1, body
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(row).to_have_attribute("data-revision", "1")
    for other in ("absent", "late", "excused"):
        expect(row.locator(f"button.mark.{other}")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("() => window.__noReload") == 1, "the tap reloaded the page"
    assert page.url == url


def test_course_enrolment_checkin_and_certificates(server: Server, supervisor, make_page):
    word = unique_word()
    course_title = f"Atención al cliente y turismo {word.capitalize()}"
    partner = "Fundación Frontera Abierta"
    today = date.today()
    # Both sessions have taken place (the second is today): certificates need the course over.
    first_day, second_day = today - timedelta(days=7), today
    start, end = today - timedelta(days=14), today + timedelta(days=14)

    # 1. A new supervisor creates the course and its two sessions.
    boss = make_page(PHONE)
    log_in_as(boss, server, *supervisor)
    boss.locator("nav.menu a[href='/en/courses']").click()
    expect(boss).to_have_url(server.url + "/en/courses")
    boss.locator("main a[href='/en/courses/new']").click()
    expect(boss).to_have_url(server.url + "/en/courses/new")
    expect(boss.locator("#f-min_attendance")).to_have_value("80")
    boss.fill("#f-title", course_title)
    boss.select_option("#f-area", "vocational")
    boss.fill("#f-partner", partner)
    boss.fill("#f-start_date", start.isoformat())
    boss.fill("#f-end_date", end.isoformat())
    boss.fill("#f-min_attendance", "50")
    save(boss)
    course = course_path(boss, server)
    expect(boss.locator("main h1")).to_have_text(course_title)
    assert_no_horizontal_scroll(boss)

    # Entered second first: the list is in date order whatever the order of entry.
    add_session(boss, server, course, second_day, "14:00", "17:30", "Salón comunal")
    add_session(boss, server, course, first_day, "09:00", "12:00", "Aula 2, Migración")
    sessions = boss.locator("main table tbody tr")
    expect(sessions).to_have_count(2)
    for row, day, times, place in ((sessions.nth(0), first_day, "09:00–12:00", "Aula 2, Migración"),
                                   (sessions.nth(1), second_day, "14:00–17:30", "Salón comunal")):
        expect(row.locator("td").nth(0)).to_have_text(format_date(day, "medium", locale="en"))
        expect(row.locator("td").nth(1)).to_have_text(times)
        expect(row.locator("td").nth(2)).to_have_text(place)
        expect(row.locator("a[href$='/edit']")).to_have_count(1)
    assert_no_horizontal_scroll(boss)

    # 2. The officer registers a person at intake, then finds and enrols them on the course.
    officer = make_page(PHONE)
    log_in(officer, server)
    found_name = f"María José {word.capitalize()} Pérez Núñez"
    create_intake(officer, server, f"María José {word.capitalize()}", "Pérez", "Núñez")
    officer.goto(f"{server.url}/en{course}")
    expect(officer.locator("main h1")).to_have_text(course_title)
    expect(officer.locator("ol.roster")).to_have_count(0)
    expect(officer.locator("main a[href$='/edit']")).to_have_count(0)  # not a training manager

    officer.locator(f"main a[href='/en{course}/enrol']").first.click()
    expect(officer).to_have_url(f"{server.url}/en{course}/enrol")
    officer.fill("#q", f"maria jose {word}")
    officer.locator("form.search button[type=submit]").click()
    expect(officer.locator("#q")).to_have_value(f"maria jose {word}")
    found = officer.locator("ul.records > li.person")
    expect(found).to_have_count(1)
    expect(found.locator(".name")).to_have_text(found_name)
    assert_no_horizontal_scroll(officer)
    found.locator("button[type=submit]").click()
    expect(officer).to_have_url(f"{server.url}/en{course}")
    expect(officer.locator(".flash.success")).to_contain_text(found_name)
    roster = officer.locator("ol.roster > li")
    expect(roster).to_have_count(1)
    expect(roster.nth(0)).to_contain_text(found_name)

    # Found again, the person shows as already enrolled: no second Enrol button.
    officer.locator(f"main a[href='/en{course}/enrol']").first.click()
    officer.fill("#q", f"maria jose {word}")
    officer.locator("form.search button[type=submit]").click()
    expect(found).to_have_count(1)
    expect(found.locator("button[type=submit]")).to_have_count(0)
    officer.locator(f"main a[href='/en{course}']").click()
    expect(officer).to_have_url(f"{server.url}/en{course}")

    # A person with no intake: the short registration enrols them at once.
    new_name = f"Óscar {word.capitalize()}"
    officer.locator(f"main a[href='/en{course}/participants/new']").first.click()
    expect(officer).to_have_url(f"{server.url}/en{course}/participants/new")
    fill_participant(officer, new_name, "Güiza", "male", "host")
    assert_no_horizontal_scroll(officer)
    save(officer)
    expect(officer).to_have_url(f"{server.url}/en{course}")
    expect(officer.locator(".flash.success")).to_be_visible()
    expect(roster).to_have_count(2)
    expect(roster.nth(1)).to_contain_text(f"{new_name} Güiza")

    # 3. In Spanish, the officer takes attendance at the first session.
    officer.locator("header .langs a[hreflang='es']").click()
    expect_spanish(officer, server, f"/es{course}")
    officer.locator("main table tbody tr").first.locator("a[href$='/checkin']").click()
    expect_spanish(officer, server, re.compile(rf"/es/sessions/{UUID}/checkin$"))
    checkin = re.search(rf"/sessions/{UUID}/checkin$", officer.url).group(0)
    rows = officer.locator("#checkin ul.roster-marks > li")
    expect(rows).to_have_count(2)
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("button.mark[aria-pressed='true']")).to_have_count(0)
    assert_no_horizontal_scroll(officer)

    # A walk-in: registered, enrolled and marked present in one go, back on the check-in page.
    walk_in_name = f"Yésica {word.capitalize()} Acuña"
    officer.locator("main a[href*='/participants/new?session=']").click()
    expect_spanish(officer, server, re.compile(
        re.escape(f"/es{course}/participants/new?session=") + UUID + "$"))
    fill_participant(officer, f"Yésica {word.capitalize()}", "Acuña", "female", "migrant")
    assert_no_horizontal_scroll(officer)
    save(officer)
    expect_spanish(officer, server, f"/es{checkin}")
    expect(officer.locator(".flash.success")).to_be_visible()
    expect(rows).to_have_count(3)
    walk_in = rows.filter(has_text=walk_in_name)
    expect(walk_in).to_have_count(1)
    expect(walk_in.locator("button.mark.present")).to_have_attribute("aria-pressed", "true")
    expect(walk_in.locator("button.mark[aria-pressed='true']")).to_have_count(1)

    for name in (found_name, f"{new_name} Güiza"):
        tap_present(officer, rows.filter(has_text=name))
    assert_no_horizontal_scroll(officer)

    officer.reload()
    expect_spanish(officer, server, f"/es{checkin}")
    assert officer.evaluate("() => window.__noReload") is None  # it really was reloaded
    expect(rows).to_have_count(3)
    for name in (found_name, f"{new_name} Güiza", walk_in_name):
        row = rows.filter(has_text=name)
        expect(row.locator("button.mark.present")).to_have_attribute("aria-pressed", "true")
        expect(row.locator("button.mark[aria-pressed='true']")).to_have_count(1)

    # The filter box keeps only the rows whose name has every typed word, accents or not.
    officer.fill("#roster-filter", "yesica")
    expect(walk_in).to_be_visible()
    expect(rows.filter(has_text=found_name)).to_be_hidden()
    expect(rows.filter(has_text=new_name)).to_be_hidden()
    officer.fill("#roster-filter", f"JOSÉ {word[:4]}")
    expect(rows.filter(has_text=found_name)).to_be_visible()
    expect(walk_in).to_be_hidden()
    expect(rows.filter(has_text=new_name)).to_be_hidden()
    officer.fill("#roster-filter", "")
    for row in (rows.nth(0), rows.nth(1), rows.nth(2)):
        expect(row).to_be_visible()
    assert_no_horizontal_scroll(officer)

    # 4. The supervisor reads the summary: one session attended of two held is 50%, the minimum.
    people = [found_name, f"{new_name} Güiza", walk_in_name]
    boss.goto(f"{server.url}/en{course}")
    boss.locator(f"main a[href='/en{course}/summary']").click()
    expect(boss).to_have_url(f"{server.url}/en{course}/summary")
    expect(boss.locator("main .lead")).to_contain_text("50%")
    participants = boss.locator("main section.answers").nth(0).locator("tbody tr")
    expect(participants).to_have_count(3)
    for name in people:
        cells = participants.filter(has_text=name).locator("td")
        expect(cells).to_have_text([name, "1 / 2", "50%", "3", "qualifies"])
    per_session = boss.locator("main section.answers").nth(1).locator("tbody tr")
    expect(per_session).to_have_count(2)
    expect(per_session.nth(0).locator("td")).to_have_text([re.compile("09:00$"), "3 / 3", "100%"])
    expect(per_session.nth(1).locator("td")).to_have_text([re.compile("14:00$"), "0 / 3", "0%"])
    assert_no_horizontal_scroll(boss)

    boss.select_option("#paper", "a4")
    boss.locator(f"form[action='/en{course}/certificates'] button[type=submit]").click()
    expect(boss).to_have_url(f"{server.url}/en{course}/certificates?paper=a4")
    certificates = boss.locator("article.certificate")
    expect(certificates).to_have_count(3)
    expect(certificates.locator(".certificate-name")).to_have_text(people)
    expect(certificates.locator(".certificate-course")).to_have_text([course_title] * 3)
    expect(certificates.locator(".certificate-org")).to_have_text([partner] * 3)
    expect(certificates.locator(".certificate-number strong")).to_have_text(
        [CERTIFICATE_NUMBER] * 3)
    numbers = certificates.locator(".certificate-number strong").all_inner_texts()
    assert len(set(numbers)) == 3, numbers
    expect(boss.locator(".screen-only")).to_be_visible()
    assert_no_horizontal_scroll(boss)

    boss.emulate_media(media="print")
    expect(boss.locator(".screen-only")).to_be_hidden()
    expect(boss.locator("nav.menu")).to_be_hidden()
    for certificate in certificates.all():
        expect(certificate).to_be_visible()
    boss.emulate_media(media="screen")
    expect(boss.locator(".screen-only")).to_be_visible()

    # Anyone can check a number: it is valid and names the person and the course.
    boss.locator("nav.menu a[href='/en/courses']").click()
    boss.locator("main a[href='/en/certificates/verify']").click()
    expect(boss).to_have_url(server.url + "/en/certificates/verify")
    boss.fill("#number", numbers[2].lower())  # read out and typed in lower case
    boss.locator("form.search button[type=submit]").click()
    expect(boss).to_have_url(re.compile(re.escape(server.url + "/en/certificates/verify?number=")))
    expect(boss.locator("main .flash.success")).to_be_visible()
    expect(boss.locator("main .error")).to_have_count(0)
    expect(boss.locator("main dl dd")).to_have_text(
        [walk_in_name, course_title, "3", re.compile(r"\d{4}")])
    assert_no_horizontal_scroll(boss)
