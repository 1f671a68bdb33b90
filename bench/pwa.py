"""Benchmark: the offline PWA — Lighthouse on the new-intake page, and the replay of a device's outbox.

    .venv/bin/python bench/pwa.py [--runs 3] [--records 500] [--skip-lighthouse] [--skip-replay]

Both parts run a real server (`tests/browser/conftest.py::running_server`: `fieldapp init`, one
officer, `fieldapp serve` on 127.0.0.1) and Debian's Chromium.

1. **Lighthouse** (bench/package.json pins it; `npm install --prefix bench` is run when
   bench/node_modules is missing). The officer logs in with `requests` through /en/login and the
   session cookie goes to Lighthouse with `--extra-headers`. Lighthouse then loads
   /en/intake/new `--runs` times, each time in a fresh Chromium profile (a first visit: nothing
   cached, no service worker yet), in its default mobile mode (emulated phone, simulated slow
   4G and 4× CPU slowdown), categories performance, accessibility and best practices. The JSON
   reports are kept in bench/out/. A report that did not end on the intake page (a redirect to
   the login page) fails the benchmark. Lighthouse 12 has no PWA category, so installability is
   asked of Chromium itself: in a persistent profile (Chromium never offers to install from an
   incognito profile, which is what a Playwright context is), the officer logs in, opens the
   page, waits for `navigator.serviceWorker.ready`, and the DevTools protocol's
   `Page.getInstallabilityErrors` and `Page.getAppManifest` tell whether it is installable and
   what manifest and icons Chromium found.

2. **Replay of `--records` queued intakes**, `--runs` times, each on a fresh server: Playwright
   logs in, opens /en/intake/new (so outbox.js and app.js are loaded and the service worker is
   installed), and `FieldappOutbox.put` queues the records one by one in IndexedDB, each with
   a fresh uuid, the blank form's own FormData (minus csrf_token) overlaid with valid answers
   from bench/intake.py's generator (consent given, distinct names), exactly as capture.js
   builds an entry. Nothing sends them meanwhile: app.js replays only at page load, on the
   `online` event, on its retry timer after a failure, and through Background Sync, none of
   which happens here (the benchmark checks that the server has no record and the outbox has
   them all waiting before it starts the clock; `context.set_offline` is not used because
   going back online fires `online`, and app.js would then start its own replay and take the
   Web Lock first). Timed in the page with `performance.now()`: `await FieldappOutbox.replay()`
   (a fresh token, then batches of 25 to /en/api/outbox, and each answer settled in IndexedDB).
   Then every record must have come back `stored`, the outbox must be empty, and SQLite
   (`SELECT count(*) FROM records WHERE form='intake'` in the instance's fieldapp.db) must hold
   exactly `--records` records.

   Raw limits measured in the same run: the same records (new uuids) POSTed by Python
   `requests` straight to /en/api/outbox in batches of 25 with a fresh token, as outbox.js
   sends them (no browser, no IndexedDB; timed from the token request to the last answer);
   and, as the storage floor, the same answers as JSON inserted in a temporary plain-sqlite3
   database (WAL, synchronous=FULL) both one row per committed transaction (what the server
   does: each replayed record is its own transaction) and with one `executemany` in a single
   transaction.

Both tables are printed as Markdown; each figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from bench.intake import (  # noqa: E402
    IntakeGenerator,
    _csrf,
    _log,
    clean,
    machine,
    raw_database,
    raw_inserts,
    revision,
)  # noqa: E402
from fieldapp.forms import schema  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_missing_reason,
    launch_chromium,
    log_in,
    running_server,
)

LIGHTHOUSE = BENCH / "node_modules" / ".bin" / "lighthouse"
OUT = BENCH / "out"
PAGE = "/en/intake/new"
CATEGORIES = ("performance", "accessibility", "best-practices")
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu"
GOAL_SCORE = 0.95  # each of the three categories
GOAL_WEIGHT_KB = 150  # the page's transfer size
BATCH = 25  # static/js/outbox.js sends 25 records per request
LIGHTHOUSE_TIMEOUT = 300  # seconds for one Lighthouse run


# ------------------------------------------------------------------ login with requests


def login(server) -> requests.Session:
    """A `requests` session logged in as the server's officer through the real login page."""
    http = requests.Session()
    page = http.get(server.url + "/en/login", timeout=30)
    response = http.post(server.url + "/en/login", timeout=30, allow_redirects=False, data={
        "csrf_token": _csrf(page.text), "username": server.officer, "password": server.password,
    })
    if response.status_code != 302 or "session" not in http.cookies:
        raise AssertionError(f"login failed: {response.status_code} {response.text[:500]}")
    return http


