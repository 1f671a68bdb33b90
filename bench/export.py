"""Benchmark: exporting intake records to CSV, XLSX and JSON Lines, against the bare writers.

    python -m bench.export [--sizes 10000 100000] [--runs 3] [--formats csv xlsx jsonl]

Setup (not timed): the largest size of realistic intake records (bench/intake.py's generator,
every answer set validated) goes into a temporary SQLite file shaped like central's records
(one row per record, the answers as JSON). A size of N reads its first N rows.

Each measurement runs in a fresh child process (`python -m bench.export --child SPEC`), so its
peak memory is its own: the child reports its peak resident set size (`ru_maxrss`, which
includes the interpreter and the imports) and the wall time of the timed part.

* **fieldapp**: stream the rows from SQLite (`json.loads` of each record's answers), through
  `export.rows` and `writers.write` (data file and codebook), to a file on disk. This is the
  whole export but the web request: what a background job does.
* **raw writer**: the same cells, read and converted *before* the clock starts and held in
  memory (so its peak memory is not comparable), written by the bare library: `csv.writer` (UTF-8
  with BOM) for CSV, `xlsxwriter.Workbook(..., {"constant_memory": True})` with `write_row` for
  XLSX, `json.dumps` per line for JSON Lines. The cells are the ones fieldapp writes: neutralised
  for CSV and XLSX, ISO dates as `date` objects for XLSX.

Runs interleave sizes, formats and the two writers, so a slow spell of the shared machine hits
them alike. The table gives the median of the runs; ratio = fieldapp time ÷ raw-writer time.
Each child also reports its CPU time (`time.process_time`) for the timed part: on a shared,
loaded machine the wall time includes waiting for a core, the CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

FORMATS = ("csv", "xlsx", "jsonl")
VARIANTS = {
    # name: export.Options keyword arguments
    "codes": {},
    "both-es-pseudo": {"labels": "both", "lang": "es", "headers": "labels",
                       "profile": "pseudonymised", "key": b"bench-key-0123456789abcdef"},
}
POSTS = [f"POST-{i}" for i in range(1, 7)]


# ------------------------------------------------------------------ setup: a records file


def build_database(path: Path, size: int, seed: int) -> float:
    """`size` realistic intake records in a table shaped like central's; returns seconds taken."""
    from bench.intake import IntakeGenerator, clean
    from fieldapp.forms import schema

    started = time.perf_counter()
    definition, today = schema.get("intake"), date.today()
    gen, rng = IntakeGenerator(seed, today), random.Random(seed + 1)
    conn = sqlite3.connect(str(path))
    conn.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, uuid TEXT, form TEXT, form_version INTEGER,"
        " post TEXT, device TEXT, created_by TEXT, created_at TEXT, updated_at TEXT,"
        " revision INTEGER, deleted INTEGER, person TEXT, parent TEXT, received_at TEXT, data TEXT)")
    batch = []
    for _ in range(size):
        answers = clean(definition, gen.raw(), today)
        post = rng.choice(POSTS)
        day = date.fromisoformat(answers["interview_date"])
        created = datetime(day.year, day.month, day.day, rng.randint(12, 22), rng.randint(0, 59),
                           rng.randint(0, 59), tzinfo=UTC)
        revision = rng.choices([1, 2, 3], [85, 12, 3])[0]
        updated = created + timedelta(hours=rng.randint(0, 48) * (revision - 1))
        received = updated + timedelta(hours=rng.randint(1, 240))
        batch.append((
            str(uuid.UUID(int=rng.getrandbits(128), version=4)), "intake", 1, post,
            f"{post.lower()}-laptop-{rng.randint(1, 2)}", f"officer.{post[-1]}{rng.randint(1, 4)}",
            _iso(created), _iso(updated), revision, 0,
            str(uuid.UUID(int=rng.getrandbits(128), version=4)) if rng.random() < 0.05 else "",
            "", _iso(received), json.dumps(answers, ensure_ascii=False, sort_keys=True),
        ))
        if len(batch) == 5000:
            conn.executemany(f"INSERT INTO records VALUES (NULL, {', '.join('?' * 14)})", batch)
            batch = []
    if batch:
        conn.executemany(f"INSERT INTO records VALUES (NULL, {', '.join('?' * 14)})", batch)
    conn.commit()
    conn.close()
    return time.perf_counter() - started


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def records(db: Path, size: int):
    """The first `size` records as storage gives them: dicts with the answers decoded."""
    conn = sqlite3.connect(str(db))
    loads = json.loads
    try:
        cursor = conn.execute("SELECT * FROM records ORDER BY id LIMIT ?", [size])
        names = [d[0] for d in cursor.description]
        names[-1] = "answers"
        for row in cursor:
            record = dict(zip(names, row, strict=True))
            record["answers"] = loads(record["answers"])
            yield record
    finally:
        conn.close()


