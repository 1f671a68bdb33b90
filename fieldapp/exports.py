"""Central exports, from request to file: one data set (a form, the attendance long table or the
per-participant summary), filtered, in one format and profile, with its codebook.

The web page and `fieldapp export` both call `start`, then `run`; `run` streams the records from
one read snapshot through the converters into the file, so memory stays flat whatever the size.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path

from sqlite_utils import Database

from fieldapp.domain import filters, trainings
from fieldapp.domain.filters import Filter
from fieldapp.domain.persons import PERSON_FORMS
from fieldapp.forms import countries, export, schema, writers
from fieldapp.storage import audit, central, persons
from fieldapp.storage import db as storage_db
from fieldapp.storage import exports as store
from fieldapp.storage.db import snapshot

N_ = export.N_

ATTENDANCE = "attendance_table"
PARTICIPANTS = "participant_summary"
DATASETS = (*filters.FORMS, ATTENDANCE, PARTICIPANTS)
FORMATS = writers.FORMATS
# Data sets whose rows are records: "only what changed since my last export" is exact for them.
INCREMENTAL = (*filters.FORMS, ATTENDANCE)
MAX_PURPOSE = 500


class ExportError(ValueError):
    """An export that cannot be made as asked: `message` is an English source string."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Request:
    dataset: str
    format: str
    options: export.Options
    purpose: str
    flt: Filter
    incremental: bool = False


def parse_filter(args) -> tuple[Filter, dict[str, str]]:
    """The filter in query arguments (web or command line) and its errors (English source strings).
    Choice filters accept the intake form's codes; nationality its countries."""
    intake = schema.get("intake")
    choices = {name: intake.fields_by_name[name].codes for name in ("sex", "age_group", "migratory_status")}
    nationality = intake.fields_by_name["nationality"]
    return filters.parse(args, choices=choices, countries=countries.codes() | set(nationality.extra))


def check(dataset: str, format: str, *, labels: str, lang: str, headers: str, profile: str,
          purpose: str, incremental: bool) -> dict[str, str]:
    """What is wrong with an export request, field by field (English source strings)."""
    errors = {}
    if dataset not in DATASETS:
        errors["dataset"] = N_("Choose one of the data sets in the list.")
    if format not in FORMATS:
        errors["format"] = N_("Choose CSV, XLSX or JSON Lines.")
    if labels not in export.LABELS:
        errors["labels"] = N_("Choose codes, labels or both.")
    if lang not in export.LANGUAGES:
        errors["lang"] = N_("Choose English or Spanish.")
    if headers not in export.HEADERS:
        errors["headers"] = N_("Choose variable names or labels.")
    if profile not in export.PROFILES:
        errors["profile"] = N_("Choose the full or the pseudonymised profile.")
    if profile == "full" and not purpose.strip():
        errors["purpose"] = N_("Say what the full export is for: it holds personal data.")
    if len(purpose) > MAX_PURPOSE:
        errors["purpose"] = N_("Describe the purpose in at most 500 characters.")
    if incremental and dataset == PARTICIPANTS:
        errors["incremental"] = N_("The per-participant summary is always exported whole.")
    return errors


def pseudonym_key(secret_key: str) -> bytes:
    """The keyed hash's secret for pseudonymised exports, derived from the instance's secret key:
    the same person has the same pseudonym in every export of this central server."""
    return hmac.new(secret_key.encode(), b"fieldapp export pseudonyms", hashlib.sha256).digest()


def start(db: Database, req: Request, *, username: str, actor: audit.Actor = audit.SYSTEM) -> dict:
    """Record the export (the audit row) and how many rows it will have; `run` writes it.

    Also an `export.started` event of the audit log, by `actor`: its filters, but of a name or
    document number searched for only that there was one."""
    since = None
    if req.incremental:
        since = store.last_upto(db, username=username, dataset=req.dataset, profile=req.options.profile) or 0
    export_id = secrets.token_urlsafe(18)
    options = {"labels": req.options.labels, "lang": req.options.lang, "headers": req.options.headers,
               "incremental": req.incremental}
    upto, total = central.last_seq(db), _count(db, req, since)
    filters = req.flt.as_dict()
    with storage_db.write(db):
        store.create(db, export_id=export_id, username=username, dataset=req.dataset, format=req.format,
                     profile=req.options.profile, purpose=req.purpose.strip(), options=options,
                     filters=filters, since_seq=since, upto_seq=upto, total=total)
        audit.record(db, "export.started", actor=actor, target=f"export:{export_id}", details={
            "dataset": req.dataset, "format": req.format, "profile": req.options.profile,
            "rows": total, "incremental": req.incremental,
            "filters": {**filters, **({"q": True} if "q" in filters else {})}})
    return store.get(db, export_id)


