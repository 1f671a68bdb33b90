"""What makes the app installable and lets it work offline: manifest, service worker, pages."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from fieldapp.web import pwa


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_manifest_is_public_per_language_with_the_icons_browsers_ask_for(client_as, lang):
    response = client_as().get(f"/{lang}/manifest.webmanifest")
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    manifest = json.loads(response.data)
    assert (manifest["start_url"], manifest["lang"], manifest["display"]) == (f"/{lang}/", lang,
                                                                              "standalone")
    assert manifest["name"] and manifest["short_name"] and manifest["theme_color"] == pwa.THEME
    sizes = {(i["sizes"], i["purpose"]) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert client_as().get(icon["src"]).status_code == 200, icon
    english = json.loads(client_as().get("/en/manifest.webmanifest").data)["description"]
    assert (manifest["description"] == english) is (lang == "en")


def test_the_service_worker_is_served_at_the_root_and_always_checked_for_updates(client_as):
    response = client_as().get("/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    settings = json.loads(re.match(r"const SETTINGS = (.*);\n", response.text).group(1))
    assert re.fullmatch(r"[0-9a-f]{12}", settings["version"])
    assert settings["languages"] == ["en", "es"]
    assets = settings["assets"]
    assert all(re.fullmatch(r"/static/\S+\?v=[0-9a-f]{10}", a) for a in assets), assets
    assert any(a.startswith("/static/js/outbox.js?") for a in assets)
    assert not any(a.startswith("/static/js/sw.js") for a in assets)
    assert "self.addEventListener(\"fetch\"" in response.text  # the worker's source follows


def test_the_release_changes_when_a_file_the_worker_keeps_changes(tmp_path):
    static = tmp_path / "static"
    shutil.copytree(pwa.shipped_dir("static"), static)
    before = pwa._release(str(static))
    (static / "css" / "app.css").write_text("body { color: red; }")
    pwa._release.cache_clear()
    assert pwa._release(str(static)) != before


def test_versioned_static_files_are_cached_for_good_and_pages_never(client_as):
    client = client_as("officer")
    asset = json.loads(re.match(r"const SETTINGS = (.*);\n", client.get("/sw.js").text).group(1))
    versioned = client.get(asset["assets"][0])
    assert "immutable" in versioned.headers["Cache-Control"]
    assert client.get("/static/css/app.css").headers.get("Cache-Control", "") != versioned.headers[
        "Cache-Control"]
    assert client.get("/en/").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("path", "who", "status"), [
    ("/en/offline", None, 200), ("/es/offline", None, 200),
    ("/en/outbox", "officer", 200), ("/es/outbox", "supervisor", 200), ("/en/outbox", None, 302),
    ("/en/outbox", "admin", 403),
])
def test_the_offline_and_outbox_pages(client_as, path, who, status):
    response = client_as(who).get(path)
    assert response.status_code == status
    if status == 200:  # pages the worker keeps hold nothing about anyone
        assert "María" not in response.text and 'id="app-text"' in response.text


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_scripts_text_is_in_the_pages_language(client_as, lang):
    page = client_as("officer").get(f"/{lang}/intake/new").text
    text = json.loads(re.search(r'<script type="application/json" id="app-text">(.*?)</script>',
                                page, re.S).group(1))
    assert len(text["waiting"]) == 2 and all("%(num)d" in form for form in text["waiting"])
    assert ("Saved on this device" in text["waiting"][0]) is (lang == "en")
    form = re.search(r"data-outbox='([^']*)'", page).group(1)
    assert json.loads(form.replace("&#34;", '"'))["kind"] == "intake"


def test_a_login_lasts_across_browser_restarts(app, client_as):
    cookie = client_as("officer").http.get_cookie("session")
    assert cookie is not None and cookie.expires is not None  # a persistent cookie, not per-session
    assert app.permanent_session_lifetime.total_seconds() == 12 * 3600