# ------------------------------------------------------------------ Lighthouse


def ensure_lighthouse() -> str:
    """Install bench/package.json's Lighthouse when bench/node_modules is missing; its version."""
    if not LIGHTHOUSE.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found: install Node.js 20 and npm to run Lighthouse")
        _log("bench/node_modules is missing: running `npm install --prefix bench` "
             "(Lighthouse, pinned in bench/package.json)...")
        subprocess.run([npm, "install", "--prefix", str(BENCH), "--no-audit", "--no-fund"],
                       check=True, cwd=REPO, stdout=sys.stderr)  # stdout is the tables
    done = subprocess.run([str(LIGHTHOUSE), "--version"], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def lighthouse(url: str, headers: Path, report: Path) -> dict:
    """One Lighthouse run (mobile, the default form factor); the parsed JSON report."""
    command = [
        str(LIGHTHOUSE), url, "--output=json", f"--output-path={report}",
        f"--chrome-flags={CHROME_FLAGS}", f"--only-categories={','.join(CATEGORIES)}",
        f"--extra-headers={headers}", "--quiet",
    ]
    env = {**os.environ, "CHROME_PATH": str(CHROMIUM)}
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=LIGHTHOUSE_TIMEOUT)
    if done.returncode != 0 or not report.exists():
        raise RuntimeError(f"lighthouse exited with {done.returncode}:\n{done.stderr[-4000:]}")
    result = json.loads(report.read_text(encoding="utf-8"))
    if result.get("runtimeError"):
        raise RuntimeError(f"lighthouse: {result['runtimeError']}")
    if result["finalDisplayedUrl"] != url:
        raise AssertionError(f"Lighthouse ended on {result['finalDisplayedUrl']}, not {url}: "
                             "was the session cookie refused?")
    return result


def figures(result: dict) -> dict:
    audits = result["audits"]
    out = {c: result["categories"][c]["score"] for c in CATEGORIES}
    out["weight_kib"] = audits["total-byte-weight"]["numericValue"] / 1024
    out["weight_kb"] = audits["total-byte-weight"]["numericValue"] / 1000
    for key, audit in (("fcp", "first-contentful-paint"), ("lcp", "largest-contentful-paint"),
                       ("tbt", "total-blocking-time"), ("cls", "cumulative-layout-shift")):
        out[key] = audits[audit]["numericValue"]
    out["requests"] = len(audits["network-requests"].get("details", {}).get("items", []))
    return out


def losing_audits(result: dict, category: str) -> list[tuple[str, str, float, float]]:
    """(id, title, score, weight) of the audits of `category` that cost it points."""
    audits, rows = result["audits"], []
    for ref in result["categories"][category]["auditRefs"]:
        audit = audits[ref["id"]]
        if ref["weight"] > 0 and audit["score"] is not None and audit["score"] < 1:
            rows.append((ref["id"], audit["title"], audit["score"], ref["weight"]))
    return rows


