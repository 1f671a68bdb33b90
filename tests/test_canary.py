"""The canary test (issue 7): records with unique marker strings go the whole way — captured on a
field server's pages, synced to a central server, exported there, purged on the field once their
retention ended — and no marker is left where it must not be: in any log file or server output of
either instance, and, after the purge, in the field database, its WAL or its shared-memory file.

Both servers are real `fieldapp serve` processes on 127.0.0.1; the purge is `fieldapp purge` with
`--as-of` a day past the retention, the clock a person would move by waiting."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import csrf_token, valid_intake
from tests.sync.harness import FIELDAPP, Central, child_env, free_port, run_cli

POST = "POST-1"
PASSWORD = "canary-password-1"
# Each one unique: a hit can only come from this test's records.
MARKERS = {
    "given_names": "Quillionvex", "first_surname": "Barthrundle", "second_surname": "Ozymarrow",
    "doc_number": "CX7731946", "phone": "+57 311 773 1946", "notes": "Velmorrian canary note",
    "certified_skills": "Draxelbine welding",
}
CORRECTED_NOTE = "Plinthwhistle corrected note"
REFUSED_NAME = "Nevermorrowin"  # typed although consent was refused: never stored at all


def _searchable(marker: str) -> list[bytes]:
    """The marker as the files could hold it: as typed, and the phone number without spaces."""
    return sorted({marker.encode(), marker.replace(" ", "").encode()})


def _hits(data: bytes) -> list[str]:
    folded = data.lower()
    markers = [*MARKERS.values(), CORRECTED_NOTE, REFUSED_NAME]
    return [m for m in markers if any(form.lower() in folded for form in _searchable(m))]


class FieldServer:
    """A field server: `fieldapp init`, an officer, `fieldapp serve` with its output captured."""

    def __init__(self, instance: Path):
        self.instance = instance
        run_cli(instance, "init", "--post", POST, "--password-stdin", stdin=secrets.token_urlsafe(16) + "\n")
        run_cli(instance, "users", "add", "ana", "--role", "officer", "--password-stdin",
                stdin=PASSWORD + "\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.err = instance / "serve.stdout", instance / "serve.stderr"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.out, "ab") as out, open(self.err, "ab") as err:
            self.proc = subprocess.Popen(
                [str(FIELDAPP), "--instance", str(self.instance), "serve", "--port", str(self.port)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=child_env())
        for _ in range(300):  # until it answers (no timing asserted: at most a while)
            try:
                requests.get(self.url + "/", timeout=2)
                return
            except requests.ConnectionError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("the field server did not start:\n" + self.err.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def _login(url: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{url}/en/login")
    answer = http.post(f"{url}/en/login", data={"csrf_token": csrf_token(page.text), "username": "ana",
                                                 "password": PASSWORD})
    assert answer.ok and "logout" in answer.text.lower()
    return http


def _post(http: requests.Session, url: str, data: dict) -> requests.Response:
    page = http.get(url)
    assert page.ok, page.status_code
    return http.post(url, data={"csrf_token": csrf_token(page.text), **data}, allow_redirects=False)


@pytest.fixture
def servers(tmp_path):
    central = Central(tmp_path / "central").start()
    field = FieldServer(tmp_path / "field")
    field.start()
    yield central, field
    field.stop()
    central.stop()


def test_no_marker_is_left_where_it_must_not_be(servers, tmp_path):
    central, field = servers
    outputs = []  # what every command printed

    # Capture through the field server's pages: an intake, its correction, and an intake whose
    # consent was refused but whose name was typed anyway.
    http = _login(field.url)
    intake = valid_intake(**MARKERS)
    answer = _post(http, f"{field.url}/en/intake/new", intake)
    assert answer.status_code == 302, answer.text
    edit = _post(http, f"{field.url}/en/records/{intake['uuid']}/edit",
                 {**intake, "base_revision": "1", "notes": CORRECTED_NOTE})
    assert edit.status_code == 302, edit.text
    refused = valid_intake(consent="refused", age_group="25_59", given_names=REFUSED_NAME)
    assert _post(http, f"{field.url}/en/intake/new", refused).status_code == 302
    page = http.get(f"{field.url}/en/records/{intake['uuid']}")
    assert MARKERS["first_surname"] in page.text  # the record is there, and readable

    # Sync to central, then export there (a full export: the markers must be in it).
    code = central.register(POST)
    outputs.append(run_cli(field.instance, "sync", "enrol", central.url, "--code-stdin", stdin=code + "\n"))
    outputs.append(run_cli(field.instance, "sync"))
    export = tmp_path / "export.csv"
    outputs.append(run_cli(central.instance, "export", "intake", "--profile", "full", "--purpose",
                           "canary test", "-o", str(export)))
    exported = export.read_bytes()
    assert MARKERS["doc_number"].encode() in exported and CORRECTED_NOTE.encode() in exported
    assert REFUSED_NAME.encode() not in exported

    # The field server's database holds the markers until the purge.
    db = field.instance / "fieldapp.db"
    files = [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm")]
    assert _hits(b"".join(f.read_bytes() for f in files if f.exists()))

    # Not yet due: a dry run a day before the retention ends finds nothing.
    soon = (datetime.now(UTC) + timedelta(days=29)).strftime("%Y-%m-%d")
    dry = run_cli(field.instance, "purge", "--dry-run", "--as-of", soon)
    outputs.append(dry)
    assert " 0 " in dry.stdout
    later = (datetime.now(UTC) + timedelta(days=31)).strftime("%Y-%m-%d")
    done = run_cli(field.instance, "purge", "--as-of", later)
    outputs.append(done)
    assert re.search(r"\b2\b", done.stdout) and "intake: 2" in done.stdout, done.stdout

    # After the purge, with the field server still running: nothing readable in its files.
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert _hits(raw) == [], "markers left in the field database files after the purge"
    page = http.get(f"{field.url}/en/records/{intake['uuid']}")
    assert page.ok and _hits(page.content) == []

    # Central keeps the records (its own retention is years): the markers are there.
    central_raw = b"".join(Path(f"{central.db_path}{s}").read_bytes() for s in ("", "-wal")
                           if Path(f"{central.db_path}{s}").exists())
    assert MARKERS["doc_number"].encode() in central_raw

    field.stop()
    central.stop()
    # Every log and captured output of both instances, and every command's output.
    logs = [p for inst in (field.instance, central.instance) for p in inst.rglob("*")
            if p.is_file() and (p.suffix in (".log", ".stdout", ".stderr") or ".log." in p.name)]
    assert field.out in logs and field.err in logs and central.instance / "serve.log" in logs
    for path in logs:
        assert _hits(path.read_bytes()) == [], f"markers in {path.name}"
    for out in outputs:
        assert _hits((out.stdout + out.stderr).encode()) == [], f"markers in {out.args[3:]}"
    # And the field database once the server closed it.
    assert _hits(b"".join(f.read_bytes() for f in files if f.exists())) == []
