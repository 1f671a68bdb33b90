"""Benchmark: what encryption at rest (SQLCipher) costs a field server, against plain SQLite.

    python -m bench.encryption [--records 10000] [--saves 200] [--searches 200] [--runs 5]

(`python bench/encryption.py` works too.) Three kinds of database, each made fresh in every run
through `storage.db.connect` and migrated, as a field server's:

* plain: the standard library's `sqlite3` (what an unencrypted field server and central use);
* sqlcipher, no key: the `sqlcipher3` driver on a plain file, to tell its SQLite build from the
  cost of encryption;
* encrypted: `sqlcipher3` with a key (`init --encrypt`), opened with the raw key unlocked once.

Timed, for each, in the same run (the order rotated from run to run):

* sync-like writes: `--records` realistic intakes (bench/intake.py's generator, each answer set
  through `validate`) stored with `records.save_batch`, 500 per transaction: what a pull or a
  sync batch writes; records/s;
* single saves: `--saves` intakes, each `records.save` in its own durable transaction, as an
  officer's save; median ms;
* searches: `--searches` `records.search` calls (a name prefix, a document-number prefix,
  round-robin), each on a connection kept open (a serving thread's); median ms;
* cold reads: a new connection (`connect`, its pragmas and, when encrypted, its key) that reads
  the 50 newest records and counts the records by nationality with `json_extract` over every row:
  what a CLI command or a new serving thread does; median ms.

Also, once: the key derivation of `unlock` (PBKDF2-HMAC-SHA512, 256,000 iterations) and the size of
the files. Every figure is the median over the runs; ratio = encrypted ÷ plain.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlite_utils import Database  # noqa: E402

from bench.intake import IntakeGenerator, clean  # noqa: E402
from fieldapp.forms import schema  # noqa: E402
from fieldapp.storage import cipher, migrations, records  # noqa: E402
from fieldapp.storage import db as storage_db  # noqa: E402

POST, DEVICE, USER = "POST-1", "bench-device", "officer.bench"
PASSPHRASE = "bench passphrase, four words"
BATCH = 500
KINDS = ("plain", "sqlcipher, no key", "encrypted")
SEARCHES = ["maría", "rodrig", "jean", "gonz", "V12", "AB"]


def answer_sets(n: int, seed: int) -> list[dict]:
    definition, today = schema.get("intake"), date.today()
    gen = IntakeGenerator(seed, today)
    return [clean(definition, gen.raw(), today) for _ in range(n)]


def submissions(answers: list[dict], rng: random.Random) -> list[records.Submission]:
    definition = schema.get("intake")
    return [records.Submission(uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                               definition=definition, answers=a, post=POST, device=DEVICE, user=USER)
            for a in answers]


def fresh(path: Path, kind: str):
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    storage_db.forget_key(path)
    if kind == "encrypted":
        cipher.create(path, PASSPHRASE)
        db = storage_db.connect(path)
    elif kind == "sqlcipher, no key":
        db = Database(storage_db.raw_connection(path, cipher=True))
        db._fieldapp_path, db._fieldapp_wrote = str(path.resolve()), False
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON",
                       f"cache_size = -{storage_db.CACHE_KIB}"):
            db.execute(f"PRAGMA {pragma}")
    else:
        db = storage_db.connect(path)
    migrations.apply(db)
    return db


def reopen(path: Path, kind: str):
    if kind == "sqlcipher, no key":
        db = Database(storage_db.raw_connection(path, cipher=True))
        db.execute(f"PRAGMA cache_size = -{storage_db.CACHE_KIB}")
        return db
    return storage_db.connect(path)


def one_run(directory: Path, kind: str, bulk: list[dict], singles: list[dict], n_search: int,
            seed: int) -> dict:
    path = directory / f"{kind.split(',')[0]}.db"
    db = fresh(path, kind)
    rng = random.Random(seed)
    subs = submissions(bulk, rng)
    os.sync()
    started = time.perf_counter()
    for i in range(0, len(subs), BATCH):
        records.save_batch(db, subs[i:i + BATCH])
    bulk_s = time.perf_counter() - started
    saves = []
    for sub in submissions(singles, rng):
        started = time.perf_counter()
        records.save(db, sub)
        saves.append(time.perf_counter() - started)
    searches = []
    for i in range(n_search):
        started = time.perf_counter()
        records.search(db, "intake", post=POST, text=SEARCHES[i % len(SEARCHES)])
        searches.append(time.perf_counter() - started)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    cold = []
    for _ in range(20):
        started = time.perf_counter()
        conn = reopen(path, kind)
        records.search(conn, "intake", post=POST)
        conn.execute("SELECT json_extract(data, '$.nationality') n, count(*) FROM records"
                     " GROUP BY n").fetchall()
        conn.close()
        cold.append(time.perf_counter() - started)
    return {"bulk": len(subs) / bulk_s, "save": statistics.median(saves) * 1000,
            "search": statistics.median(searches) * 1000, "cold": statistics.median(cold) * 1000,
            "mb": path.stat().st_size / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=None, help="where the databases go (which disk is measured)")
    args = parser.parse_args(argv)

    print(f"generating {args.records + args.saves} intakes...", file=sys.stderr)
    answers = answer_sets(args.records + args.saves, args.seed)
    bulk, singles = answers[:args.records], answers[args.records:]
    results: dict[str, list[dict]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for run in range(args.runs):
            order = KINDS[run % 3:] + KINDS[:run % 3]
            for kind in order:
                results[kind].append(one_run(Path(tmp), kind, bulk, singles, args.searches,
                                             args.seed + run))
                print(f"run {run + 1}/{args.runs} {kind}: done", file=sys.stderr)
        salt = os.urandom(16)
        kdf = []
        for _ in range(5):
            started = time.perf_counter()
            cipher.derive_key(PASSPHRASE, salt)
            kdf.append(time.perf_counter() - started)

    med = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in results.items()}
    rows = [("sync-like writes (records/s, 500 per transaction)", "bulk", "{:,.0f}"),
            ("single save (ms, one durable transaction)", "save", "{:.2f}"),
            ("search by name or document (ms, open connection)", "search", "{:.2f}"),
            ("cold read (ms, new connection, 50 newest + json_extract count)", "cold", "{:.1f}"),
            ("database file (MB)", "mb", "{:.1f}")]
    print(f"\nEncryption at rest: {args.records:,} intakes, {args.saves} saves, {args.searches} "
          f"searches, median of {args.runs} runs; SQLite {sqlite3.sqlite_version} (plain), "
          f"SQLCipher {cipher.version()}\n")
    print("| measure | plain | sqlcipher, no key | encrypted | ratio encrypted ÷ plain |")
    print("|---|---:|---:|---:|---:|")
    for label, key, fmt in rows:
        p, n, e = (med[k][key] for k in KINDS)
        print(f"| {label} | {fmt.format(p)} | {fmt.format(n)} | {fmt.format(e)} | {e / p:.2f} |")
    print(f"\nunlock (key derivation, once at start-up): {statistics.median(kdf) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
