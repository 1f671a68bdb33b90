"""Benchmark: sync from a field server to a real central process, against a bare Flask POST.

    python -m bench.sync [--records 10000] [--big 100000] [--changes 100] [--idle 5] [--runs 5]
    python -m bench.sync --profile      # where the time goes: the stages alone, then cProfile

(`python bench/sync.py` works too.) Central is a real `fieldapp serve` process (waitress, 8
threads) on 127.0.0.1, set up with `fieldapp init --central` as tests/sync/harness.py does; the
field server is a SQLite database plus `sync.client.run(db, central, batch_size=500)` in this
process, which is what `fieldapp sync` does.

Setup (not timed): a field database of `--records` realistic intake records (bench/intake.py's
generator, every answer set through `validate.validate`), stored with `records.save_batch` 5,000
per transaction; a second field database of `--big` records at another post, enrolled at a "big"
central server and synced once (that first sync is timed too, for information); and a bare
Flask app served by waitress in a child process (see `raw_app`).

Then, `--runs` times, so that a slow spell of this shared machine hits every scenario:

* raw limit: the same gzip-compressed push bodies the client sends (`--batch` records each),
  POSTed with one `requests.Session` to the bare app, which gunzips and parses each body and
  inserts its records with one `executemany` in one transaction into a fresh database
  (journal_mode=WAL, synchronous=FULL, a connection kept per serving thread as fieldapp's);
* first sync: a fresh central (`fieldapp init --central`, `fieldapp serve`), warmed up by a
  20-record sync of another post, and a fresh copy of the field database (same records, same
  uuids), enrolled with a code from `sync.server.register`; `client.run` is timed;
* incremental: `--changes` records of the big post, picked at random, edited on its field (a
  follow-up added to the notes: a new revision each, untimed), then `client.run` timed, central
  holding `--big` records;
* nothing to send: `--idle` syncs of each field, alternately at the fresh central (holding
  `--records` + 20) and at the big one (holding `--big`).

Before every timed part the disk is left to catch up (`os.sync()`), untimed.

Bytes on the wire are the HTTP bodies as sent and received (gzip where the protocol compresses:
pushes up, answers over 1 KB down), as `client.Central` counts them; the HTTP headers are counted
separately from the requests made (request line, headers as sent, status line, headers as
received). Every number is the median over the runs (over all the idle syncs for those).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import io
import json
import os
import pstats
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as `python bench/sync.py`: this file would shadow the `sync` package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import orjson  # noqa: E402
import requests  # noqa: E402

from bench.intake import (  # noqa: E402
    OFFICER,
    PRELOAD_CHUNK,
    IntakeGenerator,
    _log,
    clean,
    machine,
)
from fieldapp.forms import schema  # noqa: E402
from fieldapp.forms.builder import answers_as_formdata  # noqa: E402
from fieldapp.forms.validate import validate  # noqa: E402
from fieldapp.storage import db as storage_db  # noqa: E402
from fieldapp.storage import migrations, records  # noqa: E402
from fieldapp.storage import sync as store  # noqa: E402
from sync import client, protocol  # noqa: E402
from tests.sync.harness import Central, free_port  # noqa: E402

POST, BIG_POST, WARMUP_POST = "POST-1", "POST-BIG", "WARMUP"
WARMUP_RECORDS = 20
GOAL_RATE = 5_000  # records/s, first sync
GOAL_BYTES = 300  # bytes on the wire per record
GOAL_INCREMENTAL_MS = 50
GOAL_IDLE_REQUESTS = 3
NOISE = 1.10  # "no slower": idle sync at --big within 10 % of the one at --records

FOLLOW_UPS = [
    "Seguimiento: se comunicó por WhatsApp, sigue en el albergue.",
    "Seguimiento: consiguió trabajo temporal en una finca; pide el curso de soldadura.",
    "Seguimiento: recibió el PPT; se actualiza su situación migratoria en la próxima visita.",
    "Seguimiento: continuó hacia Lima con su familia.",
    "Seguimiento: referida a Profamilia para control prenatal.",
]

# ------------------------------------------------------------------ field databases


def make_field_db(path: Path, post: str, n: int, seed: int) -> list[str]:
    """A migrated field database holding n intake records of `post`; their uuids. Closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = storage_db.connect(path)
    migrations.apply(db)
    definition, today = schema.get("intake"), date.today()
    gen, id_rng = IntakeGenerator(seed, today), random.Random(seed + 1)
    uuids: list[str] = []
    while len(uuids) < n:
        subs = [records.Submission(
            uuid=str(uuidlib.UUID(int=id_rng.getrandbits(128), version=4)), definition=definition,
            answers=clean(definition, gen.raw(), today), post=post, device="field-" + post,
            user=OFFICER,
        ) for _ in range(min(PRELOAD_CHUNK, n - len(uuids)))]
        decisions = records.save_batch(db, subs)
        if any(d.outcome is not records.Outcome.STORED for d in decisions):
            raise AssertionError("preload: a record was not stored")
        uuids.extend(s.uuid for s in subs)
    db.close()  # the last connection: checkpoints and removes the WAL, so the file can be copied
    return uuids


