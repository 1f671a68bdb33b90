"""Deny by default: every route, as anonymous and as each role, and another post's objects."""

from __future__ import annotations

import pytest

from fieldapp.storage import users
from tests.conftest import ACCOUNTS, csrf_token, make_course, make_session, valid_intake
from tests.test_enrolment import valid_participant

PUBLIC = "public"
CAPTURERS = {"officer", "supervisor"}
READERS = {"officer", "supervisor", "central"}
ADMINS = {"admin"}
MANAGERS = {"supervisor", "central"}
EVERYONE = {"officer", "supervisor", "central", "admin"}
DEVICE_SETUP = {"supervisor", "admin"}
SYNC_OPERATORS = {"supervisor", "admin"}
CENTRAL_DASHBOARD = {"central", "admin"}

# endpoint -> who may use it. A new route must be added here, or test_matrix_covers_every_route fails.
EXPECTED = {
    "main.root": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "main.home": EVERYONE,
    "records.new": CAPTURERS,
    "records.index": READERS,
    "records.show": READERS,
    "records.edit": READERS,
    "trainings.courses": READERS,
    "trainings.course": READERS,
    "trainings.new_course": MANAGERS,
    "trainings.edit_course": MANAGERS,
    "trainings.new_session": MANAGERS,
    "trainings.edit_session": MANAGERS,
    "trainings.enrol": CAPTURERS,
    "trainings.enrol_person": CAPTURERS,
    "trainings.new_participant": CAPTURERS,
    "trainings.checkin": CAPTURERS,
    "trainings.mark": CAPTURERS,
    "trainings.mark_all_present": CAPTURERS,
    "trainings.summary": READERS,
    "trainings.certificates": READERS,
    "trainings.issue_certificates": MANAGERS,
    "trainings.verify_certificate": EVERYONE,
    "trainings.attendance_form": CAPTURERS,
    "admin.index": ADMINS,
    "audit_log.index": ADMINS,
    "admin.new": ADMINS,
    "admin.edit": ADMINS,
    "admin.reset_password": ADMINS,
    "api.token": CAPTURERS,
    "api.shell": EVERYONE,
    "api.outbox": CAPTURERS,
    "pwa.service_worker": PUBLIC,
    "pwa.manifest": PUBLIC,
    "pwa.offline": PUBLIC,
    "pwa.outbox": CAPTURERS,
    "connect.ca_cert": PUBLIC,
    "connect.index": DEVICE_SETUP,
    # Devices authenticate to the sync API with a token, not a login (tests/sync/).
    "sync.enrol": PUBLIC,
    "sync.push": PUBLIC,
    "sync.pull": PUBLIC,
    "sync.finish": PUBLIC,
    "field_sync.index": SYNC_OPERATORS,
    "field_sync.enrol": SYNC_OPERATORS,
    "field_sync.run": SYNC_OPERATORS,
    "field_sync.progress": SYNC_OPERATORS,
    "field_sync.export_bundle": SYNC_OPERATORS,
    "field_sync.import_receipt": SYNC_OPERATORS,
    "central.dashboard": CENTRAL_DASHBOARD,
    "central.new_device": ADMINS,
    "central.revoke": ADMINS,
    "central.import_bundle": CENTRAL_DASHBOARD,
    "central.conflicts": {"central"},
    "central.conflict": {"central"},
    "merged.records": {"central"},
    "exports.new": {"central"},
    "exports.create": {"central"},
    "exports.show": {"central"},
    "exports.progress": {"central"},
    "exports.download": {"central"},
    "persons.pairs": {"central"},
    "persons.look_again": {"central"},
    "persons.merge": {"central"},
    "persons.distinct": {"central"},
    "persons.merges": {"central"},
    "persons.undo": {"central"},
    "persons.person": {"central"},
    "summary.index": {"central"},
}
# Pages of one mode only: the other mode answers 404 to those allowed in.
MODE_OF = {"field_sync": "field", "central": "central", "merged": "central", "exports": "central",
           "persons": "central", "summary": "central"}
