"""Upgrades: a database of every earlier version, holding records of its time, upgrades with every
record intact and a copy kept from before; a migrating process killed at random points leaves
the database at a whole migration and the next start completes it; a newer database is refused."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from fieldapp import config
from fieldapp.storage import copy, migrations
from fieldapp.storage import db as storage_db
from tests.sync.harness import child_env, run_cli

NAMES = [m.name for m in migrations.migrations._migrations]
REPO = Path(__file__).parent.parent


def _at(path: Path, k: int) -> storage_db.Database:
    """A database with the first k migrations applied, as that version of fieldapp left it."""
    db = storage_db.connect(path)
    migrations.apply(db, stop_before=NAMES[k] if k < len(NAMES) else None)
    assert migrations.schema_version(db) == NAMES[k - 1]
    return db


def _fill(db, n: int, seed: int = 1) -> None:
    """n intakes (with their revision and change) and an account, with the columns of 0001, so
    they fit a database of any version."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        data = json.dumps({"consent": "given", "given_names": f"Persona {i}",
                           "interview_date": f"2025-{rng.randint(1, 12):02d}-10",
                           "birth_date": f"19{rng.randint(50, 99)}-01-02", "sex": rng.choice(
                               ["female", "male"]), "nationality": rng.choice(["VE", "CO", "HT"]),
                           "migratory_status": "in_transit"})
        rows.append((str(uuidlib.UUID(int=rng.getrandbits(128))), data))
    with storage_db.write(db):
        db.conn.executemany(
            "INSERT INTO records (uuid, form, form_version, post, device, created_by, created_at,"
            " updated_by, updated_at, revision, hash, data, title) VALUES (?, 'intake', 1, 'POST-A',"
            " 'd', 'ana', '2025-01-01', 'ana', '2025-01-01', 1, 'h', ?, 'Persona')", rows)
        db.conn.executemany(
            "INSERT INTO revisions (uuid, revision, form_version, data, hash, device, created_by,"
            " created_at) VALUES (?, 1, 1, ?, 'h', 'd', 'ana', '2025-01-01')", rows)
        db.conn.executemany("INSERT INTO changes (uuid, revision, at) VALUES (?, 1, '2025')",
                            [(u,) for u, _ in rows])
        db.execute("INSERT INTO users (username, password_hash, role, post, created_at, updated_at)"
                   " VALUES ('ana', 'x', 'officer', 'POST-A', '2025', '2025')")
        if db["sync_state"].exists():
            db.execute("INSERT INTO sync_state VALUES ('push_checkpoint', '7')")


ERA_COLUMNS = "uuid, form, form_version, post, device, created_by, created_at, revision, hash, data"


def _records(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(f"SELECT {ERA_COLUMNS} FROM records ORDER BY uuid")]


