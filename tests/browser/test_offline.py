"""The app with the field server unreachable: the service worker keeps the working pages, the
outbox keeps every save, and every record reaches SQLite exactly once when the server is back.

"Offline" is both real and emulated, as on a post's Wi-Fi: the server process is stopped (or
killed) *and* the browser context is set offline.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fieldapp import create_app
from fieldapp.domain import persons
from fieldapp.storage import records
from fieldapp.storage.db import connect
from tests.conftest import make_course, make_session, valid_intake
from tests.test_enrolment import valid_participant

from .conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LAPTOP,
    PHONE,
    FieldServer,
    _run,
    add_user,
    chromium_or_skip,
    log_in,
)

pytestmark = pytest.mark.browser

DEVICES = [pytest.param(PHONE, id="phone-360x740"), pytest.param(LAPTOP, id="laptop-1280x800")]
HIDDEN = {"uuid", "base_revision", "form_version", "person"}
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """One field server for the module; each test finds it running and may stop or kill it."""
    chromium_or_skip()
    server = FieldServer(tmp_path_factory.mktemp("field"))
    yield server
    server.stop()


@pytest.fixture
def server(field):
    return field.start()


@pytest.fixture
def context(playwright_session):
    """A fresh browser with a fresh profile, closed after the test; `context.browser_device`
    names the device it emulates."""
    browser = playwright_session.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    contexts = []

    def make(device=PHONE):
        made = browser.new_context(**device)
        contexts.append(made)
        return made

    yield make
    for made in contexts:
        made.close()
    browser.close()


# ------------------------------------------------------------------------------------ helpers


def db(server):
    return connect(server.instance / "fieldapp.db")


def intakes(server) -> dict[str, dict]:
    return {r["uuid"]: r for r in records.search(db(server), "intake", post=None, limit=10_000)}


def offline_ready(page: Page, paths: list[str]) -> None:
    """Wait until the service worker controls the page and keeps `paths`."""
    def kept() -> bool:
        return page.evaluate("""async (paths) => {
            if (!navigator.serviceWorker.controller) { return false; }
            const name = (await caches.keys()).find(n => n.startsWith("fieldapp-pages-"));
            if (!name) { return false; }
            const cache = await caches.open(name);
            for (const path of paths) {
                if (!(await cache.match(path, {ignoreVary: true}))) { return false; }
            }
            return true;
        }""", paths)

    try:
        wait_until(kept, f"the service worker to keep {paths}")
    except AssertionError as timed_out:  # say what the worker got to, for a failure in CI
        raise AssertionError(f"{timed_out}; the worker and its caches: {worker_state(page)}") from None


def worker_state(page: Page) -> dict:
    return page.evaluate("""async () => {
        const registration = await navigator.serviceWorker.getRegistration();
        const state = {controlled: !!navigator.serviceWorker.controller, caches: {},
                       worker: registration && ["installing", "waiting", "active"].map(
                           (k) => registration[k] && `${k}: ${registration[k].state}`).filter(Boolean)};
        for (const name of await caches.keys()) {
            const keys = await (await caches.open(name)).keys();
            state.caches[name] = keys.map((r) => new URL(r.url).pathname);
        }
        return state;
    }""")


def installability_errors(browser, page: Page) -> set[str]:
    found = browser.new_cdp_session(page).send("Page.getInstallabilityErrors")
    return {e["errorId"] for e in found["installabilityErrors"]}


def go_offline(field: FieldServer, context) -> None:
    field.stop()
    context.set_offline(True)


def go_online(field: FieldServer, context) -> None:
    field.start()
    context.set_offline(False)


def fill(page: Page, answers: dict) -> None:
    """Answer the form as an officer would, in the order of the form."""
    for name, value in answers.items():
        if name in HIDDEN:
            continue
        values = value if isinstance(value, list) else [value]
        first = page.locator(f"#record-form [name='{name}']").first
        kind = first.evaluate("el => el.type")
        if kind in ("radio", "checkbox"):
            for v in values:
                page.locator(f"#record-form input[name='{name}'][value='{v}']").check()
        elif kind.startswith("select"):
            page.select_option(f"#f-{name}", values[0])
        else:
            page.fill(f"#f-{name}", values[0])


def save_intake(page: Page, server, answers: dict) -> str:
    """Open a new intake, answer it and save; the uuid the form was given."""
    page.goto(server.url + "/en/intake/new")
    fill(page, answers)
    uuid = page.locator("#record-form input[name=uuid]").input_value()
    with page.expect_navigation():  # to the record, or to a new form once kept on the device
        page.locator("#record-form button[type=submit]").click()
    return uuid


def outbox_counts(page: Page) -> dict:
    return page.evaluate("() => FieldappOutbox.counts()")


def wait_until(check, what: str, timeout: float = WAIT_MS / 1000):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)
    return found


def training_today(server, people: int) -> tuple[str, list[str]]:
    """A course with a session today and `people` enrolled, made through the app's own views
    on the server's database; (session uuid, person uuids)."""
    password = add_user(server, f"sup{time.monotonic_ns()}", "supervisor")
    username = [u for u in _usernames(server) if u.startswith("sup")][-1]
    app = create_app({"WTF_CSRF_ENABLED": False}, instance=server.instance)
    http = app.test_client()
    assert http.post("/en/login", data={"username": username, "password": password}).status_code == 302
    today = date.today()
    course = make_course(http, start_date=(today - timedelta(days=7)).isoformat(),
                         end_date=(today + timedelta(days=7)).isoformat())
    session = make_session(http, course, date=today.isoformat())
    enrolled = []
    for i in range(people):
        data = valid_participant(given_names=f"Persona{i:02d}")
        response = http.post(f"/en/courses/{course}/participants/new", data=data)
        assert response.status_code == 302, response.text[:500]
        enrolled.append(data["uuid"])
    return session, enrolled


