"""Backups and restore: consistent while another process writes, a full round trip onto a fresh
instance, every damaged or foreign file refused with nothing changed, no restore under a server."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldapp import backups
from fieldapp.backups import file as backup_file
from fieldapp.backups import jobs
from fieldapp.storage import copy, migrations
from fieldapp.storage import db as storage_db
from fieldapp.storage import sync as sync_store
from tests.sync.harness import FIELDAPP, Field, child_env, free_port, run_cli

PASSPHRASE = "a long enough passphrase"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def post_db(tmp_path_factory) -> Path:
    """A field database with intakes, edits, a deletion, accounts and sync state."""
    field = Field.create(tmp_path_factory.mktemp("post"), "POST-A")
    rng = random.Random(8)
    made = [field.intake(rng) for _ in range(60)]
    field.edit(made[0], given_names="Otra")
    field.delete(made[1])
    from fieldapp import accounts

    accounts.create(field.db, username="ana", password="correct-horse-battery", role="officer",
                    post="POST-A")
    sync_store.set_state(field.db, central_url="https://central.example", push_checkpoint="42")
    field.db.close()
    return field.path


def _tables(path: Path) -> dict[str, list]:
    """Every row of the tables a restore must bring back, in a stable order."""
    db = storage_db.connect(path)
    try:
        return {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
                for t in ("records", "revisions", "changes", "users", "sync_state",
                          "_sqlite_migrations")}
    finally:
        db.conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make(db_path: Path, tmp: Path, **kw) -> backups.Made:
    folder = tmp / "usb"
    folder.mkdir(exist_ok=True)
    return backups.make(db_path, tmp / "instance", folder, post="POST-A",
                        **({"passphrase": PASSPHRASE} | kw))


def test_round_trip_through_the_command_line(tmp_path, post_db):
    old = tmp_path / "old"
    run_cli(old, "init", "--post", "POST-A", "--password-stdin", stdin="correct-horse-battery\n")
    (old / "fieldapp.db").unlink()
    storage_db.connect(post_db).conn.close()
    import shutil

    shutil.copyfile(post_db, old / "fieldapp.db")
    (tmp_path / "usb").mkdir()
    done = run_cli(old, "backup", "--to", str(tmp_path / "usb"), "--passphrase-stdin",
                   stdin=PASSPHRASE + "\n")
    assert "Backup written" in done.stdout
    [file] = (tmp_path / "usb").iterdir()
    last = json.loads((old / "last-backup.json").read_text())
    assert last["path"] == str(file) and last["bytes"] == file.stat().st_size
    assert last["records"] == len(_tables(post_db)["records"]) == 60

    new = tmp_path / "new"  # a fresh laptop: init, then restore
    run_cli(new, "init", "--post", "POST-A", "--password-stdin", stdin="another-password-1\n")
    done = run_cli(new, "restore", str(file), "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    assert "Restored 60 records" in done.stdout
    assert _tables(new / "fieldapp.db") == _tables(post_db)
    assert copy.integrity(new / "fieldapp.db") == []
    [previous] = new.glob("fieldapp.db.before-restore-*")
    assert [u[1] for u in _tables(previous)["users"]] == ["admin"]  # the fresh one, kept
    assert not list(new.glob("fieldapp.db-wal"))


def test_the_header_is_readable_without_the_passphrase(tmp_path, post_db):
    made = _make(post_db, tmp_path)
    header = backups.inspect(made.path)
    assert header["post"] == "POST-A" and header["records"] == 60 and header["format"] == 1
    assert header["schema"] == migrations.schema_version(storage_db.connect(post_db))
    assert "given_names" not in made.path.read_bytes().decode("latin-1")


def _cut(path: Path, at: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:at])


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _header_end(path: Path) -> int:
    raw = path.read_bytes()
    return len(backup_file.MAGIC) + 4 + int.from_bytes(raw[16:20], "big")


def _rewrite_header(path: Path, **changes) -> None:
    raw = path.read_bytes()
    end = _header_end(path)
    header = json.loads(raw[20:end]) | changes
    head = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(backup_file.MAGIC + len(head).to_bytes(4, "big") + head + raw[end:])


BIG = 3 * backup_file.CHUNK  # a backup of several chunks, so cuts and flips land in the middle


@pytest.mark.parametrize(("damage", "code"), [
    (lambda p: None, "wrong_passphrase"),
    (lambda p: _cut(p, 10), "not_a_backup"),
    (lambda p: _cut(p, 200), "incomplete"),  # inside the header
    (lambda p: _cut(p, _header_end(p) + 5), "incomplete"),
    (lambda p: _cut(p, _header_end(p) + backup_file.CHUNK + backup_file.TAG), "incomplete"),
    (lambda p: _cut(p, p.stat().st_size - 1), "incomplete"),
    (lambda p: p.write_bytes(p.read_bytes() + b"x"), "damaged"),
    (lambda p: _flip(p, 3), "not_a_backup"),
    (lambda p: _flip(p, _header_end(p) + 7), "damaged"),  # first chunk
    (lambda p: _flip(p, _header_end(p) + backup_file.CHUNK + 100), "damaged"),  # second
    (lambda p: _flip(p, p.stat().st_size - 3), "damaged"),  # the last chunk's tag
    (lambda p: _rewrite_header(p, post="POST-Z"), "damaged"),  # header is associated data
    (lambda p: _rewrite_header(p, format=2), "newer_format"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + bytes(100)), "not_a_backup"),
], ids=["wrong-passphrase", "cut-in-magic", "cut-in-header", "cut-in-first-chunk",
        "cut-at-chunk-boundary", "cut-last-byte", "extra-byte", "flip-magic", "flip-chunk-1",
        "flip-chunk-2", "flip-tag", "header-changed", "newer-format", "plain-sqlite"])
def test_bad_files_are_refused_and_change_nothing(tmp_path, post_db, damage, code):
    big = tmp_path / "big.db"
    import shutil

    shutil.copyfile(post_db, big)
    db = storage_db.connect(big)
    with storage_db.write(db):
        db.execute("CREATE TABLE padding (x BLOB)")
        db.execute("INSERT INTO padding VALUES (randomblob(?))", [BIG])
    db.conn.close()
    made = _make(big, tmp_path)
    damage(made.path)
    target = tmp_path / "instance" / "fieldapp.db"
    shutil.copyfile(post_db, target)
    before = _digest(target)
    passphrase = "not the passphrase" if code == "wrong_passphrase" else PASSPHRASE
    with pytest.raises(backups.BackupError) as refused:
        backups.restore(target, tmp_path / "instance", made.path, passphrase)
    assert refused.value.code == code
    assert refused.value.message() == backups.message(code) and refused.value.message()
    assert _digest(target) == before
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith("run")) == \
        ["fieldapp.db", "last-backup.json"]


def test_a_newer_schema_is_refused(tmp_path, post_db):
    import shutil

    newer = tmp_path / "newer.db"
    shutil.copyfile(post_db, newer)
    db = storage_db.connect(newer)
    with storage_db.write(db):
        db.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                   "VALUES ('fieldapp', '0999_from_the_future', '2030-01-01')")
    db.conn.close()
    made = _make(newer, tmp_path)
    target = tmp_path / "instance" / "fieldapp.db"
    shutil.copyfile(post_db, target)
    before = _digest(target)
    with pytest.raises(backups.BackupError) as refused:
        backups.restore(target, tmp_path / "instance", made.path, PASSPHRASE)
    assert refused.value.code == "newer_schema"
    assert _digest(target) == before and not list(target.parent.glob("*before-restore*"))


WRITER = """
import sys
from pathlib import Path
from tests.sync.harness import Field
field = Field.create(Path(sys.argv[1]), "POST-A")
print("ready", flush=True)
while True:
    print(field.intake(), flush=True)  # printed once committed
