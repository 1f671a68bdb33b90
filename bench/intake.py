"""Benchmark: the intake POST and the records search with N records stored, against raw SQLite.

    python bench/intake.py [--sizes 10000 100000] [--submissions 1000] [--searches 200] [--runs 3]

For every size it builds a throw-away instance (config, migrations, one officer), preloads N
realistic intake records with `records.save_batch` (setup, not timed), logs in through the real
login page with a Flask test client, and then, `--runs` times:

* inserts `--submissions` rows into a separate plain-sqlite3 database (journal_mode=WAL,
  synchronous=FULL, one row per committed transaction, the same JSON payloads): the raw limit
  of the disk, measured in the same run;
* times `--submissions` POSTs of /en/intake/new (fresh uuid, base_revision 0, valid answers;
  anything but a 302 fails the benchmark). After each timed POST the redirect is followed,
  untimed, as a browser would (this also pops the flash message from the session);
* times `--searches` GETs of /en/records?q=... over a mix of queries.

It reports, per size, the median over the runs of each run's p50 and p95, as a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from fieldapp import accounts, create_app
from fieldapp import config as settings
from fieldapp.forms import schema, validate
from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations, records

POST = "POST-1"
OFFICER, PASSWORD = "officer.bench", "bench-password-1234"
PRELOAD_CHUNK = 5_000
WARMUP_SUBMISSIONS = 20
WARMUP_SEARCHES = 10

# ------------------------------------------------------------------ realistic intake answers

# (value, weight): a few very common names, a long tail, accents and compound names.
GIVEN_FEMALE = [
    ("María", 30), ("María José", 12), ("María Fernanda", 8), ("María Alejandra", 8),
    ("Ana", 8), ("Ana María", 6), ("Andrea", 6), ("Daniela", 7), ("Valentina", 6), ("Sofía", 6),
    ("Camila", 5), ("Gabriela", 5), ("Carolina", 4), ("Yolimar", 3), ("Yusleidy", 2),
    ("Génesis", 4), ("Dayana", 3), ("Luisa Fernanda", 3), ("Paola", 3), ("Lucía", 3),
    ("Mariela", 2), ("Rosa", 3), ("Carmen", 3), ("Yamilet", 2), ("Leidy", 2), ("Marisol", 2),
    ("Nathalia", 2), ("Isabel", 2), ("Dulce María", 1), ("Xiomara", 2), ("Yesenia", 2),
    ("Milagros", 2), ("Ángela", 2), ("Inés", 1), ("Zuleima", 1), ("Belén", 1), ("Nohemí", 1),
]
GIVEN_MALE = [
    ("José", 25), ("José Luis", 8), ("José Gregorio", 6), ("Juan", 10), ("Juan Carlos", 8),
    ("Luis", 8), ("Luis Ángel", 3), ("Carlos", 8), ("Jesús", 7), ("Andrés", 5),
    ("Miguel Ángel", 5), ("Jhon", 3), ("Jhonatan", 3), ("Yeferson", 2), ("Wuilmer", 2),
    ("Kelvin", 2), ("Anderson", 3), ("Brayan", 3), ("Ángel", 4), ("Darwin", 2), ("Édgar", 2),
    ("Óscar", 3), ("Víctor", 3), ("Raúl", 2), ("Héctor", 2), ("Rubén", 2), ("Ricardo", 2),
    ("Fernando", 2), ("Alejandro", 3), ("Manuel", 2), ("Pedro", 2), ("Yordan", 1),
    ("Yoandry", 1), ("Osmany", 1), ("Iñaki", 1), ("Nicolás", 2), ("Sebastián", 3),
]
SURNAMES = [
    ("González", 20), ("Rodríguez", 18), ("Pérez", 16), ("Hernández", 14), ("García", 14),
    ("Martínez", 12), ("López", 12), ("Díaz", 9), ("Sánchez", 9), ("Ramírez", 8),
    ("Torres", 7), ("Flores", 6), ("Rivera", 5), ("Gómez", 8), ("Núñez", 5), ("Peña", 4),
    ("Castillo", 4), ("Jiménez", 5), ("Muñoz", 5), ("Rojas", 6), ("Vargas", 5), ("Morales", 5),
    ("Ortiz", 4), ("Gutiérrez", 4), ("Chávez", 3), ("Mendoza", 4), ("Quispe", 3),
    ("Mamani", 2), ("Castro", 4), ("Suárez", 3), ("Álvarez", 4), ("Romero", 4), ("Medina", 3),
    ("Aguilar", 3), ("Ibáñez", 2), ("Briceño", 2), ("Zambrano", 2), ("Colmenares", 1),
    ("De la Cruz", 3), ("Del Valle", 2), ("De León", 2), ("San Martín", 1), ("Da Silva", 1),
    ("Pérez de Arce", 1), ("Montes de Oca", 1), ("Villalobos", 2), ("Echeverría", 1),
    ("Barrios", 2), ("Carrasco", 2), ("Guzmán", 2), ("Salazar", 3), ("Cárdenas", 2),
]
GIVEN_HAITIAN_F = [("Marie", 8), ("Nadège", 3), ("Widlène", 2), ("Marie-Claire", 3),
                   ("Roseline", 2), ("Fabiola", 2), ("Guerline", 2), ("Mirlande", 2)]
GIVEN_HAITIAN_M = [("Jean", 8), ("Jean-Robert", 3), ("Wilner", 3), ("Frantz", 2), ("Evens", 2),
                   ("Jean-Claude", 3), ("Ricardo", 1), ("Wisly", 2), ("Peterson", 2)]
SURNAMES_HAITIAN = [("Pierre", 8), ("Joseph", 8), ("Jean-Baptiste", 5), ("Louis", 5),
                    ("Saint-Louis", 3), ("Charles", 4), ("Dorvilus", 2), ("Théodore", 2),
                    ("Désir", 2), ("Estimé", 2), ("François", 3), ("Jean-Louis", 3)]
NATIONALITIES = [("VE", 45), ("CO", 15), ("HT", 10), ("EC", 8), ("PE", 5), ("CU", 6),
                 ("NI", 4), ("HN", 4), ("GT", 1), ("SV", 1), ("DO", 1), ("BO", 1)]
PHONE_FORMAT = {  # country code, national number length, leading digits
    "VE": ("+58", 10, ["412", "414", "416", "424", "426"]),
    "CO": ("+57", 10, ["300", "310", "311", "312", "315", "320", "321"]),
    "HT": ("+509", 8, ["3", "4"]), "EC": ("+593", 9, ["9"]), "PE": ("+51", 9, ["9"]),
    "CU": ("+53", 8, ["5"]), "NI": ("+505", 8, ["8"]), "HN": ("+504", 8, ["9", "3"]),
    "GT": ("+502", 8, ["5"]), "SV": ("+503", 8, ["7"]), "DO": ("+1", 10, ["809", "829"]),
    "BO": ("+591", 8, ["7"]), "CL": ("+56", 9, ["9"]),
}
DESTINATIONS = [("US", 25), ("CL", 15), ("PE", 15), ("CO", 15), ("MX", 8), ("ES", 5), ("CA", 3),
                ("AR", 5), ("BR", 4), ("PA", 3), ("EC", 2)]
NOTES = [
    "Viaja con dos hijos menores; solicita orientación sobre regularización.",
    "Refiere haber perdido su documento en el trayecto.",
    "Necesita atención médica: hipertensión, sin medicamentos desde hace una semana.",
    "Se remite a ACNUR para evaluación de protección internacional.",
    "Busca trabajo en construcción; tiene experiencia como albañil y pintor.",
    "Llegó caminando desde Cúcuta; duerme en el albergue temporal de la parroquia.",
    "Tiene una hermana en Lima que puede recibirla. Número de la hermana anotado en contacto.",
    "Pide información sobre el Permiso por Protección Temporal (PPT).",
    "Embarazada de 6 meses, sin control prenatal. Referida al centro de salud.",
    "Menor acompañado por su tía; se verificó el parentesco con la partida de nacimiento.",
    "Refiere amenazas de grupo armado en su lugar de origen.",
    "Interesado en el curso de soldadura del SENA; tiene bachillerato completo.",
    "Habla poco español; la entrevista se hizo con apoyo de un intérprete (kreyòl).",
    "Se entregó kit de higiene y tarjeta de alimentación.",
    "Quiere continuar hacia Chile; se informó sobre los riesgos del paso irregular.",
]
SKILLS = [
    "Técnico en electricidad (SENA)", "Licenciada en Educación Integral", "Enfermería auxiliar",
    "Curso de manipulación de alimentos", "Mecánica automotriz", "Peluquería y barbería",
    "Contador público", "Operador de maquinaria pesada", "Cocina internacional",
    "Ingeniero de sistemas, título apostillado", "Costura industrial",
]
NOT_POSSIBLE_REASONS = [
    "Niño sin acompañante adulto.", "La persona no comprende la pregunta; sin intérprete.",
    "Persona en estado de shock; se registrará de nuevo más tarde.",
]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def _sample(rng: random.Random, weighted: list[tuple[str, int]], k: int) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < k:
        value = _pick(rng, weighted)
        if value not in chosen:
            chosen.append(value)
    return chosen


def _day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _doc_number(rng: random.Random, doc_type: str, nationality: str) -> str:
    if doc_type == "passport":
        if nationality == "VE":
            return _digits(rng, 9)
        return rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") + rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") + _digits(rng, 7)
    if doc_type == "birth_certificate":
        return f"Acta {rng.randint(1, 2999)} folio {rng.randint(1, 400)}"
    if doc_type == "refugee_document":
        return f"RS-{rng.randint(2018, 2025)}-{_digits(rng, 6)}"
    if doc_type == "other":
        return f"PEP-{_digits(rng, 9)}"
    if nationality == "VE":  # cédula: V-24.567.890
        n = f"{rng.randint(5_000_000, 33_000_000):,}".replace(",", ".")
        return f"V-{n}" if rng.random() < 0.8 else f"V{n.replace('.', '')}"
    if nationality == "CO":
        return f"{rng.randint(1_000_000_000, 1_119_999_999):,}".replace(",", ".")
    if nationality == "NI":
        return f"{_digits(rng, 3)}-{_digits(rng, 6)}-{_digits(rng, 4)}{rng.choice('ABCDEFGHJKLMN')}"
    if nationality == "HN":
        return f"0801-{rng.randint(1950, 2010)}-{_digits(rng, 5)}"
    if nationality == "PE":
        return _digits(rng, 8)
    if nationality == "CU":
        return _digits(rng, 11)
    return _digits(rng, 10)


def _phone(rng: random.Random, nationality: str) -> str:
    code, length, prefixes = PHONE_FORMAT.get(nationality, PHONE_FORMAT["CO"])
    if rng.random() < 0.4:  # a local SIM bought at the border
        code, length, prefixes = PHONE_FORMAT["CO"]
    prefix = rng.choice(prefixes)
    national = prefix + _digits(rng, length - len(prefix))
    if rng.random() < 0.5:
        return f"{code} {national[:3]} {national[3:6]} {national[6:]}"
    return f"{code}{national}"


class IntakeGenerator:
    """Raw intake answers as a browser posts them (strings and lists), deterministic per seed."""

    def __init__(self, seed: int, today: date):
        self.rng = random.Random(seed)
        self.today = today

    def raw(self) -> dict:
        rng, today = self.rng, self.today
        consent = rng.choices(["given", "not_possible", "refused"], [92, 3, 5])[0]
        interview = _day_between(rng, today - timedelta(days=730), today)
        sex = rng.choices(["female", "male", "other", "not_stated"], [49, 49, 1, 1])[0]
        nationality = _pick(rng, NATIONALITIES)
        answers: dict = {
            "consent": consent,
            "purpose": rng.choices(
                ["assistance", "referral", "training", "protection", "statistics", "other"],
                [40, 20, 15, 15, 5, 5])[0],
            "interview_date": interview.isoformat(),
            "sex": sex,
            "nationality": nationality,
        }
        age = rng.choices([rng.randint(0, 17), rng.randint(18, 59), rng.randint(60, 85)],
                          [20, 72, 8])[0]
        if consent == "refused":
            groups = [(4, "0_4"), (11, "5_11"), (17, "12_17"), (24, "18_24"), (59, "25_59")]
            answers["age_group"] = next((g for top, g in groups if age <= top), "60_plus")
            return answers
        if consent == "not_possible":
            answers["consent_reason"] = rng.choice(NOT_POSSIBLE_REASONS)
        haitian = nationality == "HT" and rng.random() < 0.8
        female = sex == "female" or (sex != "male" and rng.random() < 0.5)
        if haitian:
            given = _pick(rng, GIVEN_HAITIAN_F if female else GIVEN_HAITIAN_M)
            first, second = _pick(rng, SURNAMES_HAITIAN), ""
        else:
            given = _pick(rng, GIVEN_FEMALE if female else GIVEN_MALE)
            first = _pick(rng, SURNAMES)
            second = _pick(rng, SURNAMES) if rng.random() < 0.85 else ""
        answers.update(given_names=given, first_surname=first, second_surname=second)
        birth = interview - timedelta(days=age * 365 + rng.randint(0, 364))
        if rng.random() < 0.88:
            answers.update(birth_date_known="yes", birth_date=birth.isoformat())
        else:
            answers.update(birth_date_known="no", estimated_age=str(age))
        answers["residence_country"] = nationality if rng.random() < 0.6 else rng.choice(
            ["CO", "PE", "EC", "CL"])
        doc_type = rng.choices(
            ["passport", "national_id", "birth_certificate", "refugee_document", "other", "none"],
            [22, 45, 8 if age < 18 else 1, 3, 4, 15])[0]
        answers["doc_type"] = doc_type
        if doc_type != "none":
            answers["doc_number"] = _doc_number(rng, doc_type, nationality)
            answers["doc_country"] = nationality if rng.random() < 0.95 else "CO"
        answers["migratory_status"] = rng.choices(
            ["regular", "irregular", "asylum_seeker", "refugee", "in_transit", "returned", "other"],
            [15, 35, 10, 5, 25, 5, 5])[0]
        if rng.random() < 0.8:
            start = max(birth, interview - timedelta(days=5 * 365))
            answers["arrival_date"] = _day_between(rng, start, interview).isoformat()
        if rng.random() < 0.7:
            answers["destination_country"] = _pick(rng, DESTINATIONS)
        answers["migration_reasons"] = _sample(rng, [
            ("economic", 50), ("family", 15), ("violence", 10), ("persecution", 4),
            ("political", 8), ("disaster", 2), ("education", 3), ("health", 6), ("other", 2),
        ], rng.choices([1, 2, 3], [55, 35, 10])[0])
        travelling = rng.choices(["alone", "family", "others"], [50, 40, 10])[0]
        answers["travelling"] = travelling
        if travelling != "alone":
            answers["accompanying_adults"] = str(rng.choices([0, 1, 2, 3], [10, 55, 25, 10])[0])
            answers["accompanying_minors"] = str(rng.choices([0, 1, 2, 3, 4], [35, 30, 20, 10, 5])[0])
        minor_alone = age < 18 and travelling != "family" and rng.random() < 0.5
        answers["unaccompanied_minor"] = "yes" if minor_alone else "no"
        if age >= 15:
            if rng.random() < 0.85:
                answers["education_level"] = rng.choice([
                    "none", "primary", "lower_secondary", "upper_secondary", "vocational",
                    "university", "postgraduate", "unknown"])
            if rng.random() < 0.75:
                answers["occupation"] = rng.choice(
                    ["isco_2", "isco_3", "isco_4", "isco_5", "isco_5", "isco_6", "isco_7",
                     "isco_7", "isco_8", "isco_9", "isco_9", "none"])
                answers["experience_years"] = str(rng.randint(0, max(0, min(80, age - 14))))
            if rng.random() < 0.25:
                answers["certified_skills"] = rng.choice(SKILLS)
            answers["employment_status"] = rng.choice(
                ["employed", "self_employed", "unemployed", "unemployed", "inactive", "other"])
            answers["training_interest"] = ["none"] if rng.random() < 0.3 else _sample(
                rng, [("vocational", 5), ("soft_skills", 2), ("labour_rights", 2),
                      ("entrepreneurship", 3), ("language", 1), ("digital", 3)],
                rng.randint(1, 3))
        if nationality == "HT":
            answers["languages"] = ["ht", "fr"] + (["es"] if rng.random() < 0.5 else [])
        else:
            answers["languages"] = ["es"] + (["en"] if rng.random() < 0.15 else [])
        if rng.random() < 0.6:
            needs = ["none"] if rng.random() < 0.7 else _sample(rng, [
                ("pregnancy", 3), ("disability", 2), ("medical", 4), ("violence_survivor", 2),
                ("trafficking_risk", 1), ("other", 1)], rng.randint(1, 2))
            answers["specific_needs"] = needs
            if "other" in needs:
                answers["specific_needs_other"] = "Requiere silla de ruedas para el traslado."
        if rng.random() < 0.8:
            answers["phone"] = _phone(rng, nationality)
            answers["messaging_app"] = rng.choices(
                ["whatsapp", "telegram", "signal", "sms", "none"], [80, 5, 2, 8, 5])[0]
        answers["preferred_language"] = "ht" if nationality == "HT" and rng.random() < 0.5 else "es"
        if rng.random() < 0.5:
            answers["notes"] = "\n".join(rng.sample(NOTES, rng.randint(1, 4)))
        return answers


def clean(definition, raw: dict, today: date) -> dict:
    """The validator's clean answers; anything invalid is a bug in the generator: fail loudly."""
    result = validate.validate(definition, raw, today)
    if not result.ok:
        raise AssertionError(f"generated answers are invalid: {result.errors} in {raw}")
    return result.answers


