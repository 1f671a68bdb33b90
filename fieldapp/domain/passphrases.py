"""The rule for a database passphrase: long enough to resist guessing a stolen file offline."""

from __future__ import annotations

# SQLCipher's key derivation costs each guess about 0.1 s of a laptop's CPU, far less on a GPU:
# the length is what protects a stolen file. Four or five random words pass easily.
PASSPHRASE_MIN = 12
PASSPHRASE_MAX = 1024


def check_passphrase(passphrase: str) -> str | None:
    """An error code, or None: `check_passphrase("four random words here") is None`."""
    if len(passphrase) < PASSPHRASE_MIN:
        return "passphrase_too_short"
    if len(passphrase) > PASSPHRASE_MAX:
        return "passphrase_too_long"
    if any(ord(c) < 32 or ord(c) == 127 for c in passphrase):
        return "passphrase_control"
    return None
