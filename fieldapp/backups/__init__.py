"""Backups of a field server's database: make one while the app runs (command line, the
supervisor's page, on a schedule), look inside one, restore one.

A backup is a consistent copy made with SQLite's backup API into a temporary database in the
instance folder, checked, then encrypted into the chosen folder (`file.py`) and the copy removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from flask import has_request_context
from flask_babel import gettext

from fieldapp.backups import file as backup_file
from fieldapp.backups import lock
from fieldapp.backups.file import BackupFileError
from fieldapp.i18n import cli_gettext
from fieldapp.storage import audit, copy, migrations
from fieldapp.storage.db import DatabaseLocked, OperationalError, connect, is_encrypted, share_key

SUFFIX = ".fieldapp-backup"
LAST_BACKUP = "last-backup.json"
KEY_FILE = "backup-key.json"
MIN_PASSPHRASE = 10


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where it is shown."""
    return message


MESSAGES = {
    "not_a_backup": N_("This file is not a fieldapp backup."),
    "other_key": N_("This backup is of an encrypted database: restore it on this post's server "
                    "started with that database's passphrase. Nothing was changed."),
    "damaged": N_("This backup file is damaged: it was changed after it was written. Use another "
                  "backup. Nothing was changed."),
    "incomplete": N_("This backup file is incomplete: it was cut short, for example when a USB "
                     "stick was removed too early. Use another backup. Nothing was changed."),
    "newer_format": N_("This backup was made by a newer version of fieldapp. Install the newer "
                       "fieldapp, then restore. Nothing was changed."),
    "wrong_passphrase": N_("Wrong passphrase: this backup cannot be opened with it. Nothing was "
                           "changed."),
    "not_sound": N_("The database in this backup fails its integrity check. Use another backup. "
                    "Nothing was changed."),
    "newer_schema": N_("This backup holds a database from a newer version of fieldapp. Install "
                       "the newer fieldapp, then restore. Nothing was changed."),
    "serving": N_("fieldapp is running on this instance (process %(pids)s). Stop it first, then "
                  "restore. Nothing was changed."),
    "in_use": N_("Another fieldapp command is using the database. Wait for it to finish, then "
                 "restore. Nothing was changed."),
    "restoring": N_("A restore is running on this instance. Start fieldapp again when it has "
                    "finished."),
    "no_folder": N_("The folder %(folder)s does not exist. Plug in the USB stick, or choose "
                    "another folder."),
    "write_failed": N_("The backup could not be written to %(folder)s: %(error)s. Check that the "
                       "USB stick is plugged in, not full and not write-protected."),
    "short_passphrase": N_("The passphrase must have at least %(min)s characters."),
    "passphrases_differ": N_("The two passphrases are not the same."),
    "no_key": N_("Scheduled backups have no passphrase yet: run `fieldapp backup set-passphrase`."),
    "copy_failed": N_("The copy of the database failed its integrity check. Run `fieldapp doctor`; "
                      "no backup was written."),
}


def message(code: str, **params) -> str:
    """The message for a backup error code, in the page's language or else the terminal's."""
    params.setdefault("min", MIN_PASSPHRASE)
    if has_request_context():
        return gettext(MESSAGES[code], **params)
    return cli_gettext(MESSAGES[code], **params)


class BackupError(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params

    def message(self) -> str:
        return message(self.code, **self.params)


@dataclass
class Progress:
    """Where a backup or restore is: phase `copy`, `encrypt`, `decrypt`, `check`, `done`."""

    phase: str = "copy"
    done: int = 0
    total: int = 0

    def as_dict(self) -> dict:
        return {"phase": self.phase, "done": self.done, "total": self.total}


@dataclass
class Made:
    path: Path
    bytes: int
    records: int
    at: str

    def as_dict(self) -> dict:
        return {"at": self.at, "path": str(self.path), "bytes": self.bytes, "records": self.records}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def check_passphrase(passphrase: str, repeated: str | None = None) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError("short_passphrase")
    if repeated is not None and repeated != passphrase:
        raise BackupError("passphrases_differ")


def _workdir(instance: Path) -> Path:
    """A private folder for a plain copy: inside the instance, as protected as the database."""
    instance.mkdir(parents=True, exist_ok=True)
    for stale in instance.glob(".backup-work-*"):  # left by a power cut
        shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=".backup-work-", dir=instance))