# ------------------------------------------------------------------ measurement helpers


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between closest ranks."""
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return pct(ms, 50), pct(ms, 95)


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    if not match:
        raise AssertionError("no csrf_token on the page")
    return match.group(1)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Instance:
    """A throw-away fieldapp instance with N records and a logged-in officer's test client."""

    path: Path
    size: int
    app: object = None
    client: object = None
    token: str = ""
    preload_s: float = 0.0
    db_mb: float = 0.0
    doc_numbers: list[str] = field(default_factory=list)


def build_instance(parent: Path, size: int, seed: int) -> Instance:
    path = parent / f"instance-{size}"
    settings.write_new(path, post=POST, mode="field")
    app = create_app(instance=path)
    db = storage_db.connect(app.config["DATABASE"])
    migrations.apply(db)
    accounts.create(db, username=OFFICER, password=PASSWORD, role="officer", post=POST)
    inst = Instance(path=path, size=size, app=app)
    definition = schema.get("intake")
    today = date.today()
    gen = IntakeGenerator(seed, today)
    id_rng = random.Random(seed + 1)
    device = app.config["DEVICE_ID"]
    started = time.perf_counter()
    done = 0
    while done < size:
        subs = []
        for _ in range(min(PRELOAD_CHUNK, size - done)):
            answers = clean(definition, gen.raw(), today)
            if "doc_number" in answers and len(inst.doc_numbers) < 300:
                inst.doc_numbers.append(answers["doc_number"])
            subs.append(records.Submission(
                uuid=str(uuid.UUID(int=id_rng.getrandbits(128), version=4)),
                definition=definition, answers=answers, post=POST, device=device, user=OFFICER,
            ))
        decisions = records.save_batch(db, subs)
        if any(d.outcome is not records.Outcome.STORED for d in decisions):
            raise AssertionError("preload: a record was not stored")
        done += len(subs)
    inst.preload_s = time.perf_counter() - started
    stored = records.count(db, "intake", POST)
    if stored != size:
        raise AssertionError(f"preload stored {stored} records, expected {size}")
    # Close it: a request path never shares a connection, and an extra open connection would
    # change SQLite's behaviour (the last connection to close checkpoints and removes the WAL).
    db.close()

    client = app.test_client()
    login = client.get("/en/login")
    response = client.post("/en/login", data={
        "csrf_token": _csrf(login.get_data(as_text=True)), "username": OFFICER,
        "password": PASSWORD,
    })
    if response.status_code != 302:
        raise AssertionError(f"login failed: {response.status_code}")
    page = client.get("/en/intake/new")
    if page.status_code != 200:
        raise AssertionError(f"GET /en/intake/new: {page.status_code}")
    inst.client, inst.token = client, _csrf(page.get_data(as_text=True))
    return inst


