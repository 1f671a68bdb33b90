"""Accounts and sessions (issue 7): server-side sessions that end at once, idle and absolute
timeouts on a clock the tests move, login throttling, the password policy, a forced password
change, expiring device tokens, and an outbox that keeps what waits when the login has ended."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape

from fieldapp import accounts
from fieldapp.cli import main
from fieldapp.domain import accounts as rules
from fieldapp.storage import db as storage_db
from fieldapp.storage import records, sessions, users
from fieldapp.storage import sync as store
from fieldapp.web import logins
from sync import protocol
from tests.conftest import PASSWORD, csrf_token
from tests.sync.harness import enrolled_device
from tests.test_outbox_api import intake, send, token

MINUTE, HOUR, DAY = 60, 3600, 86400
START = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Clock:
    """The app's clock, moved by hand: `clock.advance(31 * MINUTE)`."""

    def __init__(self, t: float = START):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock(app):
    app.config["CLOCK"] = Clock()
    return app.config["CLOCK"]


def sid(client) -> str | None:
    with client.http.session_transaction() as s:
        return s.get("sid")


def logged_in(client) -> bool:
    response = client.get("/en/records")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def logout(client):
    home = client.get("/en/")
    return client.http.post("/en/logout", data={"csrf_token": csrf_token(home.text)})


def row_count(db, user="officer") -> int:
    return sessions.count(db, users.by_username(db, user)["id"])


# ---------------------------------------------------------------- sessions

def test_the_cookie_carries_a_new_random_id_and_the_database_only_its_hash(db, client_as, clock):
    client = client_as()
    with client.http.session_transaction() as s:
        s["sid"] = "planted-by-someone-else"  # session fixation: an id chosen before login
    assert not logged_in(client)
    client.login("officer")
    first = sid(client)
    assert first and first != "planted-by-someone-else" and len(first) >= 40
    stored = [r["id_hash"] for r in db.query("SELECT id_hash FROM sessions")]
    assert stored == [hashlib.sha256(first.encode()).hexdigest()]
    assert first.encode() not in Path(client.app.config["DATABASE"]).read_bytes()

    client.login("officer")  # logging in again: another id, and the first one ends
    assert sid(client) != first and row_count(db) == 1
    assert logged_in(client)


def test_cookies_are_http_only_same_site_and_secure_over_https(app, client_as):
    client = client_as()
    response = client.login("officer")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    app.config["SESSION_COOKIE_SECURE"] = True  # what `fieldapp serve --https` sets
    cookie = client_as().login("officer").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def _logout_elsewhere(db, client_as, app):
    logout(client_as("officer"))


def _admin_disables(db, client_as, app):
    officer = users.by_username(db, "officer")
    response = client_as("admin").post_form(f"/en/admin/users/{officer['id']}",
                                            {"role": "officer", "full_name": ""})
    assert response.status_code == 302


def _admin_resets_password(db, client_as, app):
    officer = users.by_username(db, "officer")
    admin = client_as("admin")
    response = admin.post_form(f"/en/admin/users/{officer['id']}", {},
                               url=f"/en/admin/users/{officer['id']}/password")
    assert response.status_code == 200


def _admin_changes_role(db, client_as, app):
    officer = users.by_username(db, "officer")
    response = client_as("admin").post_form(f"/en/admin/users/{officer['id']}",
                                            {"role": "supervisor", "active": "y"})
    assert response.status_code == 302


def _own_password_change_elsewhere(db, client_as, app):
    response = client_as("officer").post_form("/en/password", {
        "current": PASSWORD, "new": "otro-camino-largo-7", "confirm": "otro-camino-largo-7"})
    assert response.status_code == 302


def _cli(command):
    def run(db, client_as, app):
        (Path(app.instance_path) / "fieldapp.toml").write_text('SECRET_KEY = "test-secret"\n')
        result = CliRunner().invoke(main, ["--instance", app.instance_path, *command],
                                    input="un-camino-nuevo-42\n", catch_exceptions=False,
                                    env={"FIELDAPP_DATABASE": app.config["DATABASE"]})
        assert result.exit_code == 0, result.output
    return run


