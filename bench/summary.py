"""Benchmark: central's summary page with every post's intakes and courses, against a bare count.

    python -m bench.summary [--sizes 10000 100000] [--posts 5] [--courses 60] [--gets 20] [--runs 5]

For every size it builds a throw-away central instance (config in central mode, migrations, one
central account) and preloads, with `records.save_batch` (setup, not timed), N realistic intake
records spread over `--posts` posts and two years (bench/intake.py's generator, every answer set
validated), a few hundred deleted ones, and `--courses` courses (bench/training.py's generator):
20 participants and 12 sessions each, marked, certificates for those who qualify. Then it logs
in as central staff through the real login page with a Flask test client and, `--runs` times:

* GETs /en/central/summary/ `--gets` times (anything but a 200 showing the right total fails);
  each GET is timed by the wall clock and by this process's CPU time, which a busy machine
  disturbs far less (the test client, the view and SQLite all run in this process);
* times the page's reads alone (`storage.summary.collect` on an open connection);
* times the bare count of the same intakes, `SELECT count(*) FROM records WHERE form = 'intake'
  AND deleted = 0`, as SQLite plans it (it reads the records' rows), and the same count read from
  an index alone (`INDEXED BY records_live`): what one pass over 100,000 index entries costs;
* times the same counts read from the records' JSON instead of the table of intake facts
  (migration 0014; one pass, `NOT INDEXED`, counted in Python): what the page would cost without it.

Then what counting costs a write: the CPU time of `save_batch` of 1,000 new intakes (one
transaction) into three copies of the smallest instance: as it is; with the facts table's three
indexes dropped (the floor: the row is still written); and with migration 0006's expression
indexes on the records' JSON added to that floor (what every intake paid before 0014). The same
batches in alternating order, at least 6 times.

It reports the median over the runs of each run's median, wall and CPU, as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as `python bench/summary.py`: bench/sync.py would shadow the `sync` package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.intake import (  # noqa: E402
    PASSWORD,
    PRELOAD_CHUNK,
    IntakeGenerator,
    _csrf,
    _log,
    clean,
    machine,
    revision,
)
from bench.training import Cleaner, TrainingGenerator, _weekdays  # noqa: E402
from fieldapp import accounts, create_app  # noqa: E402
from fieldapp import config as settings  # noqa: E402
from fieldapp.domain import persons, trainings  # noqa: E402
from fieldapp.forms import schema  # noqa: E402
from fieldapp.storage import db as storage_db  # noqa: E402
from fieldapp.storage import migrations, records, summary  # noqa: E402

CENTRAL = "central.bench"
PEOPLE, SESSIONS = 20, 12  # per course
DELETED_SHARE = 0.005  # intakes deleted after they were stored
WRITES = 1000  # intakes per timed save_batch
_TOTAL = re.compile(r'id="totals">[^<]*<strong>([^<]*)</strong>')


@dataclass
class Instance:
    path: Path
    size: int
    app: object = None
    client: object = None
    live: int = 0
    counts: dict | None = None
    preload_s: float = 0.0
    db_mb: float = 0.0


class Loader:
    """Submissions of any post, stored PRELOAD_CHUNK at a time."""

    def __init__(self, db, device: str):
        self.db, self.device, self.pending = db, device, []

    def add(self, form: str, answers: dict, post: str, *, uuid: str, parent: str = "",
            person: str = "", base: int = 0, deleted: bool = False) -> str:
        self.pending.append(records.Submission(
            uuid=uuid, definition=schema.get(form), answers=answers, post=post, device=self.device,
            user="officer.bench", base_revision=base, parent=parent, person=person, deleted=deleted))
        if len(self.pending) >= PRELOAD_CHUNK:
            self.flush()
        return uuid

    def flush(self) -> None:
        if self.pending and any(d.outcome != "stored" for d in records.save_batch(self.db, self.pending)):
            raise AssertionError("preload: a record was not stored")
        self.pending = []


def _course(loader: Loader, gen: TrainingGenerator, cleaner: Cleaner, post: str,
            first_day: date, today: date) -> None:
    """A course of PEOPLE participants and SESSIONS sessions; those held are marked, and the
    people who qualify get a certificate once it is over."""
    days = _weekdays(first_day, SESSIONS)
    raw = gen.course(days, PEOPLE + 5)
    course = loader.add("course", cleaner("course", raw), post, uuid=gen.uuid())
    sessions = [loader.add("session", cleaner("session", gen.session(d, False)), post,
                           uuid=gen.uuid(), parent=course) for d in days]
    people = []
    for _ in range(PEOPLE):
        person = loader.add("participant", cleaner("participant", gen.participant()), post,
                            uuid=gen.uuid())
        loader.add("enrolment", cleaner("enrolment", {"status": "enrolled"}), post,
                   uuid=persons.enrolment_uuid(course, person), parent=course, person=person)
        people.append(person)
    attended = Counter()
    for session, day in zip(sessions, days, strict=True):
        if day > today:
            continue
        for person in people:
            status = gen.status(gen.habit())
            attended[person] += status in trainings.ATTENDED
            loader.add("attendance", cleaner("attendance", {"status": status}), post,
                       uuid=persons.mark_uuid(session, person), parent=session, person=person)
    held = sum(d <= today for d in days)
    if days[-1] <= today:
        minimum = int(raw["min_attendance"])
        for person in people:
            if trainings.Attendance(attended[person], held, 0).qualifies(minimum):
                loader.add("certificate", {"number": f"FA-{gen.uuid()[:8]}", "minutes": 1800,
                                           "issued_on": days[-1].isoformat()}, post,
                           uuid=persons.certificate_uuid(course, person), parent=course,
                           person=person)


def build_instance(parent: Path, size: int, posts: int, courses: int, seed: int) -> Instance:
    path = parent / f"central-{size}"
    settings.write_new(path, post="CENTRAL", mode="central")
    app = create_app(instance=path)
    db = storage_db.connect(app.config["DATABASE"])
    migrations.apply(db)
    accounts.create(db, username=CENTRAL, password=PASSWORD, role="central", post=None)
    inst = Instance(path=path, size=size, app=app)
    today = date.today()
    post_names = [f"POST-{i + 1}" for i in range(posts)]
    rng, intake_gen = random.Random(seed), IntakeGenerator(seed, today)
    loader = Loader(db, "bench-device")
    definition = schema.get("intake")
    started = time.perf_counter()
    stored = []
    for _ in range(size):
        answers = clean(definition, intake_gen.raw(), today)
        uuid_ = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        post = rng.choices(post_names, [5, 4, 3, 2, 1][:posts] + [1] * max(0, posts - 5))[0]
        stored.append((uuid_, answers, post))
        loader.add("intake", answers, post, uuid=uuid_)
    loader.flush()
    deleted = rng.sample(stored, int(size * DELETED_SHARE))
    for uuid_, answers, post in deleted:
        loader.add("intake", answers, post, uuid=uuid_, base=1, deleted=True)
    gen, cleaner = TrainingGenerator(seed + 1, today), Cleaner(today)
    first = today - timedelta(days=700)
    for i in range(courses):
        _course(loader, gen, cleaner, post_names[i % posts], first + timedelta(days=12 * i), today)
    loader.flush()
    inst.preload_s = time.perf_counter() - started
    inst.live = size - len(deleted)
    if records.count(db, "intake", None) != inst.live:
        raise AssertionError("preload: wrong number of live intakes")
    inst.counts = {f: records.count(db, f, None) for f in
                   ("intake", "participant", "course", "session", "enrolment", "attendance",
                    "certificate")}
    db.close()  # a request never shares a connection (see bench/intake.py)

    client = app.test_client()
    login = client.get("/en/login")
    response = client.post("/en/login", data={
        "csrf_token": _csrf(login.get_data(as_text=True)), "username": CENTRAL,
        "password": PASSWORD})
    if response.status_code != 302:
        raise AssertionError(f"login failed: {response.status_code}")
    inst.client = client
    return inst


# ------------------------------------------------------------------ measurement


def get_page(inst: Instance, n: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of `n` GETs of the page, each checked."""
    times = []
    expected = f"{inst.live:,}"
    for _ in range(n):
        wall, cpu = time.perf_counter(), time.process_time()
        response = inst.client.get("/en/central/summary/")
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
        body = response.get_data(as_text=True)
        found = _TOTAL.search(body)
        if response.status_code != 200 or not found or found.group(1) != expected:
            raise AssertionError(f"GET summary: {response.status_code}, total "
                                 f"{found.group(1) if found else None}, expected {expected}")
    return times


