"""Errors show no traceback and no personal data, and what the app logs never holds names,
document numbers or phone numbers — not even from a search's query string or a failing view."""

from __future__ import annotations

import logging

import pytest

from fieldapp.web.access import allow
from tests.conftest import csrf_token, valid_intake

NAME, SURNAME, DOC, PHONE = "Xiomarelys", "Quintavaldo", "XQ918273", "+57 300 918 2736"
MARKERS = (NAME, SURNAME, DOC, PHONE, "918 2736")


@pytest.fixture
def failing_app(app):
    """The app with views that fail, registered only here."""

    @app.get("/<lang>/boom")
    @allow(public=True)
    def boom():  # the language is taken from the URL by fieldapp.i18n
        raise ValueError(f"cannot store {NAME} {SURNAME}, document {DOC}, phone {PHONE}")

    return app


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level: werkzeug, waitress, fieldapp
    return caplog


def _clean(text: str) -> bool:
    return not any(m in text for m in MARKERS)


@pytest.mark.parametrize(("url", "words"), [("/en/boom", "Something went wrong on the server"),
                                            ("/es/boom", "Se produjo un error en el servidor")])
def test_a_500_page_shows_no_traceback_and_no_personal_data(failing_app, client_as, all_logs, url, words):
    response = client_as().get(url)
    assert response.status_code == 500 and words in response.text
    for leak in ("Traceback", "File \"", "ValueError", "KeyError", "line "):
        assert leak not in response.text
    assert _clean(response.text)
    assert response.headers["Cache-Control"] == "no-store"
    # The log says what failed and where, never the message.
    assert "unhandled" in all_logs.text and "boom" in all_logs.text
    assert _clean(all_logs.text)


def test_when_the_error_page_fails_too_a_plain_500_is_still_sent(failing_app, client_as, all_logs,
                                                                 monkeypatch):
    from fieldapp.web import errors

    def broken(*args, **kwargs):
        raise RuntimeError(f"template broken near {NAME}")

    monkeypatch.setattr(errors, "render_template", broken)
    response = client_as().get("/en/boom")
    assert response.status_code == 500 and "Something went wrong on the server" in response.text
    assert "Traceback" not in response.text and _clean(response.text) and _clean(all_logs.text)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_whole_capture_and_search_flow_logs_no_personal_data(failing_app, client_as, all_logs, db):
    officer = client_as("officer")
    page = officer.get("/en/intake/new")
    data = valid_intake(given_names=NAME, first_surname=SURNAME, doc_number=DOC, phone=PHONE)
    assert officer.http.post("/en/intake/new", data={"csrf_token": csrf_token(page.text), **data}
                             ).status_code == 302
    bad = officer.http.post("/en/intake/new", data={"csrf_token": csrf_token(page.text),
                                                    **dict(data, birth_date="not a date")})
    assert bad.status_code in (200, 302, 422)
    for query in (NAME, DOC, f"{NAME} {SURNAME}"):
        found = officer.get("/en/records", query_string={"q": query})
        assert found.status_code == 200 and NAME in found.text
    assert officer.get(f"/en/records/{data['uuid']}").status_code == 200
    # A refused login with a name as username, and a replay of a broken record.
    client_as().login(NAME, PHONE)
    token = officer.get("/en/api/token").json["token"]
    officer.http.post("/en/api/outbox", headers={"X-CSRFToken": token}, json={"records": [
        {"kind": "intake", "uuid": data["uuid"], "fields": {"given_names": NAME}},
        {"kind": NAME, "uuid": DOC, "fields": {"phone": PHONE}}]})
    # A failure on a URL whose query string holds a name: logged, without the query string.
    assert officer.get("/en/boom", query_string={"q": NAME, "doc": DOC}).status_code == 500
    assert "unhandled ValueError on GET /<lang>/boom" in all_logs.text
    assert _clean(all_logs.text)


def test_a_replay_that_fails_unexpectedly_logs_the_kind_only(client_as, all_logs, monkeypatch):
    from fieldapp.web import records

    def fails(*args, **kwargs):
        raise RuntimeError(f"disk full while storing {NAME}")

    monkeypatch.setattr(records, "capture_intake", fails)
    officer, uuid = client_as("officer"), valid_intake()["uuid"]
    token = officer.get("/en/api/token").json["token"]
    answer = officer.http.post("/en/api/outbox", headers={"X-CSRFToken": token}, json={"records": [
        {"kind": "intake", "uuid": uuid, "fields": {"uuid": uuid, "given_names": NAME}}]})
    assert answer.status_code == 200 and answer.json["results"][0]["code"] == "server_error"
    assert "replay of a intake record failed: RuntimeError" in all_logs.text
    assert _clean(all_logs.text) and _clean(answer.text)