def _password_pulled_from_central(db, client_as, app):
    # What sync's account adoption does: the hash changes under the session, nothing else.
    db.execute("UPDATE users SET password_hash = 'scrypt:changed-on-central' WHERE username = 'officer'")


def _generation_pulled_from_central(db, client_as, app):
    db.execute("UPDATE users SET session_generation = session_generation + 7 WHERE username = 'officer'")


@pytest.mark.parametrize("event", [
    _logout_elsewhere, _admin_disables, _admin_resets_password, _admin_changes_role,
    _own_password_change_elsewhere, _cli(["users", "disable", "officer"]),
    _cli(["users", "reset-password", "officer", "--password-stdin"]),
    _password_pulled_from_central, _generation_pulled_from_central,
], ids=lambda f: f.__name__.strip("_"))
def test_an_event_ends_every_session_of_the_account_at_once(app, db, client_as, event):
    officer, supervisor = client_as("officer"), client_as("supervisor")
    assert logged_in(officer) and logged_in(supervisor)
    event(db, client_as, app)
    assert not logged_in(officer)
    assert officer.http.get("/en/api/shell").status_code == 401
    assert logged_in(supervisor)  # another account's session goes on


def test_a_password_change_keeps_the_device_that_made_it_logged_in(db, client_as):
    here, elsewhere = client_as("officer"), client_as("officer")
    response = here.post_form("/en/password", {
        "current": PASSWORD, "new": "otro-camino-largo-7", "confirm": "otro-camino-largo-7"})
    assert response.status_code == 302
    assert logged_in(here) and not logged_in(elsewhere)
    assert client_as().login("officer", "otro-camino-largo-7").status_code == 302


def test_a_session_ends_after_the_idle_timeout(db, client_as, clock):
    officer = client_as("officer")
    for _ in range(4):  # a visit every 29 minutes keeps it going
        clock.advance(29 * MINUTE)
        assert logged_in(officer)
    clock.advance(30 * MINUTE)
    assert not logged_in(officer)
    assert row_count(db) == 0  # an ended session is removed, not just refused


@pytest.mark.parametrize(("idle", "gap", "alive"), [(10, 9, True), (10, 10, False), (60, 59, True)])
def test_the_idle_timeout_is_configurable(app, client_as, clock, idle, gap, alive):
    app.config["SESSION_IDLE_MINUTES"] = idle
    officer = client_as("officer")
    clock.advance(gap * MINUTE)
    assert logged_in(officer) is alive


def test_a_session_ends_after_the_absolute_timeout_however_busy(app, client_as, clock):
    officer = client_as("officer")
    for _ in range(12 * 4 - 1):  # a visit every 15 minutes for 11 h 45 min
        clock.advance(15 * MINUTE)
        assert logged_in(officer)
    clock.advance(15 * MINUTE)
    assert not logged_in(officer)
    app.config.update(SESSION_MAX_HOURS=1, SESSION_IDLE_MINUTES=120)
    officer = client_as("officer")
    clock.advance(HOUR - 1)
    assert logged_in(officer)
    clock.advance(1)
    assert not logged_in(officer)


def test_a_login_cookie_from_before_server_side_sessions_is_not_a_login(client_as):
    client = client_as()
    with client.http.session_transaction() as s:
        s.update(uid=1, stamp="x", generation=0)  # what the old signed cookie carried
    assert not logged_in(client)


# ---------------------------------------------------------------- the outbox after a login ended