def edit_records(db, uuids: list[str], post: str, stamp: str) -> None:
    """A new revision of each record, as an officer's correction: a follow-up added to the notes."""
    definition, today = schema.get("intake"), date.today()
    subs = []
    for i, u in enumerate(uuids):
        record = records.get(db, u)
        notes = "\n".join(filter(None, [record["answers"].get("notes", ""),
                                        f"{FOLLOW_UPS[i % len(FOLLOW_UPS)]} ({stamp})"]))
        result = validate(definition, answers_as_formdata({**record["answers"], "notes": notes}), today)
        if not result.ok:
            raise AssertionError(f"edited answers are invalid: {result.errors}")
        subs.append(records.Submission(
            uuid=u, definition=definition, answers=result.answers, post=post,
            device="field-" + post, user=OFFICER, base_revision=record["revision"]))
    decisions = records.save_batch(db, subs)
    if any(d.outcome is not records.Outcome.STORED for d in decisions):
        raise AssertionError("edit: a revision was not stored")


def enrolled(path: Path, central: Central, post: str):
    db = storage_db.connect(path)
    client.enrol(db, client.Settings(url=central.url), central.register(post), post)
    return db


# ------------------------------------------------------------------ measuring one sync


@dataclass
class Sync:
    seconds: float
    push_seconds: float  # until the pull started
    requests: int
    body_bytes: int
    header_bytes: int
    counts: dict
    pulled: int
    central_cpu: float = 0.0  # seconds of CPU the central process used meanwhile
    client_cpu: float = 0.0
    endpoints: dict = field(default_factory=dict)  # seconds waiting for central's answers, by endpoint
    header_bytes_sent: int = 0
    body_bytes_sent: int = 0
    central_written: int = 0  # bytes central's process wrote to files meanwhile (WAL, database)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _written(pid: int) -> int:
    """Bytes a process has written with write(2) and the like, from /proc (0 where there is none)."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("wchar:")), 0)


def _header_bytes(response: requests.Response) -> tuple[int, int]:
    """The HTTP/1.1 heads of a request and of its answer, as they crossed the wire."""
    req = response.request
    host = response.url.split("/")[2]
    sent = len(f"{req.method} {req.path_url} HTTP/1.1\r\nHost: {host}\r\n".encode())
    sent += sum(len(f"{k}: {v}\r\n".encode()) for k, v in req.headers.items()) + 2
    got = len(f"HTTP/1.1 {response.status_code} {response.reason}\r\n".encode())
    got += sum(len(f"{k}: {v}\r\n".encode()) for k, v in response.raw.headers.items()) + 2
    return sent, got


def timed_sync(db, batch: int, pid: int | None = None) -> Sync:
    central = client.Central(client.settings_for(db, {}))
    heads = [0, 0]
    by_endpoint: dict[str, float] = {}

    def on_response(r: requests.Response, *args, **kwargs) -> None:
        sent, got = _header_bytes(r)
        heads[0] += sent
        heads[1] += got
        endpoint = r.request.path_url.rsplit("/", 1)[-1]
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0.0) + r.elapsed.total_seconds()

    central.session.hooks["response"].append(on_response)
    pulled_at: list[float] = []

    def on_progress(p: client.Progress) -> None:
        if p.phase == "pull" and not pulled_at:
            pulled_at.append(time.perf_counter())

    cpu0, ccpu0 = _cpu_seconds(pid) if pid else 0.0, time.process_time()
    written0 = _written(pid) if pid else 0
    started = time.perf_counter()
    progress = client.run(db, central, batch_size=batch, on_progress=on_progress)
    elapsed = time.perf_counter() - started
    ccpu = time.process_time() - ccpu0
    cpu = (_cpu_seconds(pid) - cpu0) if pid else 0.0
    written = (_written(pid) - written0) if pid else 0
    if not progress.receipt or not progress.receipt["matches"]:
        raise AssertionError(f"the receipt does not match: {progress.receipt}")
    return Sync(elapsed, (pulled_at[0] - started) if pulled_at else elapsed, progress.requests,
                progress.bytes_sent + progress.bytes_received, sum(heads), dict(progress.counts),
                progress.pulled, cpu, ccpu, by_endpoint, heads[0], progress.bytes_sent, written)


def expect(s: Sync, stored: int, what: str) -> Sync:
    others = {k: v for k, v in s.counts.items() if k != "stored" and v}
    if s.counts["stored"] != stored or others or s.pulled:
        raise AssertionError(f"{what}: expected {stored} stored and nothing else, got {s.counts}, "
                             f"pulled {s.pulled}")
    return s


# ------------------------------------------------------------------ the raw limit


def raw_app(directory: Path):
    """A bare Flask app: gunzip the body, parse the JSON, insert every record in one transaction."""
    from flask import Flask, jsonify, request

    app = Flask("raw")
    kept = threading.local()

    def connect(name: str) -> sqlite3.Connection:
        """The serving thread's connection, kept from request to request as fieldapp's are."""
        conns = kept.__dict__.setdefault("conns", {})
        if name not in conns:
            conns[name] = sqlite3.connect(str(directory / f"{name}.db"), isolation_level=None)
            conns[name].execute("PRAGMA journal_mode = WAL")
            conns[name].execute("PRAGMA synchronous = FULL")
        return conns[name]

    @app.post("/<name>/create")
    def create(name):
        connect(name).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
                              " hash TEXT NOT NULL, data TEXT NOT NULL)")
        return jsonify(ok=True)

    @app.post("/<name>/push")
    def push(name):
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        items = orjson.loads(body)["records"]  # the JSON library fieldapp uses, as fast
        conn = connect(name)
        with conn:  # BEGIN ... COMMIT, or ROLLBACK on an error
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO t (uuid, hash, data) VALUES (?, ?, ?)", [
                (r["uuid"], r["hash"], orjson.dumps(r["answers"], option=orjson.OPT_SORT_KEYS).decode())
                for r in items])
        return jsonify(ok=True, stored=len(items))

    return app


def serve_raw(port: int, directory: str) -> None:
    import waitress

    waitress.serve(raw_app(Path(directory)), host="127.0.0.1", port=port, threads=8, ident="raw")


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the raw server did not start")
        time.sleep(0.05)


def push_bodies(path: Path, batch: int) -> list[bytes]:
    """The push bodies a first sync of this field database sends, gzip-compressed as sent."""
    db = storage_db.connect(path)
    sync_id, bodies, checkpoint = str(uuidlib.uuid4()), [], 0
    while rows := store.pending(db, checkpoint, batch):
        bodies.append(protocol.encode({"sync": sync_id, "batch": client.batch_id(checkpoint, rows),
                                       "records": [r["item"] for r in rows]}))
        checkpoint = rows[-1]["seq"]
    db.close()
    return bodies


def raw_run(url: str, name: str, bodies: list[bytes], n: int) -> float:
    with requests.Session() as session:
        session.headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip",
                                "Accept-Encoding": "gzip"})
        session.post(f"{url}/{name}/create").raise_for_status()
        started = time.perf_counter()
        stored = 0
        for body in bodies:
            response = session.post(f"{url}/{name}/push", data=body)
            response.raise_for_status()
            stored += response.json()["stored"]
        elapsed = time.perf_counter() - started
    if stored != n:
        raise AssertionError(f"raw: stored {stored}, expected {n}")
    return elapsed


# ------------------------------------------------------------------ profiling pass


def profile(tmp: Path, template: Path, args) -> None:
    """A first sync, an incremental sync and syncs with nothing to send, into a central served in
    this process (waitress, one thread), with cProfile on the server's requests and, for the first
    sync, on the client. The profiler's clock is the wall clock: time spent waiting for the disk
    (fsync in COMMIT, the checkpoint when a connection closes) shows in the SQLite calls."""
    import waitress.server

    from fieldapp import create_app

    central = Central(tmp / "central-profile")
    central.port = free_port()
    central.url = f"http://127.0.0.1:{central.port}"
    app = create_app(instance=central.instance)
    current = [cProfile.Profile()]

    def profiled(environ, start_response):
        current[0].enable()
        try:
            return list(app(environ, start_response))
        finally:
            current[0].disable()

    server = waitress.server.create_server(profiled, host="127.0.0.1", port=central.port, threads=1)
    threading.Thread(target=server.run, daemon=True).start()
    warm_path = tmp / "profile-warmup.db"
    make_field_db(warm_path, WARMUP_POST, WARMUP_RECORDS, 99)
    warm = enrolled(warm_path, central, WARMUP_POST)
    timed_sync(warm, args.batch)  # not profiled
    warm.close()
    path = tmp / "profile-field.db"
    shutil.copyfile(template, path)
    db = enrolled(path, central, POST)
    editable = [u for (u,) in db.execute(
        "SELECT uuid FROM records WHERE json_extract(data, '$.consent') = 'given' ORDER BY id")]

    def one(title: str, prepare=lambda: None, times: int = 1, with_client: bool = False) -> None:
        prepare()
        settle()
        current[0] = server_prof = cProfile.Profile()
        client_prof = cProfile.Profile()
        syncs = []
        for _ in range(times):
            if with_client:
                client_prof.enable()
            syncs.append(timed_sync(db, args.batch))
            client_prof.disable()
        s = syncs[len(syncs) // 2]
        print(f"## {title}: {s.seconds * 1000:,.1f} ms (profiled), {s.requests} requests, "
              f"stored {s.counts['stored']:,}; {times} sync(s) profiled\n")
        listings = [("central, every request", server_prof, "tottime"),
                    ("central, every request", server_prof, "cumulative")]
        if with_client:
            listings.append(("field (client; includes waiting for central)", client_prof, "tottime"))
        for who, prof, order in listings:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
            print(f"### {who}, by {order}\n")
            print(out.getvalue().split("\n", 4)[-1].strip("\n") + "\n")

    one(f"first sync of {args.records:,} records", with_client=True)
    rng = random.Random(args.seed + 11)
    one(f"incremental sync of {args.changes} changed records",
        lambda: edit_records(db, rng.sample(editable, args.changes), POST, "profile"))
    one("sync with nothing to send", times=args.idle)
    db.close()
    server.close()


def stages(tmp: Path, template: Path, args) -> None:
    """The first sync's stages timed alone, without HTTP and without a profiler: what the client
    does (read the feed, encode) and what central does per batch (decode, check = shape + hash +
    form validator, apply_batch = the SQL transaction), wall clock and CPU time of this process."""
    from datetime import timedelta

    from sync import server

    path = tmp / "stages-field.db"
    shutil.copyfile(template, path)
    field_db = storage_db.connect(path)
    central_db = storage_db.connect(tmp / "stages-central.db")
    migrations.apply(central_db)
    device, _ = server.register(central_db, post=POST, name="stages", by="bench")
    today = date.today() + timedelta(days=1)
    spent: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def clock(stage: str):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        total = spent.setdefault(stage, [0.0, 0.0])
        total[0] += time.perf_counter() - wall
        total[1] += time.process_time() - cpu

    checkpoint, n = 0, 0
    settle()
    while True:
        with clock("field: store.pending (read the feed, parse the answers)"):
            rows = store.pending(field_db, checkpoint, args.batch)
        if not rows:
            break
        batch = client.batch_id(checkpoint, rows)
        with clock("field: protocol.encode (json + gzip)"):
            body = protocol.encode({"sync": "stages", "batch": batch,
                                    "records": [r["item"] for r in rows]})
        with clock("central: protocol.decode (gunzip + json)"):
            payload = protocol.decode(body, gzipped=True)
        with clock("central: check (protocol shape, hash, form validator)"):
            items = [server.check(raw, POST, device, today) for raw in payload["records"]]
        with clock("central: store.apply_batch (one transaction)"):
            results = store.apply_batch(central_db, device, batch, "stages", items, server.valid_merge)
        with clock("central: protocol.encode of the answer"):
            protocol.encode({"ok": True, "batch": batch, "results": results})
        if any(r["outcome"] != "stored" for r in results):
            raise AssertionError("stages: a record was not stored")
        checkpoint, n = rows[-1]["seq"], n + len(rows)
    field_db.close()
    central_db.close()
    print(f"## the first sync's stages alone ({n:,} records, batches of {args.batch}, no HTTP, "
          f"no profiler, one long-lived connection each side)\n")
    print("| stage | wall s | CPU s | µs per record (wall) |")
    print("|---|---:|---:|---:|")
    for stage, (wall, cpu) in spent.items():
        print(f"| {stage} | {wall:.2f} | {cpu:.2f} | {wall / n * 1e6:.0f} |")
    print()


# ------------------------------------------------------------------ main


@dataclass
class Runs:
    raw: list[float] = field(default_factory=list)
    first: list[Sync] = field(default_factory=list)
    idle_small: list[Sync] = field(default_factory=list)
    incremental: list[Sync] = field(default_factory=list)
    idle_big: list[Sync] = field(default_factory=list)


def settle() -> None:
    """Let the disk catch up before a timed part: the setup writes hundreds of MB, and while the
    kernel writes them back every fsync of the timed part waits behind them."""
    os.sync()


def revision() -> str:
    """The checkout's commit, marked dirty if fieldapp/ or sync/ has uncommitted changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fieldapp", "sync"], cwd=repo,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (with uncommitted changes)" if dirty else "")


