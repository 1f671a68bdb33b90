"""Diagnostics shared by `fieldapp doctor` and the diagnostics page: take the readings (database,
disk, last backup, sync, certificates), check them against the DOCTOR_* thresholds, word each
problem with what to do about it, and write the support bundle."""

from __future__ import annotations

import contextlib
import json
import platform
import re
import shutil
import sqlite3
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from babel.numbers import format_decimal
from cryptography import x509

from fieldapp import backups, logs, tls
from fieldapp import config as settings
from fieldapp.domain import diagnostics as rules
from fieldapp.storage import health

PACKAGES = ("flask", "flask-wtf", "flask-babel", "babel", "sqlite-utils", "waitress", "cheroot",
            "requests", "cryptography")
_SECRET = re.compile(r"SECRET|TOKEN|PASS|KEY|CREDENTIAL|PRIVATE|SALT", re.I)
REMOVED = "(removed)"


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where it is shown."""
    return message


_BACKUP_ADVICE = N_("Plug in a USB stick and make a backup: Backup on the supervisor's page, or "
                    "`fieldapp backup`.")
_SYNC_ADVICE = N_("Sync now on the Sync page or with `fieldapp sync`. With no internet, carry a sync "
                  "file to the central office (`fieldapp sync export-bundle`).")
_CERT_ADVICE = N_("Restart fieldapp (the service, or `fieldapp serve --https`): it renews the "
                  "certificate at start. Phones and tablets keep working.")
_CA_ADVICE = N_("Tell the central office: a new certificate authority must be made, and every phone "
                "and tablet must install it again (see docs/https.md).")
# code -> (what is wrong, what to do about it)
MESSAGES = {
    "no_database": (N_("The database file is missing."),
                    N_("Check the instance folder (--instance or FIELDAPP_INSTANCE). If this laptop's "
                       "disk was replaced, restore the last backup with `fieldapp restore`.")),
    "integrity": (N_("The database is damaged: %(detail)s"),
                  N_("Stop fieldapp, copy the whole instance folder somewhere safe, and tell the "
                     "central office. Then restore the last backup (`fieldapp restore`) and sync.")),
    "low_disk": (N_("Free disk space is low: %(free_mb)s MB left, %(needed_mb)s MB wanted."),
                 N_("Empty the recycle bin and remove old downloads, exports and backups kept on this "
                    "disk. When the disk is full, nothing more can be saved.")),
    "no_backup": (N_("This server has never been backed up."), _BACKUP_ADVICE),
    "stale_backup": (N_("Days since the last backup: %(days)s (the limit is %(limit)s)."),
                     _BACKUP_ADVICE),
    "unreadable_backup": (N_("The note of the last backup (last-backup.json) cannot be read."),
                          _BACKUP_ADVICE),
    "not_enrolled": (N_("This field server is not enrolled at a central server."),
                     N_("Ask the central office for an enrolment code, then enrol on the Sync page or "
                        "with `fieldapp sync enrol`.")),
    "no_sync": (N_("This field server has never synced with central."), _SYNC_ADVICE),
    "stale_sync": (N_("Days since the last successful sync: %(days)s (the limit is %(limit)s)."),
                   _SYNC_ADVICE),
    "pending": (N_("Changes waiting to be sent to central: %(n)s (the limit is %(limit)s)."),
                _SYNC_ADVICE),
    "refused": (N_("Records refused by central, waiting for a correction: %(n)s."),
                N_("Open the Sync page: each one shows central's reason. Correct them, then sync "
                   "again.")),
    "clock": (N_("At the last sync this computer's clock was %(minutes)s minutes off central's."),
              N_("Set this computer's date, time and time zone (automatic, if it has internet), then "
                 "sync again.")),
    "cert_expiring": (N_("The HTTPS certificate of this server expires on %(date)s."), _CERT_ADVICE),
    "cert_expired": (N_("The HTTPS certificate of this server expired on %(date)s."), _CERT_ADVICE),
    "ca_expiring": (N_("The local certificate authority expires on %(date)s."), _CA_ADVICE),
    "ca_expired": (N_("The local certificate authority expired on %(date)s."), _CA_ADVICE),
}


@dataclass
class Report:
    """Everything measured, and the problems found: `gather(app.config, app.instance_path)`."""

    readings: rules.Readings
    findings: list[rules.Finding]
    check: str  # "integrity_check" or "quick_check"
    version: str
    post: str
    database: str
    schema: str
    schema_pending: int
    backup: dict | None
    central_url: str = ""
    device: str = ""
    logs: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings


def version() -> str:
    try:
        return metadata.version("fieldapp")
    except metadata.PackageNotFoundError:
        return "unknown"


def free_bytes(config, folder: Path) -> int | None:
    """Free space on the disk of `folder`; DOCTOR_FREE_BYTES, when set, replaces the reading
    (for tests, which cannot fill a disk)."""
    fake = config.get("DOCTOR_FREE_BYTES")
    if fake not in (None, ""):
        return int(fake)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def last_backup(instance: Path) -> tuple[dict | None, bool]:
    """(the note of the last backup, whether a note exists but cannot be read)."""
    path = instance / backups.LAST_BACKUP
    if not path.exists():
        return None, False
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
        at = _utc(datetime.fromisoformat(note["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None, True
    return {"at": at, "path": str(note.get("path", "")), "bytes": note.get("bytes"),
            "records": note.get("records")}, False


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ca_expires(instance: Path) -> datetime | None:
    try:
        ca = x509.load_pem_x509_certificate((instance / "tls" / "ca.crt").read_bytes())
    except (OSError, ValueError):
        return None
    return ca.not_valid_after_utc


def gather(config, instance: str | Path, *, full: bool = False, now: datetime | None = None) -> Report:
    """Take every reading and check it: `gather(app.config, app.instance_path, full=True)`."""
    instance = Path(instance)
    now = now or datetime.now(UTC)
    mode = config["MODE"]
    db = health.read(config["DATABASE"], mode=mode, full=full)
    backup, unreadable = last_backup(instance)
    certs = tls.files(instance)
    readings = rules.Readings(
        now=now, mode=mode, db_exists=db.exists, db_bytes=db.bytes, integrity=tuple(db.integrity),
        free_bytes=free_bytes(config, instance), backup_at=backup["at"] if backup else None,
        backup_unreadable=unreadable, enrolled=db.enrolled if db.readable else None,
        last_sync=_utc(datetime.fromisoformat(db.last_sync)) if db.last_sync else None,
        pending=db.pending, refused=db.refused, clock_offset=db.clock_offset,
        cert_expires=certs.expires if certs else None, ca_expires=_ca_expires(instance),
    )
    return Report(
        readings=readings, findings=rules.check(readings, rules.Thresholds.from_config(config)),
        check="integrity_check" if full else "quick_check", version=version(),
        post=config["POST"], database=str(config["DATABASE"]), schema=db.schema,
        schema_pending=db.schema_pending, backup=backup, central_url=db.central_url, device=db.device,
        logs=str(logs.directory(config, instance)),
    )


def message(finding: rules.Finding, gettext: Callable[..., str]) -> tuple[str, str]:
    """(what is wrong, what to do), translated by `gettext` (Flask-Babel's or the CLI's)."""
    what, todo = MESSAGES[finding.code]
    return gettext(what, **finding.params), gettext(todo)


def _mb(n: int | None, lang: str) -> str:
    return "—" if n is None else f"{format_decimal(round(n / rules.MB, 1), locale=lang)} MB"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    return f"{moment.strftime('%Y-%m-%d %H:%M')} UTC ({(now - moment).days} d)"


def rows(report: Report, gettext: Callable[..., str], lang: str = "en") -> list[tuple[str, str]]:
    """The readings as (label, value) lines, for the page and the terminal."""
    r, never, unknown = report.readings, gettext("never"), gettext("unknown")
    integrity = (gettext("intact") if r.integrity == ("ok",) else gettext("damaged")) if r.db_exists else \
        gettext("missing")
    lines = [
        (gettext("fieldapp version"), report.version),
        (gettext("Mode"), (gettext("central server") if r.mode == "central" else gettext("field server"))
         + f" · {report.post}"),
        (gettext("Schema version"), report.schema + (
            " " + gettext("(%(n)s migrations to apply at the next start)", n=report.schema_pending)
            if report.schema_pending else "")),
        (gettext("Database"), f"{report.database} · {_mb(r.db_bytes, lang)}"),
        (gettext("Database integrity (%(check)s)", check=report.check), integrity),
        (gettext("Free disk space"), _mb(r.free_bytes, lang) if r.free_bytes is not None else unknown),
        (gettext("Last backup"), never if report.backup is None else
         f"{_when(report.backup['at'], r.now)} · {report.backup['path']}"),
    ]
    if r.mode == "field" and r.enrolled is None:
        lines.append((gettext("Last successful sync"), unknown))
    elif r.mode == "field":
        lines += [
            (gettext("Central server"), report.central_url or gettext("not enrolled")),
            (gettext("Last successful sync"), _when(r.last_sync, r.now) or never),
            (gettext("Changes waiting to be sent"), str(r.pending)),
            (gettext("Records refused by central"), str(r.refused)),
            (gettext("Clock offset to central at the last sync"), unknown if r.clock_offset is None
             else gettext("%(seconds)s seconds", seconds=format_decimal(r.clock_offset, locale=lang))),
        ]
    lines += [
        (gettext("HTTPS certificate valid until"),
         r.cert_expires.date().isoformat() if r.cert_expires else gettext("no certificate")),
        (gettext("Certificate authority valid until"),
         r.ca_expires.date().isoformat() if r.ca_expires else gettext("no certificate")),
        (gettext("Log files"), report.logs),
    ]
    return lines


def as_dict(report: Report, gettext: Callable[..., str]) -> dict:
    """The report as JSON-ready data: readings with stable keys, problems with their messages."""
    readings = {k: v.isoformat() if isinstance(v, datetime) else v
                for k, v in asdict(report.readings).items()}
    backup = None if report.backup is None else {**report.backup, "at": report.backup["at"].isoformat()}
    return {
        "ok": report.ok, "version": report.version, "post": report.post, "device": report.device,
        "central_url": report.central_url, "schema": report.schema,
        "schema_pending": report.schema_pending, "check": report.check, "database": report.database,
        "backup": backup, "readings": readings,
        "problems": [_problem(f, gettext) for f in report.findings],
    }


def _problem(finding, gettext) -> dict:
    text, advice = message(finding, gettext)
    return {"code": finding.code, "params": finding.params, "message": text, "advice": advice}


def versions() -> dict:
    """fieldapp, Python, SQLite, the platform and the main libraries."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"fieldapp": version(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(), "packages": packages}


