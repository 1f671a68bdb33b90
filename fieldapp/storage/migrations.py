"""Ordered, named schema migrations. Never edit an applied one: add the next."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database, Migrations

from fieldapp.storage.db import write

migrations = Migrations("fieldapp")


@migrations(name="0001_initial")
def initial(db: Database) -> None:
    db.executescript("""
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        full_name TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'central', 'admin')),
        post TEXT,
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );

    -- The latest revision of every record; earlier ones live in revisions.
    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        form TEXT NOT NULL,
        form_version INTEGER NOT NULL,
        post TEXT NOT NULL,
        device TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        revision INTEGER NOT NULL,
        hash TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        doc_key TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX records_post_form ON records (post, form, id);
    CREATE INDEX records_form ON records (form, id);
    CREATE INDEX records_doc_key ON records (doc_key) WHERE doc_key != '';

    -- Every revision ever stored, the latest included: history is append-only.
    CREATE TABLE revisions (
        uuid TEXT NOT NULL REFERENCES records (uuid),
        revision INTEGER NOT NULL,
        form_version INTEGER NOT NULL,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        device TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (uuid, revision)
    ) WITHOUT ROWID;

    -- The change feed that sync reads: one row per stored revision, in commit order.
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL,
        revision INTEGER NOT NULL,
        at TEXT NOT NULL
    );

    -- Accent- and case-folded names for search; rowid = records.id.
    CREATE VIRTUAL TABLE records_search USING fts5 (
        name, tokenize = 'unicode61 remove_diacritics 2'
    );
    """)


@migrations(name="0002_session_generation")
def session_generation(db: Database) -> None:
    # Bumped at logout: every session of the account carries the generation it started in.
    db.execute("ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0")


@migrations(name="0003_live_records_index")
def live_records_index(db: Database) -> None:
    # Counting a post's records reads this small index instead of every row.
    db.execute("CREATE INDEX records_live ON records (post, form) WHERE deleted = 0")


@migrations(name="0004_record_links")
def record_links(db: Database) -> None:
    # Records point at others: a session at its course, an enrolment at its course and person, an
    # attendance mark at its session and person. Set when a record is created, never changed.
    db.executescript("""
    ALTER TABLE records ADD COLUMN parent TEXT NOT NULL DEFAULT '';
    ALTER TABLE records ADD COLUMN person TEXT NOT NULL DEFAULT '';
    CREATE INDEX records_parent ON records (parent, form) WHERE parent != '';
    CREATE INDEX records_person ON records (person, form) WHERE person != '';
    """)


@migrations(name="0005_sync")
def sync(db: Database) -> None:
    # Hop 2 (issue 5). Both modes carry every table; each mode uses its side.
    db.executescript("""
    -- Which device's push produced a change ('' when written here), and for which post: central
    -- reads its change feed per post to answer a device's pull, without echoing its own records.
    ALTER TABLE changes ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE changes ADD COLUMN post TEXT NOT NULL DEFAULT '';
    ALTER TABLE changes ADD COLUMN kind TEXT NOT NULL DEFAULT 'record';
    CREATE INDEX changes_post ON changes (post, seq);
    -- When a revision reached this server, and from which device (central).
    ALTER TABLE revisions ADD COLUMN received_at TEXT NOT NULL DEFAULT '';
    ALTER TABLE revisions ADD COLUMN origin TEXT NOT NULL DEFAULT '';

    -- Central: the devices of each post. Codes and tokens are stored only as SHA-256 hashes.
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        post TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
        code_hash TEXT UNIQUE,
        code_expires TEXT,
        token_hash TEXT UNIQUE,
        signing_key TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        enrolled_at TEXT,
        revoked_at TEXT,
        last_contact TEXT,
        last_sync TEXT,
        protocol INTEGER,
        app_version TEXT,
        clock_offset REAL,
        received INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        last_receipt TEXT
    );
    -- Central: the answer to every batch applied, so a repeated batch or bundle gets the same
    -- answer and changes nothing.
    CREATE TABLE sync_batches (
        device TEXT NOT NULL,
        batch TEXT NOT NULL,
        sync TEXT NOT NULL,
        results TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (device, batch)
    ) WITHOUT ROWID;
    CREATE INDEX sync_batches_sync ON sync_batches (device, sync);
    -- Central: versions that met a newer one. Open ones wait for central staff; merged ones were
    -- combined field by field. Either way the incoming version is kept here.
    CREATE TABLE conflicts (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL,
        form TEXT NOT NULL,
        post TEXT NOT NULL,
        device TEXT NOT NULL,
        base_revision INTEGER NOT NULL,
        head_revision INTEGER NOT NULL,
        form_version INTEGER NOT NULL,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        fields TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'merged', 'resolved')),
        resolved_by TEXT,
        resolved_at TEXT,
        resolution_revision INTEGER,
        UNIQUE (uuid, base_revision, hash)
    );
    CREATE INDEX conflicts_open ON conflicts (post, id) WHERE status = 'open';

    -- Field: settings and checkpoints of sync (central URL, device, token, cursors, receipt).
    CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    -- Field: what central answered for a revision that was not simply stored.
    CREATE TABLE sync_outcomes (
        uuid TEXT NOT NULL,
        revision INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (uuid, revision)
    ) WITHOUT ROWID;
    -- Field: local revisions replaced by central's version of the record (central keeps them
    -- too, as conflicts or merges): history here loses nothing either.
    CREATE TABLE superseded (
        uuid TEXT NOT NULL,
        revision INTEGER NOT NULL,
        form_version INTEGER NOT NULL,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        device TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        replaced_at TEXT NOT NULL,
        PRIMARY KEY (uuid, revision, hash)
    ) WITHOUT ROWID;
    """)


# What the central summary counts of every live intake, as the indexes of 0006 held them and as
# 0014 fills its table of intake facts with them. Never change these: applied migrations must not
# change. domain/summary.py computes the same in Python for every intake written since (a test
# keeps the two equal).
INTAKE_DAY = "coalesce(json_extract(data, '$.interview_date'), substr(created_at, 1, 10))"
INTAKE_MONTH = f"substr({INTAKE_DAY}, 1, 7)"
# Whole years from the birth date to the interview date (20250315 - 19900504 = 349811, so 34),
# else the estimated age.
_AGE = (
    f"coalesce((CAST(replace({INTAKE_DAY}, '-', '') AS INTEGER)"
    " - CAST(replace(json_extract(data, '$.birth_date'), '-', '') AS INTEGER)) / 10000,"
    " CAST(json_extract(data, '$.estimated_age') AS INTEGER))"
)
# The highest age of each group of the intake form's age_group list; older is 60_plus.
AGE_GROUP_BOUNDS = ((4, "0_4"), (11, "5_11"), (17, "12_17"), (24, "18_24"), (59, "25_59"))
_OLDEST = "60_plus"
# One letter per age from 0 to 60 ("aaaaabbbbbbbcc…f"): a lookup, so the age is computed once.
_LETTERS = "".join(
    chr(97 + i) * (top - (AGE_GROUP_BOUNDS[i - 1][0] if i else -1))
    for i, (top, _) in enumerate(AGE_GROUP_BOUNDS)
) + chr(97 + len(AGE_GROUP_BOUNDS))
_GROUP_OF_LETTER = " ".join(
    f"WHEN '{chr(97 + i)}' THEN '{code}'"
    for i, code in enumerate([c for _, c in AGE_GROUP_BOUNDS] + [_OLDEST])
)
# The intake's age_group answer where the form asked it (consent refused); else the group of the
# age at the interview; '' when no age is known.
INTAKE_AGE_GROUP = (
    "coalesce(json_extract(data, '$.age_group'),"
    f" CASE substr('{_LETTERS}', min(max({_AGE}, 0), {len(_LETTERS) - 1}) + 1, 1)"
    f" {_GROUP_OF_LETTER} ELSE '' END)"
)
INTAKE_NATIONALITY = "json_extract(data, '$.nationality')"
INTAKE_MIGRATORY_STATUS = "json_extract(data, '$.migratory_status')"
INTAKE_SEX = "json_extract(data, '$.sex')"
# Index -> its columns: the two answers it counts by, then month and post to narrow the count.
INTAKE_INDEXES = {
    "records_intake_month": (INTAKE_MONTH, "post"),
    "records_intake_origin": (INTAKE_NATIONALITY, INTAKE_MIGRATORY_STATUS, INTAKE_MONTH, "post"),
    "records_intake_sex_age": (INTAKE_AGE_GROUP, INTAKE_SEX, INTAKE_MONTH, "post"),
}


@migrations(name="0006_intake_summary")
def intake_summary(db: Database) -> None:
    # Central's summary counts live intakes by month and post, nationality and migratory status,
    # age group and sex, narrowed to a post and a span of months. Read from the table, a count
    # parses every intake's JSON (about 0.5 s at 100,000); read from an index led by what it
    # groups by, it takes a few ms. Each costs an intake write a few µs.
    for name, columns in INTAKE_INDEXES.items():
        db.execute(f"CREATE INDEX {name} ON records ({', '.join(columns)})"
                   " WHERE form = 'intake' AND deleted = 0")


@migrations(name="0007_exports")
def exports(db: Database) -> None:
    # Central (issue 6): every export asked for — who, when, what, why, with which filters, how
    # many rows. Rows are never deleted: this is the exports' audit log. `upto_seq` is the change
    # feed's position when the export read its snapshot; "only what changed since my last export"
    # starts after it.
    db.executescript("""
    CREATE TABLE exports (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at TEXT NOT NULL,
        dataset TEXT NOT NULL,
        format TEXT NOT NULL,
        profile TEXT NOT NULL CHECK (profile IN ('full', 'pseudonymised')),
        purpose TEXT NOT NULL,
        options TEXT NOT NULL,
        filters TEXT NOT NULL,
        since_seq INTEGER,
        upto_seq INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        total INTEGER NOT NULL DEFAULT 0,
        rows INTEGER NOT NULL DEFAULT 0,
        finished_at TEXT,
        file TEXT,
        error TEXT
    ) WITHOUT ROWID;
    CREATE INDEX exports_user ON exports (username, created_at);
    """)


@migrations(name="0008_person_pairs")
def person_pairs(db: Database) -> None:
    # Central: the last run of the duplicate finder. Comparing 100,000 persons takes seconds, too
    # long for every page view: the pairs are kept until staff ask to look again. Verdicts are not
    # kept here: they are person_merge records, which sync to the posts.
    db.executescript("""
    CREATE TABLE person_pair_runs (
        id INTEGER PRIMARY KEY,
        started_by TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        persons INTEGER NOT NULL,
        pairs INTEGER NOT NULL
    );
    CREATE TABLE person_pairs (
        run INTEGER NOT NULL REFERENCES person_pair_runs (id),
        a TEXT NOT NULL,
        b TEXT NOT NULL,
        score INTEGER NOT NULL,
        reasons TEXT NOT NULL,  -- codes, space-separated
        PRIMARY KEY (run, a, b)
    ) WITHOUT ROWID;
    CREATE INDEX person_pairs_score ON person_pairs (run, score DESC, a, b);
    """)


@migrations(name="0009_revisions_rowid")
def revisions_rowid(db: Database) -> None:
    # A WITHOUT ROWID table keeps each row, ~1 KB of answers, inside its primary key's b-tree:
    # every insert rewrote random leaves and their overflow pages (docs/benchmarks.md, Sync).
    # Same columns and key, as an ordinary table.
    db.executescript("""
    CREATE TABLE revisions_new (
        uuid TEXT NOT NULL REFERENCES records (uuid),
        revision INTEGER NOT NULL,
        form_version INTEGER NOT NULL,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        device TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        received_at TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (uuid, revision)
    );
    INSERT INTO revisions_new (uuid, revision, form_version, data, hash, deleted, device, created_by,
        created_at, received_at, origin)
    SELECT uuid, revision, form_version, data, hash, deleted, device, created_by, created_at,
        received_at, origin FROM revisions ORDER BY uuid, revision;
    DROP TABLE revisions;
    ALTER TABLE revisions_new RENAME TO revisions;
    """)


@migrations(name="0010_sessions")
def sessions(db: Database) -> None:
    # Issue 7: server-side login sessions that can be ended at once, failed logins for throttling,
    # and the admin's "change the password at next login". The cookie carries a session's id; only
    # its SHA-256 is stored. A session records the account's session_generation and a stamp of its
    # password hash: a generation bumped or a password changed on central and pulled by sync ends
    # it too. Times are seconds since the epoch. Failure keys are SHA-256 hashes of
    # "account:<username>" or "address:<ip>".
    db.executescript("""
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        generation INTEGER NOT NULL,
        password_stamp TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_at REAL NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
    """)


@migrations(name="0011_audit_log")
def audit_log(db: Database) -> None:
    # Issue 7: the append-only, hash-chained audit log of both modes (storage/audit.py writes it,
    # docs/security.md says what it holds). `seq` runs 1, 2, 3… without gaps; `hash` is the
    # SHA-256 of the previous row's hash and this row (domain/audit.py). The triggers are defence
    # in depth only: `fieldapp audit verify` checks the chain without trusting them.
    db.executescript("""
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL DEFAULT '',
        actor_name TEXT NOT NULL DEFAULT '',
        event TEXT NOT NULL,
        target_kind TEXT NOT NULL DEFAULT '',
        target_id TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}',
        address TEXT NOT NULL DEFAULT '',
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_log_event ON audit_log (event, seq);
    CREATE INDEX audit_log_actor ON audit_log (actor_name, seq);
    CREATE INDEX audit_log_target ON audit_log (target_id, seq);
    CREATE INDEX audit_log_at ON audit_log (at);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    """)


@migrations(name="0012_retention")
def retention(db: Database) -> None:
    # Issue 7. Field: when central acknowledged the change feed up to each checkpoint (a record's
    # retention starts there). Both: which records lost their personal data, when, and why
    # ('field': the post's retention; 'central': the purpose's retention at central).
    db.executescript("""
    CREATE TABLE push_acks (seq INTEGER PRIMARY KEY, at TEXT NOT NULL);
    CREATE TABLE purged (
        uuid TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('field', 'central'))
    ) WITHOUT ROWID;
    -- What central had acknowledged before this version: its retention starts at the upgrade.
    INSERT INTO push_acks (seq, at)
        SELECT CAST(value AS INTEGER), strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM sync_state
        WHERE key = 'push_checkpoint' AND CAST(value AS INTEGER) > 0;
    """)


@migrations(name="0013_subjects")
def subjects(db: Database) -> None:
    # Data subject requests (issue 7): every record erased at a person's request, here and at the
    # posts, with the erasure that did it. A pushed revision of one of these uuids, or of a record
    # about one of these persons, is refused (`erased`): an old copy never brings the data back.
    # Replacing a laptop (issue 8): the device a new one replaces (its token was revoked then).
    db.executescript("""
    CREATE TABLE erasures (
        uuid TEXT PRIMARY KEY,
        erasure TEXT NOT NULL,
        erased_at TEXT NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE devices ADD COLUMN replaces TEXT;
    """)


class NewerDatabase(Exception):
    """The database was upgraded by a newer fieldapp: this one must not open it."""

    def __init__(self, unknown: list[str]):
        super().__init__(", ".join(unknown))
        self.unknown = unknown


class _InTransaction(Database):
    """The migration's view of the database: `executescript` runs each statement in the open
    transaction. sqlite3's own `executescript` COMMITs first, so a migration killed half-way
    would leave its first statements applied and its name unrecorded."""

    def executescript(self, sql: str):
        statement = ""
        for part in sql.split(";"):
            statement += part + ";"
            if sqlite3.complete_statement(statement):
                if statement.strip(" \t\n;"):
                    self.conn.execute(statement)
                statement = ""
        if statement.strip(" \t\n;"):
            self.conn.execute(statement)
        return self.conn.cursor()


def unknown(db: Database) -> list[str]:
    """Applied migrations this code does not know: a newer fieldapp wrote this database."""
    known = {m.name for m in migrations._migrations}
    return [m.name for m in migrations.applied(db) if m.name not in known]


def pending(db: Database) -> list[str]:
    return [m.name for m in migrations.pending(db)]


def _pre_upgrade_copy(db: Database) -> None:
    from fieldapp.storage.copy import pre_upgrade_copy

    pre_upgrade_copy(db)


def apply(db: Database, *, before_upgrade: Callable[[Database], object] | None = _pre_upgrade_copy,
          stop_before: str | None = None) -> list[str]:
    """Apply pending migrations, each with its bookkeeping row in one transaction; return the
    names applied. A process killed half-way leaves the database at the last migration applied,
    and the next start carries on.

    `before_upgrade(db)` runs first when a database that holds data has migrations pending (the
    pre-upgrade copy, `storage.copy.pre_upgrade_copy`). `stop_before` names the first migration
    not to apply (tests build databases of earlier versions). Raises NewerDatabase, changing
    nothing, when a newer fieldapp wrote it."""
    newer = unknown(db)
    if newer:
        raise NewerDatabase(newer)
    todo = migrations.pending(db)
    names = [m.name for m in todo]
    if stop_before in names:
        todo = todo[:names.index(stop_before)]
    if not todo:
        return []
    if before_upgrade is not None and migrations.applied(db):
        before_upgrade(db)
    with write(db):
        migrations.ensure_migrations_table(db)
    view = _InTransaction(db.conn)
    done = []
    for migration in todo:
        # Another process (a CLI command during an upgrade) may have applied it meanwhile.
        with write(db):
            if migration.name in {m.name for m in migrations.applied(db)}:
                continue
            migration.fn(view)
            if not db.conn.in_transaction:
                raise RuntimeError(f"migration {migration.name} committed on its own")
            migrations._record_applied(db, migration.name)
        done.append(migration.name)
    return done


def schema_version(db: Database) -> str:
    applied = migrations.applied(db)
    return applied[-1].name if applied else ""


@migrations(name="0014_intake_facts")
def intake_facts(db: Database) -> None:
    # The summary's counts come from a table of what it counts, one row per live intake, instead
    # of 0006's indexes on expressions over the records' JSON. Those cost every intake written
    # about nine JSON lookups, and an edit twice that, whatever it changed: the heaviest part of
    # applying a synced edit at central. The writer now computes the facts in Python
    # (domain/summary.py) and leaves the row alone when an edit does not change them. The table
    # is filled here with 0006's expressions, which a test keeps equal to the Python.
    drops = "".join(f"DROP INDEX {name};\n" for name in INTAKE_INDEXES)
    db.executescript(drops + f"""
    CREATE TABLE intake_facts (
        record INTEGER PRIMARY KEY REFERENCES records (id),
        post TEXT NOT NULL,
        month TEXT NOT NULL,
        nationality TEXT NOT NULL,
        migratory_status TEXT NOT NULL,
        age_group TEXT NOT NULL,
        sex TEXT NOT NULL
    );
    INSERT INTO intake_facts (record, post, month, nationality, migratory_status, age_group, sex)
    SELECT id, post, {INTAKE_MONTH}, coalesce({INTAKE_NATIONALITY}, ''),
           coalesce({INTAKE_MIGRATORY_STATUS}, ''), coalesce({INTAKE_AGE_GROUP}, ''),
           coalesce({INTAKE_SEX}, '')
    FROM records WHERE form = 'intake' AND deleted = 0;
    CREATE INDEX intake_facts_month ON intake_facts (month, post);
    CREATE INDEX intake_facts_origin ON intake_facts (nationality, migratory_status, month, post);
    CREATE INDEX intake_facts_sex_age ON intake_facts (age_group, sex, month, post);
    """)
