"""Account operations shared by the web pages and the `fieldapp users` commands."""

from __future__ import annotations

import secrets
from functools import cache

from flask import has_request_context
from flask_babel import gettext
from sqlite_utils import Database
from werkzeug.security import check_password_hash, generate_password_hash

from fieldapp.domain import accounts as rules
from fieldapp.domain.roles import CENTRAL
from fieldapp.i18n import cli_gettext
from fieldapp.storage import audit, users
from fieldapp.storage.db import write


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


MESSAGES = {
    "invalid_username": N_(
        "Usernames have 2 to 40 characters: lowercase letters a–z, digits, dots, dashes and "
        "underscores, starting with a letter or digit."
    ),
    "invalid_role": N_("Choose a role from the list."),
    "invalid_post": N_(
        "Enter the post code in capitals, for example POST-1 (central staff may leave it empty)."
    ),
    "password_too_short": N_("The password must have at least %(min)s characters."),
    "password_too_long": N_("The password must have at most %(max)s characters."),
    "username_taken": N_("That username is already taken."),
}


def message(code: str) -> str:
    """The message for an account error code, in the page's language or else the terminal's."""
    params = {"min": rules.PASSWORD_MIN, "max": rules.PASSWORD_MAX}
    if has_request_context():
        return gettext(MESSAGES[code], **params)
    return cli_gettext(MESSAGES[code], **params)


@cache
def _dummy_hash() -> str:
    """A hash of a password nobody has, checked for unknown usernames so timing reveals nothing."""
    return generate_password_hash(secrets.token_hex(16))


class AccountError(ValueError):
    def __init__(self, code: str, field: str):
        super().__init__(code)
        self.code, self.field = code, field

    def message(self) -> str:
        return message(self.code)


def _raise_first(checks: list[tuple[str | None, str]]) -> None:
    for code, field in checks:
        if code:
            raise AccountError(code, field)


def create(db: Database, *, username: str, password: str, role: str, post: str | None,
           full_name: str = "", actor: audit.Actor = audit.SYSTEM) -> int:
    """Create an account after checking the rules: raises AccountError. Audited as by `actor`."""
    username = username.strip().lower()
    post = (post or "").strip().upper() or None
    _raise_first([
        (rules.check_username(username), "username"), (rules.check_role(role), "role"),
        (rules.check_post(role, post), "post"), (rules.check_password(password), "password"),
    ])
    post = None if role == CENTRAL and not post else post
    try:
        with write(db):
            user_id = users.create(
                db, username=username, password_hash=generate_password_hash(password), role=role,
                post=post, full_name=full_name.strip(),
            )
            audit.record(db, "account.created", actor=actor, target=f"user:{user_id}",
                         details={"role": role, "post": post})
            return user_id
    except users.UsernameTaken as e:
        raise AccountError("username_taken", "username") from e


def set_password(db: Database, user_id: int, password: str, *,
                 actor: audit.Actor = audit.SYSTEM) -> None:
    _raise_first([(rules.check_password(password), "password")])
    with write(db):
        users.update(db, user_id, password_hash=generate_password_hash(password))
        audit.record(db, "account.password_reset", actor=actor, target=f"user:{user_id}")


def update(db: Database, user_id: int, *, role: str, post: str | None, full_name: str,
           active: bool, actor: audit.Actor = audit.SYSTEM) -> None:
    post = (post or "").strip().upper() or None
    _raise_first([(rules.check_role(role), "role"), (rules.check_post(role, post), "post")])
    change(db, user_id, actor=actor, role=role, post=post, full_name=full_name.strip(),
           active=int(active))


def change(db: Database, user_id: int, *, actor: audit.Actor, **changes) -> None:
    """Change an account's columns (storage.users.update) and record which changed: the new role,
    post and status are kept in the event, a new name only as "full_name changed"."""
    with write(db):
        before = users.get(db, user_id) or {}
        users.update(db, user_id, **changes)
        changed = sorted(k for k, v in changes.items() if before.get(k) != v)
        details = {"changed": changed, **{k: changes[k] for k in ("role", "post", "active")
                                          if k in changed}}
        audit.record(db, "account.updated", actor=actor, target=f"user:{user_id}", details=details)


def authenticate(db: Database, username: str, password: str) -> dict | None:
    """The active account with this username and password, or None."""
    user = users.by_username(db, username.strip().lower())
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user["password_hash"], password) or not user["active"]:
        return None
    return user


def generate_password() -> str:
    """A random password an admin can read out: `len(generate_password()) == 16`."""
    return secrets.token_urlsafe(12)
