"""Rules for accounts: usernames, roles, post codes and passwords. Errors are codes."""

from __future__ import annotations

import re

from fieldapp.domain.roles import CENTRAL, ROLES

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
POST = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,29}$")
PASSWORD_MIN, PASSWORD_MAX = 10, 256


def check_username(username: str) -> str | None:
    return None if USERNAME.match(username) else "invalid_username"


def check_role(role: str) -> str | None:
    return None if role in ROLES else "invalid_role"


def check_post(role: str, post: str | None) -> str | None:
    """Central staff see every post and need none; everyone else belongs to one post."""
    if role == CENTRAL and not post:
        return None
    return None if post and POST.match(post) else "invalid_post"


def check_password(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return "password_too_short"
    if len(password) > PASSWORD_MAX:
        return "password_too_long"
    return None