# What an allowed role gets from the empty request this test sends, where it is not 200/302.
EMPTY_REQUEST = {
    ("field_sync.enrol", "POST"): 400,  # no address, no code
    ("field_sync.run", "POST"): 409,  # not enrolled
    ("field_sync.export_bundle", "POST"): 409,
    ("field_sync.import_receipt", "POST"): 400,  # no file
    ("central.new_device", "POST"): 400,
    ("central.import_bundle", "POST"): 400,
    ("central.revoke", "POST"): 404,  # no such device
    ("central.conflict", "GET"): 404,
    ("central.conflict", "POST"): 404,
    ("exports.create", "POST"): 400,  # no data set, format or profile
    ("exports.show", "GET"): 404,  # no such export
    ("exports.progress", "GET"): 404,
    ("exports.download", "GET"): 404,
    ("persons.look_again", "POST"): 303,  # looked: back to the list
    ("persons.merge", "POST"): 400,  # no pair named
    ("persons.distinct", "POST"): 400,
    ("persons.undo", "POST"): 400,
}


@pytest.fixture
def world(app, db, client_as):
    """A record of post A, and the ids needed to fill every URL."""
    app.config["WTF_CSRF_ENABLED"] = False  # this test is about roles; CSRF has its own tests
    data = valid_intake()
    response = client_as("officer").http.post("/en/intake/new", data=data)
    assert response.status_code == 302
    course = make_course(client_as("supervisor").http)
    session = make_session(client_as("supervisor").http, course)
    participant = valid_participant()
    enrolled = client_as("officer").http.post(f"/en/courses/{course}/participants/new",
                                              data=participant)
    assert enrolled.status_code == 302
    return {"lang": "en", "uuid": data["uuid"], "user_id": users.by_username(db, "supervisor")["id"],
            "course": course, "session": session, "person": participant["uuid"],
            "device_id": "no-such-device", "conflict_id": 1, "export_id": "no-such-export"}


def _routes(app):
    # Logging out ends the session, so it goes last.
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "auth.logout", r.rule))
    for rule in rules:
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


# Which record each object route's <uuid> names.
UUID_OF = {"trainings.course": "course", "trainings.edit_course": "course",
           "trainings.new_session": "course", "trainings.edit_session": "session",
           "trainings.enrol": "course", "trainings.enrol_person": "course",
           "trainings.new_participant": "course", "trainings.checkin": "session",
           "trainings.mark": "session", "trainings.mark_all_present": "session",
           "trainings.summary": "course", "trainings.certificates": "course",
           "trainings.issue_certificates": "course", "trainings.attendance_form": "session"}


def _url(app, rule, values):
    values = dict(values, uuid=values[UUID_OF.get(rule.endpoint, "uuid")])
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})


def _sees_post_a(who):
    role, post = ACCOUNTS[who]
    return role == "central" or post == "POST-A"


def test_matrix_covers_every_route(app):
    assert {rule.endpoint for rule, _ in _routes(app)} == set(EXPECTED)


@pytest.mark.parametrize("mode", ["field", "central"])
@pytest.mark.parametrize("who", [None, *ACCOUNTS])
def test_every_route_for_every_role(app, world, client_as, who, mode):
    app.config["MODE"] = mode
    client = client_as(who)
    role = ACCOUNTS[who][0] if who else None
    for rule, method in _routes(app):
        url = _url(app, rule, world)
        response = client.http.open(url, method=method, data={})
        allowed = EXPECTED[rule.endpoint]
        where = f"{method} {url} as {who}"
        if allowed == PUBLIC:
            assert response.status_code < 500, where
        elif role is None:  # the JSON API answers 401 rather than redirect a script to a page
            expected = 302 if method == "GET" and rule.endpoint.split(".")[0] != "api" else 401
            assert response.status_code == expected, where
            if expected == 302:
                assert response.location.startswith("/en/login"), where
        elif role in allowed and MODE_OF.get(rule.endpoint.split(".")[0], mode) != mode:
            assert response.status_code == 404, where  # a page of the other mode
        elif role in allowed and "uuid" in rule.arguments and not _sees_post_a(who):
            assert response.status_code == 404, where  # another post's record
        elif role in allowed and (rule.endpoint, method) in EMPTY_REQUEST:
            assert response.status_code == EMPTY_REQUEST[rule.endpoint, method], where
        elif role in allowed:  # (the empty form post is not the JSON the outbox API expects: 400)
            assert response.status_code in (200, 302, 422) or (
                rule.endpoint == "api.outbox" and response.status_code == 400), where
        else:
            assert response.status_code == 403, where
        if not (role in READERS and _sees_post_a(who)):
            assert "María José" not in response.text, where


