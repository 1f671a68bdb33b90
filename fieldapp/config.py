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
    # A login lasts a working day after the last visit (seconds), across browser restarts.
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    # CSRF tokens live as long as the login session: an officer may keep a form open for hours.
    "WTF_CSRF_TIME_LIMIT": None,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Sync with central (field mode): records per push, the CA bundle that verifies central's
    # certificate (empty: the system's), minutes between automatic syncs while serving (0: off).
    "SYNC_BATCH_SIZE": 500,
    "SYNC_CA_BUNDLE": "",
    "SYNC_INTERVAL": 0,
    # Central: the largest sync bundle a web upload may carry, in bytes.
    "SYNC_MAX_BUNDLE": 256 * 1024 * 1024,
    # Central: where export files are written (empty: <instance>/exports), and how many exports
    # may run at once (more wait their turn).
    "EXPORT_DIR": "",
    "EXPORT_WORKERS": 2,
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