# ------------------------------------------------------------------ one measurement (child)


def child(spec: dict) -> dict:
    from fieldapp.forms import export, schema, writers

    db, size, fmt, out = Path(spec["db"]), spec["size"], spec["format"], Path(spec["out"])
    options = export.Options(**{k: (v.encode() if k == "key" else v)
                                for k, v in spec["options"].items()})
    definition = schema.get("intake")
    columns = export.columns(definition, options)
    if spec["writer"] == "fieldapp":
        started, cpu = time.perf_counter(), time.process_time()
        n, paths = writers.write(fmt, out, columns, export.rows(definition, records(db, size), options),
                                 codebook=export.codebook(definition, options))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        written = sum(p.stat().st_size for p in paths)
    else:
        cells = [list(row) for row in export.rows(definition, records(db, size), options)]
        if fmt != "jsonl":
            cells = [[export.neutralise(v) for v in row] for row in cells]
        if fmt == "xlsx":
            dates = [i for i, c in enumerate(columns) if c.type == "date"]
            for row in cells:
                for i in dates:
                    if row[i]:
                        row[i] = date.fromisoformat(row[i])
        started, cpu = time.perf_counter(), time.process_time()
        n = RAW_WRITERS[fmt](out, columns, cells)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        written = out.stat().st_size
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rows": n, "seconds": seconds, "cpu": cpu, "peak_mb": peak_kb / 1024, "bytes": written}


def raw_csv(out: Path, columns, cells) -> int:
    import csv
    with open(out, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([c.header for c in columns])
        writer.writerows(cells)
    return len(cells)


def raw_xlsx(out: Path, columns, cells) -> int:
    import xlsxwriter
    workbook = xlsxwriter.Workbook(str(out), {"constant_memory": True})
    sheet = workbook.add_worksheet("data")
    sheet.write_row(0, 0, [c.header for c in columns])
    for r, row in enumerate(cells, start=1):
        sheet.write_row(r, 0, row)
    workbook.close()
    return len(cells)


def raw_jsonl(out: Path, columns, cells) -> int:
    names = [c.name for c in columns]
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for row in cells:
            f.write(json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False))
            f.write("\n")
    return len(cells)


RAW_WRITERS = {"csv": raw_csv, "xlsx": raw_xlsx, "jsonl": raw_jsonl}
RAW_NAMES = {"csv": "csv module", "xlsx": "xlsxwriter constant_memory", "jsonl": "json module"}


