"""Deny by default: every route, as anonymous and as each role, and another post's objects."""

from __future__ import annotations

import pytest

from fieldapp.storage import users
from tests.conftest import ACCOUNTS, POST_A, POST_B, csrf_token, make_course, make_session, valid_intake
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
DIAGNOSTICS = {"supervisor", "admin"}

# endpoint -> who may use it. A new route must be added here, or test_matrix_covers_every_route fails.
EXPECTED = {
    "main.root": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.password": EVERYONE,
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
    "backups.index": SYNC_OPERATORS,
    "backups.run": SYNC_OPERATORS,
    "backups.progress": SYNC_OPERATORS,
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
    "diagnostics.index": DIAGNOSTICS,
    "diagnostics.bundle": DIAGNOSTICS,
    "subjects.index": {"central"},
    "subjects.report": {"central"},
    "subjects.download": {"central"},
    "subjects.correct": {"central"},
    "subjects.erase": {"central"},
}
# Pages of one mode only: the other mode answers 404 to those allowed in.
MODE_OF = {"field_sync": "field", "backups": "field", "central": "central", "merged": "central",
           "exports": "central", "persons": "central", "summary": "central", "subjects": "central"}
# What an allowed role gets from the empty request this test sends, where it is not 200/302.
EMPTY_REQUEST = {
    ("field_sync.enrol", "POST"): 400,  # no address, no code
    ("field_sync.run", "POST"): 409,  # not enrolled
    ("field_sync.export_bundle", "POST"): 409,
    ("field_sync.import_receipt", "POST"): 400,  # no file
    ("backups.run", "POST"): 400,  # no folder, no passphrase
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
    ("subjects.correct", "POST"): 404,  # no record named
    ("subjects.erase", "POST"): 400,  # no reason, no reference
}


# Unique strings in each post's records (names, document number, phone, course title): a response
# to someone who may not see that post must never contain one.
MARKERS = {
    "POST-A": ("Wyxzandra", "Quenteluz", "ZQ773150", "Telarañaqa"),
    "POST-B": ("Qopvelina", "Brimzuela", "ZQ884261", "Cordelvixb"),
}
# URL arguments that name an object belonging to a post: filled with each post's objects in turn.
POST_SCOPED = {"uuid", "person", "user_id"}


def _post_objects(db, post: str, officer, supervisor) -> dict:
    """An intake, a course, a session and a participant of `post`, carrying its markers."""
    name, surname, doc, title = MARKERS[post]
    data = valid_intake(given_names=name, first_surname=surname, doc_number=doc,
                        phone="+57 300 773 0001" if post == "POST-A" else "+57 300 884 0002")
    assert officer.http.post("/en/intake/new", data=data).status_code == 302
    course = make_course(supervisor.http, title=title)
    session = make_session(supervisor.http, course, place=title)
    participant = valid_participant(given_names=name, first_surname=surname)
    enrolled = officer.http.post(f"/en/courses/{course}/participants/new", data=participant)
    assert enrolled.status_code == 302
    return {"lang": "en", "uuid": data["uuid"], "course": course, "session": session,
            "person": participant["uuid"],
            # an account that the admin routes may change (reset, disable) without harm
            "user_id": users.create(db, username=f"target_{post.lower()}", role="officer", post=post,
                                    password_hash=users.by_username(db, "officer")["password_hash"]),
            "device_id": "no-such-device", "conflict_id": 1, "export_id": "no-such-export"}


@pytest.fixture
def world(app, db, client_as):
    """Records of post A and of post B, and the ids that fill every URL, per post."""
    app.config["WTF_CSRF_ENABLED"] = False  # this test is about roles; CSRF has its own tests
    supervisor = users.by_username(db, "supervisor")
    users.create(db, username="supervisor_b", password_hash=supervisor["password_hash"],
                 role="supervisor", post=POST_B)
    objects = {POST_A: _post_objects(db, POST_A, client_as("officer"), client_as("supervisor")),
               POST_B: _post_objects(db, POST_B, client_as("officer_b"), client_as("supervisor_b"))}
    return objects


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


def _sees(who, post: str) -> bool:
    role, own = ACCOUNTS[who]
    return role == "central" or own == post


def _sees_post_a(who):
    return _sees(who, POST_A)