def test_records_replayed_after_the_login_ended_are_kept_and_sent_after_logging_in(db, client_as, clock):
    officer = client_as("officer")
    csrf = token(officer)
    queued = [intake(), intake()]
    clock.advance(31 * MINUTE)  # offline at the post for half an hour: the login ended
    response = officer.http.post("/en/api/outbox", json={"records": queued}, headers={"X-CSRFToken": csrf})
    assert response.status_code == 401
    assert response.json["ok"] is False and response.json["error"]["code"] == "login"
    assert "Log in again" in response.json["error"]["message"]
    assert officer.http.get("/en/api/token").status_code == 401  # the outbox's first step
    assert [records.get(db, r["uuid"]) for r in queued] == [None, None]

    officer.login("officer")
    assert [r["outcome"] for r in send(officer, queued)] == ["stored", "stored"]
    assert all(records.get(db, r["uuid"]) for r in queued)


# ---------------------------------------------------------------- login throttling

def attempt(app, username, password="wrong-password-x", address="10.0.0.1", lang="en"):
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = address
    page = http.get(f"/{lang}/login")
    return http.post(f"/{lang}/login", data={"csrf_token": csrf_token(page.text), "username": username,
                                              "password": password})


def fail(app, times, username="officer", address="10.0.0.1"):
    for _ in range(times):
        assert attempt(app, username, address=address).status_code == 401


@pytest.mark.parametrize("username", ["officer", "nobody"])  # an unknown name is throttled alike
def test_failures_for_an_account_slow_then_block_further_attempts(app, clock, username):
    fail(app, 5, username)
    slowed = attempt(app, username, PASSWORD, address="10.0.0.9")  # from anywhere, even right
    assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "1"
    assert "Wait 1 second before trying again" in slowed.text
    for wait in (1, 2, 4, 8):  # each failure doubles the wait
        clock.advance(wait)
        assert attempt(app, username).status_code == 401
    clock.advance(15)
    assert attempt(app, username).status_code == 429
    clock.advance(1)
    fail(app, 1, username)  # the 10th: blocked for 15 minutes
    blocked = attempt(app, username, PASSWORD, address="10.0.0.9")
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == str(15 * MINUTE)
    assert "blocked for 15 minutes, until 8:15" in blocked.text
    clock.advance(15 * MINUTE - 1)
    assert attempt(app, username, PASSWORD).status_code == 429
    clock.advance(1)
    assert attempt(app, username, PASSWORD).status_code == (302 if username == "officer" else 401)


def test_the_refusal_is_in_the_pages_language(app, clock):
    for wait in (0, 0, 0, 0, 0, 1, 2, 4, 8, 16):
        clock.advance(wait)
        fail(app, 1)
    blocked = attempt(app, "officer", lang="es")
    with app.test_request_context("/es/login"):
        app.preprocess_request()
        expected = logins.Refusal("locked", 15 * MINUTE).message()
    assert blocked.status_code == 429 and str(escape(expected)) in blocked.text


def test_failures_from_an_address_slow_then_block_it_for_every_account(app, clock):
    app.config.update(LOGIN_ADDRESS_SLOW_AFTER=3, LOGIN_ADDRESS_LOCK_AFTER=4)
    for name in ("ana", "beto", "carla"):  # one try each: no account reaches its threshold
        fail(app, 1, name)
    assert attempt(app, "diego").status_code == 429
    assert attempt(app, "officer", PASSWORD, address="10.0.0.2").status_code == 302  # another device
    clock.advance(1)
    fail(app, 1, "diego")
    assert attempt(app, "officer", PASSWORD).status_code == 429  # blocked, even the right password
    clock.advance(15 * MINUTE)
    assert attempt(app, "officer", PASSWORD).status_code == 302


def test_a_successful_login_clears_the_accounts_count(app, clock):
    fail(app, 4)
    assert attempt(app, "officer", PASSWORD).status_code == 302
    fail(app, 4)  # 4 again, not 8: no wait
    assert attempt(app, "officer").status_code == 401


def test_failures_are_forgotten_after_the_lock_period(app, clock):
    fail(app, 4)
    clock.advance(15 * MINUTE)
    fail(app, 4)
    assert attempt(app, "officer").status_code == 401


