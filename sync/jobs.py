"""Syncs that run in the background of a serving field server: started from the supervisor's page
or on an interval, one at a time per database, with their progress readable while they run."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from flask import Flask

from fieldapp.storage import audit, migrations
from fieldapp.storage import db as storage_db
from fieldapp.storage import sync as store
from sync import client

log = logging.getLogger(__name__)


@dataclass
class Job:
    started_by: str
    progress: client.Progress = field(default_factory=client.Progress)
    running: bool = True
    error: dict | None = None  # {"code", "message", "status"} when the sync stopped early
    thread: threading.Thread | None = None

    def as_dict(self) -> dict:
        return {"running": self.running, "error": self.error, "started_by": self.started_by,
                **self.progress.as_dict()}


# A sync started by the interval timer rather than a person.
AUTOMATIC = audit.Actor("system", "automatic", "automatic")


def run_details(progress: client.Progress) -> dict:
    """What the audit log keeps of a finished sync: counts and the receipt's id, never records."""
    receipt = progress.receipt or {}
    return {"sent": progress.sent, **progress.counts, "pulled": progress.pulled,
            "accounts": progress.accounts, "receipt": receipt.get("id"),
            "matches": receipt.get("matches")}


def failure_details(progress: client.Progress, code: str, status: int) -> dict:
    return {"code": code[:40], "status": status, "phase": progress.phase, "sent": progress.sent}


_jobs: dict[str, Job] = {}
_guard = threading.Lock()


def current(app: Flask) -> Job | None:
    return _jobs.get(app.config["DATABASE"])


def start(app: Flask, *, lang: str, started_by: str, actor: audit.Actor = AUTOMATIC) -> bool:
    """Start a sync unless one runs already; False if one does. Audited as done by `actor`."""
    key = app.config["DATABASE"]
    with _guard:
        running = _jobs.get(key)
        if running and running.running:
            return False
        job = _jobs[key] = Job(started_by=started_by)
    job.thread = threading.Thread(target=_run, args=(app, job, lang, actor), daemon=True,
                                  name="fieldapp-sync")
    job.thread.start()
    return True


def _run(app: Flask, job: Job, lang: str, actor: audit.Actor) -> None:
    db = storage_db.connect(app.config["DATABASE"])
    try:
        migrations.apply(db)
        central = client.Central(client.settings_for(db, app.config, lang))
        job.progress = client.run(db, central, batch_size=app.config["SYNC_BATCH_SIZE"],
                                  on_progress=lambda p: setattr(job, "progress", p))
        audit.record(db, "sync.run", actor=actor, details=run_details(job.progress))
    except client.SyncError as e:
        job.error = {"code": e.code, "message": e.message, "status": e.status}
        log.warning("sync stopped: %s (HTTP %s)", e.code, e.status)
        audit.record(db, "sync.failed", actor=actor, details=failure_details(job.progress, e.code, e.status))
    except Exception as e:  # noqa: BLE001 - a background thread must report, not vanish
        job.error = {"code": "failed", "message": "", "status": 0}
        log.error("sync failed: %s", type(e).__name__)
        with contextlib.suppress(Exception):
            audit.record(db, "sync.failed", actor=actor, details=failure_details(job.progress, "failed", 0))
    finally:
        job.running = False
        db.close()


def start_auto(app: Flask) -> threading.Thread | None:
    """Sync every SYNC_INTERVAL minutes while the server runs, if enrolled (0: never)."""
    minutes = float(app.config.get("SYNC_INTERVAL") or 0)
    if minutes <= 0 or app.config["MODE"] != "field":
        return None

    def loop():
        while True:
            time.sleep(minutes * 60)
            tick(app)

    thread = threading.Thread(target=loop, daemon=True, name="fieldapp-auto-sync")
    thread.start()
    return thread


def tick(app: Flask) -> bool:
    """One automatic sync, if this server is enrolled and no sync runs; True if one started."""
    db = storage_db.connect(app.config["DATABASE"])
    try:
        enrolled = bool(store.state(db).get("token"))
    finally:
        db.close()
    return enrolled and start(app, lang=app.config["BABEL_DEFAULT_LOCALE"], started_by="automatic")
