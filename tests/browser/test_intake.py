"""An officer registers people through a real server in Debian's Chromium, on a phone and a laptop.

Selectors use ids and answer codes, never wording: the Spanish catalog changes independently.
"""

from __future__ import annotations

import re
import secrets
import string

import pytest
from playwright.sync_api import Page, expect

from .conftest import LAPTOP, PHONE, Server, log_in

pytestmark = pytest.mark.browser

DEVICES = [pytest.param(PHONE, id="phone-360x740"), pytest.param(LAPTOP, id="laptop-1280x800")]
RECORD_PATH = r"/(?:en|es)/records/[0-9a-f-]{36}$"


def unique_word(length: int = 8) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(length))


def assert_no_horizontal_scroll(page: Page) -> None:
    """The page fits the device's width: no sideways scrolling, no zoomed-out layout viewport."""
    sizes = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth,"
        " client: document.documentElement.clientWidth, inner: window.innerWidth})")
    width = page.viewport_size["width"]
    assert sizes["scroll"] <= sizes["client"] <= width, (
        f"horizontal scrolling on {page.url} at {width} px wide: {sizes}")
    assert sizes["scroll"] <= sizes["inner"], f"horizontal scrolling on {page.url}: {sizes}"


def choose(page: Page, name: str, code: str) -> None:
    """Tick the radio button or checkbox of `name` whose answer code is `code`."""
    page.locator(f"#record-form input[name='{name}'][value='{code}']").check()


def expect_spanish(page: Page, server: Server, path: str | re.Pattern) -> None:
    if isinstance(path, str):
        expect(page).to_have_url(server.url + path)
    else:
        expect(page).to_have_url(re.compile(re.escape(server.url) + path.pattern))
    expect(page.locator("html")).to_have_attribute("lang", "es")


def search(page: Page, text: str):
    """Search the records list; returns the result items."""
    page.fill("#q", text)
    page.locator("form.search button[type=submit]").click()
    expect(page.locator("#q")).to_have_value(text)
    expect(page).to_have_url(re.compile(r"/records\?q="))
    return page.locator("ul.records > li")


@pytest.mark.parametrize("device", DEVICES)
def test_intake_with_consent_in_spanish(server: Server, make_page, device):
    page = make_page(device)
    log_in(page, server)

    # The language link in the header switches the same page to Spanish.
    page.locator("header .langs a[hreflang='es']").click()
    expect_spanish(page, server, "/es/")

    page.locator("nav.menu a[href='/es/intake/new']").click()
    expect_spanish(page, server, "/es/intake/new")
    expect(page.locator("#record-form")).to_be_visible()
    assert_no_horizontal_scroll(page)

    word = unique_word()
    given = f"Ángela Sofía {word.capitalize()}"
    doc_number = "AB" + "".join(secrets.choice(string.digits) for _ in range(7))

    choose(page, "consent", "given")
    expect(page.locator("#w-anonymous_notice")).to_be_hidden()
    expect(page.locator("#w-consent_reason")).to_be_hidden()
    page.select_option("#f-purpose", "assistance")
    expect(page.locator("#f-interview_date")).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    page.fill("#f-given_names", given)
    page.fill("#f-first_surname", "Pérez")
    page.fill("#f-second_surname", "Núñez")
    choose(page, "sex", "female")
    expect(page.locator("#w-age_group")).to_be_hidden()  # only asked when consent is refused
    expect(page.locator("#w-birth_date")).to_be_hidden()
    choose(page, "birth_date_known", "yes")
    expect(page.locator("#w-birth_date")).to_be_visible()
    expect(page.locator("#w-estimated_age")).to_be_hidden()
    page.fill("#f-birth_date", "1990-04-12")
    page.select_option("#f-nationality", "VE")
    page.select_option("#f-residence_country", "CO")
    expect(page.locator("#w-doc_number")).to_be_hidden()
    page.select_option("#f-doc_type", "passport")
    expect(page.locator("#w-doc_number")).to_be_visible()
    page.fill("#f-doc_number", doc_number)
    page.select_option("#f-doc_country", "VE")
    page.select_option("#f-migratory_status", "irregular")
    # Arrived before being born: the browser cannot know, the server must refuse it.
    page.fill("#f-arrival_date", "1985-06-01")
    choose(page, "migration_reasons", "economic")
    choose(page, "migration_reasons", "violence")
    choose(page, "travelling", "alone")
    expect(page.locator("#w-accompanying_adults")).to_be_hidden()
    choose(page, "unaccompanied_minor", "no")
    page.fill("#f-phone", "+57 300 123 4567")

    # A required answer left empty, as a browser without HTML5 validation would send it.
    page.fill("#f-first_surname", "")
    page.locator("#record-form").evaluate("form => { form.noValidate = true; }")
    page.locator("#record-form button[type=submit]").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect_spanish(page, server, "/es/intake/new")
    expect(summary).to_be_focused()
    expect(summary.locator("li")).to_have_count(2)
    expect(summary.locator("a[href='#f-first_surname']")).to_be_visible()
    expect(summary.locator("a[href='#f-arrival_date']")).to_be_visible()
    expect(page.locator("#w-first_surname")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator("#e-first_surname")).to_be_visible()
    expect(page.locator("#e-arrival_date")).to_be_visible()
    expect(page.locator("#f-arrival_date")).to_have_attribute("aria-invalid", "true")
    # Everything typed is still there.
    expect(page.locator("#f-given_names")).to_have_value(given)
    expect(page.locator("#f-second_surname")).to_have_value("Núñez")
    expect(page.locator("#f-first_surname")).to_have_value("")
    expect(page.locator("#f-birth_date")).to_have_value("1990-04-12")
    expect(page.locator("#f-arrival_date")).to_have_value("1985-06-01")
    expect(page.locator("#f-nationality")).to_have_value("VE")
    expect(page.locator("#f-doc_type")).to_have_value("passport")
    expect(page.locator("#f-doc_number")).to_have_value(doc_number)
    expect(page.locator("#f-phone")).to_have_value("+57 300 123 4567")
    for name, code in [("consent", "given"), ("sex", "female"), ("migration_reasons", "economic"),
                       ("migration_reasons", "violence"), ("travelling", "alone")]:
        expect(page.locator(f"input[name='{name}'][value='{code}']")).to_be_checked()
    expect(page.locator("#w-doc_number")).to_be_visible()
    expect(page.locator("#w-anonymous_notice")).to_be_hidden()
    assert_no_horizontal_scroll(page)

    # Correct and save.
    page.fill("#f-first_surname", "Pérez")
    page.fill("#f-arrival_date", "2024-01-15")
    page.locator("#record-form button[type=submit]").click()

    expect_spanish(page, server, re.compile(RECORD_PATH))
    record_path = re.search(RECORD_PATH, page.url).group(0)
    expect(page.locator("main h1")).to_have_text(f"{given} Pérez Núñez")
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page.locator("main")).to_contain_text(doc_number)
    expect(page.locator("#error-summary")).to_have_count(0)
    assert_no_horizontal_scroll(page)

    # Found in the list by part of the name typed without accents, and by document number.
    page.locator("nav.menu a[href='/es/records']").click()
    expect_spanish(page, server, "/es/records")
    items = search(page, "angela")
    expect(items.locator(f"a[href='{record_path}']")).to_have_count(1)
    expect_spanish(page, server, re.compile(r"/es/records\?q=angela$"))

    items = search(page, f"angela sofia {word}")
    expect(items).to_have_count(1)
    expect(items.first.locator("a")).to_have_attribute("href", record_path)
    expect(items.first.locator(".name")).to_have_text(f"{given} Pérez Núñez")

    items = search(page, doc_number)
    expect(items).to_have_count(1)
    expect(items.first.locator("a")).to_have_attribute("href", record_path)
    expect(items.first.locator(".meta")).to_contain_text(doc_number)
    assert_no_horizontal_scroll(page)

    items = search(page, unique_word())
    expect(items).to_have_count(0)


