"""The encrypted backup file: a small readable header, then the database in AES-GCM chunks.

    MAGIC (16 bytes) | header length (4 bytes, big-endian) | header (JSON, UTF-8) | chunks

Each file has its own random 256-bit data key. The header says how to get it back (a "key slot"):

- `passphrase`: the data key wrapped (AES-GCM) with a key derived from the passphrase by scrypt;
- `public`: the data key wrapped for an X25519 public key (scheduled backups, made with no one at
  the keyboard); the matching private key travels in the header too, itself encrypted with the
  passphrase, so the file restores with the passphrase alone.

Chunk i (CHUNK bytes of the database, the last one shorter) is sealed with the nonce
`i (11 bytes) | 1 if last else 0` and the header as associated data: a changed header, a chunk
moved, dropped or altered, or a file cut short fails its tag. The header's `bytes` also gives
the exact file size, so a cut is named as such before anything is decrypted.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

MAGIC = b"FIELDAPP-BACKUP\n"
FORMAT = 1
CHUNK = 1024 * 1024
TAG = 16
MAX_HEADER = 64 * 1024
# scrypt at 128 MiB of memory: about half a second on a laptop, per passphrase tried.
SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_WRAP_AD = b"fieldapp-backup-key"


class BackupFileError(Exception):
    """A file that cannot be restored; `code` says why (see fieldapp.backups.messages)."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal_with_passphrase(secret: bytes, passphrase: str) -> dict:
    """`secret` encrypted with a key derived from the passphrase, as a JSON-ready dict."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _scrypt(passphrase, salt, **SCRYPT)
    return {"kdf": "scrypt", **SCRYPT, "salt": _b64(salt), "nonce": _b64(nonce),
            "sealed": _b64(AESGCM(key).encrypt(nonce, secret, _WRAP_AD))}


def open_with_passphrase(sealed: dict, passphrase: str) -> bytes:
    try:
        key = _scrypt(passphrase, _unb64(sealed["salt"]), int(sealed["n"]), int(sealed["r"]),
                      int(sealed["p"]))
        return AESGCM(key).decrypt(_unb64(sealed["nonce"]), _unb64(sealed["sealed"]), _WRAP_AD)
    except InvalidTag:
        raise BackupFileError("wrong_passphrase") from None
    except (KeyError, ValueError, TypeError):
        raise BackupFileError("damaged") from None


def new_key_pair(passphrase: str) -> dict:
    """A key pair for scheduled backups: the public key, and the private one sealed with the
    passphrase. What `instance/backup-key.json` holds."""
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return {"public": _b64(public), "private": seal_with_passphrase(raw, passphrase)}


def _wrap_key(shared: bytes, ephemeral: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=ephemeral, info=_WRAP_AD).derive(shared)


def passphrase_slot(data_key: bytes, passphrase: str) -> dict:
    return {"kind": "passphrase", **seal_with_passphrase(data_key, passphrase)}


def public_slot(data_key: bytes, pair: dict) -> dict:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(_unb64(pair["public"])))
    nonce = os.urandom(12)
    wrapped = AESGCM(_wrap_key(shared, ephemeral_public)).encrypt(nonce, data_key, _WRAP_AD)
    return {"kind": "public", "ephemeral": _b64(ephemeral_public), "nonce": _b64(nonce),
            "wrapped": _b64(wrapped), "private": pair["private"]}


def data_key(slot: dict, passphrase: str) -> bytes:
    """The file's data key from its key slot: raises BackupFileError("wrong_passphrase")."""
    if slot.get("kind") == "passphrase":
        return open_with_passphrase(slot, passphrase)
    if slot.get("kind") == "public":
        private = X25519PrivateKey.from_private_bytes(open_with_passphrase(slot["private"], passphrase))
        try:
            ephemeral = _unb64(slot["ephemeral"])
            shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            return AESGCM(_wrap_key(shared, ephemeral)).decrypt(
                _unb64(slot["nonce"]), _unb64(slot["wrapped"]), _WRAP_AD)
        except (InvalidTag, KeyError, ValueError):
            raise BackupFileError("damaged") from None
    raise BackupFileError("damaged")


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _chunks(size: int) -> int:
    return max(1, -(-size // CHUNK))


def encrypt(source: BinaryIO, size: int, out: BinaryIO, header: dict, slot: dict, key: bytes,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Write the whole file: `header` (readable fields) with its key slot, then `size` bytes of
    `source`, sealed. Returns the bytes written."""
    head = json.dumps({**header, "format": FORMAT, "bytes": size, "chunk": CHUNK, "key": slot},
                      sort_keys=True).encode("utf-8")
    out.write(MAGIC + len(head).to_bytes(4, "big") + head)
    written = len(MAGIC) + 4 + len(head)
    aead, count = AESGCM(key), _chunks(size)
    for i in range(count):
        plain = source.read(CHUNK)
        sealed = aead.encrypt(_nonce(i, i == count - 1), plain, head)
        out.write(sealed)
        written += len(sealed)
        if progress is not None:
            progress(i + 1, count)
    return written


def read_header(path: str | Path) -> tuple[dict, bytes]:
    """The header of a backup file, checked against the file's size: BackupFileError if it is
    not a backup, was made by a newer fieldapp, or is cut short."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise BackupFileError("not_a_backup")
        length = int.from_bytes(f.read(4), "big")
        if not 0 < length <= MAX_HEADER:
            raise BackupFileError("damaged")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
        fmt, size, chunk = int(header["format"]), int(header["bytes"]), int(header["chunk"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BackupFileError("incomplete" if len(raw) < length else "damaged") from None
    if fmt > FORMAT:
        raise BackupFileError("newer_format")
    if fmt != FORMAT or chunk != CHUNK:
        raise BackupFileError("damaged")
    expected = len(MAGIC) + 4 + length + size + TAG * _chunks(size)
    actual = Path(path).stat().st_size
    if actual < expected:
        raise BackupFileError("incomplete")
    if actual > expected:
        raise BackupFileError("damaged")
    return header, raw


def decrypt(path: str | Path, passphrase: str, out: BinaryIO,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Decrypt a backup file into `out`; its header. Raises BackupFileError (wrong passphrase,
    damaged, incomplete, ...) — `out` then holds a part of the database: throw it away."""
    header, raw = read_header(path)
    aead = AESGCM(data_key(header.get("key") or {}, passphrase))
    count = _chunks(header["bytes"])
    with open(path, "rb") as f:
        f.seek(len(MAGIC) + 4 + len(raw))
        for i in range(count):
            sealed = f.read(CHUNK + TAG)
            try:
                out.write(aead.decrypt(_nonce(i, i == count - 1), sealed, raw))
            except InvalidTag:
                raise BackupFileError("damaged") from None
            if progress is not None:
                progress(i + 1, count)
    return header
