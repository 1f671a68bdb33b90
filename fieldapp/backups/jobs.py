"""Backups that run in the background of a serving field server: one started from the
supervisor's page, with its progress readable while it runs, and the scheduled ones."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask

from fieldapp import backups
from fieldapp.storage import audit

log = logging.getLogger(__name__)
# How often the schedule looks whether a backup is due: a laptop that sleeps or is switched off
# at night still gets its backup soon after it is on again.
SCHEDULE_CHECK_SECONDS = 300


@dataclass
class Job:
    started_by: str
    progress: backups.Progress = field(default_factory=backups.Progress)
    running: bool = True
    made: backups.Made | None = None
    error: str = ""  # a code of backups.MESSAGES, or "failed"
    error_params: dict = field(default_factory=dict)
    thread: threading.Thread | None = None

    def as_dict(self) -> dict:
        return {"running": self.running, "started_by": self.started_by, "error": self.error,
                "made": self.made.as_dict() if self.made else None, **self.progress.as_dict()}


_jobs: dict[str, Job] = {}
_guard = threading.Lock()
# One backup at a time per database, whoever starts it.
_running: dict[str, threading.Lock] = {}


def _lock(app: Flask) -> threading.Lock:
    with _guard:
        return _running.setdefault(app.config["DATABASE"], threading.Lock())


def current(app: Flask) -> Job | None:
    return _jobs.get(app.config["DATABASE"])


def start(app: Flask, *, folder: str, passphrase: str, started_by: str,
          actor: audit.Actor = audit.SYSTEM) -> bool:
    """Start a backup unless one runs already; False if one does."""
    if not _lock(app).acquire(blocking=False):
        return False
    job = _jobs[app.config["DATABASE"]] = Job(started_by=started_by)
    job.thread = threading.Thread(target=_run, args=(app, job, folder, passphrase, actor), daemon=True,
                                  name="fieldapp-backup")
    job.thread.start()
    return True


def _run(app: Flask, job: Job, folder: str, passphrase: str, actor: audit.Actor) -> None:
    try:
        job.made = backups.make(app.config["DATABASE"], Path(app.instance_path), folder,
                                post=app.config["POST"], passphrase=passphrase,
                                progress=lambda p: setattr(job, "progress", p), actor=actor)
    except backups.BackupError as e:
        job.error, job.error_params = e.code, e.params
        log.warning("backup stopped: %s", e.code)
    except Exception as e:  # noqa: BLE001 - a background thread must report, not vanish
        job.error = "failed"
        log.error("backup failed: %s", type(e).__name__)
    finally:
        job.running = False
        _lock(app).release()


def key_pair(instance: Path) -> dict | None:
    try:
        return json.loads((instance / backups.KEY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def due(app: Flask, now: datetime | None = None) -> bool:
    """True when scheduled backups are on and the last backup is older than BACKUP_EVERY_HOURS."""
    hours = float(app.config.get("BACKUP_EVERY_HOURS") or 0)
    if hours <= 0 or not app.config.get("BACKUP_DIR"):
        return False
    last = backups.last_backup(Path(app.instance_path))
    if not last:
        return True
    try:
        at = datetime.fromisoformat(last["at"])
    except (KeyError, TypeError, ValueError):
        return True
    return (now or datetime.now(UTC)) - at >= timedelta(hours=hours)


def scheduled(app: Flask) -> backups.Made | None:
    """One scheduled backup if it is due, then the oldest beyond BACKUP_KEEP are removed."""
    if not due(app):
        return None
    instance = Path(app.instance_path)
    pair = key_pair(instance)
    if pair is None:
        log.warning("scheduled backup skipped: no %s", backups.KEY_FILE)
        return None
    lock = _lock(app)
    if not lock.acquire(blocking=False):
        return None
    try:
        made = backups.make(app.config["DATABASE"], instance, app.config["BACKUP_DIR"],
                            post=app.config["POST"], key_pair=pair)
    finally:
        lock.release()
    prune(Path(app.config["BACKUP_DIR"]), app.config["POST"], int(app.config["BACKUP_KEEP"]))
    return made


def prune(folder: Path, post: str, keep: int) -> list[Path]:
    """Remove this post's oldest backups in `folder` beyond the newest `keep`; those removed."""
    mine = sorted(folder.glob(f"fieldapp-{post}-*{backups.SUFFIX}"),
                  key=lambda p: (p.stat().st_mtime, p.name))
    old = mine[:-keep] if keep > 0 else []
    for path in old:
        path.unlink()
    return old


def start_schedule(app: Flask) -> threading.Thread | None:
    """Scheduled backups while the server runs, when BACKUP_DIR and BACKUP_EVERY_HOURS say so."""
    if app.config["MODE"] != "field" or not app.config.get("BACKUP_DIR") or \
            float(app.config.get("BACKUP_EVERY_HOURS") or 0) <= 0:
        return None

    def loop():
        while True:
            try:
                scheduled(app)
            except backups.BackupError as e:
                log.warning("scheduled backup stopped: %s", e.code)
            except Exception as e:  # noqa: BLE001 - the schedule goes on
                log.error("scheduled backup failed: %s", type(e).__name__)
            time.sleep(SCHEDULE_CHECK_SECONDS)

    thread = threading.Thread(target=loop, daemon=True, name="fieldapp-backup-schedule")
    thread.start()
    return thread