def test_intake_with_consent_refused_is_anonymous(server: Server, make_page):
    page = make_page(PHONE)
    log_in(page, server)
    page.locator("nav.menu a[href='/en/intake/new']").click()
    expect(page).to_have_url(server.url + "/en/intake/new")

    # A name typed before consent is refused must not be stored.
    secret = f"Secreto {unique_word().capitalize()}"
    choose(page, "consent", "given")
    page.fill("#f-given_names", secret)
    page.fill("#f-first_surname", "Oculto")
    expect(page.locator("#w-anonymous_notice")).to_be_hidden()

    choose(page, "consent", "refused")
    expect(page.locator("#w-anonymous_notice")).to_be_visible()
    for hidden in ["#w-given_names", "#w-first_surname", "#w-second_surname",
                   "#w-birth_date_known", "#w-residence_country", "#s-document", "#s-migration",
                   "#s-household", "#s-needs", "#s-contact"]:
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#f-given_names")).to_be_disabled()
    for shown in ["#w-sex", "#w-age_group", "#w-nationality", "#w-interview_date"]:
        expect(page.locator(shown)).to_be_visible()
    assert_no_horizontal_scroll(page)

    page.select_option("#f-purpose", "statistics")
    choose(page, "sex", "female")
    page.select_option("#f-age_group", "25_59")
    page.select_option("#f-nationality", "VE")
    page.locator("#record-form button[type=submit]").click()

    expect(page).to_have_url(re.compile(re.escape(server.url) + RECORD_PATH))
    record_path = re.search(RECORD_PATH, page.url).group(0)
    expect(page.locator("main h1")).to_have_text("Anonymous record")
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(secret)
    expect(page.locator("main")).not_to_contain_text("Oculto")

    page.locator("nav.menu a[href='/en/records']").click()
    entry = page.locator(f"ul.records a[href='{record_path}']")
    expect(entry).to_have_count(1)
    expect(entry.locator(".name")).to_have_text("Anonymous record")
    expect(search(page, secret)).to_have_count(0)


def test_the_csp_watch_sees_a_refused_inline_script(server: Server, browser):
    """make_page fails a test whose page breaks the CSP: here is a breach it must see."""
    from .conftest import watch_csp

    context = browser.new_context(**LAPTOP)
    try:
        page = context.new_page()
        refused = watch_csp(page)
        page.goto(server.url + "/en/login")
        page.evaluate("document.body.appendChild(Object.assign(document.createElement('script'),"
                      " {textContent: 'window.injected = 1'}))")
        page.wait_for_timeout(200)
        assert page.evaluate("window.injected") is None  # refused, not run
        assert any("inline script" in text for text in refused), refused
    finally:
        context.close()
