"""Every request body is bounded, and uploads are checked for size and shape before they are parsed:
what is too large gets a clear, translated 413 (or 400 for a file that is not what it claims to
be), and nothing is stored."""

from __future__ import annotations

import gzip
import io
import os

import pytest

from tests.conftest import csrf_token, valid_intake


@pytest.fixture
def central_app(app):
    app.config["MODE"] = "central"
    return app


def _count(db, table="records") -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _upload(client, page_url: str, url: str, field: str, data: bytes):
    page = client.get(page_url)
    return client.http.post(url, data={"csrf_token": csrf_token(page.text),
                                       field: (io.BytesIO(data), "file.fieldapp-bundle")},
                            content_type="multipart/form-data")


@pytest.mark.parametrize("lang,words", [("en", "not a fieldapp sync file"),
                                        ("es", "no es un archivo de sincronización")])
def test_a_bundle_larger_than_a_page_body_reaches_the_bundle_check(central_app, client_as, db, lang,
                                                                    words):
    """Bundles have their own limit (SYNC_MAX_BUNDLE), also at the CSRF check that reads the form
    first: a 3 MB file that is no bundle is refused as such, not as too large."""
    before = _count(db)
    response = _upload(client_as("central"), f"/{lang}/central/", f"/{lang}/central/bundles", "bundle",
                       os.urandom(3 * 1024 * 1024))
    assert response.status_code == 400 and words in response.text
    assert _count(db) == before


def test_a_bundle_over_its_own_limit_is_refused_as_too_large(central_app, client_as, db):
    central_app.config["SYNC_MAX_BUNDLE"] = 64 * 1024
    response = _upload(client_as("central"), "/en/central/", "/en/central/bundles", "bundle",
                       os.urandom(100 * 1024))
    assert response.status_code == 413 and "too large" in response.text


def test_a_gzip_bomb_bundle_is_refused_without_inflating_it_whole(central_app, client_as, db, monkeypatch):
    from sync import bundle

    monkeypatch.setattr(bundle, "MAX_UNPACKED", 1024 * 1024)
    bomb = gzip.compress(b"fieldapp-bundle 1 x\n" + b" " * (8 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    before = _count(db)
    response = _upload(client_as("central"), "/en/central/", "/en/central/bundles", "bundle", bomb)
    assert response.status_code == 400 and "not a fieldapp sync file" in response.text
    assert _count(db) == before


def test_a_receipt_larger_than_a_page_body_reaches_the_receipt_check(client_as, db):
    from fieldapp.storage import sync as store

    store.set_state(db, token="a-device-token", device="device-test")
    response = _upload(client_as("supervisor"), "/en/sync/", "/en/sync/receipt", "receipt",
                       os.urandom(3 * 1024 * 1024))
    assert response.status_code == 400 and "not a fieldapp sync file" in response.text


@pytest.mark.parametrize("lang,words", [("en", "too large"), ("es", "demasiado grande")])
def test_a_page_body_over_max_content_length_is_a_translated_413(client_as, db, lang, words):
    before = _count(db)
    officer = client_as("officer")
    page = officer.get(f"/{lang}/intake/new")
    data = valid_intake(notes="x" * 400_000, occupation="y" * 400_000, other="z" * 400_000)
    response = officer.http.post(f"/{lang}/intake/new", data={"csrf_token": csrf_token(page.text), **data})
    assert response.status_code == 413 and words in response.text.lower()
    assert _count(db) == before


def test_too_many_form_parts_is_refused(client_as, db):
    officer = client_as("officer")
    page = officer.get("/en/intake/new")
    data = {"csrf_token": csrf_token(page.text), **valid_intake()}
    data.update({f"f{i}": "x" for i in range(2000)})
    response = officer.http.post("/en/intake/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 413 and _count(db) == 0