def test_the_throttle_table_names_no_account_and_no_address(app, db, clock):
    fail(app, 2, "officer", address="10.9.8.7")
    keys = [r["key"] for r in db.query("SELECT key FROM login_failures")]
    assert len(keys) == 2 and not any("officer" in k or "10.9.8.7" in k for k in keys)


# ---------------------------------------------------------------- the password policy

@pytest.mark.parametrize(("password", "username", "code"), [
    ("a" * 9, "ana", "password_too_short"),
    ("á" * 10, "ana", None),
    ("x" * 128, "ana", None),
    ("x" * 129, "ana", "password_too_long"),
    ("1234567890", "ana", "password_common"),
    ("QwertyUiop", "ana", "password_common"),  # case does not matter
    ("Contraseña123", "ana", "password_common"),  # the list added for fieldapp
    ("basketball", "ana", "password_common"),
    ("ana.maria.2026", "ana.maria.2026", "password_is_username"),
    ("ANA.MARIA.2026", "ana.maria.2026", "password_is_username"),
    ("ana.maria.2026!", "ana.maria.2026", None),
    ("tres palabras sueltas", "ana", None),
])
def test_the_password_policy(password, username, code):
    assert rules.check_password(password, username) == code


def test_the_common_list_is_shipped_and_loaded():
    common = rules.common_passwords()
    assert len(common) > 1800 and "password123" in common and "" not in common
    assert not any(line.startswith("#") for line in common)


@pytest.mark.parametrize(("password", "text"), [
    ("1234567890", "most common"), ("someone123", "not be the username"), ("x" * 129, "at most 128"),
])
def test_the_policy_applies_on_every_path(db, client_as, tmp_path, password, text):
    response = client_as("admin").post_form("/en/admin/users/new", {
        "username": "someone123", "role": "officer", "password": password})
    assert response.status_code == 422 and text in response.text
    assert users.by_username(db, "someone123") is None

    accounts.create(db, username="someone123", password="ganas-de-viajar-3", role="officer", post="POST-A")
    holder = client_as()
    holder.login("someone123", "ganas-de-viajar-3")
    response = holder.post_form("/en/password", {"current": "ganas-de-viajar-3", "new": password,
                                                 "confirm": password})
    assert response.status_code == 422 and text in response.text
    assert accounts.authenticate(db, "someone123", "ganas-de-viajar-3")  # unchanged

    cli = CliRunner()
    instance = ["--instance", str(tmp_path / "cli")]
    init = cli.invoke(main, [*instance, "init", "--password-stdin", "--admin", "someone123"],
                      input=password + "\n")
    assert init.exit_code == 1
    cli.invoke(main, [*instance, "init", "--password-stdin"], input="un-camino-nuevo-42\n")
    add = cli.invoke(main, [*instance, "users", "add", "someone123", "--role", "officer",
                            "--password-stdin"], input=password + "\n")
    assert add.exit_code == 1 and text in add.output
    cli.invoke(main, [*instance, "users", "add", "someone123", "--role", "officer"])
    reset = cli.invoke(main, [*instance, "users", "reset-password", "someone123", "--password-stdin"],
                       input=password + "\n")
    assert reset.exit_code == 1 and text in reset.output


@pytest.mark.parametrize(("fields", "field_error"), [
    ({"current": "wrong-password-x"}, "current password is not correct"),
    ({"confirm": "something-else-9"}, "not the same"),
    ({"new": PASSWORD, "confirm": PASSWORD}, "different from the current"),
])
def test_changing_ones_password_needs_the_current_one_and_a_new_one_twice(db, client_as, fields, field_error):
    officer = client_as("officer")
    data = {"current": PASSWORD, "new": "otro-camino-largo-7", "confirm": "otro-camino-largo-7", **fields}
    response = officer.post_form("/en/password", data)
    assert response.status_code == 422 and field_error in response.text
    assert accounts.authenticate(db, "officer", PASSWORD) and logged_in(officer)