def _form_data(raw: dict, token: str) -> dict:
    data = {k: v for k, v in raw.items() if v != ""}
    data.update(csrf_token=token, uuid=str(uuid.uuid4()), base_revision="0", form_version="1")
    return data


def submit(inst: Instance, payloads: list[dict]) -> list[float]:
    """POST each payload to /en/intake/new; time each POST; follow the redirect untimed."""
    client, times = inst.client, []
    for raw in payloads:
        data = _form_data(raw, inst.token)
        started = time.perf_counter()
        response = client.post("/en/intake/new", data=data)
        elapsed = time.perf_counter() - started
        if response.status_code != 302:
            body = response.get_data(as_text=True)
            errors = re.findall(r'class="error[^"]*"[^>]*>(.*?)<', body)[:10]
            raise AssertionError(
                f"POST /en/intake/new returned {response.status_code}, expected 302: "
                f"{errors or body[:2000]}\nposted: {data}")
        times.append(elapsed)
        shown = client.get(response.headers["Location"])  # as a browser does; pops the flash
        if shown.status_code != 200:
            raise AssertionError(f"GET {response.headers['Location']}: {shown.status_code}")
    return times


def search_queries(inst: Instance) -> list[tuple[str, str]]:
    """(kind, query): a common given name, surname prefixes without accents, two words, a
    document number prefix, and no match."""
    rng = random.Random(7)
    docs = [d for d in inst.doc_numbers if len(d) >= 6]
    return [
        ("common given name", "María"),
        ("common given name", "jose"),
        ("surname prefix, no accents", "rodrig"),
        ("surname prefix, no accents", "nunez"),
        ("two words", "maria gonz"),
        ("document prefix", rng.choice([d for d in docs if d.startswith("V-")] or docs)[:6]),
        ("document prefix", rng.choice(docs)[:5]),
        ("no match", "Zzyzx"),
    ]