def imports_only() -> dict:
    from fieldapp.forms import export, schema, writers  # noqa: F401
    export.columns(schema.get("intake"), export.Options())
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(spec: dict) -> dict:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "bench.export", "--child", json.dumps(spec)],
                          cwd=root, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=20251121)
    parser.add_argument("--dir", default=None, help="parent of the temporary directory (the disk under test)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(imports_only() if spec.get("imports_only") else child(spec)))
        return 0

    from bench.intake import machine, revision

    commit, med = revision(), statistics.median
    with tempfile.TemporaryDirectory(prefix="fieldapp-bench-export-", dir=args.dir) as tmp:
        tmp_path = Path(tmp)
        db = tmp_path / "records.db"
        _log(f"generating {max(args.sizes):,} intake records in {db} ...")
        setup_s = build_database(db, max(args.sizes), args.seed)
        _log(f"generated in {setup_s:.0f} s ({db.stat().st_size / 1e6:.0f} MB)")
        base_mb = med(run_child({"imports_only": True})["peak_mb"] for _ in range(3))
        results: dict[tuple, list] = {}
        for run in range(args.runs):
            for variant in args.variants:
                options = {k: (v.decode() if isinstance(v, bytes) else v)
                           for k, v in VARIANTS[variant].items()}
                for size in args.sizes:
                    for fmt in args.formats:
                        for writer in ("fieldapp", "raw"):
                            out = tmp_path / f"out-{writer}{'.' + fmt}"
                            got = run_child({"db": str(db), "size": size, "format": fmt,
                                             "out": str(out), "writer": writer, "options": options})
                            if got["rows"] != size:
                                raise AssertionError(f"{writer} wrote {got['rows']} rows, not {size}")
                            results.setdefault((variant, size, fmt, writer), []).append(got)
                            _log(f"run {run + 1} {variant} {size:,} {fmt} {writer}: "
                                 f"{got['seconds']:.2f} s, {size / got['seconds']:,.0f} rows/s, "
                                 f"peak {got['peak_mb']:.0f} MB")

    print(f"Export benchmark, {date.today().isoformat()}: intake records (form intake-1, "
          f"{_width()} columns in the codes variant), median of {args.runs} runs, each in its own "
          f"process.\n")
    print("| variant | records | format | fieldapp s | fieldapp rows/s | fieldapp rows/s of CPU "
          "| raw writer | raw rows/s | ratio (time) | ratio (CPU) | fieldapp peak RSS MB | file MB |")
    print("|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    summary = {}
    for variant in args.variants:
        for size in args.sizes:
            for fmt in args.formats:
                ours = results[(variant, size, fmt, "fieldapp")]
                raw = results[(variant, size, fmt, "raw")]
                s, r = med(x["seconds"] for x in ours), med(x["seconds"] for x in raw)
                sc, rc = med(x["cpu"] for x in ours), med(x["cpu"] for x in raw)
                peak = med(x["peak_mb"] for x in ours)
                summary[(variant, size, fmt)] = (s, r, peak, sc, rc)
                print(f"| {variant} | {size:,} | {fmt} | {s:.2f} | {size / s:,.0f} | {size / sc:,.0f} "
                      f"| {RAW_NAMES[fmt]} | {size / r:,.0f} | {s / r:.2f}× | {sc / rc:.2f}× | {peak:.0f} | "
                      f"{med(x['bytes'] for x in ours) / 1e6:.1f} |")
    print()
    small, large = min(args.sizes), max(args.sizes)
    for variant in args.variants:
        for fmt in args.formats:
            s, r, peak, sc, rc = summary[(variant, large, fmt)]
            verdicts = []
            if fmt == "csv":
                verdicts.append(f"CSV {large / s:,.0f} rows/s, {large / sc:,.0f} per CPU second "
                                f"(goal ≥ 20,000: {'met' if large / s >= 20_000 else 'MISSED'})")
            if fmt == "xlsx":
                verdicts.append(f"XLSX at {r / s:.0%} of bare xlsxwriter's speed, {rc / sc:.0%} in CPU "
                                f"time (goal ≥ 80%: {'met' if r / s >= 0.8 else 'MISSED'})")
            if small != large:
                growth = peak / summary[(variant, small, fmt)][2]
                verdicts.append(f"peak memory at {large:,} / at {small:,} = {growth:.2f}× (goal ≤ 1.1×: "
                                f"{'met' if growth <= 1.1 else 'MISSED'})")
            print(f"- {variant}, {fmt}: " + "; ".join(verdicts))
    print()
    print(f"Peak RSS of a child that only imports fieldapp's export modules: {base_mb:.0f} MB.")
    print(f"Setup: {max(args.sizes):,} records generated and stored in {setup_s:.0f} s (not timed).")
    print(f"fieldapp commit: {commit}")
    print(f"machine: {machine()}")
    return 0


def _width() -> int:
    from fieldapp.forms import export, schema
    return len(export.columns(schema.get("intake"), export.Options()))


if __name__ == "__main__":
    sys.exit(main())
