"""What the audit log records of each action on the real app (real SQLite), and the admin page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fieldapp import config
from fieldapp.cli import main
from fieldapp.domain.audit import Filter
from fieldapp.storage import audit, users
from fieldapp.storage import db as storage_db
from tests.central_data import central_app  # noqa: F401 — the fixture
from tests.conftest import PASSWORD, Client, valid_intake
from tests.test_outbox_api import intake as outbox_intake
from tests.test_outbox_api import send
from tests.test_persons import look_again, staff, world  # noqa: F401 — fixtures


def events(app, **filters) -> list[dict]:
    """The log's events, oldest first."""
    db = storage_db.connect(app.config["DATABASE"])
    try:
        return list(reversed(audit.page(db, Filter(**filters), limit=1000)))
    finally:
        db.close()


def last(app, event: str) -> dict:
    found = events(app, event=event)
    assert found, f"no {event} event"
    return found[-1]


def user_id(app, username: str) -> str:
    db = storage_db.connect(app.config["DATABASE"])
    try:
        return str(users.by_username(db, username)["id"])
    finally:
        db.close()


def test_login_failure_and_logout_are_recorded_with_who_and_where(app):
    client = Client(app, None)
    client.login("officer", "wrong password")
    client.login("nobody-such", "x")
    client.login("officer")
    page = client.get("/en/")
    client.http.post("/en/logout", data={"csrf_token": client._token(page.text)})
    got = [(e["event"], e["actor_kind"], e["actor_name"], e["target_id"], e["details"])
           for e in events(app) if e["event"].startswith("auth.")]
    officer = user_id(app, "officer")
    assert got == [
        ("auth.login_failed", "anonymous", "", officer, {"account": "known"}),
        ("auth.login_failed", "anonymous", "", "", {"account": "unknown"}),
        ("auth.login", "user", "officer", "", {}),
        ("auth.logout", "user", "officer", "", {}),
    ]
    assert all(e["address"] == "127.0.0.1" for e in events(app) if e["event"].startswith("auth."))
    assert "nobody-such" not in str(events(app)), "what was typed as a username is never kept"


def test_capture_edit_and_sensitive_views_are_recorded_without_personal_data(app, client_as):
    officer = client_as("officer")
    data = valid_intake()
    assert officer.post_form("/en/intake/new", data).status_code == 302
    edited = dict(data, base_revision="1", first_surname="Gómez")
    assert officer.post_form(f"/en/records/{data['uuid']}/edit", edited).status_code == 302
    officer.get(f"/en/records/{data['uuid']}")
    officer.get(f"/en/records/{data['uuid']}?revision=1")

    about = events(app, target=data["uuid"])
    assert [(e["event"], e["details"].get("revision")) for e in about] == [
        ("record.created", 1), ("record.edited", 2), ("record.viewed", 2), ("record.viewed", 1)]
    assert all(e["actor_name"] == "officer" and e["target_kind"] == "record" for e in about)
    assert about[2]["details"]["sections"] == ["document", "migration", "needs"]
    text = str(events(app))
    for personal in ("María", "García", "Gómez", "AB123456", "300 123 4567", "Llegó"):
        assert personal not in text


def test_an_anonymous_record_shows_no_sensitive_section_and_is_no_view_event(app, client_as):
    officer = client_as("officer")
    data = {k: v for k, v in valid_intake(consent="refused", age_group="25_59").items()
            if k in ("uuid", "base_revision", "form_version", "consent", "purpose", "interview_date",
                     "sex", "age_group", "nationality")}
    assert officer.post_form("/en/intake/new", data).status_code == 302
    officer.get(f"/en/records/{data['uuid']}")
    assert [e["event"] for e in events(app, target=data["uuid"])] == ["record.created"]


def test_records_replayed_from_the_outbox_are_recorded_once(app, client_as):
    officer = client_as("officer")
    record = outbox_intake()
    send(officer, [record])
    send(officer, [record])  # a duplicate changes nothing, so records nothing
    assert [e["event"] for e in events(app, target=record["uuid"])] == ["record.created"]


def test_account_changes_on_the_web_are_recorded(app, client_as):
    admin = client_as("admin")
    response = admin.post_form("/en/admin/users/new", {
        "username": "newbie", "role": "officer", "full_name": "Ana Pérez", "active": "y",
        "password": PASSWORD})
    assert response.status_code == 200
    newbie = user_id(app, "newbie")
    admin.post_form(f"/en/admin/users/{newbie}", {"role": "supervisor", "full_name": "Ana Pérez"})
    admin.post_form(f"/en/admin/users/{newbie}", {}, url=f"/en/admin/users/{newbie}/password")
    got = [(e["event"], e["actor_name"], e["details"]) for e in events(app, target=newbie)]
    assert got == [
        ("account.created", "admin", {"role": "officer", "post": "POST-A", "must_change": False}),
        ("account.updated", "admin", {"changed": ["active", "role"], "role": "supervisor", "active": 0}),
        ("account.password_reset", "admin", {"must_change": True}),
    ]
    assert "Ana" not in str(events(app))