def _count(db: Database, req: Request, since: int | None) -> int:
    if req.dataset == PARTICIPANTS:
        return central.count(db, _as(req.flt, "enrolment"))
    form = "attendance" if req.dataset == ATTENDANCE else req.dataset
    return central.count(db, _as(req.flt, form), since_seq=since)


def _as(flt: Filter, form: str) -> Filter:
    return replace(flt, form=form)


def download_name(job: dict) -> str:
    """`intake-2026-11-21-pseudonymised.xlsx`; CSV and JSON Lines come zipped with their codebook."""
    return f"{job['dataset']}-{job['created_at'][:10]}-{job['profile']}{_suffix(job['format'])}"


def _suffix(fmt: str) -> str:
    return ".xlsx" if fmt == "xlsx" else ".zip"


def media_type(fmt: str) -> str:
    return writers.MEDIA_TYPES["xlsx"] if fmt == "xlsx" else "application/zip"


def write(db: Database, job: dict, path: Path, *, secret_key: str,
          progress: Callable[[int], None] | None = None) -> tuple[int, list[Path]]:
    """Write the export recorded as `job` to `path` (its codebook beside it, or inside an XLSX)."""
    options = export.Options(labels=job["options"]["labels"], lang=job["options"]["lang"],
                             headers=job["options"]["headers"], profile=job["profile"],
                             key=pseudonym_key(secret_key))
    flt = Filter(**{"form": "intake", **job["filters"]})
    with snapshot(db):  # the merges and the records as they were at one moment
        columns, rows, codebook = _tables(db, job["dataset"], flt, options, job["since_seq"])
        return writers.write(job["format"], path, columns, rows, codebook=codebook, progress=progress)