# ---------------------------------------------------------------- forced change at next login

def test_an_admin_forces_a_change_at_the_next_login(db, client_as):
    officer_id = users.by_username(db, "officer")["id"]
    response = client_as("admin").post_form(f"/en/admin/users/{officer_id}", {
        "role": "officer", "active": "y", "must_change_password": "y"})
    assert response.status_code == 302 and users.get(db, officer_id)["must_change_password"] == 1

    officer = client_as("officer")
    assert officer.get("/en/records").location == "/en/password"
    assert officer.get("/es/records/new").location == "/es/password"
    api = officer.http.get("/en/api/token")
    assert api.status_code == 403 and api.json["error"]["code"] == "password_change"
    assert "asked you to choose a new password" in officer.get("/en/password").text

    response = officer.post_form("/en/password", {
        "current": PASSWORD, "new": "otro-camino-largo-7", "confirm": "otro-camino-largo-7"})
    assert response.status_code == 302 and users.get(db, officer_id)["must_change_password"] == 0
    assert logged_in(officer) and officer.http.get("/en/api/token").status_code == 200


def test_a_reset_password_must_be_changed_and_new_accounts_default_to_it(db, client_as):
    officer_id = users.by_username(db, "officer")["id"]
    admin = client_as("admin")
    response = admin.post_form(f"/en/admin/users/{officer_id}", {},
                               url=f"/en/admin/users/{officer_id}/password")
    password = re.search(r'<strong class="secret">([^<]+)</strong>', response.text).group(1)
    officer = client_as()
    officer.login("officer", password)
    assert officer.get("/en/").location == "/en/password"

    admin.post_form("/en/admin/users/new", {"username": "nueva", "role": "officer", "password": "",
                                            "must_change_password": "y", "active": "y"})
    assert users.by_username(db, "nueva")["must_change_password"] == 1


def test_the_command_line_can_force_a_change(tmp_path):
    cli, instance = CliRunner(), ["--instance", str(tmp_path / "cli")]
    cli.invoke(main, [*instance, "init", "--password-stdin"], input="un-camino-nuevo-42\n")
    added = cli.invoke(main, [*instance, "users", "add", "ana", "--role", "officer", "--must-change"])
    assert added.exit_code == 0, added.output
    db = storage_db.connect(tmp_path / "cli" / "fieldapp.db")
    assert users.by_username(db, "ana")["must_change_password"] == 1
    assert users.by_username(db, "admin")["must_change_password"] == 0
    db.close()
    listed = cli.invoke(main, [*instance, "users", "list"]).output
    assert re.search(r"^ana .*must change password$", listed, re.M)
    assert not re.search(r"^admin .*must change", listed, re.M)


# ---------------------------------------------------------------- device tokens

def _pull(app, token):
    return app.test_client().post("/en/sync/v1/pull", json={"cursor": 0, "limit": 10}, headers={
        protocol.PROTOCOL_HEADER: str(protocol.VERSION), "Authorization": f"Bearer {token}"})


def test_a_device_token_unused_for_too_long_gets_the_same_401_as_a_revoked_one(app, db):
    app.config["MODE"] = "central"
    token_, device_id = enrolled_device(db)

    def last_used(days_ago: float):
        at = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        db.execute("UPDATE devices SET last_contact = ? WHERE id = ?", [at, device_id])

    last_used(89)
    assert _pull(app, token_).status_code == 200  # and using it starts the 90 days again
    assert store.device(db, device_id)["last_contact"] > (datetime.now(UTC) - timedelta(days=1)).isoformat()
    last_used(91)
    expired = _pull(app, token_)
    assert expired.status_code == 401 and expired.json["error"]["code"] == "unknown_device"
    app.config["DEVICE_TOKEN_IDLE_DAYS"] = 0  # no limit
    assert _pull(app, token_).status_code == 200