"""


def test_backups_while_another_process_writes(tmp_path):
    field = Field.create(tmp_path / "post", "POST-A")
    for _ in range(3000):
        field.intake()
    while field.db.execute("PRAGMA page_count").fetchone()[0] < 3 * copy.STEP_PAGES:
        for _ in range(200):  # several copy steps' worth of pages
            field.intake()
    field.db.close()
    log = open(tmp_path / "writer.log", "w")  # noqa: SIM115
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "post")], cwd=REPO,
                              stdout=log, env=child_env())
    try:
        while "ready" not in (tmp_path / "writer.log").read_text():
            assert writer.poll() is None
            time.sleep(0.05)
        for round_ in range(3):
            committed = set((tmp_path / "writer.log").read_text().split()[1:-1])
            phases = []
            made = backups.make(field.path, tmp_path / "instance", _folder(tmp_path), post="POST-A",
                                passphrase=PASSPHRASE, progress=lambda p, seen=phases: seen.append(p.phase))
            after = set((tmp_path / "writer.log").read_text().split()[1:-1])
            assert phases.count("copy") > 2, "the copy ran in one step: the test proves nothing"
            restored = tmp_path / f"restored-{round_}.db"
            with open(restored, "wb") as out:
                backup_file.decrypt(made.path, PASSPHRASE, out)
            assert copy.integrity(restored) == []
            uuids = {r[0] for r in storage_db.connect(restored).execute("SELECT uuid FROM records")}
            assert committed - uuids == set()
            assert made.records == len(uuids)
        assert len(after) > len(committed), "the writer wrote nothing meanwhile"
    finally:
        writer.kill()
        writer.wait()
        log.close()


def _folder(tmp: Path) -> Path:
    folder = tmp / "usb"
    folder.mkdir(exist_ok=True)
    return folder


def test_no_restore_while_a_server_runs(tmp_path, post_db):
    instance = tmp_path / "i"
    run_cli(instance, "init", "--post", "POST-A", "--password-stdin", stdin="correct-horse-battery\n")
    made = _make(post_db, tmp_path)
    port = free_port()
    server = subprocess.Popen([str(FIELDAPP), "--instance", str(instance), "serve", "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=child_env(), text=True)
    try:
        started = []  # notices (the purge and backup schedules), then "ready"
        while not any("ready" in line for line in started) and len(started) < 10:
            started.append(server.stdout.readline())
        assert "ready" in started[-1], started
        before = _digest(instance / "fieldapp.db")
        done = run_cli(instance, "restore", str(made.path), "--passphrase-stdin",
                       stdin=PASSPHRASE + "\n", check=False)
        assert done.returncode == 1
        assert f"fieldapp is running on this instance (process {server.pid})" in done.stderr
        assert _digest(instance / "fieldapp.db") == before
    finally:
        server.terminate()
        server.wait(timeout=15)
    done = run_cli(instance, "restore", str(made.path), "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    assert "Restored 60 records" in done.stdout


def test_a_server_does_not_start_during_a_restore(tmp_path):
    from fieldapp.backups import lock

    with lock.restoring(tmp_path), pytest.raises(lock.Busy):
        lock.hold_serving(tmp_path)
    lock.hold_serving(tmp_path).close()  # afterwards it may


def test_scheduled_backups_need_no_passphrase_and_keep_the_last_n(tmp_path, post_db):
    import shutil

    from fieldapp import create_app

    shutil.copyfile(post_db, tmp_path / "fieldapp.db")
    app = create_app({"SECRET_KEY": "x", "POST": "POST-A", "BACKUP_DIR": str(_folder(tmp_path)),
                      "BACKUP_EVERY_HOURS": 24, "BACKUP_KEEP": 2}, instance=tmp_path)
    assert jobs.due(app) and jobs.scheduled(app) is None  # no key pair yet: nothing written
    assert not list((tmp_path / "usb").iterdir())
    backups._write_json(tmp_path / backups.KEY_FILE, backup_file.new_key_pair(PASSPHRASE))
    key_file = (tmp_path / backups.KEY_FILE).read_text()
    assert "sealed" in key_file
    made = []
    for _ in range(3):
        made.append(jobs.scheduled(app))
        assert made[-1] is not None and not jobs.due(app)
        (tmp_path / backups.LAST_BACKUP).unlink()  # as if a day went by
    assert sorted((tmp_path / "usb").iterdir()) == sorted(m.path for m in made[1:])
    target = tmp_path / "restored" / "fieldapp.db"
    backups.restore(target, tmp_path / "restored", made[-1].path, PASSPHRASE)
    assert _tables(target) == _tables(post_db)
    with pytest.raises(backups.BackupError) as refused:
        backups.restore(target, tmp_path / "restored", made[-1].path, "not the passphrase")
    assert refused.value.code == "wrong_passphrase"


@pytest.mark.parametrize(("hours", "age_hours", "due"), [(24, 23, False), (24, 25, True),
                                                         (0, 1000, False)])
def test_when_a_scheduled_backup_is_due(tmp_path, hours, age_hours, due):
    from datetime import UTC, datetime, timedelta

    from fieldapp import create_app

    app = create_app({"SECRET_KEY": "x", "BACKUP_DIR": str(tmp_path), "BACKUP_EVERY_HOURS": hours},
                     instance=tmp_path)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    backups._write_json(tmp_path / backups.LAST_BACKUP, {"at": at.isoformat()})
    assert jobs.due(app, at + timedelta(hours=age_hours)) is due


def test_the_backup_page(app, client_as, tmp_path):
    folder = _folder(tmp_path)
    assert client_as("officer").get("/en/backup/").status_code == 403
    sup = client_as("supervisor")
    page = sup.get("/en/backup/")
    assert page.status_code == 200 and "never been backed up" in page.text
    refused = sup.post_form("/en/backup/", {"folder": str(folder), "passphrase": PASSPHRASE,
                                            "repeat": PASSPHRASE + "x"}, url="/en/backup/run")
    assert refused.status_code == 400 and "The two passphrases are not the same." in refused.text
    refused = sup.post_form("/en/backup/", {"folder": str(tmp_path / "nowhere"),
                                            "passphrase": PASSPHRASE, "repeat": PASSPHRASE},
                            url="/en/backup/run")
    assert refused.status_code == 400 and "nowhere does not exist" in refused.text
    assert list(folder.iterdir()) == []
    started = sup.post_form("/en/backup/", {"folder": str(folder), "passphrase": PASSPHRASE,
                                            "repeat": PASSPHRASE}, url="/en/backup/run")
    assert started.status_code == 303
    jobs.current(app).thread.join(60)
    job = sup.get("/en/backup/progress").json["job"]
    assert job["running"] is False and job["error"] == "" and job["phase"] == "done"
    [file] = folder.iterdir()
    assert job["made"]["path"] == str(file)
    assert backups.last_backup(Path(app.instance_path))["path"] == str(file)
    assert str(file) in sup.get("/en/backup/").text


def test_the_backup_page_is_absent_at_central(app, client_as):
    app.config["MODE"] = "central"
    assert client_as("supervisor").get("/en/backup/").status_code == 404