def median(values) -> float:
    return statistics.median(list(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="records of the first sync")
    parser.add_argument("--big", type=int, default=100_000, help="records central holds for the "
                        "incremental sync")
    parser.add_argument("--changes", type=int, default=100, help="records of the incremental sync")
    parser.add_argument("--idle", type=int, default=5, help="syncs with nothing to send per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=protocol.DEFAULT_BATCH)
    parser.add_argument("--seed", type=int, default=20251121)
    parser.add_argument("--profile", action="store_true", help="a cProfile pass instead")
    parser.add_argument("--top", type=int, default=25, help="functions per profile listing")
    parser.add_argument("--dir", default=None,
                        help="parent of the temporary directory (the disk under test)")
    parser.add_argument("--raw-server", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_server:
        serve_raw(int(args.raw_server[0]), args.raw_server[1])
        return 0

    commit = revision()
    bench_started = time.perf_counter()
    args.load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fieldapp-bench-sync-", dir=args.dir) as tmp:
        tmp_path = Path(tmp)
        _log(f"working in {tmp_path}")
        template = tmp_path / "template" / "fieldapp.db"
        started = time.perf_counter()
        make_field_db(template, POST, args.records, args.seed)
        _log(f"field database of {args.records:,} records in {time.perf_counter() - started:.1f} s "
             f"({template.stat().st_size / 1e6:.0f} MB)")
        if args.profile:
            stages(tmp_path, template, args)
            profile(tmp_path, template, args)
            return 0
        return measure(args, tmp_path, template, commit, bench_started)


def measure(args, tmp_path: Path, template: Path, commit: str, bench_started: float) -> int:
    runs = Runs()
    raw_port, raw_dir = free_port(), tmp_path / "raw"
    raw_dir.mkdir()
    raw_proc = subprocess.Popen(
        [sys.executable, "-m", "bench.sync", "--raw-server", str(raw_port), str(raw_dir)],
        cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.DEVNULL)
    big = Central(tmp_path / "central-big")
    big_db = None
    try:
        wait_for_port(raw_port, raw_proc)
        raw_url = f"http://127.0.0.1:{raw_port}"
        bodies = push_bodies(template, args.batch)
        raw_run(raw_url, "warmup", bodies[:1], len(json.loads(gzip.decompress(bodies[0]))["records"]))

        started = time.perf_counter()
        big_path = tmp_path / "field-big" / "fieldapp.db"
        make_field_db(big_path, BIG_POST, args.big, args.seed + 7)
        _log(f"field database of {args.big:,} records in {time.perf_counter() - started:.1f} s "
             f"({big_path.stat().st_size / 1e6:.0f} MB)")
        big.start()
        big_db = enrolled(big_path, big, BIG_POST)
        settle()
        big_first = expect(timed_sync(big_db, args.batch, big.proc.pid), args.big, "big first sync")
        # Records whose notes can be edited (a refused consent keeps no notes).
        editable = [u for (u,) in big_db.execute(
            "SELECT uuid FROM records WHERE json_extract(data, '$.consent') = 'given' ORDER BY id")]
        _log(f"big central: first sync of {args.big:,} records in {big_first.seconds:.1f} s "
             f"({args.big / big_first.seconds:,.0f} records/s, {big_first.requests} requests)")
        edit_rng = random.Random(args.seed + 11)

        for run in range(args.runs):
            settle()
            raw_s = raw_run(raw_url, f"run{run}", bodies, args.records)
            runs.raw.append(raw_s)

            central = Central(tmp_path / f"central-{run}").start()
            db = None
            try:
                warm_path = tmp_path / f"warmup-{run}" / "fieldapp.db"
                make_field_db(warm_path, WARMUP_POST, WARMUP_RECORDS, args.seed + 100 + run)
                warm = enrolled(warm_path, central, WARMUP_POST)
                expect(timed_sync(warm, args.batch), WARMUP_RECORDS, "warm-up")
                warm.close()
                path = tmp_path / f"field-{run}" / "fieldapp.db"
                path.parent.mkdir()
                shutil.copyfile(template, path)
                db = enrolled(path, central, POST)
                settle()
                first = expect(timed_sync(db, args.batch, central.proc.pid), args.records,
                               "first sync")
                runs.first.append(first)

                edit_records(big_db, edit_rng.sample(editable, args.changes), BIG_POST,
                             f"run {run + 1}")
                settle()
                inc = expect(timed_sync(big_db, args.batch, big.proc.pid), args.changes,
                             "incremental")
                runs.incremental.append(inc)

                # Nothing to send, alternately at the two centrals, so a slow spell hits both.
                settle()
                idle, idle_big = [], []
                for _ in range(args.idle):
                    idle.append(expect(timed_sync(db, args.batch, central.proc.pid), 0, "idle"))
                    idle_big.append(expect(timed_sync(big_db, args.batch, big.proc.pid), 0, "idle"))
                runs.idle_small.extend(idle)
                runs.idle_big.extend(idle_big)
            finally:
                if db is not None:
                    db.close()
                central.stop()
            _log(f"run {run + 1}: raw {raw_s:.2f} s; first sync {first.seconds:.2f} s "
                 f"(push {first.push_seconds:.2f} s, {first.requests} requests); incremental "
                 f"{inc.seconds * 1000:.1f} ms; nothing to send at {args.records:,} "
                 f"{median(s.seconds for s in idle) * 1000:.1f} ms, at {args.big:,} "
                 f"{median(s.seconds for s in idle_big) * 1000:.1f} ms")
        held = big_db.execute("SELECT count(*) FROM records").fetchone()[0]
        used = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
        _log(f"temporary directory at the end: {used / 1e9:.2f} GB")
    finally:
        if big_db is not None:
            big_db.close()
        big.stop()
        raw_proc.terminate()
        raw_proc.wait(timeout=15)
    central_records = count_records(big.db_path)
    if central_records != args.big or held != args.big:
        raise AssertionError(f"big central holds {central_records} records, its field {held}; "
                             f"expected {args.big}")
    report(args, runs, big_first, commit, time.perf_counter() - bench_started)
    return 0


def count_records(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        conn.close()


def report(args, runs: Runs, big_first: Sync, commit: str, total_s: float) -> None:
    n, big, changes = args.records, args.big, args.changes
    raw_s = median(runs.raw)
    first_s = median(s.seconds for s in runs.first)
    push_s = median(s.push_seconds for s in runs.first)
    rate = n / first_s
    raw_rate = n / raw_s

    def row(label, held, syncs: list[Sync], records: int, ratio: str, goal: str, verdict: str):
        t = median(s.seconds for s in syncs)
        body = median(s.body_bytes for s in syncs)
        heads = median(s.header_bytes for s in syncs)
        reqs = median(s.requests for s in syncs)
        per = f"{body / records:,.0f}" if records else f"{body:,.0f} per sync"
        per_h = f"{(body + heads) / records:,.0f}" if records else f"{body + heads:,.0f} per sync"
        rec_s = f"{records / t:,.0f}" if records else "–"
        time_text = f"{t:.2f} s" if t >= 1 else f"{t * 1000:.1f} ms"
        return (f"| {label} | {held} | {time_text} | {rec_s} | {per} | {per_h} | {reqs:g} | {ratio} "
                f"| {goal} | {verdict} |")

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    first_bytes = median(s.body_bytes for s in runs.first) / n
    inc_s = median(s.seconds for s in runs.incremental)
    inc_bytes = median(s.body_bytes for s in runs.incremental) / changes
    idle_small_s = median(s.seconds for s in runs.idle_small)
    idle_big_s = median(s.seconds for s in runs.idle_big)
    idle_reqs = max(s.requests for s in runs.idle_small + runs.idle_big)
    growth = idle_big_s / idle_small_s
    rate_ok, bytes_ok = rate >= GOAL_RATE, max(first_bytes, inc_bytes) <= GOAL_BYTES
    print(f"Sync benchmark, {date.today().isoformat()}: median of {args.runs} runs "
          f"({args.runs * args.idle} syncs for the 'nothing to send' rows), batches of "
          f"{args.batch}.\n")
    print("| scenario | central holds | median time | records/s | bytes/record (bodies) "
          "| bytes/record (+ headers) | requests | ratio to raw | goal | verdict |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(row(f"first sync, {n:,} intakes", f"0 (+{WARMUP_RECORDS} warm-up)", runs.first, n,
              f"{first_s / raw_s:.1f}×",
              f"≥ {GOAL_RATE:,} records/s; ≤ {GOAL_BYTES} B/record",
              f"{verdict(rate >= GOAL_RATE)}; {verdict(first_bytes <= GOAL_BYTES)}"))
    print(f"| raw: bare Flask+waitress POST of the same {args.batch}-record "
          f"gzip bodies, executemany | – | {raw_s:.2f} s | {raw_rate:,.0f} | – | – "
          f"| {-(-n // args.batch)} | 1× | | |")
    print(row(f"incremental, {changes} changed", f"{big:,}", runs.incremental, changes, "",
              f"< {GOAL_INCREMENTAL_MS} ms; ≤ {GOAL_BYTES} B/record",
              f"{verdict(inc_s * 1000 < GOAL_INCREMENTAL_MS)}; {verdict(inc_bytes <= GOAL_BYTES)}"))
    print(row("nothing to send", f"{n + WARMUP_RECORDS:,}", runs.idle_small, 0, "",
              f"≤ {GOAL_IDLE_REQUESTS} requests", verdict(idle_reqs <= GOAL_IDLE_REQUESTS)))
    print(row("nothing to send", f"{big:,}", runs.idle_big, 0, "",
              f"≤ {GOAL_IDLE_REQUESTS} requests; no slower than at {n:,}",
              f"{verdict(idle_reqs <= GOAL_IDLE_REQUESTS)}; {verdict(growth <= NOISE)} "
              f"({growth:.2f}×)"))
    print(row(f"setup: first sync, {big:,} intakes (once)", "0", [big_first], big, "", "", ""))
    print()
    print(f"Goals: full sync {rate:,.0f} records/s (≥ {GOAL_RATE:,}: {verdict(rate_ok)}); "
          f"{first_bytes:.0f} and {inc_bytes:.0f} bytes/record on the wire, bodies "
          f"(≤ {GOAL_BYTES}: {verdict(bytes_ok)}); incremental {inc_s * 1000:.1f} ms "
          f"(< {GOAL_INCREMENTAL_MS} ms: {verdict(inc_s * 1000 < GOAL_INCREMENTAL_MS)}); nothing "
          f"to send: at most {idle_reqs} requests (≤ {GOAL_IDLE_REQUESTS}: "
          f"{verdict(idle_reqs <= GOAL_IDLE_REQUESTS)}), {idle_big_s * 1000:.1f} ms at {big:,} vs "
          f"{idle_small_s * 1000:.1f} ms at {n:,} = {growth:.2f}× (no slower, within "
          f"{(NOISE - 1) * 100:.0f} % noise: {verdict(growth <= NOISE)}).")
    print()
    f = runs.first
    print(f"First sync of {n:,}: push phase {push_s:.2f} s of {first_s:.2f} s "
          f"(pull and finish {(first_s - push_s) * 1000:.0f} ms); CPU during the sync: central "
          f"process {median(s.central_cpu for s in f):.2f} s, field (this process) "
          f"{median(s.client_cpu for s in f):.2f} s; central wrote "
          f"{median(s.central_written for s in f) / 1e6:.0f} MB to its files. Bodies: "
          f"{median(s.body_bytes_sent for s in f) / 1e6:.2f} MB up, "
          f"{median(s.body_bytes - s.body_bytes_sent for s in f) / 1e6:.2f} MB down; headers per "
          f"request {median(s.header_bytes_sent for s in f) / median(s.requests for s in f):.0f} B "
          f"up, {median(s.header_bytes - s.header_bytes_sent for s in f) / median(s.requests for s in f):.0f}"
          f" B down.")
    for label, syncs in ((f"First sync of {n:,}", runs.first), ("Incremental", runs.incremental),
                         (f"Nothing to send at {n:,}", runs.idle_small),
                         (f"Nothing to send at {big:,}", runs.idle_big)):
        waits = ", ".join(f"{e} {median(s.endpoints.get(e, 0) for s in syncs) * 1000:.1f} ms"
                          for e in ("push", "pull", "finish"))
        print(f"{label}: waiting for central's answers (requests' `elapsed`, summed per endpoint): "
              f"{waits}; CPU: central {median(s.central_cpu for s in syncs) * 1000:.0f} ms, field "
              f"{median(s.client_cpu for s in syncs) * 1000:.0f} ms; central wrote "
              f"{median(s.central_written for s in syncs) / 1e6:.2f} MB.")
    print()
    print("Per run:\n")
    for i in range(args.runs):
        a, inc = runs.first[i], runs.incremental[i]
        idle_s = runs.idle_small[i * args.idle:(i + 1) * args.idle]
        idle_b = runs.idle_big[i * args.idle:(i + 1) * args.idle]
        print(f"- run {i + 1}: raw {runs.raw[i]:.2f} s ({n / runs.raw[i]:,.0f}/s) · first sync "
              f"{a.seconds:.2f} s ({n / a.seconds:,.0f}/s, push {a.push_seconds:.2f} s) · idle at "
              f"{n:,} {median(s.seconds for s in idle_s) * 1000:.1f} ms · incremental "
              f"{inc.seconds * 1000:.1f} ms · idle at {big:,} "
              f"{median(s.seconds for s in idle_b) * 1000:.1f} ms")
    print()
    print(f"fieldapp commit: {commit}")
    print(f"machine: {machine()}")
    print(f"whole benchmark: {total_s:.0f} s; load average {args.load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    sys.exit(main())
