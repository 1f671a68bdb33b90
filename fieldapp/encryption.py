"""Encryption at rest of a field server's database (SQLCipher): where the passphrase comes from at
start-up, the rules for a new one, and the messages of every refusal. The file operations are in
`storage.cipher`; the `fieldapp encryption` commands in `cli`. See docs/security.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from fieldapp.domain import passphrases as rules
from fieldapp.i18n import cli_gettext
from fieldapp.storage import cipher
from fieldapp.storage.db import is_encrypted, is_unlocked

# A service gives the passphrase in one of these (the file: systemd's credentials, a USB stick).
ENV_PASSPHRASE = "FIELDAPP_PASSPHRASE"
ENV_PASSPHRASE_FILE = "FIELDAPP_PASSPHRASE_FILE"


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


MESSAGES = {
    "passphrase_too_short": N_("The passphrase must have at least %(min)s characters."),
    "passphrase_too_long": N_("The passphrase must have at most %(max)s characters."),
    "passphrase_control": N_("The passphrase may not contain control characters."),
    "passphrase_mismatch": N_("The two passphrases differ."),
    "wrong_passphrase": N_("Wrong passphrase for the database %(path)s: nothing was opened or changed."),
    "no_passphrase": N_(
        "The database %(path)s is encrypted: give its passphrase when asked, or in "
        "FIELDAPP_PASSPHRASE or a file named in FIELDAPP_PASSPHRASE_FILE."),
    "passphrase_file": N_("Cannot read the passphrase file %(path)s: %(error)s"),
    "not_encrypted": N_("The database %(path)s is not encrypted."),
    "already_encrypted": N_("The database %(path)s is already encrypted."),
    "in_use": N_(
        "The database %(path)s is in use by another program, such as a running `fieldapp serve`: "
        "stop it and try again. Nothing was changed."),
    "no_database": N_("There is no database at %(path)s yet: run `fieldapp init --encrypt`."),
    "failed": N_("The database %(path)s could not be converted; it was left as it was."),
}


class EncryptionError(Exception):
    def __init__(self, code: str, path: str | Path = ""):
        super().__init__(code)
        self.code, self.path = code, str(path)
        self.error = ""

    def message(self) -> str:
        return cli_gettext(MESSAGES[self.code], path=self.path, error=self.error,
                           min=rules.PASSPHRASE_MIN, max=rules.PASSPHRASE_MAX)


def check_new(passphrase: str) -> None:
    """Raise EncryptionError if `passphrase` may not protect a database."""
    code = rules.check_passphrase(passphrase)
    if code:
        raise EncryptionError(code)


def from_environment() -> str | None:
    """The passphrase a service was given, read once and then removed from the environment, so
    that no program started later inherits it."""
    passphrase = os.environ.pop(ENV_PASSPHRASE, None)
    name = os.environ.pop(ENV_PASSPHRASE_FILE, None)
    if passphrase is None and name:
        try:
            passphrase = Path(name).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            error = EncryptionError("passphrase_file", name)
            error.error = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise error from e
    return passphrase


def needs_passphrase(path: str | Path) -> bool:
    """Whether the database is encrypted and its key is not unlocked in this process yet."""
    return is_encrypted(path) and not is_unlocked(path)


def create(path: str | Path, passphrase: str) -> None:
    """Create a new, empty, encrypted database and unlock it."""
    check_new(passphrase)
    cipher.create(path, passphrase)


def unlock(path: str | Path, passphrase: str) -> None:
    """Unlock the database's key for this process; a wrong passphrase raises EncryptionError."""
    try:
        cipher.unlock(path, passphrase)
    except cipher.CipherError as e:
        raise EncryptionError(e.code, path) from e


def encrypt(path: str | Path, passphrase: str) -> None:
    """Encrypt a plain database in place with a new passphrase, and unlock it."""
    check_new(passphrase)
    try:
        cipher.encrypt(path, passphrase)
    except cipher.CipherError as e:
        raise EncryptionError(e.code, path) from e


def change_passphrase(path: str | Path, old: str, new: str) -> None:
    """Re-encrypt the database under a new passphrase, and unlock it."""
    check_new(new)
    try:
        cipher.rekey(path, old, new)
    except cipher.CipherError as e:
        raise EncryptionError(e.code, path) from e