def make(database: str | Path, instance: Path, folder: str | Path, *, post: str,
         passphrase: str | None = None, key_pair: dict | None = None,
         progress: Callable[[Progress], None] | None = None, actor: audit.Actor = audit.SYSTEM) -> Made:
    """Back up the database into `folder`, encrypted with the passphrase (or, for scheduled
    backups, for the key pair of `instance/backup-key.json`); record it in last-backup.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError("no_folder", folder=str(folder))
    report = progress or (lambda p: None)
    at = _now()
    stem = f"fieldapp-{post}-{at.strftime('%Y%m%d-%H%M%S')}"
    name, n = stem + SUFFIX, 1
    while (folder / name).exists():  # two backups in one second
        name, n = f"{stem}-{n}{SUFFIX}", n + 1
    final, partial = folder / name, folder / f".{name}.partial"
    work = _workdir(instance)
    try:
        plain = work / "copy.db"
        source = connect(database)
        try:
            copy.copy_to(source, plain, progress=lambda d, t: report(Progress("copy", d, t)))
        finally:
            source.conn.close()
        report(Progress("check", 0, 1))
        if copy.integrity(plain):
            raise BackupError("copy_failed")
        checked = connect(plain)
        try:
            records, schema = copy.record_count(checked), migrations.schema_version(checked)
        finally:
            checked.conn.close()
        header = {"app": "fieldapp", "app_version": version("fieldapp"), "schema": schema,
                  "created_at": at.isoformat(), "post": post, "records": records}
        key = os.urandom(32)
        slot = (backup_file.passphrase_slot(key, passphrase) if passphrase is not None
                else backup_file.public_slot(key, key_pair))
        try:
            with open(plain, "rb") as src, open(partial, "wb") as out:
                size = os.fstat(src.fileno()).st_size
                written = backup_file.encrypt(src, size, out, header, slot, key,
                                              lambda d, t: report(Progress("encrypt", d, t)))
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
            copy.fsync_dir(folder)
        except OSError as e:
            raise BackupError("write_failed", folder=str(folder), error=e.strerror or str(e)) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            partial.unlink()
    made = Made(final.resolve(), written, records, at.isoformat())
    _write_json(instance / LAST_BACKUP, made.as_dict())
    db = connect(database)
    try:  # the file's name, not its folder: a folder's path can name a person (a user's home)
        audit.record(db, "backup.made", actor=actor, details={
            "file": final.name, "records": records, "bytes": written,
            "unlocks_with": "passphrase" if passphrase is not None else "key_pair"})
    finally:
        db.conn.close()
    report(Progress("done", 1, 1))
    return made


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def last_backup(instance: Path) -> dict | None:
    """What `instance/last-backup.json` says about the last backup, if any."""
    try:
        return json.loads((instance / LAST_BACKUP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def inspect(path: str | Path) -> dict:
    """The readable header of a backup file; BackupError if it cannot be restored."""
    try:
        return backup_file.read_header(path)[0]
    except BackupFileError as e:
        raise BackupError(e.code) from None
    except OSError:
        raise BackupError("not_a_backup") from None


@dataclass
class Restored:
    header: dict
    previous: Path | None


def restore(database: str | Path, instance: Path, path: str | Path, passphrase: str,
            progress: Callable[[Progress], None] | None = None) -> Restored:
    """Replace the database with a backup's, after checking everything: passphrase, complete
    file, integrity, format, schema no newer than this fieldapp. The database it replaces is kept
    beside it as `<name>.before-restore-<time>`. Refused while a server runs on the instance."""
    report = progress or (lambda p: None)
    inspect(path)
    database = Path(database)
    try:
        with lock.restoring(instance):
            work = _workdir(database.parent)
            try:
                plain = work / "restore.db"
                with open(plain, "wb") as out:
                    header = backup_file.decrypt(path, passphrase, out,
                                                 lambda d, t: report(Progress("decrypt", d, t)))
                    out.flush()
                    os.fsync(out.fileno())
                report(Progress("check", 0, 1))
                share_key(database, plain)  # a backup of an encrypted database is encrypted too
                _check_restorable(plain)
                previous = _replace(database, plain)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except BackupFileError as e:
        raise BackupError(e.code) from None
    except lock.Busy as e:
        raise BackupError("serving", pids=", ".join(map(str, e.pids))) if e.pids else \
            BackupError("restoring") from None
    report(Progress("done", 1, 1))
    return Restored(header, previous)


def _check_restorable(plain: Path) -> None:
    try:
        if copy.integrity(plain):
            raise BackupError("not_sound")
        db = connect(plain)
        try:
            newer = migrations.unknown(db)
        finally:
            db.conn.close()
    except BackupError:
        raise
    except DatabaseLocked:
        raise BackupError("other_key") from None
    except Exception:  # noqa: BLE001 - any SQLite complaint means the same: not a sound database
        # (no connection is open to the file now: reading its header is safe, see is_encrypted)
        raise BackupError("other_key" if is_encrypted(plain) else "not_sound") from None
    if newer:
        raise BackupError("newer_schema")


def _replace(database: Path, plain: Path) -> Path | None:
    """Put `plain` in the database's place atomically; the old file stays beside it."""
    previous = None
    if database.exists():
        # Fold the WAL into the file. The last connection to close removes -wal and -shm; if
        # they stay, someone else has the database open.
        current = connect(database)
        try:
            current.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            current.execute("PRAGMA journal_mode = DELETE")
        except OperationalError:
            raise BackupError("in_use") from None
        finally:
            current.conn.close()
        if any(database.with_name(database.name + s).exists() for s in ("-wal", "-shm")):
            raise BackupError("in_use")
        previous = database.with_name(
            f"{database.name}.before-restore-{_now().strftime('%Y%m%dT%H%M%SZ')}")
        try:
            os.link(database, previous)
        except OSError:  # a file system without hard links: a moment without a database
            os.replace(database, previous)
    os.replace(plain, database)
    copy.fsync_dir(database.parent)
    return previous
