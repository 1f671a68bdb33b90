"""Syncs that run in the background of a serving field server: started from the supervisor's page
or on an interval, one at a time per database, with their progress readable while they run."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from flask import Flask

from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations
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


_jobs: dict[str, Job] = {}
_guard = threading.Lock()


def current(app: Flask) -> Job | None:
    return _jobs.get(app.config["DATABASE"])


def start(app: Flask, *, lang: str, started_by: str) -> bool:
    """Start a sync unless one runs already; False if one does."""
    key = app.config["DATABASE"]
    with _guard:
        running = _jobs.get(key)
        if running and running.running:
            return False
        job = _jobs[key] = Job(started_by=started_by)
    job.thread = threading.Thread(target=_run, args=(app, job, lang), daemon=True, name="fieldapp-sync")
    job.thread.start()
    return True


def _run(app: Flask, job: Job, lang: str) -> None:
    db = storage_db.connect(app.config["DATABASE"])
    try:
        migrations.apply(db)
        central = client.Central(client.settings_for(db, app.config, lang))
        job.progress = client.run(db, central, batch_size=app.config["SYNC_BATCH_SIZE"],
                                  on_progress=lambda p: setattr(job, "progress", p))
    except client.SyncError as e:
        job.error = {"code": e.code, "message": e.message, "status": e.status}
        log.warning("sync stopped: %s (HTTP %s)", e.code, e.status)
    except Exception as e:  # noqa: BLE001 - a background thread must report, not vanish
        job.error = {"code": "failed", "message": "", "status": 0}
        log.error("sync failed: %s", type(e).__name__)
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
