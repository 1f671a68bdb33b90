"""Both languages, always: the Spanish catalog is complete, current and compiled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from fieldapp import shipped_dir
from tests.conftest import PASSWORD, csrf_token

TRANSLATIONS = shipped_dir("translations")
REPO = TRANSLATIONS.parent
LANGUAGES = ["es"]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _catalog(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


def _ids(catalog):
    return {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in catalog if m.id}


@pytest.fixture(scope="module")
def template():
    with open(TRANSLATIONS / "messages.pot", "rb") as f:
        return read_po(f)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated(lang, template):
    catalog = _catalog(lang)
    missing = [
        m.id for m in catalog
        if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else [m.string]))
    ]
    assert missing == [], f"untranslated or fuzzy in {lang}: {missing[:10]}"
    assert _ids(template) <= _ids(catalog), "catalog lacks messages: run `fieldapp translations update`"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_survive_translation(lang):
    for m in _catalog(lang):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for s in strings:
            assert set(PLACEHOLDER.findall(s)) == expected, (m.id, s)


def test_template_is_current_with_code_and_form_definitions(tmp_path, template):
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "translations/babel.cfg",
         "-k", "lazy_gettext", "--no-location", "-o", str(fresh), "."],
        cwd=REPO, check=True, capture_output=True,
    )
    with open(fresh, "rb") as f:
        current = _ids(read_po(f))
    committed = _ids(template)
    assert current - committed == set(), "new messages: run `fieldapp translations update`"
    assert committed - current == set(), "stale messages: run `fieldapp translations update`"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalog_matches_the_po(lang):
    mo_path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo"
    def key(m):  # plural ids and strings come back as lists from .mo and tuples from .po
        as_tuple = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        return (as_tuple(m.id), m.context), as_tuple(m.string)

    with open(mo_path, "rb") as f:
        compiled = dict(key(m) for m in read_mo(f) if m.id)
    source = dict(key(m) for m in _catalog(lang) if m.id)
    assert compiled == source, "run `fieldapp translations compile`"


def test_definition_labels_are_in_the_template(template):
    """Labels of form definitions reach the catalog through the custom extractor."""
    ids = {i for i, _ in _ids(template)}
    for label in ("Consent given", "Given names", "Stateless", "Survivor of violence"):
        assert label in ids


def test_spanish_pages_are_in_spanish(client_as):
    officer = client_as("officer")
    page = officer.get("/es/intake/new").text
    assert 'lang="es"' in page
    for spanish in ("Nuevo registro", "Primer apellido", "Venezuela", "Apátrida"):
        assert spanish in page
    assert "Given names" not in page


def test_country_names_come_from_locale_data(client_as):
    officer = client_as("officer")
    assert "Alemania" in officer.get("/es/intake/new").text
    assert "Germany" in officer.get("/en/intake/new").text


def test_the_language_is_remembered(client_as):
    officer = client_as("officer")
    officer.get("/es/records")
    assert officer.get("/").location == "/es/"


def test_unknown_language_is_not_found(client_as):
    assert client_as("officer").get("/fr/records").status_code == 404


def test_root_follows_the_browser_language(client_as):
    anonymous = client_as()
    assert anonymous.get("/", headers={"Accept-Language": "es-CO,es;q=0.9"}).location == "/es/"
    assert anonymous.get("/", headers={"Accept-Language": "de"}).location == "/en/"


def test_cli_speaks_spanish(tmp_path):
    env = {"FIELDAPP_LANG": "es", "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "fieldapp"), "--instance", str(tmp_path / "i"), "users",
         "list"],
        env=env, capture_output=True, text=True,
    )
    assert done.returncode != 0
    assert "Ejecute" in done.stderr or "ejecute" in done.stderr


def test_switching_language_on_the_login_page_carries_through_login(client_as):
    client = client_as()
    login = client.get("/en/login?next=/en/records")
    assert 'href="/es/login?next=%2Fes%2Frecords"' in login.text
    page = client.get("/es/login?next=/en/records")
    response = client.http.post("/es/login?next=/en/records", data={
        "csrf_token": csrf_token(page.text), "username": "officer", "password": PASSWORD})
    assert response.location == "/es/records"


def test_switch_keeps_the_query(client_as):
    page = client_as("officer").get("/en/records?q=garc%C3%ADa").text
    assert 'href="/es/records?q=garc%C3%ADa"' in page