@pytest.mark.parametrize(("method", "path"), [
    ("GET", ""), ("GET", "?revision=1"), ("GET", "/edit"), ("POST", "/edit"),
])
def test_another_posts_record_is_not_found(world, client_as, method, path):
    response = client_as("officer_b").http.open(f"/en/records/{world['uuid']}{path}",
                                                method=method, data=valid_intake())
    assert response.status_code == 404
    assert "María José" not in response.text


@pytest.mark.parametrize("uuid", ["not-a-uuid", "00000000-0000-0000-0000-000000000000",
                                  "%00", "..%2F..%2Fetc%2Fpasswd"])
def test_unknown_or_malformed_record_ids_are_not_found(client_as, uuid):
    assert client_as("officer").get(f"/en/records/{uuid}").status_code == 404


def test_a_view_that_declares_no_roles_is_closed(app, client_as):
    @app.get("/en/undeclared")
    def undeclared():
        return "secret"

    for who in ACCOUNTS:
        response = client_as(who).get("/en/undeclared")
        assert response.status_code == 403 and "secret" not in response.text


def test_a_disabled_account_loses_access_at_once(db, client_as):
    officer = client_as("officer")
    assert officer.get("/en/records").status_code == 200
    users.update(db, users.by_username(db, "officer")["id"], active=0)
    assert officer.get("/en/records").status_code == 302


def test_a_password_change_ends_other_sessions(db, client_as):
    from fieldapp import accounts

    officer = client_as("officer")
    accounts.set_password(db, users.by_username(db, "officer")["id"], "another-long-password")
    assert officer.get("/en/records").status_code == 302


def test_static_files_need_no_login(client_as):
    response = client_as().get("/static/css/app.css")
    assert response.status_code == 200 and b"--brand" in response.data


@pytest.mark.parametrize("other", ["officer_b", "central"])
@pytest.mark.parametrize(("method", "path"), [("GET", ""), ("POST", ""), ("POST", "/password")])
def test_a_post_admin_cannot_touch_other_posts_or_central_accounts(
    app, db, client_as, other, method, path
):
    app.config["WTF_CSRF_ENABLED"] = False
    target = users.by_username(db, other)
    response = client_as("admin").http.open(
        f"/en/admin/users/{target['id']}{path}", method=method,
        data={"role": "officer", "active": "y"})
    assert response.status_code == 404
    assert users.by_username(db, other) == target


@pytest.mark.parametrize("role", ["central", "superuser"])
def test_a_post_admin_cannot_create_central_accounts(db, client_as, role):
    before = users.count(db)
    response = client_as("admin").post_form("/en/admin/users/new", {
        "username": "sneaky", "role": role, "password": "long-enough-password"})
    assert response.status_code == 422
    assert users.count(db) == before


def test_the_account_list_shows_the_admins_post_only(client_as):
    page = client_as("admin").get("/en/admin/users").text
    assert "supervisor" in page
    assert "officer_b" not in page and ">central<" not in page


def test_logout_ends_the_session_everywhere(client_as):
    phone, laptop = client_as("officer"), client_as("officer")
    stolen_cookie = phone.http.get_cookie("session").value
    home = phone.get("/en/")
    phone.http.post("/en/logout", data={"csrf_token": csrf_token(home.text)})
    assert laptop.get("/en/records").status_code == 302
    thief = client_as()
    thief.http.set_cookie("session", stolen_cookie)
    assert thief.get("/en/records").status_code == 302


@pytest.mark.parametrize("url", ["/en/login", "/en/records", "/en/intake/new", "/en/nowhere"])
def test_security_headers(client_as, url):
    response = client_as("officer").get(url)
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(client_as):
    for url in ("/en/login", "/en/", "/en/intake/new", "/en/records"):
        page = client_as("officer").get(url).text
        assert "<script>" not in page and " style=" not in page and "<style" not in page
        assert " on" + "click=" not in page


def test_anonymous_head_is_sent_to_login_like_get(client_as):
    response = client_as().http.head("/en/records")
    assert response.status_code == 302 and response.location.startswith("/en/login")