def _schema(db) -> set[tuple]:
    return {tuple(r) for r in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")}


@pytest.fixture(scope="module")
def reference_schemas(tmp_path_factory) -> dict[int, set]:
    """The schema after exactly k migrations, made on empty databases."""
    folder = tmp_path_factory.mktemp("ref")
    out = {}
    for k in range(1, len(NAMES) + 1):
        db = _at(folder / f"{k}.db", k)
        out[k] = _schema(db)
        db.conn.close()
    return out


@pytest.mark.parametrize("k", range(1, len(NAMES)))
def test_every_earlier_version_upgrades_with_its_records(tmp_path, k, reference_schemas):
    db = _at(tmp_path / "fieldapp.db", k)
    _fill(db, 200, seed=k)
    before = _records(db)
    applied = migrations.apply(db)
    assert applied == NAMES[k:]
    assert migrations.schema_version(db) == NAMES[-1]
    assert _records(db) == before
    assert _schema(db) == reference_schemas[len(NAMES)]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    [kept] = tmp_path.glob(f"fieldapp.db{copy.PRE_UPGRADE_MARK}*")
    assert kept.name.startswith(f"fieldapp.db.pre-upgrade-{NAMES[k - 1]}-")
    old = storage_db.connect(kept)
    assert migrations.schema_version(old) == NAMES[k - 1] and _records(old) == before
    assert copy.integrity(kept) == []


def test_a_fresh_database_gets_no_pre_upgrade_copy(tmp_path):
    db = storage_db.connect(tmp_path / "fieldapp.db")
    assert migrations.apply(db) == NAMES
    assert [p.name for p in tmp_path.iterdir() if "pre-upgrade" in p.name] == []


def test_only_the_last_pre_upgrade_copies_are_kept(tmp_path):
    db = _at(tmp_path / "fieldapp.db", len(NAMES))
    for _ in range(copy.PRE_UPGRADE_KEEP + 2):
        copy.pre_upgrade_copy(db)
    assert len(list(tmp_path.glob("fieldapp.db.pre-upgrade-*"))) == copy.PRE_UPGRADE_KEEP


def test_a_migration_script_runs_inside_the_transaction(tmp_path):
    """sqlite3's executescript commits what came before it; a migration's script must not."""
    db = storage_db.connect(tmp_path / "x.db")
    view = migrations._InTransaction(db.conn)
    with pytest.raises(sqlite3.OperationalError), storage_db.write(db):
        view.executescript("CREATE TABLE a (x TEXT DEFAULT 'a;b'); -- a comment; with semicolons\n"
                           "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END;\n"
                           "INSERT INTO a VALUES (1); CREATE TABLE a (y)")
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []


MIGRATE = """
import sys
from fieldapp.storage import db, migrations
d = db.connect(sys.argv[1])
print("start", flush=True)
migrations.apply(d)
print("done", flush=True)
"""


def _migrate(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", MIGRATE, str(path)], cwd=REPO, env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    return proc


def test_an_upgrade_killed_at_random_points_recovers(tmp_path, reference_schemas):
    fixture = tmp_path / "fixture" / "fieldapp.db"
    fixture.parent.mkdir()
    k = NAMES.index("0006_intake_summary")  # its indexes read every intake: a slow upgrade
    db = _at(fixture, k)
    _fill(db, 20_000)
    expected = _records(db)
    db.conn.close()
    # How long an upgrade takes here, to spread the kills over it (not an assertion).
    trial = tmp_path / "trial" / "fieldapp.db"
    trial.parent.mkdir()
    shutil.copyfile(fixture, trial)
    began = time.monotonic()
    proc = _migrate(trial)
    assert proc.stdout.readline().strip() == "done" and proc.wait() == 0
    span = time.monotonic() - began
    rng = random.Random(2026)
    stopped_at = set()
    for round_ in range(6):
        path = tmp_path / f"round-{round_}" / "fieldapp.db"
        path.parent.mkdir()
        shutil.copyfile(fixture, path)
        proc = _migrate(path)
        time.sleep(rng.uniform(0, span))
        proc.kill()
        proc.wait()
        db = storage_db.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        applied = [m.name for m in migrations.migrations.applied(db)]
        assert applied == NAMES[:len(applied)] and len(applied) >= k
        assert _schema(db) - {("table", "_sqlite_migrations")} == \
            reference_schemas[len(applied)] - {("table", "_sqlite_migrations")}, \
            "a migration is half applied"
        assert _records(db) == expected
        stopped_at.add(len(applied))
        migrations.apply(db)  # the next start
        assert migrations.schema_version(db) == NAMES[-1] and _records(db) == expected
        assert _schema(db) == reference_schemas[len(NAMES)]
        assert not list(path.parent.glob("*.partial"))
        db.conn.close()
    print("killed with migrations applied:", sorted(stopped_at))
    assert stopped_at, "no kill landed"


def _instance_at(tmp: Path, k: int) -> Path:
    instance = tmp / "instance"
    config.write_new(instance, post="POST-A", mode="field")
    db = _at(instance / "fieldapp.db", k)
    _fill(db, 20)
    db.conn.close()
    return instance


def test_a_command_upgrades_and_says_where_the_copy_is(tmp_path):
    instance = _instance_at(tmp_path, 3)
    done = run_cli(instance, "users", "list")
    assert "ana" in done.stdout
    assert f"Database upgraded to {NAMES[-1]}" in done.stderr
    assert "pre-upgrade-0003_live_records_index" in done.stderr
    assert run_cli(instance, "users", "list").stderr == ""  # once


@pytest.mark.parametrize("command", [["users", "list"], ["serve", "--port", "1"], ["backup"]])
def test_a_newer_database_is_refused(tmp_path, command):
    instance = _instance_at(tmp_path, len(NAMES))
    db = storage_db.connect(instance / "fieldapp.db")
    with storage_db.write(db):
        db.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                   "VALUES ('fieldapp', '0999_from_the_future', '2030-01-01')")
    db.conn.close()
    before = hashlib.sha256((instance / "fieldapp.db").read_bytes()).hexdigest()
    done = run_cli(instance, *command, check=False)
    assert done.returncode == 1
    assert "upgraded by a newer version of fieldapp (it knows 0999_from_the_future)" in done.stderr
    assert hashlib.sha256((instance / "fieldapp.db").read_bytes()).hexdigest() == before
    assert not list(instance.glob("*pre-upgrade*"))