def timed(fn, n: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of `n` calls."""
    times = []
    for _ in range(n):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def from_json(db) -> Counter:
    """The same intake counts read from every record's JSON, as without the facts table."""
    names = [migrations.INTAKE_MONTH, "post", migrations.INTAKE_NATIONALITY,
             migrations.INTAKE_MIGRATORY_STATUS, migrations.INTAKE_AGE_GROUP, migrations.INTAKE_SEX]
    counts = Counter()
    sql = (f"SELECT {', '.join(names)} FROM records NOT INDEXED"
           " WHERE form = 'intake' AND deleted = 0")
    for month, post, nationality, status, age, sex in db.execute(sql):
        counts["month", month, post] += 1
        counts["origin", nationality, status] += 1
        counts["sex_age", age, sex] += 1
    return counts


def write_cost(source: Path, tmp: Path, runs: int, seed: int, today: date) -> dict[str, float]:
    """CPU seconds of a save_batch of WRITES new intakes into copies of `source`: "facts" as it
    is, "bare" without the facts table's indexes, "0006" bare plus migration 0006's expression
    indexes. The same batches, in rotating order, so the growing files and the machine's moods
    treat all alike. (CPU time, not wall time: the batch's one fsync varies far more than what
    the indexes add.)"""
    names = ("facts", "bare", "0006")
    paths = {name: tmp / f"{name}.db" for name in names}
    for path in paths.values():
        shutil.copyfile(source, path)
    for name in ("bare", "0006"):
        conn = sqlite3.connect(paths[name])
        for index in summary.PAIRS.values():
            conn.execute(f"DROP INDEX {index}")
        if name == "0006":
            for index, columns in migrations.INTAKE_INDEXES.items():
                conn.execute(f"CREATE INDEX {index} ON records ({', '.join(columns)})"
                             " WHERE form = 'intake' AND deleted = 0")
        conn.close()
    gen, rng, definition = IntakeGenerator(seed, today), random.Random(seed), schema.get("intake")
    spent: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        answers = [clean(definition, gen.raw(), today) for _ in range(WRITES)]
        for name in names[run % 3:] + names[:run % 3]:
            db = storage_db.connect(paths[name])
            subs = [records.Submission(str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                       definition, a, "POST-1", "d", "u") for a in answers]
            started = time.process_time()
            records.save_batch(db, subs)
            spent[name].append(time.process_time() - started)
            db.close()
    return {name: statistics.median(times) for name, times in spent.items()}


def _ms(pair: tuple[float, float]) -> str:
    return " / ".join(f"{x * 1000:.1f}" if x < 0.01 else f"{x * 1000:.0f}" for x in pair)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--courses", type=int, default=60)
    parser.add_argument("--gets", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20251121)
    parser.add_argument("--dir", default=None,
                        help="parent of the temporary directory (the disk under test)")
    args = parser.parse_args(argv)
    med = statistics.median
    commit, today = revision(), date.today()
    with tempfile.TemporaryDirectory(prefix="fieldapp-bench-", dir=args.dir) as tmp:
        tmp_path = Path(tmp)
        _log(f"working in {tmp_path}")
        instances = {}
        for size in args.sizes:
            _log(f"[{size:,}] preloading...")
            inst = build_instance(tmp_path, size, args.posts, args.courses, args.seed)
            inst.db_mb = Path(inst.app.config["DATABASE"]).stat().st_size / 1e6
            _log(f"[{size:,}] preloaded in {inst.preload_s:.0f} s ({inst.db_mb:.0f} MB): "
                 f"{json.dumps(inst.counts)}")
            get_page(inst, 2)  # warm-up
            instances[size] = inst
        runs: dict[int, list] = {size: [] for size in args.sizes}
        for run in range(args.runs):
            for size, inst in instances.items():
                page = medians(get_page(inst, args.gets))
                db = storage_db.connect(inst.app.config["DATABASE"])
                reads = medians(timed(lambda db=db: summary.collect(db, today), args.gets))
                count = medians(timed(lambda db=db: db.execute(
                    "SELECT count(*) FROM records WHERE form = 'intake' AND deleted = 0"
                ).fetchone(), args.gets))
                indexed = medians(timed(lambda db=db: db.execute(
                    "SELECT count(*) FROM records INDEXED BY records_live"
                    " WHERE form = 'intake' AND deleted = 0").fetchone(), args.gets))
                if run == 0:  # the answers agree, once
                    counted = summary.intakes(db)
                    raw = from_json(db)
                    for (month, post), n in counted.pair("month", "post").items():
                        if raw["month", month, post] != n:
                            raise AssertionError("the facts table and the JSON disagree")
                json_pass = medians(timed(lambda db=db: from_json(db), 3))
                db.close()
                runs[size].append((page, reads, count, json_pass, indexed))
                _log(f"[{size:,}] run {run + 1} (wall / CPU ms): page {_ms(page)}, reads "
                     f"{_ms(reads)}, count(*) {_ms(count)}, from an index {_ms(indexed)}, "
                     f"from JSON {_ms(json_pass)}")

        # What the indexes cost a write, on a copy of the smallest instance's database.
        small = instances[min(args.sizes)]
        cost = write_cost(Path(small.app.config["DATABASE"]), tmp_path, max(args.runs, 6),
                          args.seed + 7, today)

    print(f"Central summary benchmark, {today.isoformat()}: {args.gets} GETs per run, median of "
          f"{args.runs} runs; {args.posts} posts, {args.courses} courses of {PEOPLE} people and "
          f"{SESSIONS} sessions. Each cell: wall-clock ms / CPU ms of this process.\n")
    print("| intakes (live) | page | reads alone | bare count(*) | page ÷ count(*), CPU "
          "| count(*) from an index only | the same counts from the JSON | DB MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, inst in instances.items():
        r = runs[size]
        page, reads, count, json_pass, indexed = (
            (med(x[i][0] for x in r), med(x[i][1] for x in r)) for i in range(5))
        print(f"| {size:,} ({inst.live:,}) | {_ms(page)} | {_ms(reads)} | {_ms(count)} | "
              f"{page[1] / count[1]:.1f}× | {_ms(indexed)} | {_ms(json_pass)} | "
              f"{inst.db_mb:.0f} |")
    print()
    bare = cost["bare"]
    print(f"save_batch of {WRITES:,} intakes, CPU time: {bare * 1000:.0f} ms with the facts table's "
          f"indexes dropped; {cost['facts'] * 1000:.0f} ms as it is "
          f"({(cost['facts'] - bare) / WRITES * 1e6:+.0f} µs per intake, {cost['facts'] / bare - 1:+.0%}); "
          f"{cost['0006'] * 1000:.0f} ms with migration 0006's expression indexes instead "
          f"({(cost['0006'] - bare) / WRITES * 1e6:+.0f} µs per intake, {cost['0006'] / bare - 1:+.0%})")
    print()
    for size, inst in instances.items():
        print(f"- {size:,}: {json.dumps(inst.counts)}; preload {inst.preload_s:.0f} s; per run, "
              "page · reads · count(*), wall/CPU ms: " + "; ".join(
                  f"{_ms(p)} · {_ms(q)} · {_ms(c)}" for p, q, c, *_ in runs[size]))
    print(f"\nfieldapp commit: {commit}")
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
