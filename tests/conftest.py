"""Fixtures: an app over a fresh SQLite file per test, an account per role, logged-in clients."""

from __future__ import annotations

import re
import shutil
import uuid as uuidlib
from datetime import date, timedelta
from pathlib import Path

import pytest

from fieldapp import accounts, create_app
from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations

PASSWORD = "correct-horse-battery"
POST_A, POST_B = "POST-A", "POST-B"
# username -> (role, post)
ACCOUNTS = {
    "officer": ("officer", POST_A),
    "supervisor": ("supervisor", POST_A),
    "central": ("central", None),
    "admin": ("admin", POST_A),
    "officer_b": ("officer", POST_B),
}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def database_bytes(path: str | Path) -> bytes:
    """A database file and its -wal and -shm files (those that exist), as the disk holds them."""
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory) -> Path:
    """A migrated database with one account per role, built once: password hashing is slow."""
    path = tmp_path_factory.mktemp("seed") / "fieldapp.db"
    db = storage_db.connect(path)
    migrations.apply(db)
    for username, (role, post) in ACCOUNTS.items():
        accounts.create(db, username=username, password=PASSWORD, role=role, post=post)
    db.close()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def app(tmp_path, seeded_db):
    shutil.copyfile(seeded_db, tmp_path / "fieldapp.db")
    app = create_app(
        {
            "SECRET_KEY": "test-secret",
            "DATABASE": str(tmp_path / "fieldapp.db"),
            "POST": POST_A,
            "DEVICE_ID": "device-test",
            "TESTING": True,
        },
        instance=tmp_path,
    )
    return app


@pytest.fixture
def db(app):
    conn = storage_db.connect(app.config["DATABASE"])
    yield conn
    conn.close()


class Client:
    """A test client that logs in and fills CSRF tokens like a browser would."""

    def __init__(self, app, username: str | None):
        self.app = app
        self.http = app.test_client()
        self.username = username
        if username:
            self.login(username)

    def login(self, username: str, password: str = PASSWORD, lang: str = "en"):
        page = self.http.get(f"/{lang}/login")
        return self.http.post(f"/{lang}/login", data={
            "csrf_token": self._token(page.text), "username": username, "password": password,
        })

    def _token(self, html: str) -> str:
        return csrf_token(html) if self.app.config.get("WTF_CSRF_ENABLED", True) else ""

    def get(self, url, **kw):
        return self.http.get(url, **kw)

    def post_form(self, page_url: str, data: dict, url: str | None = None):
        """GET the page for its CSRF token, then POST `data` to `url` (default: the page)."""
        page = self.http.get(page_url)
        return self.http.post(url or page_url, data={"csrf_token": self._token(page.text), **data})


@pytest.fixture
def client_as(app):
    return lambda username=None: Client(app, username)


def valid_intake(**overrides) -> dict:
    """A complete, valid intake as a browser posts it (consent given)."""
    interview = date.today() - timedelta(days=1)
    data = {
        "uuid": str(uuidlib.uuid4()), "base_revision": "0", "form_version": "1",
        "consent": "given", "purpose": "assistance", "interview_date": interview.isoformat(),
        "given_names": "María José", "first_surname": "García", "second_surname": "Núñez",
        "sex": "female", "birth_date_known": "yes", "birth_date": "1990-05-04",
        "nationality": "VE", "residence_country": "VE", "doc_type": "passport",
        "doc_number": "AB123456", "doc_country": "VE", "migratory_status": "in_transit",
        "arrival_date": interview.isoformat(), "migration_reasons": ["economic", "family"],
        "travelling": "family", "accompanying_adults": "1", "accompanying_minors": "2",
        "unaccompanied_minor": "no", "education_level": "upper_secondary", "occupation": "isco_7",
        "experience_years": "5", "languages": ["es"], "employment_status": "unemployed",
        "training_interest": ["vocational"], "specific_needs": ["none"],
        "phone": "+57 300 123 4567", "messaging_app": "whatsapp", "preferred_language": "es",
        "notes": "Llegó con su familia.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def valid_course(**overrides) -> dict:
    data = {"uuid": str(uuidlib.uuid4()), "base_revision": "0", "form_version": "1",
            "title": "Soldadura básica", "area": "vocational", "partner": "SENA",
            "start_date": "2026-11-02", "end_date": "2026-11-27", "min_attendance": "80",
            "capacity": "25"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def valid_session(**overrides) -> dict:
    data = {"uuid": str(uuidlib.uuid4()), "base_revision": "0", "form_version": "1",
            "date": "2026-11-03", "start_time": "09:00", "end_time": "12:00", "place": "Aula 2",
            "facilitator": "Rosa Quispe", "status": "scheduled"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_course(http, **overrides) -> str:
    """Create a course through the web as the logged-in client (CSRF may be off); its uuid."""
    data = valid_course(**overrides)
    page = http.get("/en/courses/new")
    token = csrf_token(page.text) if "csrf_token" in page.text else ""
    response = http.post("/en/courses/new", data={"csrf_token": token, **data})
    assert response.status_code == 302, response.text[:2000]
    return data["uuid"]


def make_session(http, course: str, **overrides) -> str:
    data = valid_session(**overrides)
    page = http.get(f"/en/courses/{course}/sessions/new")
    token = csrf_token(page.text) if "csrf_token" in page.text else ""
    response = http.post(f"/en/courses/{course}/sessions/new", data={"csrf_token": token, **data})
    assert response.status_code == 302, response.text[:2000]
    return data["uuid"]