def search(inst: Instance, queries: list[tuple[str, str]], n: int) -> tuple[list[float], dict]:
    client, times, by_query = inst.client, [], {}
    for i in range(n):
        _, q = queries[i % len(queries)]
        started = time.perf_counter()
        response = client.get("/en/records", query_string={"q": q})
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise AssertionError(f"GET /en/records?q={q}: {response.status_code}")
        times.append(elapsed)
        by_query.setdefault(q, []).append(elapsed)
    return times, by_query


def raw_database(path: Path) -> sqlite3.Connection:
    """A fresh plain-sqlite3 database with the app's pragmas and one table `t (uuid, data)`."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL, data TEXT NOT NULL)")
    return conn


def raw_inserts(path: Path, payloads: list[str]) -> list[float]:
    """The raw limit: one row per committed transaction, same pragmas, a fresh database."""
    conn = raw_database(path)
    times = []
    for data in payloads:
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (uuid, data) VALUES (?, ?)", [str(uuid.uuid4()), data])
        conn.execute("COMMIT")
        times.append(time.perf_counter() - started)
    conn.close()
    return times


def revision() -> str:
    """The checkout's commit, marked dirty if fieldapp/ has uncommitted changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fieldapp"], cwd=repo,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs{f' ({cpu})' if cpu else ''}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20251121)
    parser.add_argument("--dir", default=None,
                        help="parent of the temporary directory (the disk under test)")
    args = parser.parse_args(argv)

    today = date.today()
    definition = schema.get("intake")
    med = statistics.median
    commit = revision()
    with tempfile.TemporaryDirectory(prefix="fieldapp-bench-", dir=args.dir) as tmp:
        tmp_path = Path(tmp)
        _log(f"working in {tmp_path}")
        instances, gens, queries = {}, {}, {}
        for size in args.sizes:
            _log(f"[{size:,}] preloading...")
            inst = build_instance(tmp_path, size, args.seed)
            inst.db_mb = Path(inst.app.config["DATABASE"]).stat().st_size / 1e6
            _log(f"[{size:,}] preloaded in {inst.preload_s:.1f} s ({inst.db_mb:.0f} MB)")
            instances[size], gens[size] = inst, IntakeGenerator(args.seed + size, today)
            queries[size] = search_queries(inst)
            submit(inst, [gens[size].raw() for _ in range(WARMUP_SUBMISSIONS)])
            search(inst, queries[size], WARMUP_SEARCHES)
        # Runs interleave the sizes, so a slow spell of this shared machine hits every size
        # alike rather than one of them; each size gets its own raw baseline right before it.
        runs: dict[int, list] = {size: [] for size in args.sizes}
        for run in range(args.runs):
            for size in args.sizes:
                inst, gen = instances[size], gens[size]
                payloads = [gen.raw() for _ in range(args.submissions)]
                raw_json = [json.dumps(clean(definition, r, today), ensure_ascii=False,
                                       sort_keys=True) for r in payloads]
                raw = summary(raw_inserts(tmp_path / "raw.db", raw_json))
                sub = summary(submit(inst, payloads))
                times, by_query = search(inst, queries[size], args.searches)
                found = summary(times)
                runs[size].append((sub, raw, found, by_query))
                _log(f"[{size:,}] run {run + 1}: submit p50/p95 {sub[0]:.1f}/{sub[1]:.1f} ms, "
                     f"raw {raw[0]:.2f}/{raw[1]:.2f} ms, search {found[0]:.1f}/{found[1]:.1f} ms")
        rows, details = [], []
        for size in args.sizes:
            inst, size_runs = instances[size], runs[size]
            rows.append({
                "size": size, "preload_s": inst.preload_s, "db_mb": inst.db_mb,
                "sub50": med([r[0][0] for r in size_runs]),
                "sub95": med([r[0][1] for r in size_runs]),
                "raw50": med([r[1][0] for r in size_runs]),
                "raw95": med([r[1][1] for r in size_runs]),
                "s50": med([r[2][0] for r in size_runs]), "s95": med([r[2][1] for r in size_runs]),
                "runs": size_runs,
            })
            details.append((size, {
                (kind, q): med([summary(r[3][q])[0] for r in size_runs])
                for kind, q in queries[size]
            }))

    grown = WARMUP_SUBMISSIONS + args.runs * args.submissions
    print(f"Intake benchmark, {date.today().isoformat()}: {args.submissions:,} submissions and "
          f"{args.searches:,} searches per run, median of {args.runs} runs (every POST stores a "
          f"record: each size grows by {grown:,} during the benchmark).\n")
    print("| records stored | submit p50 ms | submit p95 ms | raw sqlite3 insert p50/p95 ms "
          "| ratio p50 | ratio p95 | search p50 ms | search p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']:,} | {r['sub50']:.1f} | {r['sub95']:.1f} | "
              f"{r['raw50']:.2f} / {r['raw95']:.2f} | {r['sub50'] / r['raw50']:.1f}× | "
              f"{r['sub95'] / r['raw95']:.1f}× | {r['s50']:.1f} | {r['s95']:.1f} |")
    print()
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        growth = last["sub95"] / first["sub95"]
        verdict = "met" if growth <= 1.2 else "MISSED"
        print(f"submit p95 at {last['size']:,} / at {first['size']:,} = {growth:.2f}× "
              f"(goal ≤ 1.2×: {verdict})")
    worst = max(r["sub95"] for r in rows)
    print(f"worst submit p95 = {worst:.1f} ms (goal < 30 ms: {'met' if worst < 30 else 'MISSED'})")
    print()
    print("Search p50 ms per query (median of runs):\n")
    print("| query | " + " | ".join(f"{size:,}" for size, _ in details) + " |")
    print("|---|" + "---:|" * len(details))
    for key in details[0][1]:
        kind, q = key
        cells = [f"{pq[key]:.1f}" if key in pq else "–" for _, pq in details]
        print(f"| {kind}: `{q}` | " + " | ".join(cells) + " |")
    print()
    print("Per run (submit p50/p95 · raw p50/p95 · search p50/p95, ms):\n")
    for r in rows:
        cells = "; ".join(f"{a[0]:.1f}/{a[1]:.1f} · {b[0]:.2f}/{b[1]:.2f} · {c[0]:.1f}/{c[1]:.1f}"
                          for a, b, c, _ in r["runs"])
        print(f"- {r['size']:,}: {cells}")
    print()
    for r in rows:
        print(f"preload of {r['size']:,} records (setup, save_batch in chunks of "
              f"{PRELOAD_CHUNK:,}): {r['preload_s']:.1f} s, database {r['db_mb']:.0f} MB")
    print(f"fieldapp commit: {commit}")
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