def _usernames(server) -> list[str]:
    return [row[0] for row in db(server).execute("SELECT username FROM users ORDER BY id")]


def kill_chromium(profile: Path) -> None:
    """SIGKILL every Chromium process of this profile: a crash, not a clean exit."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"--user-data-dir={profile}".encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def session_cookie_on_disk(profile: Path) -> bool:
    """Chromium writes cookies to disk now and then; a crash loses what it has not written."""
    for store in (profile / "Default" / "Cookies", profile / "Default" / "Network" / "Cookies"):
        if not store.exists():
            continue
        copy = profile.parent / "cookies-copy"
        shutil.copy(store, copy)
        with sqlite3.connect(copy) as conn:
            if conn.execute("SELECT count(*) FROM cookies WHERE name = 'session'").fetchone()[0]:
                return True
    return False


# -------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("device", DEVICES)
def test_1_the_app_shell_and_intake_form_open_offline_in_both_languages(field, server, context, device):
    browser = context(device)
    page = browser.new_page()
    log_in(page, server)
    working = ["/en/", "/es/", "/en/intake/new", "/es/intake/new", "/en/outbox", "/es/outbox"]
    offline_ready(page, working)
    # Manifest, icons, service worker: nothing keeps Chromium from installing it but this
    # context's incognito profile (test 2, with a real profile, finds no error at all).
    assert installability_errors(browser, page) <= {"in-incognito"}

    go_offline(field, browser)
    page.reload()
    expect(page.locator("nav.menu")).to_contain_text(server.officer)
    for lang in ("en", "es"):
        page.goto(f"{server.url}/{lang}/intake/new")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("#record-form")).to_be_visible()
        expect(page.locator("#f-given_names")).to_be_editable()
        page.goto(f"{server.url}/{lang}/")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator(".actions a[href$='/intake/new']")).to_be_visible()
    # Record lists hold personal data: never kept, so the offline page stands in.
    page.goto(f"{server.url}/es/records")
    expect(page.locator("#offline-title")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    kept = page.evaluate("""async () => {
        const name = (await caches.keys()).find(n => n.startsWith("fieldapp-pages-"));
        return (await (await caches.open(name)).keys()).map(r => new URL(r.url).pathname);
    }""")
    assert not [p for p in kept if re.search(r"/records", p)], kept


def test_2_a_morning_offline_survives_a_browser_crash_and_reaches_sqlite_once(
        field, server, tmp_path, playwright_session):
    session, people = training_today(server, 10)
    checkin = f"/en/sessions/{session}/checkin"
    profile = tmp_path / "profile"
    answers = [valid_intake(given_names=f"Mañana{i}", doc_number=f"MX{i:07d}") for i in range(5)]

    def launch():
        browser = playwright_session.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, **PHONE)
        return browser, browser.pages[0] if browser.pages else browser.new_page()

    browser, page = launch()
    log_in(page, server)
    page.goto(server.url + checkin)
    offline_ready(page, ["/en/", "/en/intake/new", checkin])
    assert installability_errors(browser, page) == set()
    wait_until(lambda: session_cookie_on_disk(profile), "the session cookie on disk", 90)

    go_offline(field, browser)
    uuids = []
    for data in answers:
        uuids.append(save_intake(page, server, data))
        expect(page.locator("main p.flash.success")).to_be_visible()  # "saved on this device"
        expect(page).to_have_url(server.url + "/en/intake/new")
    page.goto(server.url + "/en/")  # as the officer gets there: today's sessions, on the home page
    page.locator(f"main a[href='{checkin}']").click()
    expect(page).to_have_url(server.url + checkin)
    for person in people:
        row = page.locator(f"#p-{person}")
        row.locator("button.mark.present").click()
        expect(row).to_have_class(re.compile(r"\bwaiting\b"))
    assert outbox_counts(page) == {"waiting": 15, "attention": 0, "total": 15}
    kill_chromium(profile)
    assert not [u for u in uuids if u in intakes(server)]

    browser, page = launch()  # the server is still down
    browser.set_offline(True)
    page.goto(server.url + "/en/outbox")
    expect(page.locator("#outbox-list > li")).to_have_count(15)
    page.evaluate("() => { window.notReloaded = true; }")
    go_online(field, browser)
    expect(page.locator("#outbox-empty")).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("() => window.notReloaded") is True
    browser.close()

    stored = intakes(server)
    for uuid, data in zip(uuids, answers, strict=True):
        assert stored[uuid]["answers"]["given_names"] == data["given_names"]
        assert len(records.history(db(server), uuid)) == 1
    marks = records.children(db(server), session, "attendance")
    assert sorted(m["person"] for m in marks) == sorted(people)
    assert {(m["answers"]["status"], m["revision"]) for m in marks} == {("present", 1)}
    assert all(m["uuid"] == persons.mark_uuid(session, m["person"]) for m in marks)


@pytest.mark.parametrize("device", DEVICES)
def test_3_a_rejected_record_needs_attention_is_corrected_and_resent(field, server, context, device):
    browser = context(device)
    page = browser.new_page()
    log_in(page, server)
    offline_ready(page, ["/en/intake/new", "/en/outbox"])
    go_offline(field, browser)
    good = [valid_intake(given_names=f"Bien{i}") for i in range(2)]
    # Arrived before being born: only the server can tell.
    bad = valid_intake(given_names="Corregir", birth_date="1990-05-04", arrival_date="1985-06-01")
    first = save_intake(page, server, good[0])
    wrong = save_intake(page, server, bad)
    last = save_intake(page, server, good[1])

    go_online(field, browser)
    page.goto(server.url + "/en/outbox")
    item = page.locator(f"#outbox-list > li[data-uuid='{wrong}']")
    expect(item).to_have_class(re.compile(r"\battention\b"), timeout=WAIT_MS)
    expect(page.locator("#outbox-list > li")).to_have_count(1)
    expect(item.locator("[data-errors] li")).to_have_count(1)
    stored = intakes(server)
    assert first in stored and last in stored and wrong not in stored

    item.locator("[data-correct]").click()
    expect(page).to_have_url(f"{server.url}/en/intake/new#outbox={wrong}")
    expect(page.locator("#e-arrival_date")).to_be_visible()
    expect(page.locator("#f-given_names")).to_have_value("Corregir")
    page.fill("#f-arrival_date", (date.today() - timedelta(days=3)).isoformat())
    page.locator("#record-form button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}/en/records/{wrong}")
    record = intakes(server)[wrong]
    assert record["revision"] == 1 and record["answers"]["given_names"] == "Corregir"
    assert outbox_counts(page)["total"] == 0


def test_4a_an_answer_lost_after_the_server_stored_the_record_is_not_a_second_record(server, context):
    browser = context()
    page = browser.new_page()
    log_in(page, server)
    answers = []

    def lose_the_first_answer(route):
        response = route.fetch()  # the server has stored it
        answers.append(response.json())
        if len(answers) == 1:
            route.abort("connectionreset")  # but the page never hears
        else:
            route.fulfill(response=response)

    # On the context, so that a resend by the service worker (Background Sync) is seen too.
    browser.route("**/api/outbox", lose_the_first_answer)
    uuid = save_intake(page, server, valid_intake(given_names="Perdida"))
    expect(page.locator("main p.flash.success")).to_be_visible()  # kept on the device, to be resent
    wait_until(lambda: len(answers) >= 2, "the resend")
    expect(page.locator("#device-status")).to_be_hidden(timeout=WAIT_MS)
    assert [a["results"][0]["outcome"] for a in answers[:2]] == ["stored", "duplicate"]
    assert uuid in intakes(server) and len(records.history(db(server), uuid)) == 1
    assert outbox_counts(page)["total"] == 0


def test_4b_two_tabs_replaying_at_once_send_each_record_once(field, server, context):
    browser = context()
    tabs = [browser.new_page(), browser.new_page()]
    tabs[0].bring_to_front()  # a background tab's timers are throttled
    log_in(tabs[0], server)
    offline_ready(tabs[0], ["/en/intake/new", "/en/outbox"])
    go_offline(field, browser)
    uuids = [save_intake(tabs[0], server, valid_intake(given_names=f"Doble{i}")) for i in range(6)]
    for tab in tabs:
        tab.goto(server.url + "/en/outbox")
        expect(tab.locator("#outbox-list > li")).to_have_count(6)
    sent: list[str] = []
    browser.on("request", lambda r: sent.extend(
        x["uuid"] for x in (r.post_data_json or {}).get("records", [])) if r.url.endswith(
        "/api/outbox") else None)

    go_online(field, browser)  # both tabs hear `online` and replay at the same moment
    for tab in tabs:
        expect(tab.locator("#outbox-empty")).to_be_visible(timeout=WAIT_MS)
    stored = intakes(server)
    assert all(u in stored and stored[u]["revision"] == 1 for u in uuids)
    assert sorted(sent) == sorted(uuids), "each record is sent exactly once"


def test_5_a_record_queued_when_the_session_expired_is_sent_after_logging_in(field, server, context):
    browser = context()
    page = browser.new_page()
    log_in(page, server)
    offline_ready(page, ["/en/intake/new"])
    go_offline(field, browser)
    uuid = save_intake(page, server, valid_intake(given_names="Caducada"))
    # Meanwhile the session ends: a new password ends every session of the account.
    password = "a-new-long-password-1"
    _run(server.instance, "users", "reset-password", server.officer, "--password-stdin",
         stdin=password + "\n")

    go_online(field, browser)
    status = page.locator("#device-status")
    expect(status.locator("a[href*='/login']")).to_be_visible(timeout=WAIT_MS)
    assert outbox_counts(page) == {"waiting": 1, "attention": 0, "total": 1}
    assert uuid not in intakes(server)

    status.locator("a[href*='/login']").click()
    page.fill("#username", server.officer)
    page.fill("#password", password)
    page.locator("main button[type=submit]").click()
    wait_until(lambda: uuid in intakes(server), "the queued record on the server")
    expect(page.locator("#device-status")).to_be_hidden(timeout=WAIT_MS)
    assert intakes(server)[uuid]["created_by"] == server.officer
    _run(server.instance, "users", "reset-password", server.officer, "--password-stdin",
         stdin=server.password + "\n")  # the next tests log in as before


def test_a_draft_survives_a_reload_and_saving_clears_it(server, context):
    browser = context(LAPTOP)
    page = browser.new_page()
    log_in(page, server)
    page.goto(server.url + "/en/intake/new")
    page.fill("#f-given_names", "Borrador")
    page.locator("#record-form input[name=consent][value=given]").check()
    page.wait_for_timeout(600)  # the draft is written 0.4 s after the last keystroke
    uuid = page.locator("#record-form input[name=uuid]").input_value()
    page.reload()
    expect(page.locator("#f-given_names")).to_have_value("Borrador")
    expect(page.locator("#capture-notice")).to_be_visible()
    assert page.locator("#record-form input[name=uuid]").input_value() == uuid
    fill(page, valid_intake(given_names="Borrador"))
    page.locator("#record-form button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}/en/records/{uuid}")
    page.goto(server.url + "/en/intake/new")
    expect(page.locator("#f-given_names")).to_have_value("")
    assert page.locator("#record-form input[name=uuid]").input_value() != uuid


def test_the_page_says_so_when_the_browser_deleted_waiting_records(server, context):
    browser = context()
    page = browser.new_page()
    log_in(page, server)
    page.goto(server.url + "/en/outbox")  # the outbox database exists
    page.goto(server.url + "/static/icons/icon.svg")  # a page of the site that does not hold it open
    page.evaluate("""() => new Promise((resolve, reject) => {
        document.cookie = "fieldapp_outbox=3; path=/";  // three were waiting...
        const request = indexedDB.deleteDatabase("fieldapp");  // ...and the browser dropped them
        request.onsuccess = resolve;
        request.onerror = request.onblocked = reject;
    })""")
    page.goto(server.url + "/en/outbox")
    expect(page.locator("#device-status.warn")).to_be_visible()



def test_a_new_release_waits_until_the_officer_chooses_to_reload(server, context):
    """The browser fetches the service worker through a proxy that can serve a new release."""
    from dataclasses import replace

    from .proxy import Proxy

    proxy = Proxy(int(server.url.rsplit(":", 1)[1]))
    try:
        via = replace(server, url=proxy.url)
        browser = context(LAPTOP)
        page = browser.new_page()
        log_in(page, via)
        offline_ready(page, ["/en/intake/new"])
        page.goto(via.url + "/en/intake/new")
        page.fill("#f-given_names", "Sin guardar")
        old = page.evaluate("async () => (await caches.keys()).sort()")

        proxy.rewrite["/sw.js"] = lambda body: body.replace(b'{"version": "', b'{"version": "next-', 1)
        page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).update()")
        banner = page.locator("#app-update")
        expect(banner).to_be_visible(timeout=WAIT_MS)
        page.wait_for_timeout(1000)  # nothing reloads on its own: what was typed stays
        expect(page.locator("#f-given_names")).to_have_value("Sin guardar")
        with page.expect_navigation():
            banner.locator("[data-reload]").click()
        expect(page.locator("#f-given_names")).to_have_value("Sin guardar")  # the draft, restored
        new = page.evaluate("async () => (await caches.keys()).sort()")
        assert new and all("-next-" in name for name in new) and not set(new) & set(old), (old, new)
    finally:
        proxy.close()


def test_a_working_page_the_worker_could_not_fetch_is_fetched_at_the_next_page_load(server, context):
    """The missed page alone, at the next page load: not five minutes later, as after a refresh
    that got everything, for offline it would be missing."""
    from dataclasses import replace

    from .proxy import Proxy

    proxy = Proxy(int(server.url.rsplit(":", 1)[1]))
    try:
        via = replace(server, url=proxy.url)
        proxy.refuse.add("/en/intake/new")
        page = context(LAPTOP).new_page()
        page.goto(via.url + "/en/login")  # installed before the login: one refresh, the login's
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        log_in(page, via)
        offline_ready(page, ["/en/", "/en/outbox", "/es/intake/new"])
        wait_until(lambda: proxy.answered.count(("/en/intake/new", 503)) == 1, "the refresh to miss the form")
        assert proxy.answered.count(("/en/api/shell", 200)) == 1, proxy.answered
        assert all("/en/intake/new" not in kept for kept in worker_state(page)["caches"].values())

        proxy.refuse.clear()
        page.goto(via.url + "/en/outbox")  # the same user: no login, an ordinary page load
        offline_ready(page, ["/en/intake/new"])
        assert proxy.answered.count(("/en/api/shell", 200)) == 1  # the missed page alone, again
    finally:
        proxy.close()


def test_a_draft_open_in_one_tab_is_not_taken_up_by_another(server, context):
    browser = context(LAPTOP)
    first = browser.new_page()
    log_in(first, server)
    first.goto(server.url + "/en/intake/new")
    first.fill("#f-given_names", "Primera")
    first.wait_for_timeout(600)  # the draft is written 0.4 s after the last keystroke
    kept_uuid = first.locator("#record-form input[name=uuid]").input_value()

    second = browser.new_page()  # the same form, while the first tab still has its draft open
    second.goto(server.url + "/en/intake/new")
    expect(second.locator("#f-given_names")).to_have_value("")
    assert second.locator("#record-form input[name=uuid]").input_value() != kept_uuid
    second.close()

    first.close()  # the tab is closed: its draft waits for the next form opened
    third = browser.new_page()
    third.goto(server.url + "/en/intake/new")
    expect(third.locator("#f-given_names")).to_have_value("Primera")
    assert third.locator("#record-form input[name=uuid]").input_value() == kept_uuid


def test_a_walk_in_registered_offline_is_enrolled_and_marked_present_once_back(field, server, context):
    session, _ = training_today(server, 1)
    checkin = f"/en/sessions/{session}/checkin"
    browser = context()
    page = browser.new_page()
    log_in(page, server)
    page.goto(server.url + checkin)
    walk_in = page.locator("main a[href*='/participants/new?session=']")
    register = walk_in.get_attribute("href")
    offline_ready(page, [checkin, register])

    go_offline(field, browser)
    walk_in.click()
    fill(page, valid_participant(given_names="Llegó Sin Aviso"))
    uuid = page.locator("#record-form input[name=uuid]").input_value()
    with page.expect_navigation():
        page.locator("#record-form button[type=submit]").click()
    expect(page).to_have_url(server.url + checkin)  # back to the check-in, the record on the device
    assert outbox_counts(page)["waiting"] == 1

    go_online(field, browser)
    wait_until(lambda: records.get(db(server), uuid), "the walk-in on the server")
    expect(page.locator("#device-status")).to_be_hidden(timeout=WAIT_MS)
    [mark] = [m for m in records.children(db(server), session, "attendance") if m["person"] == uuid]
    assert (mark["answers"]["status"], mark["revision"]) == ("present", 1)
