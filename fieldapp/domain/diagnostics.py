"""Health rules for `fieldapp doctor` and the diagnostics page. Pure functions over readings.

The readings (disk, database, backup, sync, certificates) are taken elsewhere (fieldapp.diagnostics);
here each one is compared with its threshold and becomes a finding with a stable code. What a
finding says, and what to do about it, is worded where it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

MB = 1024 * 1024


@dataclass(frozen=True)
class Thresholds:
    """When a reading becomes a problem. Every one is a configuration key (DOCTOR_*)."""

    min_free_mb: int = 1024  # and never less than twice the database, room for a backup
    backup_days: int = 7
    sync_days: int = 7
    pending_max: int = 1000
    clock_seconds: int = 300
    cert_days: int = 21

    @classmethod
    def from_config(cls, config) -> Thresholds:
        """`Thresholds.from_config(app.config)`: the DOCTOR_* keys, or these defaults."""
        return cls(**{name: int(config.get(f"DOCTOR_{name.upper()}", default))
                      for name, default in cls().__dict__.items()})


@dataclass(frozen=True)
class Readings:
    """What was measured, at `now` (UTC). None means "could not be read" or "does not apply"."""

    now: datetime
    mode: str = "field"
    db_exists: bool = True
    db_bytes: int | None = None
    integrity: tuple[str, ...] = ("ok",)  # SQLite's answer: ("ok",) or the problems it found
    free_bytes: int | None = None
    backup_at: datetime | None = None  # the last successful backup; None: never
    backup_unreadable: bool = False  # instance/last-backup.json exists but cannot be read
    enrolled: bool | None = False  # None: the database could not be read, sync is unknown
    last_sync: datetime | None = None
    pending: int = 0  # changes not yet acknowledged by central
    refused: int = 0  # records central refused, waiting for a correction
    clock_offset: float | None = None  # seconds this computer is ahead of central, at the last sync
    cert_expires: datetime | None = None  # the HTTPS server certificate
    ca_expires: datetime | None = None  # the local certificate authority phones trust


@dataclass(frozen=True)
class Finding:
    """A problem: `code` names it, `params` fill its message (numbers, dates)."""

    code: str
    params: dict = field(default_factory=dict)


CODES = ("no_database", "integrity", "low_disk", "no_backup", "stale_backup", "unreadable_backup",
         "not_enrolled", "no_sync", "stale_sync", "pending", "refused", "clock", "cert_expiring",
         "cert_expired", "ca_expiring", "ca_expired")


def check(r: Readings, t: Thresholds) -> list[Finding]:
    """Every problem in `r`, the most serious first: `check(readings, Thresholds())`."""
    found: list[Finding] = []
    if not r.db_exists:
        found.append(Finding("no_database"))
    elif tuple(r.integrity) != ("ok",):
        found.append(Finding("integrity", {"detail": "; ".join(r.integrity)[:300]}))
    if r.free_bytes is not None:
        needed = max(t.min_free_mb * MB, 2 * (r.db_bytes or 0))
        if r.free_bytes < needed:
            found.append(Finding("low_disk", {"free_mb": r.free_bytes // MB, "needed_mb": needed // MB}))
    found += _backup(r, t)
    if r.mode == "field" and r.enrolled is not None:
        found += _sync(r, t)
    found += _certificate("cert", r.cert_expires, r.now, t.cert_days)
    found += _certificate("ca", r.ca_expires, r.now, t.cert_days)
    return found


def _days(since: datetime, now: datetime) -> int:
    return max(0, (now - since) // timedelta(days=1))


def _backup(r: Readings, t: Thresholds) -> list[Finding]:
    if r.backup_unreadable:
        return [Finding("unreadable_backup")]
    if r.backup_at is None:
        return [Finding("no_backup")]
    if r.now - r.backup_at > timedelta(days=t.backup_days):
        return [Finding("stale_backup", {"days": _days(r.backup_at, r.now), "limit": t.backup_days})]
    return []


def _sync(r: Readings, t: Thresholds) -> list[Finding]:
    found = []
    if not r.enrolled:
        found.append(Finding("not_enrolled"))
    elif r.last_sync is None:
        found.append(Finding("no_sync"))
    elif r.now - r.last_sync > timedelta(days=t.sync_days):
        found.append(Finding("stale_sync", {"days": _days(r.last_sync, r.now), "limit": t.sync_days}))
    if r.pending > t.pending_max:
        found.append(Finding("pending", {"n": r.pending, "limit": t.pending_max}))
    if r.refused:
        found.append(Finding("refused", {"n": r.refused}))
    if r.clock_offset is not None and abs(r.clock_offset) > t.clock_seconds:
        found.append(Finding("clock", {"minutes": round(abs(r.clock_offset) / 60)}))
    return found


def _certificate(kind: str, expires: datetime | None, now: datetime, days: int) -> list[Finding]:
    if expires is None:
        return []
    if expires <= now:
        return [Finding(f"{kind}_expired", {"date": expires.date().isoformat()})]
    if expires - now < timedelta(days=days):
        return [Finding(f"{kind}_expiring", {"date": expires.date().isoformat(),
                                             "days": _days(now, expires)})]
    return []