def installability(playwright, server, profile: Path) -> dict:
    """Chromium's own verdict on the logged-in intake page, in a persistent profile."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        page = context.new_page()
        log_in(page, server)
        page.goto(server.url + PAGE)
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        controlled = page.evaluate("() => !!navigator.serviceWorker.controller")
        cdp = context.new_cdp_session(page)
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        manifest = cdp.send("Page.getAppManifest")
        return {"errors": errors, "url": manifest.get("url", ""),
                "manifest_errors": manifest.get("errors", []),
                "icons": manifest.get("manifest", {}).get("icons", []),
                "controlled": controlled}
    finally:
        context.close()


def lighthouse_part(args, tmp: Path, playwright) -> dict:
    version = ensure_lighthouse()
    OUT.mkdir(exist_ok=True)
    runs, reports = [], []
    with running_server(tmp / "lighthouse-instance") as server:
        http = login(server)
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        headers = tmp / "lighthouse-headers.json"
        headers.write_text(json.dumps({"Cookie": cookie}), encoding="utf-8")
        for run in range(args.runs):
            report = OUT / f"lighthouse-intake-new-{run + 1}.json"
            report.unlink(missing_ok=True)
            started = time.perf_counter()
            result = lighthouse(server.url + PAGE, headers, report)
            runs.append(figures(result))
            reports.append(result)
            r = runs[-1]
            _log(f"lighthouse run {run + 1} ({time.perf_counter() - started:.0f} s): "
                 f"performance {r['performance']:.2f}, accessibility {r['accessibility']:.2f}, "
                 f"best practices {r['best-practices']:.2f}, {r['weight_kib']:.1f} KiB, "
                 f"LCP {r['lcp']:.0f} ms, TBT {r['tbt']:.0f} ms, CLS {r['cls']:.3f}")
        install = installability(playwright, server, tmp / "chromium-profile")
    return {"version": version, "runs": runs, "reports": reports, "install": install,
            "chromium": reports[0]["environment"]["hostUserAgent"]}


# ------------------------------------------------------------------ replay


def answer_sets(n: int, seed: int) -> list[dict]:
    """`n` valid intake answer sets (raw, as a browser posts them) with consent given and
    distinct names."""
    today = date.today()
    definition = schema.get("intake")
    gen, names, sets = IntakeGenerator(seed, today), set(), []
    while len(sets) < n:
        raw = gen.raw()
        name = (raw.get("given_names"), raw.get("first_surname"), raw.get("second_surname"))
        if raw["consent"] != "given" or name in names:
            continue
        clean(definition, raw, today)  # fails loudly if the generator made an invalid set
        names.add(name)
        sets.append(raw)
    return sets


def fields_of(template: dict, raw: dict) -> dict:
    """The blank form's FormData overlaid with the answers: what capture.js's fields() gives."""
    fields = {k: list(v) for k, v in template.items()}
    for name, value in raw.items():
        fields[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    fields.update(uuid=[str(uuid.uuid4())], base_revision=["0"], person=[""])
    return fields


def stored_count(instance: Path) -> int:
    conn = sqlite3.connect(str(instance / "fieldapp.db"))
    try:
        return conn.execute("SELECT count(*) FROM records WHERE form = 'intake'").fetchone()[0]
    finally:
        conn.close()


TEMPLATE_JS = """() => {
  const data = {};
  new FormData(document.getElementById("record-form")).forEach((value, name) => {
    if (name !== "csrf_token") { (data[name] = data[name] || []).push(value); }
  });
  return data;
}"""

QUEUE_JS = """async (entries) => {
  for (const entry of entries) { await FieldappOutbox.put(entry); }
  return FieldappOutbox.counts();
}"""

REPLAY_JS = """async () => {
  // Also sums the time the page waits on the server: each fetch, from the call to the answer's
  // headers (the answers are small). The rest is the page's own work, mostly IndexedDB.
  const fetchOf = window.fetch;
  let fetchMs = 0;
  window.fetch = function () {
    const t = performance.now();
    return fetchOf.apply(this, arguments).finally(() => { fetchMs += performance.now() - t; });
  };
  const started = performance.now();
  let summary;
  try { summary = await FieldappOutbox.replay(); } finally { window.fetch = fetchOf; }
  const ms = performance.now() - started;
  const outcomes = {};
  Object.values(summary.results).forEach((r) => { outcomes[r.outcome] = (outcomes[r.outcome] || 0) + 1; });
  const other = Object.values(summary.results).find((r) => r.outcome !== "stored") || null;
  return { ms, fetchMs, sent: summary.sent, attention: summary.attention, waiting: summary.waiting,
           stopped: summary.stopped, outcomes, other, left: await FieldappOutbox.counts() };
}"""


def warm_up(http: requests.Session, server) -> None:
    """One replay request the server refuses (no consent): it loads the API's code paths, the
    form and the validator without storing anything."""
    token = http.get(server.url + "/en/api/token", timeout=30).json()["token"]
    record_uuid = str(uuid.uuid4())
    body = {"records": [{"uuid": record_uuid, "kind": "intake", "course": "", "session": "",
                         "fields": {"uuid": [record_uuid], "base_revision": ["0"],
                                    "form_version": ["1"], "person": [""]}}]}
    answer = http.post(server.url + "/en/api/outbox", json=body, timeout=60,
                       headers={"X-CSRFToken": token, "Accept": "application/json"}).json()
    if answer["results"][0]["outcome"] != "rejected":
        raise AssertionError(f"warm-up record was not refused: {answer}")


def raw_api(http: requests.Session, server, records: list[dict]) -> float:
    """POST the records to /en/api/outbox in batches of 25 with a fresh token; seconds."""
    url = server.url + "/en/api/outbox"
    started = time.perf_counter()
    token = http.get(server.url + "/en/api/token", timeout=30,
                     headers={"Accept": "application/json"}).json()["token"]
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    answers = []
    for i in range(0, len(records), BATCH):
        response = http.post(url, json={"records": records[i:i + BATCH]}, headers=headers,
                             timeout=120)
        if response.status_code != 200:
            raise AssertionError(f"POST {url}: {response.status_code} {response.text[:1000]}")
        answers += response.json()["results"]
    elapsed = time.perf_counter() - started
    refused = [a for a in answers if a["outcome"] != "stored"]
    if len(answers) != len(records) or refused:
        raise AssertionError(f"raw API: {len(answers)} answers, not stored: {refused[:3]}")
    return elapsed


def executemany_insert(path: Path, payloads: list[str]) -> float:
    """Every row in one transaction with one executemany; seconds."""
    conn = raw_database(path)
    rows = [(str(uuid.uuid4()), p) for p in payloads]
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t (uuid, data) VALUES (?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def replay_run(args, tmp: Path, browser, run: int) -> dict:
    n = args.records
    today = date.today()
    definition = schema.get("intake")
    answers = answer_sets(n, args.seed + run)
    payloads = [json.dumps(clean(definition, raw, today), ensure_ascii=False, sort_keys=True)
                for raw in answers]
    instance = tmp / f"replay-instance-{run + 1}"
    with running_server(instance) as server:
        context = browser.new_context()
        try:
            page = context.new_page()
            log_in(page, server)
            page.goto(server.url + PAGE)
            page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
            template = page.evaluate(TEMPLATE_JS)
            entries = []
            for raw in answers:
                fields = fields_of(template, raw)
                label = " ".join(raw.get(k, "") for k in
                                 ("given_names", "first_surname", "second_surname")).split()
                entries.append({"uuid": fields["uuid"][0], "kind": "intake", "course": "",
                                "session": "", "lang": "en", "fields": fields,
                                "label": " ".join(label), "back": PAGE, "user": server.officer})
            started = time.perf_counter()
            queued = page.evaluate(QUEUE_JS, entries)
            queue_s = time.perf_counter() - started
            if queued != {"waiting": n, "attention": 0, "total": n}:
                raise AssertionError(f"after queuing {n} records the outbox holds {queued}")
            http = login(server)
            warm_up(http, server)
            before = stored_count(instance)
            if before != 0:
                raise AssertionError(f"{before} records were sent before the timed replay")

            wall = time.perf_counter()
            result = page.evaluate(REPLAY_JS)
            wall = time.perf_counter() - wall
            stored = stored_count(instance)
            if (result["sent"] != n or result["attention"] or result["waiting"]
                    or result["stopped"] or result["outcomes"] != {"stored": n}):
                raise AssertionError(f"replay: {result}")
            if result["left"]["total"] != 0 or stored != n:
                raise AssertionError(f"after the replay: outbox {result['left']}, "
                                     f"{stored} intake records in SQLite, expected {n}")
        finally:
            context.close()

        # The raw limit: the same records, new uuids, straight from Python.
        records = []
        for entry in entries:
            fields = {**entry["fields"], "uuid": [str(uuid.uuid4())]}
            records.append({"uuid": fields["uuid"][0], "kind": "intake", "course": "",
                            "session": "", "fields": fields})
        api_s = raw_api(http, server, records)
        if stored_count(instance) != 2 * n:
            raise AssertionError("the raw API run did not store every record")

    commits_s = sum(raw_inserts(tmp / "raw.db", payloads))
    many_s = executemany_insert(tmp / "raw-many.db", payloads)
    return {"browser_s": result["ms"] / 1000, "fetch_s": result["fetchMs"] / 1000,
            "wall_s": wall, "queue_s": queue_s, "api_s": api_s, "commits_s": commits_s, "many_s": many_s,
            "fields": len(entries[0]["fields"]),
            "bytes": len(json.dumps({"records": [records[0]]}))}


# ------------------------------------------------------------------ output


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_lighthouse(lh: dict, runs: int) -> None:
    med = statistics.median
    rows = lh["runs"]

    def m(key: str) -> float:
        return med([r[key] for r in rows])

    print(f"Lighthouse {lh['version']} on {PAGE} (logged in as an officer), mobile (Lighthouse's "
          f"default: emulated phone, simulated slow 4G, 4× CPU slowdown), a first visit in a "
          f"fresh profile each run; median of {runs} runs.\n")
    print("| measure | median | runs | goal | verdict |")
    print("|---|---:|---|---|---|")
    for key, label in (("performance", "performance score"),
                       ("accessibility", "accessibility score"),
                       ("best-practices", "best-practices score")):
        cells = ", ".join(f"{r[key]:.2f}" for r in rows)
        print(f"| {label} | {m(key):.2f} | {cells} | ≥ {GOAL_SCORE} | "
              f"{_met(m(key) >= GOAL_SCORE)} |")
    cells = ", ".join(f"{r['weight_kib']:.1f}" for r in rows)
    print(f"| transfer size (`total-byte-weight`), KiB | {m('weight_kib'):.1f} "
          f"({m('weight_kb'):.1f} kB, {m('requests'):.0f} requests) | {cells} | "
          f"< {GOAL_WEIGHT_KB} KB | {_met(m('weight_kb') < GOAL_WEIGHT_KB)} |")
    for key, label, fmt in (("fcp", "First Contentful Paint, ms", "{:.0f}"),
                            ("lcp", "Largest Contentful Paint, ms", "{:.0f}"),
                            ("tbt", "Total Blocking Time, ms", "{:.0f}"),
                            ("cls", "Cumulative Layout Shift", "{:.3f}")):
        cells = ", ".join(fmt.format(r[key]) for r in rows)
        print(f"| {label} | {fmt.format(m(key))} | {cells} |  |  |")
    print()
    install = lh["install"]
    if install["errors"]:
        errors = "; ".join(e["errorId"] + (f" ({', '.join(a['value'] for a in e['errorArguments'])})"
                                            if e.get("errorArguments") else "")
                           for e in install["errors"])
        print(f"installable: no — {errors}")
    else:
        print("installable: yes (Chromium's `Page.getInstallabilityErrors` is empty)")
    print(f"service worker controls the page after `ready`: "
          f"{'yes' if install['controlled'] else 'no (a first visit: it takes over at the next load)'}")
    print(f"manifest: {re.sub(r'^http://[^/]+', '', install['url']) or 'none'}"
          f"{'; errors: ' + str(install['manifest_errors']) if install['manifest_errors'] else ''}")
    icons = ", ".join(f"{re.sub(r'^http://[^/]+', '', i['url']).split('?')[0]} "
                      f"({i.get('sizes', '?')}, {i.get('type', '?')})" for i in install["icons"])
    print(f"icons: {icons or 'none'}")
    below = [c for c in CATEGORIES if m(c) < GOAL_SCORE]
    for category in below:
        print(f"\nAudits that cost {category} points (any run; id, title, score, weight):\n")
        seen: dict[str, tuple] = {}
        for report in lh["reports"]:
            for row in losing_audits(report, category):
                seen.setdefault(row[0], row)
        for audit_id, title, score, weight in seen.values():
            print(f"- `{audit_id}` — {title}: {score:.2f} (weight {weight})")
    print()
    print(f"reports: bench/out/lighthouse-intake-new-{{1..{runs}}}.json; browser: "
          f"{lh['chromium']}")


def print_replay(rows: list[dict], n: int, runs: int) -> None:
    med = statistics.median

    def m(key: str) -> float:
        return med([r[key] for r in rows])

    print(f"Replay of {n:,} queued intake records from IndexedDB (outbox.js, batches of "
          f"{BATCH}) to a fresh server each run; median of {runs} runs.\n")
    print("| records | browser replay s | records/s | raw API (requests) s | ratio browser / raw API "
          "| sqlite3, one commit per row s | sqlite3 executemany, one commit s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {n:,} | {m('browser_s'):.2f} | {n / m('browser_s'):.0f} | {m('api_s'):.2f} | "
          f"{m('browser_s') / m('api_s'):.2f}× | {m('commits_s'):.3f} | {m('many_s'):.4f} |")
    print()
    print(f"browser replay / sqlite3 one commit per row: "
          f"{m('browser_s') / m('commits_s'):.0f}×; raw API / sqlite3 one commit per row: "
          f"{m('api_s') / m('commits_s'):.0f}×")
    print(f"of the browser replay, waiting on fetch (token and batches, call to answer headers): "
          f"{m('fetch_s'):.2f} s; the page's own work (JSON, IndexedDB settles, locks): "
          f"{m('browser_s') - m('fetch_s'):.2f} s")
    print(f"per record: browser {m('browser_s') / n * 1000:.1f} ms, raw API "
          f"{m('api_s') / n * 1000:.1f} ms, sqlite3 commit {m('commits_s') / n * 1000:.2f} ms")
    print()
    print("Per run (browser replay [of which in fetch] · wall time of the page.evaluate · raw API · "
          "sqlite3 commits · executemany, s; untimed queuing of the records with "
          "FieldappOutbox.put):\n")
    for i, r in enumerate(rows, 1):
        print(f"- run {i}: {r['browser_s']:.2f} [{r['fetch_s']:.2f}] · {r['wall_s']:.2f} · "
              f"{r['api_s']:.2f} · {r['commits_s']:.3f} · {r['many_s']:.4f}; queuing {r['queue_s']:.1f}")
    print()
    print(f"each record: {rows[0]['fields']} form fields, about {rows[0]['bytes']:,} bytes of JSON "
          f"on the wire")


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--skip-lighthouse", action="store_true")
    parser.add_argument("--skip-replay", action="store_true")
    args = parser.parse_args(argv)
    reason = chromium_missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    commit = revision()
    load_start = os.getloadavg()
    started = time.perf_counter()
    lh, replays = None, []
    with tempfile.TemporaryDirectory(prefix="fieldapp-bench-pwa-") as tmp, \
            sync_playwright() as playwright:
        tmp_path = Path(tmp)
        _log(f"working in {tmp_path}")
        if not args.skip_lighthouse:
            lh = lighthouse_part(args, tmp_path, playwright)
        if not args.skip_replay:
            browser = launch_chromium(playwright)
            try:
                for run in range(args.runs):
                    replays.append(replay_run(args, tmp_path, browser, run))
                    r = replays[-1]
                    _log(f"replay run {run + 1}: browser {r['browser_s']:.2f} s (fetch "
                         f"{r['fetch_s']:.2f} s), raw API "
                         f"{r['api_s']:.2f} s, sqlite3 commits {r['commits_s']:.3f} s, "
                         f"executemany {r['many_s']:.4f} s (queuing {r['queue_s']:.1f} s)")
            finally:
                browser.close()

    print(f"PWA benchmark, {date.today().isoformat()}.\n")
    if lh:
        print_lighthouse(lh, args.runs)
        print()
    if replays:
        print_replay(replays, args.records, args.runs)
        print()
    print(f"fieldapp commit: {commit}")
    print(f"machine: {machine()}; load average (1, 5, 15 min) at the start "
          f"{', '.join(f'{x:.1f}' for x in load_start)}, at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"benchmark time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
