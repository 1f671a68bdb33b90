"""A real central server process on 127.0.0.1 and field servers as SQLite files, for sync tests.

Field servers here are their databases plus the sync client, run in the test process: what a
`fieldapp sync` does. Central is a `fieldapp serve` process that a test can kill and restart.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from fieldapp.forms import schema
from fieldapp.forms.builder import answers_as_formdata
from fieldapp.forms.validate import validate
from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations, records
from sync import client, server

FIELDAPP = Path(sys.executable).parent / "fieldapp"
NAMES = ["María José", "Luis Alberto", "Ana", "José", "Yessica", "Carlos", "Daniela", "Óscar"]
SURNAMES = ["García", "Núñez", "Pérez", "Rodríguez", "Martínez", "Gómez", "Díaz", "Peña"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    env["FIELDAPP_LANG"] = "en"
    return env


def run_cli(instance: Path, *args: str, stdin: str = "", check: bool = True):
    done = subprocess.run([str(FIELDAPP), "--instance", str(instance), *args], input=stdin, text=True,
                          capture_output=True, env=child_env(), timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"`fieldapp {' '.join(args)}` failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    return done


class Central:
    """A central server: `fieldapp init --central`, then `fieldapp serve` on a free port."""

    def __init__(self, instance: Path):
        self.instance = instance
        run_cli(instance, "init", "--central", "--post", "CENTRAL", "--password-stdin",
                stdin=secrets.token_urlsafe(16) + "\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    @property
    def db_path(self) -> Path:
        return self.instance / "fieldapp.db"

    def start(self) -> Central:
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = open(self.instance / "serve.log", "a", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(FIELDAPP), "--instance", str(self.instance), "serve", "--host", "127.0.0.1",
             "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=child_env())
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/", timeout=2)  # noqa: S310
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("central did not start:\n"
                                       + (self.instance / "serve.log").read_text()) from None
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def db(self):
        conn = storage_db.connect(self.db_path)
        migrations.apply(conn)
        return conn

    def edit(self, uuid: str, **changes) -> int:
        """A correction made at central, as its record page does; the revision stored."""
        conn = self.db()
        try:
            return central_edit(conn, uuid, **changes)
        finally:
            conn.close()

    def register(self, post: str, name: str = "laptop") -> str:
        """Register a device of `post`; its one-time enrolment code."""
        conn = self.db()
        try:
            return server.register(conn, post=post, name=name, by="test")[1]
        finally:
            conn.close()


@dataclass
class Field:
    """A field server's database, enrolled at a central server."""

    path: Path
    post: str
    url: str = ""
    device: str = ""
    db: object = None
    officer: str = "officer1"
    made: list = field(default_factory=list)

    @classmethod
    def create(cls, tmp: Path, post: str) -> Field:
        tmp.mkdir(parents=True, exist_ok=True)
        f = cls(tmp / "fieldapp.db", post)
        f.db = storage_db.connect(f.path)
        migrations.apply(f.db)
        return f

    def enrol(self, central: Central, code: str | None = None) -> None:
        code = code or central.register(self.post)
        answer = client.enrol(self.db, client.Settings(url=central.url), code, self.post)
        self.device, self.url = answer["device"], central.url

    def central(self, url: str | None = None, **settings) -> client.Central:
        s = client.settings_for(self.db, {})
        if url:
            s.url = url
        s.attempts = settings.pop("attempts", 4)
        s.backoff = settings.pop("backoff", 0.05)
        for k, v in settings.items():
            setattr(s, k, v)
        return client.Central(s)

    def sync(self, url: str | None = None, batch_size: int = 500, **settings) -> client.Progress:
        return client.run(self.db, self.central(url, **settings), batch_size=batch_size)

    # Writing records as the field server's pages do.

    def intake(self, rng: random.Random | None = None, **overrides) -> str:
        rng = rng or random.Random()
        answers = intake_answers(rng, **overrides)
        return self.save("intake", answers)

    def save(self, form: str, answers: dict, uuid: str | None = None, base: int = 0,
             deleted: bool = False, **links) -> str:
        uuid = uuid or str(uuidlib.uuid4())
        sub = records.Submission(uuid=uuid, definition=schema.get(form), answers=answers,
                                 post=self.post, device="field-" + self.post, user=self.officer,
                                 base_revision=base, deleted=deleted, **links)
        decision = records.save(self.db, sub)
        assert decision.outcome == "stored", decision
        return uuid

    def edit(self, uuid: str, **changes) -> int:
        record = records.get(self.db, uuid)
        answers = {**record["answers"], **changes}
        self.save(record["form"], answers, uuid=uuid, base=record["revision"],
                  parent=record["parent"], person=record["person"])
        return record["revision"] + 1

    def delete(self, uuid: str) -> None:
        record = records.get(self.db, uuid)
        self.save(record["form"], record["answers"], uuid=uuid, base=record["revision"], deleted=True,
                  parent=record["parent"], person=record["person"])