def run(db: Database, job: dict, folder: Path, *, secret_key: str,
        progress: Callable[[int], None] | None = None) -> Path:
    """Write the export recorded as `job` as one downloadable file in `folder` and record its outcome;
    nothing half-written is ever offered: the file appears complete or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{job['id']}{_suffix(job['format'])}"
    work = Path(tempfile.mkdtemp(prefix=f".{job['id']}-", dir=folder))
    try:
        data = work / f"{job['dataset']}{writers.SUFFIXES[job['format']]}"
        rows, files = write(db, job, data, secret_key=secret_key, progress=progress)
        if job["format"] == "xlsx":
            files[0].replace(target)
        else:
            with zipfile.ZipFile(work / "export.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
                for f in files:
                    bundle.write(f, f.name)
            (work / "export.zip").replace(target)
    except BaseException as e:
        store.fail(db, job["id"], rows=0, error=type(e).__name__)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    store.finish(db, job["id"], rows=rows, file=target.name)
    return target


def _tables(db: Database, dataset: str, flt: Filter, options: export.Options, since: int | None):
    """(columns, rows, (codebook columns, codebook rows)) of a data set. Persons merged at central
    appear as the person they were merged into (`person_id`), in every data set."""
    merged = persons.links(db)
    if dataset == ATTENDANCE:
        marks = _attendance_rows(db, flt, options, since, merged)
        return (_derived_columns(ATTENDANCE_COLUMNS, options), marks,
                _derived_codebook(ATTENDANCE_COLUMNS, options))
    if dataset == PARTICIPANTS:
        return (_derived_columns(PARTICIPANT_COLUMNS, options), _participant_rows(db, flt, options, merged),
                _derived_codebook(PARTICIPANT_COLUMNS, options))
    definition = schema.get(dataset)
    records = central.stream(db, _as(flt, dataset), since_seq=since)
    if merged:
        records = _merged_into(records, merged, own=dataset in PERSON_FORMS)
    return (export.columns(definition, options), export.rows(definition, records, options),
            export.codebook(definition, options))


def _merged_into(records, merged: dict[str, str], *, own: bool):
    """The records, each pointing at the person it is about as that person now is: a registration
    or intake of a merged person (`own`) points at the survivor instead of at itself."""
    for record in records:
        person = record.get("person") or (record["uuid"] if own else "")
        if person in merged:
            record = {**record, "person": merged[person]}
        yield record


# The derived tables: (variable, English label, codebook type, kept in the pseudonymised profile).
ATTENDANCE_COLUMNS = (
    ("record_id", N_("Record id"), "id", "hash"),
    ("person_id", N_("Person id"), "id", "hash"),
    ("post", N_("Post"), "text", True),
    ("course_id", N_("Course id"), "id", True),
    ("course_title", N_("Course"), "text", True),
    ("course_area", N_("Area"), "choice:course.area", True),
    ("session_id", N_("Session id"), "id", True),
    ("session_date", N_("Session date"), "date", True),
    ("start_time", N_("Start time"), "time", True),
    ("end_time", N_("End time"), "time", True),
    ("session_status", N_("Session status"), "choice:session.status", True),
    ("status", N_("Attendance"), "choice:attendance.status", True),
    ("note", N_("Note"), "text", False),
    ("sex", N_("Sex"), "choice:participant.sex", True),
    ("nationality", N_("Nationality"), "country", True),
    ("device", N_("Device"), "text", False),
    ("officer", N_("Officer"), "text", False),
    ("captured_at", N_("Captured at"), "datetime", True),
    ("revision", N_("Revision"), "integer", True),
)
PARTICIPANT_COLUMNS = (
    ("person_id", N_("Person id"), "id", "hash"),
    ("post", N_("Post"), "text", True),
    ("course_id", N_("Course id"), "id", True),
    ("course_title", N_("Course"), "text", True),
    ("course_area", N_("Area"), "choice:course.area", True),
    ("enrolment_status", N_("Enrolment status"), "choice:enrolment.status", True),
    ("sex", N_("Sex"), "choice:participant.sex", True),
    ("nationality", N_("Nationality"), "country", True),
    ("sessions_held", N_("Sessions held"), "integer", True),
    ("sessions_attended", N_("Sessions attended"), "integer", True),
    ("hours_attended", N_("Hours attended"), "decimal", True),
    ("attendance_percent", N_("Attendance (percent)"), "integer", True),
    ("completed", N_("Completed (met the minimum attendance)"), "choice:intake.unaccompanied_minor", True),
    ("certified", N_("Certificate issued"), "choice:intake.unaccompanied_minor", True),
    ("certificate_number", N_("Certificate number"), "text", False),
)


def _kept(spec, options: export.Options) -> bool:
    return not options.pseudonymised or spec[3] is not False


def _choice_field(kind: str):
    if kind.startswith("choice:"):
        form, name = kind.split(":", 1)[1].split(".")
        return schema.get(form).fields_by_name[name]
    if kind == "country":
        return schema.get("participant").fields_by_name["nationality"]
    return None


def _derived_columns(specs, options: export.Options) -> list[export.Column]:
    columns = []
    for spec in specs:
        if not _kept(spec, options):
            continue
        name, label, kind, _ = spec
        header = name if options.headers == "variables" else export.translate(label, options.lang)
        columns.append(export.Column(name, header, _cell_type(kind)))
        if _choice_field(kind) and options.labels == "both":
            label_header = (f"{name}{export.LABEL_SUFFIX}" if options.headers == "variables"
                            else f"{header} ({export.translate(N_('label'), options.lang)})")
            columns.append(export.Column(f"{name}{export.LABEL_SUFFIX}", label_header))
    return columns


def _cell_type(kind: str) -> str:
    return kind if kind in ("integer", "date") else "text"


def _derived_codebook(specs, options: export.Options):
    head = export.codebook(schema.get("enrolment"), options)[0]
    rows = []
    for spec in specs:
        if not _kept(spec, options):
            continue
        name, label, kind, _ = spec
        f = _choice_field(kind)
        shown = "pseudonym" if options.pseudonymised and spec[3] == "hash" else kind.split(":")[0]
        rows.append([name, *(export.translate(label, code) for code in export.LANGUAGES), shown,
                     export.choices_text(f) if f else ""])
    return head, iter(rows)


def _cells(specs, values: dict, options: export.Options) -> list:
    row = []
    for spec in specs:
        if not _kept(spec, options):
            continue
        name, _, kind, keep = spec
        value = values.get(name)
        if keep == "hash" and options.pseudonymised and value:
            value = export.pseudonym(value, options.key)
        f = _choice_field(kind)
        if f is not None and value:
            label = export.choice_label(f, value, options.lang)
            if options.labels == "labels":
                value = label
            row.append(value)
            if options.labels == "both":
                row.append(label)
            continue
        if f is not None and options.labels == "both":
            row += [value if value != "" else None, None]
            continue
        row.append(value if value != "" else None)
    return row


def _attendance_rows(db: Database, flt: Filter, options: export.Options, since: int | None,
                     merged: dict[str, str]):
    batch: list[dict] = []
    for mark in central.stream_attendance(db, flt, since_seq=since):
        batch.append({**mark, "person": merged.get(mark["person"], mark["person"])})
        if len(batch) == 500:
            yield from _attendance_batch(db, batch, options)
            batch = []
    yield from _attendance_batch(db, batch, options)


def _attendance_batch(db: Database, batch: list[dict], options: export.Options):
    people = central.person_answers(db, list({m["person"] for m in batch}))
    for m in batch:
        person = people.get(m["person"], {})
        values = {**m, "record_id": m["uuid"], "person_id": m["person"], "course_id": m["course"],
                  "session_id": m["session"], "officer": m["created_by"], "captured_at": m["created_at"],
                  "sex": person.get("sex", ""), "nationality": person.get("nationality", "")}
        yield _cells(ATTENDANCE_COLUMNS, values, options)


def _participant_rows(db: Database, flt: Filter, options: export.Options, merged: dict[str, str]):
    today = date.today()
    for course, sessions, enrolments, marks, certificates in central.stream_courses(db, flt):
        if merged:  # one row per person as the person now is, their marks and certificate together
            enrolments, marks, certificates = (
                [{**r, "person": merged.get(r["person"], r["person"])} for r in rows]
                for rows in (enrolments, marks, certificates))
            first: dict[str, dict] = {}
            for e in enrolments:
                first.setdefault(e["person"], e)
            enrolments = list(first.values())
        held = [trainings.Session(s["uuid"], date.fromisoformat(s["answers"]["date"]),
                                  time.fromisoformat(s["answers"]["start_time"]),
                                  time.fromisoformat(s["answers"]["end_time"]),
                                  cancelled=s["answers"].get("status") == "cancelled") for s in sessions]
        by_person: dict[str, dict[str, str]] = {}
        for m in marks:
            by_person.setdefault(m["person"], {})[m["parent"]] = m["answers"].get("status", "")
        certified = {c["person"]: c["answers"].get("number", "") for c in certificates}
        people = central.person_answers(db, [e["person"] for e in enrolments])
        minimum = course["answers"].get("min_attendance") or 0
        for e in enrolments:
            result = trainings.attendance(held, by_person.get(e["person"], {}), today)
            person = people.get(e["person"], {})
            values = {
                "person_id": e["person"], "post": e["post"], "course_id": course["uuid"],
                "course_title": course["answers"].get("title", ""),
                "course_area": course["answers"].get("area", ""),
                "enrolment_status": e["answers"].get("status", ""),
                "sex": person.get("sex", ""), "nationality": person.get("nationality", ""),
                "sessions_held": result.held, "sessions_attended": result.attended,
                "hours_attended": f"{float(result.hours):.2f}",
                "attendance_percent": round(result.rate * 100),
                "completed": "yes" if result.qualifies(minimum) else "no",
                "certified": "yes" if e["person"] in certified else "no",
                "certificate_number": certified.get(e["person"], ""),
            }
            yield _cells(PARTICIPANT_COLUMNS, values, options)
