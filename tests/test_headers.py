"""Security headers on every response — pages, JSON, errors, static files, redirects — and where a
state-changing request came from (Sec-Fetch-Site / Origin), over HTTP and HTTPS.

Every route of both modes is also checked by the route matrix in tests/test_access.py, which calls
`header_problems` on each of its responses."""

from __future__ import annotations

import pytest

from fieldapp.web.headers import CSP
from tests.conftest import csrf_token, valid_intake

HTTPS = "https://192.168.77.5:8443"
# Answers that hold no personal data and are revalidated on each use (the PWA's own files).
NO_PERSONAL_DATA = {"pwa.service_worker", "pwa.manifest"}


def header_problems(response, endpoint: str | None = None) -> list[str]:
    """What a response lacks of the headers every response must carry."""
    h = response.headers
    problems = []
    csp = h.get("Content-Security-Policy", "")
    for part in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        if part not in csp:
            problems.append(f"CSP lacks {part}")
    if "unsafe-inline" in csp or "unsafe-eval" in csp:
        problems.append("CSP allows inline script")
    if h.get("X-Content-Type-Options") != "nosniff":
        problems.append("no nosniff")
    if h.get("Referrer-Policy") != "no-referrer":
        problems.append(f"Referrer-Policy {h.get('Referrer-Policy')}")
    cache = h.get("Cache-Control", "")
    if endpoint == "static":
        pass  # no personal data in static files: versioned URLs are cached for good
    elif endpoint in NO_PERSONAL_DATA:
        if cache not in ("no-cache", "no-store"):
            problems.append(f"{endpoint}: Cache-Control {cache}")
    elif cache != "no-store":
        problems.append(f"Cache-Control {cache!r}")
    return problems


@pytest.mark.parametrize(("method", "url", "status"), [
    ("GET", "/en/login", 200),
    ("GET", "/", 302),
    ("GET", "/en/records", 302),  # to the login page
    ("GET", "/en/nowhere", 404),
    ("PUT", "/en/login", 405),
    ("POST", "/en/api/outbox", 400),  # no CSRF token: a JSON error
    ("POST", "/en/sync/v1/push", 404),  # the sync API of a field server: a JSON error
    ("GET", "/en/offline", 200),
    ("GET", "/en/manifest.webmanifest", 200),
    ("GET", "/sw.js", 200),
])
def test_every_kind_of_answer_has_the_headers(client_as, method, url, status):
    response = client_as().http.open(url, method=method)
    assert response.status_code == status
    endpoint = {"/sw.js": "pwa.service_worker", "/en/manifest.webmanifest": "pwa.manifest"}.get(url)
    assert header_problems(response, endpoint) == []
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP: no HSTS


def test_a_413_has_the_headers(client_as):
    officer = client_as("officer")
    page = officer.get("/en/intake/new")
    response = officer.http.post("/en/intake/new", data={
        "csrf_token": csrf_token(page.text), **valid_intake(notes="x" * 2**20)})
    assert response.status_code == 413 and header_problems(response) == []


@pytest.mark.parametrize("url", ["/static/css/app.css", "/static/css/app.css?v=1234"])
def test_static_files_have_the_headers(client_as, url):
    response = client_as().get(url)
    assert response.status_code == 200 and header_problems(response, "static") == []


def test_the_csp_is_the_documented_one():
    assert CSP.startswith("default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@pytest.mark.parametrize("url", ["/en/login", "/en/nowhere", "/static/css/app.css"])
def test_hsts_over_https_only(client_as, url):
    response = client_as().http.get(url, base_url=HTTPS)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert header_problems(response, "static" if "static" in url else None) == []


def test_no_hsts_for_localhost_or_when_turned_off(app, client_as):
    """HSTS covers every port of a host: https://localhost:8443 must not break http://localhost:5000."""
    response = client_as().http.get("/en/login", base_url="https://localhost:8443")
    assert "Strict-Transport-Security" not in response.headers
    app.config["HSTS_MAX_AGE"] = 0
    assert "Strict-Transport-Security" not in client_as().http.get("/en/login", base_url=HTTPS).headers


# ------------------------------------------------------------------ where a form came from


def _login(client, base_url: str, headers: dict):
    page = client.http.get("/en/login", base_url=base_url)
    return client.http.post("/en/login", base_url=base_url, headers=headers, data={
        "csrf_token": csrf_token(page.text), "username": "officer", "password": "correct-horse-battery"})


ACCEPTED = [
    {},  # no browser headers at all (a script, an old browser): the CSRF token decides
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed by the person
    {"Origin": "null"},  # what a browser sends under no-referrer: tells nothing
    {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
]
REFUSED = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port or scheme of this laptop is another site
    {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://192.168.77.5:8443"},  # the right host over the wrong scheme
]


@pytest.mark.parametrize("base_url", ["http://localhost", HTTPS])
@pytest.mark.parametrize("headers", ACCEPTED)
def test_a_form_from_this_site_is_accepted_without_a_referer(client_as, base_url, headers):
    """No Referer is ever sent (Referrer-Policy: no-referrer), also over HTTPS."""
    response = _login(client_as(), base_url, headers)
    assert response.status_code == 302, response.text[:500]


@pytest.mark.parametrize("base_url", ["http://localhost", HTTPS])
@pytest.mark.parametrize("headers", REFUSED)
def test_a_form_from_another_site_is_refused(client_as, base_url, headers):
    response = _login(client_as(), base_url, headers)
    assert response.status_code == 400 and "not sent by this application" in response.text
    assert header_problems(response) == []


def test_the_same_origin_with_its_port_is_accepted(client_as):
    response = _login(client_as(), HTTPS, {"Origin": HTTPS})
    assert response.status_code == 302


@pytest.mark.parametrize("lang,words", [("en", "not sent by this application"),
                                        ("es", "no fue enviado por esta aplicación")])
def test_a_cross_site_record_is_refused_in_the_pages_language_and_nothing_is_stored(
    client_as, db, lang, words
):
    officer = client_as("officer")
    page = officer.get(f"/{lang}/intake/new")
    response = officer.http.post(f"/{lang}/intake/new", headers={"Sec-Fetch-Site": "cross-site"},
                                 data={"csrf_token": csrf_token(page.text), **valid_intake()})
    assert response.status_code == 400 and words in response.text
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == 0


def test_a_cross_site_json_replay_is_refused(client_as, db):
    officer = client_as("officer")
    token = officer.get("/en/api/token").json["token"]
    response = officer.http.post("/en/api/outbox", json={"records": []},
                                 headers={"X-CSRFToken": token, "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400 and response.json["error"]["code"] == "csrf"
