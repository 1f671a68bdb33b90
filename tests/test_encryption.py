"""Encryption at rest (SQLCipher): a copied field database reveals no name, document number or
specific need; a wrong or missing passphrase is refused and changes nothing; the app works over an
encrypted database end to end, sync to a plain central included; the passphrase can be changed.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fieldapp import accounts, create_app
from fieldapp.domain.passphrases import check_passphrase
from fieldapp.storage import cipher, migrations, records
from fieldapp.storage import db as storage_db
from sync import client
from tests.conftest import PASSWORD, POST_A, Client, valid_intake
from tests.sync.harness import FIELDAPP, Central, child_env, free_port

PASSPHRASE = "correct horse battery staple"
OTHER = "another long passphrase"
# Unique strings that must never be readable in an encrypted file, in any case.
MARKERS = {"given_names": "Zyxmarkergiven", "first_surname": "Qwvmarkersurname",
           "doc_number": "ZQX9988776655", "specific_needs_other": "Jkvmarkerneedsdialysis"}


def raw_bytes(database: Path) -> dict[str, bytes]:
    """The bytes of the database and its -wal and -shm files (those that exist), lowercased."""
    return {p.name: p.read_bytes().lower() for p in database.parent.glob(database.name + "*")}


def leaked(database: Path) -> set[str]:
    return {f"{name}: {marker}" for name, data in raw_bytes(database).items()
            for marker in MARKERS.values() if marker.lower().encode() in data}


def digest(database: Path) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in raw_bytes(database).items()}


def make_app(tmp_path: Path, *, encrypted: bool):
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "fieldapp.db"
    if encrypted:
        cipher.create(database, PASSPHRASE)
    db = storage_db.connect(database)
    migrations.apply(db)
    accounts.create(db, username="officer", password=PASSWORD, role="officer", post=POST_A)
    db.close()
    return create_app({"SECRET_KEY": "test-secret", "DATABASE": str(database), "POST": POST_A,
                       "DEVICE_ID": "device-test", "TESTING": True}, instance=tmp_path)


def capture(app) -> str:
    officer = Client(app, "officer")
    data = valid_intake(specific_needs=["other"], **MARKERS)
    answer = officer.post_form("/en/intake/new", data)
    assert answer.status_code == 302, answer.text
    listed = officer.get("/en/records?q=" + MARKERS["given_names"][:8])
    assert listed.status_code == 200 and MARKERS["first_surname"] in listed.text
    found = officer.get("/en/records?q=" + MARKERS["doc_number"][:6])
    assert MARKERS["given_names"] in found.text
    return data["uuid"]


@pytest.mark.parametrize(("encrypted", "readable"), [(True, False), (False, True)])
def test_a_copied_database_reveals_no_marker_when_encrypted(tmp_path, encrypted, readable):
    app = make_app(tmp_path, encrypted=encrypted)
    capture(app)
    database = Path(app.config["DATABASE"])
    # The server's connections are still open: the WAL holds the capture.
    assert {"fieldapp.db", "fieldapp.db-wal", "fieldapp.db-shm"} <= set(raw_bytes(database))
    assert bool(leaked(database)) is readable, leaked(database)
    assert storage_db.is_encrypted(database) is encrypted


def test_the_app_works_over_an_encrypted_database_and_syncs_to_a_plain_central(tmp_path):
    app = make_app(tmp_path / "field", encrypted=True)
    uuid = capture(app)
    central = Central(tmp_path / "central").start()
    try:
        db = storage_db.connect(app.config["DATABASE"])
        settings = client.Settings(url=central.url)
        client.enrol(db, settings, central.register(POST_A), POST_A)
        done = client.run(db, client.Central(client.settings_for(db, {})), batch_size=500)
        assert done.counts["stored"] >= 1
        db.close()
        at_central = records.get(central.db(), uuid)
        assert at_central["answers"]["doc_number"] == MARKERS["doc_number"]
    finally:
        central.stop()
    assert not storage_db.is_encrypted(central.db_path)  # central stays plain: it is not a laptop
    assert not leaked(Path(app.config["DATABASE"]))


def test_an_encrypted_database_opens_only_with_its_key(tmp_path):
    database = tmp_path / "x.db"
    key = cipher.create(database, PASSPHRASE)
    storage_db.forget_key(database)
    with pytest.raises(storage_db.DatabaseLocked):
        storage_db.connect(database)
    with pytest.raises(cipher.CipherError) as refused:
        cipher.unlock(database, "not the passphrase")
    assert refused.value.code == "wrong_passphrase"
    assert not storage_db.is_unlocked(database)
    assert storage_db.connect(database, key=key).execute("SELECT 1").fetchone() == (1,)
    assert storage_db.connect(database, passphrase=PASSPHRASE).execute("SELECT 1").fetchone() == (1,)
    cipher.unlock(database, PASSPHRASE)
    assert storage_db.connect(database).execute("SELECT 1").fetchone() == (1,)


def test_the_backup_api_copies_an_encrypted_database_under_another_key(tmp_path):
    source = storage_db.connect(tmp_path / "a.db", passphrase=PASSPHRASE)
    migrations.apply(source)
    target = storage_db.connect(tmp_path / "b.db", passphrase=OTHER)
    source.conn.backup(target.conn)
    target.close()
    assert storage_db.is_encrypted(tmp_path / "b.db")
    copy = storage_db.connect(tmp_path / "b.db", passphrase=OTHER)
    assert "records" in copy.table_names()


def test_the_passphrase_never_lands_in_the_app_config(tmp_path, monkeypatch):
    monkeypatch.setenv("FIELDAPP_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("FIELDAPP_PASSPHRASE_FILE", str(tmp_path / "passphrase"))
    app = create_app({"SECRET_KEY": "test-secret"}, instance=tmp_path)
    assert PASSPHRASE not in repr(dict(app.config))
    assert "PASSPHRASE_FILE" not in app.config


@pytest.mark.parametrize(("passphrase", "code"), [
    ("four random words", None),
    ("x" * 12, None),
    ("x" * 11, "passphrase_too_short"),
    ("", "passphrase_too_short"),
    ("x" * 1025, "passphrase_too_long"),
    ("long enough\tbut tab", "passphrase_control"),
    ("ñandú y cóndor", None),
])
def test_passphrase_rules(passphrase, code):
    assert check_passphrase(passphrase) == code


# The command line, as an administrator uses it: real processes.

def fieldapp(instance: Path, *args: str, stdin: str = "", **env: str):
    return subprocess.run([str(FIELDAPP), "--instance", str(instance), *args], input=stdin,
                          text=True, capture_output=True, env={**child_env(), **env}, timeout=120)


def init_plain(instance: Path) -> Path:
    done = fieldapp(instance, "init", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    return instance / "fieldapp.db"


def add_marked_record(database: Path) -> None:
    """A record carrying the markers, written as the field server's pages do."""
    from fieldapp.forms import schema

    db = storage_db.connect(database)
    answers = {k: v for k, v in valid_intake(**MARKERS).items()
               if k not in ("uuid", "base_revision", "form_version")}
    answers["specific_needs"] = ["other"]
    sub = records.Submission("5f1c1a0e-0000-4000-8000-000000000001", schema.get("intake"), answers,
                             POST_A, "dev", "officer")
    assert records.save(db, sub).outcome == "stored"
    db.close()