def safe_config(config, instance: Path) -> dict:
    """The settings that shape this server (defaults, instance file, FIELDAPP_* variables), with
    secrets removed: any key naming a secret, key, token or password, and passwords in URLs."""
    keys = set(settings.DEFAULTS)
    path = instance / settings.CONFIG_FILE
    with contextlib.suppress(OSError, ValueError):
        keys |= set(tomllib.loads(path.read_text(encoding="utf-8")))
    keys |= {k for k in config if k.startswith(("DOCTOR_", "LOG_", "BACKUP_", "SYNC_"))}
    safe = {}
    for key in sorted(keys):
        value = config.get(key)
        if _SECRET.search(key):
            value = REMOVED if value not in (None, "") else value
        elif isinstance(value, str):
            value = re.sub(r"//[^/@\s]*@", "//", value)  # user:password@ in a URL
        safe[key] = value if isinstance(value, str | int | float | bool | list | type(None)) else str(value)
    return safe


def write_bundle(target, report: Report, config, instance: str | Path,
                 gettext: Callable[..., str]) -> list[str]:
    """Write the support bundle (a zip) to `target`, a path or a binary file; its member names.

    It holds the log files, the diagnostics, the configuration without secrets and the versions:
    never the database, the certificates' keys or anything else from the instance folder."""
    instance = Path(instance)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("diagnostics.json", json.dumps(as_dict(report, gettext), indent=2, ensure_ascii=False))
        z.writestr("config.json", json.dumps(safe_config(config, instance), indent=2, ensure_ascii=False))
        z.writestr("versions.json", json.dumps(versions(), indent=2))
        for path in logs.files(config, instance):
            z.write(path, f"logs/{path.name}")
        return z.namelist()
