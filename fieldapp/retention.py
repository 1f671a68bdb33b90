"""Running retention: on a field server, remove the personal data of records central has held for
FIELD_RETENTION_DAYS; on central, anonymise records kept longer than their purpose's days in
CENTRAL_RETENTION_DAYS. From `fieldapp purge` and, once a day, from a thread of a serving app.

The clock is a parameter (`now`), so tests move time instead of waiting for it."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask

from fieldapp.domain import privacy
from fieldapp.storage import audit
from fieldapp.storage import db as storage_db
from fieldapp.storage import retention as store

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a purge removes: the records due, counted by form and by purpose."""

    scope: str  # 'field' or 'central'
    uuids: list[str] = field(default_factory=list)
    by_form: Counter = field(default_factory=Counter)
    by_purpose: Counter = field(default_factory=Counter)
    unlimited: Counter = field(default_factory=Counter)  # central: purposes with no retention set


class BadSetting(ValueError):
    """FIELD_RETENTION_DAYS or CENTRAL_RETENTION_DAYS is not what they must be."""


def _days(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadSetting(value)
    return float(value)


def plan(db, config: dict, now: datetime) -> Plan:
    """The records a purge at `now` would remove, without changing anything (BadSetting: the
    retention settings are not numbers of days)."""
    days = config["CENTRAL_RETENTION_DAYS"]
    if not isinstance(days, dict):
        raise BadSetting(days)
    _days(config["FIELD_RETENTION_DAYS"])
    for value in days.values():
        _days(value)
    if config["MODE"] == "central":
        return _central_plan(db, config["CENTRAL_RETENTION_DAYS"], now)
    found = Plan("field")
    for row in store.field_due(db, privacy.cutoff(now, float(config["FIELD_RETENTION_DAYS"]))):
        found.uuids.append(row["uuid"])
        found.by_form[row["form"]] += 1
    return found


def _central_plan(db, days: dict, now: datetime) -> Plan:
    found = Plan("central")
    cutoffs = {purpose: privacy.cutoff(now, float(n)) for purpose, n in days.items()}
    for row in store.central_candidates(db):
        limit = cutoffs.get(row["purpose"])
        if limit is None:
            found.unlimited[row["purpose"]] += 1
        elif row["created_at"] <= limit:
            found.uuids.append(row["uuid"])
            found.by_form[row["form"]] += 1
            found.by_purpose[row["purpose"]] += 1
    return found


def run(db, config: dict, now: datetime, *, dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None) -> Plan:
    """Purge what is due at `now` (nothing with dry_run); the plan carried out."""
    due = plan(db, config, now)
    if not dry_run and due.uuids:
        total = len(due.uuids)
        store.purge(db, due.uuids, scope=due.scope, at=privacy.iso(now),
                    progress=(lambda done: progress(done, total)) if progress else None)
        # Counts only: never a name, and never the uuids (a purge can reach thousands of records).
        audit.record(db, "retention.purged", actor=audit.SYSTEM, target=f"scope:{due.scope}",
                     details={"as_of": privacy.iso(now), "records": total, "forms": dict(due.by_form),
                              "purposes": dict(due.by_purpose)})
        log.info("retention purge (%s): %s records", due.scope, total)
    return due


def utcnow() -> datetime:
    return datetime.now(UTC)


def tick(app: Flask, now: datetime | None = None) -> Plan:
    """One purge of the app's database, on a connection of its own."""
    db = storage_db.connect(app.config["DATABASE"])
    try:
        return run(db, app.config, now or utcnow())
    finally:
        db.close()


def start_auto(app: Flask, clock: Callable[[], datetime] = utcnow) -> threading.Thread | None:
    """Purge every PURGE_INTERVAL_HOURS (24: once a day) while the server runs; 0: never."""
    hours = float(app.config.get("PURGE_INTERVAL_HOURS") or 0)
    if hours <= 0:
        return None

    def loop():
        stop = threading.Event()
        while True:
            try:
                tick(app, clock())
            except Exception as e:  # noqa: BLE001 - a background thread must report, not vanish
                log.error("retention purge failed: %s", type(e).__name__)
            stop.wait(hours * 3600)

    thread = threading.Thread(target=loop, daemon=True, name="fieldapp-retention")
    thread.start()
    return thread
