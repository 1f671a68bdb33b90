"""SQLCipher operations on a database file: unlock its key, encrypt a plain one, change its
passphrase. Each refuses with a `CipherError` code and leaves the file as it was.

The key is derived from the passphrase the way SQLCipher 4 does it (PBKDF2-HMAC-SHA512, 256,000
iterations, the file's 16-byte salt), once, at unlock; every connection then opens with the raw
key, which costs no derivation (0.5 ms instead of 120 ms).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from fieldapp.storage.copy import fsync_dir
from fieldapp.storage.db import (
    DatabaseError,
    DatabaseLocked,
    OperationalError,
    is_encrypted,
    quote_text,
    raw_connection,
    remember_key,
)

KDF_ITERATIONS = 256_000  # SQLCipher 4's default, pinned by `PRAGMA cipher_compatibility = 4`
SALT_BYTES = 16
# How long a conversion waits for another program to close the database before it gives up.
EXCLUSIVE_TIMEOUT_S = 2


class CipherError(Exception):
    """`code`: wrong_passphrase, not_encrypted, already_encrypted, in_use, no_database, failed."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def derive_key(passphrase: str, salt: bytes) -> bytes:
    """The raw key SQLCipher 4 derives from `passphrase` for a file with this salt."""
    return hashlib.pbkdf2_hmac("sha512", passphrase.encode("utf-8"), salt, KDF_ITERATIONS, 32)


def unlock(path: str | Path, passphrase: str) -> bytes:
    """Check the passphrase of an encrypted database and have every `connect(path)` use its key."""
    if not is_encrypted(path):
        raise CipherError("not_encrypted")
    with open(path, "rb") as f:
        key = derive_key(passphrase, f.read(SALT_BYTES))
    _check(path, key=key)
    remember_key(path, key)
    return key


def create(path: str | Path, passphrase: str) -> bytes:
    """Create a new, empty, encrypted database (a random salt) and unlock it; returns its key."""
    if Path(path).exists() and Path(path).stat().st_size:
        raise CipherError("already_encrypted" if is_encrypted(path) else "not_encrypted")
    conn = raw_connection(path, passphrase=passphrase)
    try:
        conn.execute("PRAGMA user_version = 0")  # the first write makes the file and its salt
        conn.execute("CREATE TABLE _fieldapp_created (id INTEGER)")
        conn.execute("DROP TABLE _fieldapp_created")
    finally:
        conn.close()
    return unlock(path, passphrase)


def _check(path, **keyed) -> None:
    conn = raw_connection(path, **keyed)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except DatabaseError as e:
        raise CipherError("wrong_passphrase") from e
    finally:
        conn.close()


def _alone(conn) -> None:
    """Take the database out of WAL mode, which copies the WAL in and deletes it: this fails
    while another connection has the database open, such as a running server's."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {EXCLUSIVE_TIMEOUT_S * 1000}")
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except OperationalError as e:
        raise CipherError("in_use") from e
    if mode.lower() != "delete":
        raise CipherError("in_use")


def encrypt(path: str | Path, passphrase: str) -> bytes:
    """Encrypt a plain database in place (`sqlcipher_export` into a new file that then replaces
    it) and unlock it; returns its key. The old file's blocks stay in the disk's free space."""
    path = Path(path)
    if not path.exists():
        raise CipherError("no_database")
    if is_encrypted(path):
        raise CipherError("already_encrypted")
    new = path.with_name(path.name + ".encrypting")
    _remove(new)
    conn = raw_connection(path, cipher=True, timeout=EXCLUSIVE_TIMEOUT_S)
    try:
        _alone(conn)
        conn.execute("ATTACH DATABASE ? AS encrypted KEY ?", [str(new), passphrase])
        conn.execute("BEGIN EXCLUSIVE")  # no writer may slip in before the file is replaced
        version = conn.execute("PRAGMA main.user_version").fetchone()[0]
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE encrypted")
    except DatabaseError as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        _remove(new)
        raise CipherError("failed") from e
    finally:
        conn.close()
    try:
        _check(new, passphrase=passphrase)
        _fsync(new)
        os.replace(new, path)
        fsync_dir(path.parent)
    except BaseException:
        _remove(new)
        raise
    for leftover in ("-wal", "-shm", "-journal"):  # none should be left; never keep plaintext
        _remove(path.with_name(path.name + leftover))
    return unlock(path, passphrase)


def rekey(path: str | Path, old_passphrase: str, new_passphrase: str) -> bytes:
    """Change an encrypted database's passphrase (every page is re-encrypted) and unlock it."""
    key = unlock(path, old_passphrase)
    conn = raw_connection(path, key=key, timeout=EXCLUSIVE_TIMEOUT_S)
    try:
        _alone(conn)
        conn.execute(f"PRAGMA rekey = '{quote_text(new_passphrase)}'")
    except DatabaseError as e:
        raise CipherError("failed") from e
    finally:
        conn.close()
    return unlock(path, new_passphrase)


def version() -> str:
    """SQLCipher's version and its crypto provider, e.g. '4.19.0 community (OpenSSL 3.6.0)'."""
    conn = raw_connection(":memory:", key=bytes(32))
    try:
        cipher = conn.execute("PRAGMA cipher_version").fetchone()[0]
        provider = conn.execute("PRAGMA cipher_provider_version").fetchone()[0]
    finally:
        conn.close()
    return f"{cipher} ({provider})"


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CipherError", "DatabaseLocked", "derive_key", "encrypt", "rekey", "unlock", "version"]