def test_matrix_covers_every_route(app):
    assert {rule.endpoint for rule, _ in _routes(app)} == set(EXPECTED)


def _expected(rule, method, mode, who, objects_post) -> tuple[int, ...]:
    """The statuses the matrix allows for one request; () for a public route (anything but 5xx)."""
    allowed = EXPECTED[rule.endpoint]
    role = ACCOUNTS[who][0] if who else None
    if allowed == PUBLIC:
        return ()
    if role is None:  # the JSON API answers 401 rather than redirect a script to a page
        return (302,) if method == "GET" and rule.endpoint.split(".")[0] != "api" else (401,)
    if role not in allowed:
        return (403,)
    if MODE_OF.get(rule.endpoint.split(".")[0], mode) != mode:
        return (404,)  # a page of the other mode
    if POST_SCOPED & set(rule.arguments) and not _sees(who, objects_post):
        return (404,)  # another post's object: as if it did not exist
    if (rule.endpoint, method) in EMPTY_REQUEST:
        return (EMPTY_REQUEST[rule.endpoint, method],)
    # (the empty form post is not the JSON the outbox API expects: 400)
    return (200, 302, 422, 400) if rule.endpoint == "api.outbox" else (200, 302, 422)


def test_every_route_for_every_role_and_every_posts_objects(app, world, client_as):
    """The whole matrix: mode × account × route × method, object routes filled with post A's and
    post B's objects. Every mismatch is listed, so a failure shows every hole at once."""
    wrong = []
    for mode in ("field", "central"):
        app.config["MODE"] = mode
        for who in (None, *ACCOUNTS):
            client = client_as(who)
            # Post B's objects only where a URL names one; logging out last of all.
            requests = [(post, rule, method) for post in (POST_A, POST_B) for rule, method in _routes(app)
                        if post == POST_A or POST_SCOPED & set(rule.arguments)]
            requests.sort(key=lambda r: r[1].endpoint == "auth.logout")
            for objects_post, rule, method in requests:
                url = _url(app, rule, world[objects_post])
                response = client.http.open(url, method=method, data={})
                where = f"{mode}: {method} {url} as {who}"
                expected = _expected(rule, method, mode, who, objects_post)
                if response.status_code >= 500 or (expected and response.status_code not in expected):
                    wrong.append(f"{where}: {response.status_code}, expected {expected}")
                if expected == (302,) and not response.location.startswith("/en/login"):
                    wrong.append(f"{where}: redirected to {response.location}")
                for post, markers in MARKERS.items():
                    role = ACCOUNTS[who][0] if who else None
                    if role in READERS and _sees(who, post):
                        continue
                    wrong += [f"{where}: shows {post}'s {m}" for m in markers
                              if m.encode() in response.data]  # bytes: a download may be a ZIP
                wrong += [f"{where}: {p}" for p in header_problems(response, rule.endpoint)]
    assert not wrong, "\n".join(wrong)


def test_the_markers_do_show_to_those_who_may_see_them(world, client_as):
    """The marker check above can fail: the post's own readers see their records."""
    page = client_as("officer").get(f"/en/records/{world[POST_A]['uuid']}").text
    assert all(m in page for m in MARKERS[POST_A][:3])
    listing = client_as("officer_b").get("/en/records").text
    assert MARKERS[POST_B][0] in listing and MARKERS[POST_A][0] not in listing


def header_problems(response, endpoint: str) -> list[str]:
    """What is missing from a response's security headers (tests/test_headers.py has the rules)."""
    from tests.test_headers import header_problems as problems

    return problems(response, endpoint)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", ""), ("GET", "?revision=1"), ("GET", "/edit"), ("POST", "/edit"),
])
def test_another_posts_record_is_not_found(world, client_as, method, path):
    response = client_as("officer_b").http.open(f"/en/records/{world[POST_A]['uuid']}{path}",
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


def test_pages_have_no_inline_script_or_style(client_as):
    for url in ("/en/login", "/en/", "/en/intake/new", "/en/records"):
        page = client_as("officer").get(url).text
        assert "<script>" not in page and " style=" not in page and "<style" not in page
        assert " on" + "click=" not in page


def test_anonymous_head_is_sent_to_login_like_get(client_as):
    response = client_as().http.head("/en/records")
    assert response.status_code == 302 and response.location.startswith("/en/login")
