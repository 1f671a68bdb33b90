"""Configuration: defaults, then the instance file, then FIELDAPP_* environment variables."""

from __future__ import annotations

import contextlib
import os
import secrets
import tomllib
import uuid
from pathlib import Path

CONFIG_FILE = "fieldapp.toml"

DEFAULTS = {
    "MODE": "field",  # field | central
    "POST": "POST-1",
    "DEVICE_ID": "",
    "DATABASE": "",  # empty: <instance>/fieldapp.db
    "HOST": "127.0.0.1",
    "PORT": 5000,
    "LANGUAGES": ["en", "es"],
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_DEFAULT_TIMEZONE": "UTC",
    "PAGE_SIZE": 50,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # A login ends after this many minutes without a request, and this many hours after it began,
    # whatever happens (the browser's cookie lasts as long; the server decides).
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_MAX_HOURS": 12,
    # Failed logins: after LOGIN_SLOW_AFTER failures for an account, each further attempt waits
    # (1 s, doubling), after LOGIN_LOCK_AFTER it is refused for LOGIN_LOCK_MINUTES. The same from
    # one address (a device; on central, a whole post behind one router may share one).
    "LOGIN_SLOW_AFTER": 5,
    "LOGIN_LOCK_AFTER": 10,
    "LOGIN_ADDRESS_SLOW_AFTER": 20,
    "LOGIN_ADDRESS_LOCK_AFTER": 50,
    "LOGIN_LOCK_MINUTES": 15,
    # CSRF tokens live as long as the login session: an officer may keep a form open for hours.
    "WTF_CSRF_TIME_LIMIT": None,
    # Where a form came from is checked with Sec-Fetch-Site / Origin (web/headers.py): pages send
    # no Referer, which Flask-WTF's strict HTTPS check would need.
    "WTF_CSRF_SSL_STRICT": False,
    # Over HTTPS, how long browsers must keep to HTTPS for this host (seconds; 0: no HSTS header).
    "HSTS_MAX_AGE": 365 * 24 * 3600,
    # The largest request body of any page or API call, in bytes (sync and bundles have their own).
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Sync with central (field mode): records per push, the CA bundle that verifies central's
    # certificate (empty: the system's), minutes between automatic syncs while serving (0: off).
    "SYNC_BATCH_SIZE": 500,
    "SYNC_CA_BUNDLE": "",
    "SYNC_INTERVAL": 0,
    # Central: the largest sync bundle a web upload may carry, in bytes.
    "SYNC_MAX_BUNDLE": 256 * 1024 * 1024,
    # Central: a device token not used for this many days stops working, as if revoked (0: never).
    "DEVICE_TOKEN_IDLE_DAYS": 90,
    # Central: where export files are written (empty: <instance>/exports), and how many exports
    # may run at once (more wait their turn).
    "EXPORT_DIR": "",
    "EXPORT_WORKERS": 2,
    # Log files (empty LOG_DIR: <instance>/logs): rotated at LOG_MAX_BYTES, LOG_BACKUPS kept.
    "LOG_DIR": "",
    "LOG_MAX_BYTES": 1_000_000,
    "LOG_BACKUPS": 5,
    "LOG_LEVEL": "INFO",
    # `fieldapp doctor` and the diagnostics page: when a reading becomes a problem.
    "DOCTOR_MIN_FREE_MB": 1024,
    "DOCTOR_BACKUP_DAYS": 7,
    "DOCTOR_SYNC_DAYS": 7,
    "DOCTOR_PENDING_MAX": 1000,
    "DOCTOR_CLOCK_SECONDS": 300,
    "DOCTOR_CERT_DAYS": 21,
    # For tests only: a free-space reading in bytes that replaces the disk's (a disk cannot be filled).
    "DOCTOR_FREE_BYTES": None,
    # Retention (docs/security.md): days a field server keeps a record's personal data once
    # central has it; days central keeps it, by purpose (a purpose not listed: kept); hours
    # between automatic purges while serving (0: only `fieldapp purge`).
    "FIELD_RETENTION_DAYS": 30,
    "CENTRAL_RETENTION_DAYS": {
        "assistance": 1825, "referral": 1825, "training": 1825, "protection": 3650,
        "statistics": 365, "other": 1825,
    },
    "PURGE_INTERVAL_HOURS": 24,
    # Field: backups. BACKUP_DIR is where `fieldapp backup` and the backup page write by default
    # (empty: <instance>/backups) and, when set, where scheduled backups go: every
    # BACKUP_EVERY_HOURS (0: never), keeping the newest BACKUP_KEEP of them.
    "BACKUP_DIR": "",
    "BACKUP_EVERY_HOURS": 24,
    "BACKUP_KEEP": 7,
}


def instance_path(explicit: str | os.PathLike | None = None) -> Path:
    """Where the instance lives: --instance, else $FIELDAPP_INSTANCE, else ./instance."""
    chosen = explicit or os.environ.get("FIELDAPP_INSTANCE") or "instance"
    return Path(chosen).resolve()


def load(app, instance: Path, overrides: dict | None = None) -> None:
    """Layer the configuration onto `app`: defaults → instance file → environment → overrides."""
    app.config.from_mapping(DEFAULTS)
    config_file = instance / CONFIG_FILE
    if config_file.exists():
        app.config.from_file(str(config_file), load=tomllib.load, text=False)
    app.config.from_prefixed_env("FIELDAPP")
    for secret in ("PASSPHRASE", "PASSPHRASE_FILE"):  # the database's: never kept in the config
        app.config.pop(secret, None)
    if overrides:
        app.config.from_mapping(overrides)
    if not app.config["DATABASE"]:
        app.config["DATABASE"] = str(instance / "fieldapp.db")
    if not app.config["EXPORT_DIR"]:
        app.config["EXPORT_DIR"] = str(instance / "exports")
    # The session cookie outlives a browser restart, up to the absolute timeout.
    app.config["PERMANENT_SESSION_LIFETIME"] = int(float(app.config["SESSION_MAX_HOURS"]) * 3600)


def write_new(instance: Path, *, post: str, mode: str) -> Path:
    """Create the instance config file with a fresh secret key and device id; never overwrite."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / CONFIG_FILE
    if path.exists():
        return path
    text = (
        "# fieldapp instance configuration. Keep this file private: it holds the secret key.\n"
        f'MODE = "{mode}"\n'
        f'POST = "{post}"\n'
        f'DEVICE_ID = "{uuid.uuid4()}"\n'
        f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\n'
    )
    # Exclusive create: two concurrent inits cannot both write a key.
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
    with contextlib.suppress(OSError):  # Windows ACLs are left as they are
        path.chmod(0o600)
    return path