def test_init_encrypt_then_every_command_needs_the_passphrase(tmp_path):
    instance = tmp_path / "instance"
    done = fieldapp(instance, "init", "--encrypt", "--passphrase-stdin", "--password-stdin",
                    stdin=f"{PASSPHRASE}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    database = instance / "fieldapp.db"
    assert storage_db.is_encrypted(database)
    before = digest(database)

    missing = fieldapp(instance, "users", "list")
    assert missing.returncode == 1 and "is encrypted: give its passphrase" in missing.stderr
    wrong = fieldapp(instance, "users", "list", FIELDAPP_PASSPHRASE="not the passphrase")
    assert wrong.returncode == 1 and "Wrong passphrase" in wrong.stderr
    serve = fieldapp(instance, "serve", "--port", str(free_port()),
                     FIELDAPP_PASSPHRASE="not the passphrase")
    assert serve.returncode == 1 and "Wrong passphrase" in serve.stderr
    assert digest(database) == before

    ok = fieldapp(instance, "users", "list", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert ok.returncode == 0 and "admin" in ok.stdout
    key_file = tmp_path / "passphrase.txt"
    key_file.write_text(PASSPHRASE + "\n", encoding="utf-8")
    by_file = fieldapp(instance, "users", "list", FIELDAPP_PASSPHRASE_FILE=str(key_file))
    assert by_file.returncode == 0 and "admin" in by_file.stdout
    status = fieldapp(instance, "encryption", "status")
    assert status.returncode == 0 and "is encrypted (SQLCipher 4." in status.stdout


def test_init_encrypt_refuses_a_short_passphrase_and_writes_nothing(tmp_path):
    instance = tmp_path / "instance"
    done = fieldapp(instance, "init", "--encrypt", "--passphrase-stdin", stdin="short\n")
    assert done.returncode == 1 and "at least 12 characters" in done.stderr
    assert not (instance / "fieldapp.toml").exists() and not (instance / "fieldapp.db").exists()


def test_enable_encrypts_a_plain_database_in_place(tmp_path):
    instance = tmp_path / "instance"
    database = init_plain(instance)
    add_marked_record(database)
    assert leaked(database)
    with socket.socket() as taken:  # serve warns, then stops at once: its port is in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        warned = fieldapp(instance, "serve", "--port", str(taken.getsockname()[1]))
    assert warned.returncode != 0 and "the database is not encrypted" in warned.stderr

    done = fieldapp(instance, "encryption", "enable", "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    assert done.returncode == 0, done.stderr
    # no plain copy left beside it (the audit log's anchor holds a row number and a hash only)
    beside = sorted(p.name for p in instance.glob("fieldapp.db*"))
    assert beside == ["fieldapp.db", "fieldapp.db.audit-anchor"]
    assert storage_db.is_encrypted(database) and not leaked(database)
    listed = fieldapp(instance, "users", "list", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert listed.returncode == 0 and "admin" in listed.stdout
    cipher.unlock(database, PASSPHRASE)
    db = storage_db.connect(database)
    assert records.get(db, "5f1c1a0e-0000-4000-8000-000000000001")["answers"]["doc_number"] == \
        MARKERS["doc_number"]
    assert migrations.migrations.pending(db) == []
    db.close()
    again = fieldapp(instance, "encryption", "enable", "--passphrase-stdin", stdin=OTHER + "\n")
    assert again.returncode == 1 and "already encrypted" in again.stderr


def test_enable_is_refused_while_another_program_has_the_database_open(tmp_path):
    instance = tmp_path / "instance"
    database = init_plain(instance)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
         "c.execute('SELECT count(*) FROM users').fetchall(); print('open', flush=True);"
         "sys.stdin.read()", str(database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        before = digest(database)
        done = fieldapp(instance, "encryption", "enable", "--passphrase-stdin",
                        stdin=PASSPHRASE + "\n")
        assert done.returncode == 1 and "in use by another program" in done.stderr
        assert digest(database) == before and not storage_db.is_encrypted(database)
        assert not (instance / "fieldapp.db.encrypting").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_change_passphrase(tmp_path):
    instance = tmp_path / "instance"
    done = fieldapp(instance, "init", "--encrypt", "--passphrase-stdin", "--password-stdin",
                    stdin=f"{PASSPHRASE}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    database = instance / "fieldapp.db"
    add = fieldapp(instance, "users", "add", "ana", "--role", "officer", "--password-stdin",
                   stdin=PASSWORD + "\n", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert add.returncode == 0, add.stderr

    before = digest(database)
    wrong = fieldapp(instance, "encryption", "change-passphrase", "--passphrase-stdin",
                     stdin=f"not the passphrase\n{OTHER}\n")
    assert wrong.returncode == 1 and "Wrong passphrase" in wrong.stderr
    too_short = fieldapp(instance, "encryption", "change-passphrase", "--passphrase-stdin",
                         stdin=f"{PASSPHRASE}\nshort\n")
    assert too_short.returncode == 1 and "at least 12 characters" in too_short.stderr
    assert digest(database) == before

    done = fieldapp(instance, "encryption", "change-passphrase", "--passphrase-stdin",
                    stdin=f"{PASSPHRASE}\n{OTHER}\n")
    assert done.returncode == 0, done.stderr
    old = fieldapp(instance, "users", "list", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert old.returncode == 1 and "Wrong passphrase" in old.stderr
    new = fieldapp(instance, "users", "list", FIELDAPP_PASSPHRASE=OTHER)
    assert new.returncode == 0 and "ana" in new.stdout


def test_the_checkpoint_thread_opens_an_encrypted_database(tmp_path, monkeypatch, caplog):
    """A served write leaves the WAL to a thread of its own: it must get the key too."""
    monkeypatch.setattr(storage_db._Checkpointer, "IDLE_SECONDS", 0.1)
    caplog.set_level(logging.WARNING, logger=storage_db.log.name)
    database = tmp_path / "x.db"
    cipher.create(database, PASSPHRASE)
    db = storage_db.connect(database, serving=True)
    migrations.apply(db)
    with storage_db.write(db):
        db.execute("INSERT INTO users (username, password_hash, role, created_at, updated_at)"
                   " VALUES ('ana', 'x', 'officer', '', '')")
    wal = Path(f"{database}-wal")
    size = wal.stat().st_size
    storage_db.checkpoint_soon(db)
    checkpointer = storage_db._checkpointers[db._fieldapp_path]
    while checkpointer.running:  # it ends by itself after its idle time
        checkpointer.wake.wait(0.1)
    # A PASSIVE checkpoint copies the WAL's pages into the database and the next writer restarts
    # the WAL from its beginning: the file does not grow.
    with storage_db.write(db):
        db.execute("UPDATE users SET full_name = 'Ana' WHERE username = 'ana'")
    assert wal.stat().st_size <= size
    assert not caplog.records


def test_backup_restore_doctor_and_audit_on_an_encrypted_database(tmp_path):
    """The operations of issue 8 over an encrypted field database: the backup holds the database
    still encrypted with its key (inside the backup's own encryption), a restore needs the server's
    passphrase, doctor reads the database, and the audit chain verifies after the restore."""
    instance, usb = tmp_path / "instance", tmp_path / "usb"
    usb.mkdir()
    done = fieldapp(instance, "init", "--encrypt", "--passphrase-stdin", "--password-stdin",
                    stdin=f"{PASSPHRASE}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    database = instance / "fieldapp.db"
    add_marked_record_encrypted(database)
    backup_passphrase = "the backup's own passphrase"
    made = fieldapp(instance, "backup", "--to", str(usb), "--passphrase-stdin",
                    stdin=backup_passphrase + "\n", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert made.returncode == 0, made.stderr
    [backup] = usb.iterdir()
    restored = fieldapp(instance, "restore", str(backup), "--passphrase-stdin",
                        stdin=backup_passphrase + "\n", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert storage_db.is_encrypted(database)
    raw = b"".join(p.read_bytes() for p in instance.glob("fieldapp.db*") if p.is_file())
    assert not any(m.encode() in raw for m in MARKERS.values())
    verified = fieldapp(instance, "audit", "verify", FIELDAPP_PASSPHRASE=PASSPHRASE)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    doctor = fieldapp(instance, "doctor", FIELDAPP_PASSPHRASE=PASSPHRASE,
                      FIELDAPP_DOCTOR_FREE_BYTES="10000000000")
    assert "damaged" not in doctor.stdout and "not a database" not in doctor.stdout, doctor.stdout

    other = tmp_path / "other"  # a server with another passphrase cannot take this backup
    assert fieldapp(other, "init", "--encrypt", "--passphrase-stdin", "--password-stdin",
                    stdin=f"{OTHER}\n{PASSWORD}\n").returncode == 0
    refused = fieldapp(other, "restore", str(backup), "--passphrase-stdin",
                       stdin=backup_passphrase + "\n", FIELDAPP_PASSPHRASE=OTHER)
    assert refused.returncode == 1 and "encrypted database" in refused.stderr, refused.stderr


def add_marked_record_encrypted(database: Path) -> None:
    storage_db.remember_key(database, cipher.unlock(database, PASSPHRASE))
    try:
        add_marked_record(database)
    finally:
        storage_db.forget_key(database)