def intake_answers(rng: random.Random, **overrides) -> dict:
    """A valid intake's clean answers, as the validator leaves them."""
    interview = date.today() - timedelta(days=rng.randint(1, 300))
    raw = {
        "consent": "given", "purpose": "assistance", "interview_date": interview.isoformat(),
        "given_names": rng.choice(NAMES), "first_surname": rng.choice(SURNAMES),
        "second_surname": rng.choice(SURNAMES), "sex": rng.choice(["female", "male"]),
        "birth_date_known": "yes",
        "birth_date": (date(1960, 1, 1) + timedelta(days=rng.randint(0, 16000))).isoformat(),
        "nationality": rng.choice(["VE", "CO", "HT", "EC"]), "residence_country": "VE",
        "doc_type": "passport", "doc_number": f"P{rng.randint(10**7, 10**8 - 1)}", "doc_country": "VE",
        "migratory_status": "in_transit", "arrival_date": interview.isoformat(),
        "migration_reasons": ["economic"], "travelling": "alone", "unaccompanied_minor": "no",
        "education_level": "upper_secondary", "occupation": "isco_7", "experience_years": "5",
        "languages": ["es"], "employment_status": "unemployed", "training_interest": ["vocational"],
        "specific_needs": ["none"], "phone": f"+57300{rng.randint(10**6, 10**7 - 1)}",
        "messaging_app": "whatsapp", "preferred_language": "es", "notes": "Llegó por tierra.",
    }
    raw.update({k: str(v) if isinstance(v, int) else v for k, v in overrides.items()})
    result = validate(schema.get("intake"), answers_as_formdata(raw), date.today())
    assert result.ok, result.errors
    return result.answers


def central_edit(conn, uuid: str, **changes) -> int:
    """A correction made at central (on its database `conn`), as its record page does."""
    record = records.get(conn, uuid)
    sub = records.Submission(
        uuid=uuid, definition=schema.get(record["form"]), answers={**record["answers"], **changes},
        post=record["post"], device="central", user="central1", base_revision=record["revision"],
        parent=record["parent"], person=record["person"])
    decision = records.save(conn, sub)
    assert decision.outcome == "stored", decision
    return decision.revision


def enrolled_device(conn, post: str = "POST-A") -> tuple[str, str]:
    """A device of `post` registered and enrolled on central's database: (token, device id)."""
    from fieldapp.domain.records import now
    from fieldapp.storage import sync as store
    from sync import protocol

    device_id, code = server.register(conn, post=post, name="laptop", by="test")
    token = protocol.new_token()
    store.enrol(conn, code_hash=protocol.secret_hash(protocol.normalise_code(code)),
                token_hash=protocol.secret_hash(token), signing_key=protocol.signing_key(token),
                at=now())  # a token unused for DEVICE_TOKEN_IDLE_DAYS no longer works
    return token, device_id


def heads(conn, post: str) -> dict[str, tuple]:
    """Every record of a post: uuid -> (revision, hash, deleted)."""
    return {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT uuid, revision, hash, deleted FROM records WHERE post = ?", [post])}


def revisions(conn, post: str) -> dict[tuple, str]:
    """Every revision of a post's records: (uuid, revision) -> hash."""
    return {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT v.uuid, v.revision, v.hash FROM revisions v JOIN records r USING (uuid)"
        " WHERE r.post = ?", [post])}


def integrity(conn) -> str:
    return conn.execute("PRAGMA integrity_check").fetchone()[0]


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
