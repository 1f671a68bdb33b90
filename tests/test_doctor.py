"""`fieldapp doctor` and the diagnostics page: each problem set up for real, found, and explained."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from fieldapp import diagnostics, tls
from fieldapp.cli import main
from fieldapp.domain.diagnostics import MB, Finding, Readings, Thresholds, check
from fieldapp.storage import sync as store
from tests.conftest import csrf_token, valid_intake

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HEALTHY = dict(now=NOW, db_bytes=10 * MB, free_bytes=50_000 * MB, backup_at=NOW - timedelta(days=1),
               enrolled=True, last_sync=NOW - timedelta(hours=3), clock_offset=2.5,
               cert_expires=NOW + timedelta(days=300), ca_expires=NOW + timedelta(days=3000))


@pytest.mark.parametrize(("changes", "codes"), [
    ({}, []),
    ({"db_exists": False}, ["no_database"]),
    ({"integrity": ("row 3 missing from index records_form",)}, ["integrity"]),
    ({"free_bytes": 900 * MB}, ["low_disk"]),
    ({"free_bytes": 1500 * MB, "db_bytes": 800 * MB}, ["low_disk"]),  # no room for a backup
    ({"backup_at": None}, ["no_backup"]),
    ({"backup_at": NOW - timedelta(days=8)}, ["stale_backup"]),
    ({"backup_at": None, "backup_unreadable": True}, ["unreadable_backup"]),
    ({"enrolled": False, "last_sync": None}, ["not_enrolled"]),
    ({"integrity": ("file is not a database",), "enrolled": None, "last_sync": None},
     ["integrity"]),  # sync unknown, not "never"
    ({"last_sync": None}, ["no_sync"]),
    ({"last_sync": NOW - timedelta(days=7, minutes=1)}, ["stale_sync"]),
    ({"pending": 1001}, ["pending"]),
    ({"refused": 2}, ["refused"]),
    ({"clock_offset": -301}, ["clock"]),
    ({"cert_expires": NOW + timedelta(days=20)}, ["cert_expiring"]),
    ({"cert_expires": NOW - timedelta(seconds=1)}, ["cert_expired"]),
    ({"ca_expires": NOW + timedelta(days=5)}, ["ca_expiring"]),
    ({"ca_expires": NOW}, ["ca_expired"]),
    # Central has no central to sync with.
    ({"mode": "central", "enrolled": False, "last_sync": None, "clock_offset": 900}, []),
])
def test_each_reading_past_its_threshold_is_a_problem(changes, codes):
    assert [f.code for f in check(Readings(**{**HEALTHY, **changes}), Thresholds())] == codes


def test_thresholds_come_from_the_configuration():
    t = Thresholds.from_config({"DOCTOR_BACKUP_DAYS": "2", "DOCTOR_MIN_FREE_MB": 10})
    assert (t.backup_days, t.min_free_mb, t.sync_days) == (2, 10, Thresholds().sync_days)
    stale = Readings(**{**HEALTHY, "backup_at": NOW - timedelta(days=3), "free_bytes": 500 * MB})
    assert check(stale, t) == [Finding("stale_backup", {"days": 3, "limit": 2})]


def test_every_problem_has_a_message_and_advice():
    from fieldapp.domain.diagnostics import CODES

    assert set(CODES) == set(diagnostics.MESSAGES)
    params = {"detail": "x", "free_mb": 1, "needed_mb": 2, "days": 3, "limit": 4, "n": 5, "minutes": 6,
              "date": "2027-01-01"}
    for code in CODES:
        what, todo = diagnostics.message(Finding(code, params), lambda m, **p: m % p if p else m)
        assert what and todo and "%(" not in what


# ------------------------------------------------------------------ a real instance, set up per case


@pytest.fixture
def instance(app, db):
    """A healthy field instance: config file, certificates, a fresh backup note, a recent sync."""
    path = app.instance_path
    with open(f"{path}/fieldapp.toml", "w", encoding="utf-8") as f:
        f.write('MODE = "field"\nPOST = "POST-A"\nSECRET_KEY = "the-secret-key-value"\n'
                'DOCTOR_FREE_BYTES = 53687091200\n')
    tls.ensure(path)
    write_backup_note(app, datetime.now(UTC) - timedelta(hours=2))
    store.set_state(db, token="the-device-token-value", central_url="https://central.example.org",
                    device="dev-1", last_sync=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                    clock_offset=1.5)
    return app


def write_backup_note(app, at: datetime) -> None:
    note = {"at": at.isoformat(), "path": "/media/usb/fieldapp-backup.db", "bytes": 1234, "records": 3}
    with open(f"{app.instance_path}/last-backup.json", "w", encoding="utf-8") as f:
        json.dump(note, f)


def doctor(app, *args: str, **env):
    env = {"FIELDAPP_LANG": "en", **{f"FIELDAPP_{k}": str(v) for k, v in env.items()}}
    return CliRunner().invoke(main, ["--instance", app.instance_path, "doctor", *args], env=env)


def test_a_healthy_instance_passes(instance):
    done = doctor(instance)
    assert done.exit_code == 0, done.output
    assert "No problems found." in done.output
    assert "integrity_check" in done.output and "https://central.example.org" in done.output


def _corrupt(app, db):
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'users'").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(app.config["DATABASE"], "r+b") as f:
        f.seek((root - 1) * 4096)
        f.write(b"\xff" * 64)


@pytest.mark.parametrize(("setup", "env", "expected"), [
    (None, {"DOCTOR_FREE_BYTES": 200 * MB}, "Free disk space is low: 200 MB left, 1024 MB wanted."),
    (lambda app, db: write_backup_note(app, datetime.now(UTC) - timedelta(days=10)), {},
     "Days since the last backup: 10 (the limit is 7)."),
    (lambda app, db: write_backup_note(app, datetime.now(UTC) - timedelta(days=3)),
     {"DOCTOR_BACKUP_DAYS": 2}, "Days since the last backup: 3 (the limit is 2)."),
    (lambda app, db: open(f"{app.instance_path}/last-backup.json", "w").close(), {},
     "The note of the last backup (last-backup.json) cannot be read."),
    (lambda app, db: store.set_state(db, clock_offset=-1260), {},
     "At the last sync this computer's clock was 21 minutes off central's."),
    (lambda app, db: store.set_state(
        db, last_sync=(datetime.now(UTC) - timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")), {},
     "Days since the last successful sync: 9 (the limit is 7)."),
    (lambda app, db: store.set_state(db, token=None), {},
     "This field server is not enrolled at a central server."),
    (_corrupt, {}, "The database is damaged: database disk image is malformed"),
])
def test_each_problem_is_reported_with_what_to_do(instance, db, setup, env, expected):
    if setup:
        setup(instance, db)
    done = doctor(instance, **env)
    assert done.exit_code == 1, done.output
    assert "Problems found: 1" in done.output, done.output
    assert expected in done.output
    assert "What to do: " in done.output


def test_an_expiring_certificate_made_with_cryptography(instance):
    import shutil

    shutil.rmtree(f"{instance.instance_path}/tls")
    tls.ensure(instance.instance_path, now=datetime.now(UTC) - timedelta(days=tls.LEAF_DAYS - 10))
    expires = tls.files(instance.instance_path).expires
    done = doctor(instance)
    assert done.exit_code == 1
    assert f"The HTTPS certificate of this server expires on {expires.date().isoformat()}." in done.output
    assert "it renews the certificate" in done.output


def test_many_pending_changes(instance, client_as):
    instance.config["WTF_CSRF_ENABLED"] = False
    for _ in range(3):
        assert client_as("officer").http.post("/en/intake/new", data=valid_intake()).status_code == 302
    assert doctor(instance).exit_code == 0
    done = doctor(instance, DOCTOR_PENDING_MAX=2)
    assert done.exit_code == 1 and "Changes waiting to be sent to central: 3 (the limit is 2)." in done.output


# ------------------------------------------------------------------ the page


def test_the_page_shows_readings_and_problems_in_both_languages(instance, db, client_as):
    store.set_state(db, clock_offset=900)
    for who in ("supervisor", "admin"):
        page = client_as(who).get("/en/diagnostics/")
        assert page.status_code == 200
        assert 'data-problem="clock"' in page.text and "15 minutes off" in page.text
        assert "quick_check" in page.text and "https://central.example.org" in page.text
    spanish = client_as("supervisor").get("/es/diagnostics/")
    assert spanish.status_code == 200 and 'lang="es"' in spanish.text
    assert "Última sincronización correcta" in spanish.text
    assert client_as("officer").get("/en/diagnostics/").status_code == 403


def test_the_page_says_when_all_is_well(instance, client_as):
    page = client_as("admin").get("/en/diagnostics/")
    assert "No problems found." in page.text and "data-problem" not in page.text


def test_the_support_file_downloads_from_the_page(instance, client_as):
    client = client_as("supervisor")
    page = client.get("/en/diagnostics/")
    response = client.http.post("/en/diagnostics/bundle", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert {"diagnostics.json", "config.json", "versions.json"} <= set(names)
    assert client.http.post("/en/diagnostics/bundle", data={}).status_code == 400  # no CSRF token
