"""Rules for accounts: usernames, roles, post codes and passwords. Errors are codes."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from fieldapp.domain.roles import CENTRAL, ROLES

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
POST = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,29}$")
# At least 10 characters; a long passphrase is welcome (a password manager's too), up to 128.
PASSWORD_MIN, PASSWORD_MAX = 10, 128
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt")


def check_username(username: str) -> str | None:
    return None if USERNAME.match(username) else "invalid_username"


def check_role(role: str) -> str | None:
    return None if role in ROLES else "invalid_role"


def check_post(role: str, post: str | None) -> str | None:
    """Central staff see every post and need none; everyone else belongs to one post."""
    if role == CENTRAL and not post:
        return None
    return None if post and POST.match(post) else "invalid_post"


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lowercased: `"1234567890" in common_passwords()`."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str = "") -> str | None:
    """The first rule a new password breaks, as an error code, or None."""
    if len(password) < PASSWORD_MIN:
        return "password_too_short"
    if len(password) > PASSWORD_MAX:
        return "password_too_long"
    folded = password.strip().casefold()
    if username and folded == username.strip().casefold():
        return "password_is_username"
    if folded in common_passwords():
        return "password_common"
    return None