def test_account_commands_are_recorded_as_the_command_line(app):
    instance = app.instance_path
    config.write_new(Path(instance), post="POST-A", mode="field")
    result = CliRunner().invoke(main, ["--instance", instance, "users", "disable", "officer"])
    assert result.exit_code == 0, result.output
    event = last(app, "account.updated")
    assert (event["actor_kind"], event["actor_id"], event["target_id"], event["details"]) == (
        "system", "cli", user_id(app, "officer"), {"changed": ["active"], "active": 0})


# The admin page ----------------------------------------------------------------------------------


def test_only_admins_see_the_audit_log(app, client_as):
    for who in ("officer", "supervisor", "central"):
        assert client_as(who).get("/en/admin/audit/").status_code == 403
    assert Client(app, None).get("/en/admin/audit/").status_code == 302


def test_admins_filter_the_log_newest_first_in_both_languages(app, client_as):
    client_as("officer")
    Client(app, None).login("officer", "wrong")
    admin = client_as("admin")
    page = admin.get("/en/admin/audit/?event=auth.login_failed")
    assert page.status_code == 200
    assert page.text.count('<tr data-seq="') == 1 and "Login refused" in page.text
    both = admin.get("/en/admin/audit/?user=officer").text
    assert both.count('<tr data-seq="') == 1  # the failure has no actor: it was not logged in
    seqs = [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', admin.get("/en/admin/audit/").text)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 4
    spanish = admin.get("/es/admin/audit/?event=auth.login_failed")
    assert spanish.status_code == 200 and 'lang="es"' in spanish.text


def test_the_log_is_paged(app, client_as):
    app.config["PAGE_SIZE"] = 2
    admin = client_as("admin")
    for _ in range(3):
        admin.get("/en/")
        client_as("officer")
    first = admin.get("/en/admin/audit/?event=auth.login")
    assert first.text.count('<tr data-seq="') == 2
    older = re.search(r'href="([^"]*before=\d+[^"]*)"', first.text).group(1)
    second = admin.get(older.replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count('<tr data-seq="') == 2


@pytest.mark.parametrize("query, message", [
    ("event=DROP TABLE", "Choose an event from the list."),
    ("user=a b", "Enter a username or a device id"),
    ("start=2026-13-01", "Enter a date as YYYY-MM-DD."),
    ("start=2026-02-01&end=2026-01-01", "The end date is before the start date."),
    ("target=%3Cscript%3E", "Enter an identifier as the log shows it"),
    ("before=-1", "This page of the log does not exist"),
    ("before=abc", "This page of the log does not exist"),
])
def test_bad_filters_are_a_400_that_says_what_is_wrong(app, client_as, query, message):
    admin = client_as("admin")
    before = len(events(app))
    response = admin.get(f"/en/admin/audit/?{query}")
    assert response.status_code == 400
    assert message in response.text
    assert len(events(app)) == before


def test_dates_filter_by_day_inclusive(app, client_as):
    admin = client_as("admin")
    newest = events(app)[-1]
    today = newest["at"][:10]
    assert f'data-seq="{newest["seq"]}"' in admin.get(f"/en/admin/audit/?start={today}&end={today}").text
    assert '<tr data-seq="' not in admin.get("/en/admin/audit/?end=2000-01-01").text


# Central: exports -------------------------------------------------------------------------------


def test_an_export_and_its_download_are_recorded_without_the_name_searched(central_app):  # noqa: F811
    from tests.central_data import seed
    from tests.test_central_exports import _download, _start

    db = storage_db.connect(central_app.config["DATABASE"])
    seed(db)
    db.close()
    analyst = Client(central_app, "central")
    export_id = _start(analyst, q="García", post="POST-A")
    _download(analyst, export_id)
    started, downloaded = last(central_app, "export.started"), last(central_app, "export.downloaded")
    assert started["target_id"] == downloaded["target_id"] == export_id
    assert started["actor_name"] == downloaded["actor_name"] == "central"
    assert started["details"]["filters"] == {"form": "intake", "post": "POST-A", "q": True}
    assert "García" not in str(events(central_app))


# Central: verdicts on duplicate persons ----------------------------------------------------------


def test_a_merge_and_its_undo_are_recorded(app, world, staff):  # noqa: F811
    p, q = world["p"], world["q"]
    look_again(staff)
    staff.post_form("/en/central/persons/", {"a": p, "b": q, "survivor": q}, url="/en/central/persons/merge")
    staff.post_form("/en/central/persons/merges", {"a": q, "b": p}, url="/en/central/persons/merges/undo")
    got = [(e["event"], e["actor_name"], e["target_id"], e["details"]["other"])
           for e in events(app) if e["event"].startswith("person.")]
    assert got == [("person.merged", "central", q, p), ("person.unmerged", "central", q, p)]
