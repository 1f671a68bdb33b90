"""Log in and out, account administration on the web and with `fieldapp users`, configuration."""

from __future__ import annotations

import re
import tomllib

import pytest
from click.testing import CliRunner

from fieldapp import accounts, config, create_app
from fieldapp.cli import main
from fieldapp.storage import users
from tests.conftest import PASSWORD, csrf_token


@pytest.mark.parametrize(("username", "password"), [
    ("officer", "wrong-password-x"), ("nobody", PASSWORD), ("", ""), ("officer", ""),
])
def test_login_refused(client_as, username, password):
    client = client_as()
    response = client.login(username, password)
    assert response.status_code == 401
    assert client.get("/en/records").status_code == 302


def test_login_error_is_translated(client_as):
    response = client_as().login("officer", "wrong-password-x", lang="es")
    assert "Nombre de usuario o contraseña incorrectos" in response.text


def test_login_is_case_insensitive_and_returns_to_next(client_as):
    client = client_as()
    page = client.get("/en/login?next=/en/records")
    response = client.http.post("/en/login?next=/en/records", data={
        "csrf_token": csrf_token(page.text), "username": "OFFICER", "password": PASSWORD})
    assert response.location == "/en/records"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_login_never_redirects_off_site(client_as, target):
    client = client_as()
    page = client.get("/en/login")
    response = client.http.post(f"/en/login?next={target}", data={
        "csrf_token": csrf_token(page.text), "username": "officer", "password": PASSWORD})
    assert response.location == "/en/"


def test_logout_needs_post_with_csrf(client_as):
    officer = client_as("officer")
    assert officer.http.post("/en/logout").status_code == 400  # no token: still logged in
    assert officer.get("/en/records").status_code == 200
    home = officer.get("/en/")
    officer.http.post("/en/logout", data={"csrf_token": csrf_token(home.text)})
    assert officer.get("/en/records").status_code == 302


def test_admin_creates_an_account_and_the_password_is_shown_once(db, client_as):
    admin = client_as("admin")
    response = admin.post_form("/en/admin/users/new", {
        "username": "Nuevo.Oficial", "full_name": "Nuevo Oficial", "role": "officer",
        "post": "POST-B", "active": "y", "password": ""})  # post: ignored, the admin's own
    assert response.status_code == 200
    password = re.search(r'<strong class="secret">([^<]+)</strong>', response.text).group(1)
    user = users.by_username(db, "nuevo.oficial")
    assert user["role"] == "officer" and user["post"] == "POST-A"
    assert client_as("nuevo.oficial").login("nuevo.oficial", password).status_code == 302
    assert password not in admin.get("/en/admin/users").text


@pytest.mark.parametrize(("fields", "field", "text"), [
    ({"username": "officer"}, "username", "already taken"),
    ({"username": "a b"}, "username", "Usernames have"),
    ({"role": "superuser"}, "role", "Choose a role"),
    ({"password": "short"}, "password", "at least 10"),
])
def test_admin_account_errors(db, client_as, fields, field, text):
    before = users.count(db)
    data = {"username": "someone", "role": "officer", "password": "", **fields}
    response = client_as("admin").post_form("/en/admin/users/new", data)
    assert response.status_code == 422
    assert text in response.text
    assert users.count(db) == before


def test_admin_disables_and_resets(db, client_as):
    admin = client_as("admin")
    officer_id = users.by_username(db, "officer")["id"]
    response = admin.post_form(f"/en/admin/users/{officer_id}", {
        "role": "officer", "post": "POST-A", "full_name": "Off"})  # active unchecked
    assert response.status_code == 302
    assert users.get(db, officer_id)["active"] == 0
    assert client_as().login("officer").status_code == 401

    response = admin.post_form(f"/en/admin/users/{officer_id}", {},
                               url=f"/en/admin/users/{officer_id}/password")
    new_password = re.search(r'<strong class="secret">([^<]+)</strong>', response.text).group(1)
    assert accounts.authenticate(db, "officer", PASSWORD) is None
    users.update(db, officer_id, active=1)
    assert accounts.authenticate(db, "officer", new_password) is not None


def test_admin_cannot_lock_themselves_out(db, client_as):
    admin = client_as("admin")
    admin_id = users.by_username(db, "admin")["id"]
    response = admin.post_form(f"/en/admin/users/{admin_id}", {"role": "officer", "post": "POST-A",
                                                               "active": "y"})
    assert response.status_code == 422
    assert users.get(db, admin_id)["role"] == "admin"


def test_unknown_account_page_is_not_found(client_as):
    assert client_as("admin").get("/en/admin/users/9999").status_code == 404


# ---------------------------------------------------------------- the command line

@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()
    instance = str(tmp_path / "inst")

    def run(*args, input=None):
        return runner.invoke(main, ["--instance", instance, *args], input=input,
                             catch_exceptions=False)

    return run


def test_init_creates_instance_admin_and_keeps_the_secret(cli, tmp_path):
    first = cli("init", "--post", "frontera-1")
    assert first.exit_code == 0, first.output
    assert "Password (shown only once" in first.output
    settings = tomllib.loads((tmp_path / "inst" / config.CONFIG_FILE).read_text())
    assert settings["POST"] == "FRONTERA-1" and len(settings["SECRET_KEY"]) > 40
    second = cli("init")
    assert second.exit_code == 0 and "Password" not in second.output
    again = tomllib.loads((tmp_path / "inst" / config.CONFIG_FILE).read_text())
    assert again["SECRET_KEY"] == settings["SECRET_KEY"]


def test_users_commands(cli):
    cli("init", "--password-stdin", input="admin-password-1\n")
    added = cli("users", "add", "Ana", "--role", "officer", "--name", "Ana Pérez")
    assert added.exit_code == 0 and "Account created: ana" in added.output
    assert cli("users", "add", "ana", "--role", "officer").exit_code == 1  # taken
    assert cli("users", "add", "zé", "--role", "officer").exit_code == 1  # invalid
    assert cli("users", "add", "bo", "--role", "boss").exit_code == 2  # not a role
    assert cli("users", "add", "cy", "--role", "officer", "--password-stdin",
               input="short\n").exit_code == 1
    assert cli("users", "disable", "ana").exit_code == 0
    assert "disabled" in cli("users", "list").output
    assert cli("users", "enable", "ana").exit_code == 0
    reset = cli("users", "reset-password", "ana", "--password-stdin", input="new-password-99\n")
    assert reset.exit_code == 0
    assert cli("users", "disable", "nobody").exit_code == 1


def test_commands_before_init_explain_what_to_do(cli):
    result = cli("users", "list")
    assert result.exit_code == 1 and "fieldapp init" in result.output


def test_init_refuses_a_bad_post_code(cli):
    result = cli("init", "--post", "bad post!")
    assert result.exit_code == 2


def test_configuration_layers(tmp_path, monkeypatch):
    config.write_new(tmp_path, post="POST-9", mode="field")
    monkeypatch.setenv("FIELDAPP_PORT", "8123")
    monkeypatch.setenv("FIELDAPP_POST", "POST-ENV")
    app = create_app({"PAGE_SIZE": 7}, instance=tmp_path)
    assert app.config["PORT"] == 8123  # environment over defaults
    assert app.config["POST"] == "POST-ENV"  # environment over the instance file
    assert app.config["PAGE_SIZE"] == 7  # explicit overrides last
    assert app.config["DATABASE"] == str(tmp_path / "fieldapp.db")
    assert app.config["DEVICE_ID"]


def test_no_secret_key_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="fieldapp init"):
        create_app(instance=tmp_path)
