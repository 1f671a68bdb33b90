"""Account operations shared by the web pages and the `fieldapp users` commands."""

from __future__ import annotations

import secrets
from functools import cache

from flask import has_request_context
from flask_babel import gettext
from sqlite_utils import Database
from werkzeug.security import check_password_hash, generate_password_hash

from fieldapp.domain import accounts as rules
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
    "password_common": N_(
        "This password is among the most common ones and easy to guess. Choose another, for "
        "example three or four unrelated words."
    ),
    "password_is_username": N_("The password must not be the username."),
    "password_unchanged": N_("The new password must be different from the current one."),
    "wrong_password": N_("The current password is not correct."),
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
           full_name: str = "", must_change: bool = False, actor: audit.Actor = audit.SYSTEM) -> int:
    """Create an account after checking the rules: raises AccountError. Audited as by `actor`."""
    username = username.strip().lower()
    post = (post or "").strip().upper() or None
    _raise_first([
        (rules.check_username(username), "username"), (rules.check_role(role), "role"),
        (rules.check_post(role, post), "post"),
        (rules.check_password(password, username), "password"),
    ])
    try:
        with write(db):
            user_id = users.create(
                db, username=username, password_hash=generate_password_hash(password), role=role,
                post=post, full_name=full_name.strip(), must_change_password=must_change,
            )
            audit.record(db, "account.created", actor=actor, target=f"user:{user_id}",
                         details={"role": role, "post": post, "must_change": bool(must_change)})
            return user_id
    except users.UsernameTaken as e:
        raise AccountError("username_taken", "username") from e


def set_password(db: Database, user_id: int, password: str, *, must_change: bool = False,
                 actor: audit.Actor = audit.SYSTEM) -> None:
    """Give an account a new password (checked against the policy) and end its sessions;
    `must_change=True` makes its holder choose another at the next login."""
    user = users.get(db, user_id)
    _raise_first([(rules.check_password(password, user["username"]), "password")])
    with write(db):
        users.update(db, user_id, password_hash=generate_password_hash(password),
                     must_change_password=int(must_change), end_sessions=True)
        audit.record(db, "account.password_reset", actor=actor, target=f"user:{user_id}",
                     details={"must_change": bool(must_change)})


def change_own_password(db: Database, user: dict, current: str, new: str) -> None:
    """The holder of an account changes its password: the current one must be right, the new one
    different and within the policy. Ends the account's sessions; raises AccountError."""
    if not check_password_hash(user["password_hash"], current):
        raise AccountError("wrong_password", "current")
    if new == current:
        raise AccountError("password_unchanged", "new")
    _raise_first([(rules.check_password(new, user["username"]), "new")])
    with write(db):
        users.update(db, user["id"], password_hash=generate_password_hash(new), must_change_password=0,
                     end_sessions=True)
        audit.record(db, "account.password_changed", actor=audit.Actor.user(user),
                     target=f"user:{user['id']}")


def update(db: Database, user_id: int, *, role: str, post: str | None, full_name: str,
           active: bool, must_change: bool | None = None, actor: audit.Actor = audit.SYSTEM) -> None:
    """Change an account; a new role or post, or disabling it, ends its sessions at once."""
    post = (post or "").strip().upper() or None
    _raise_first([(rules.check_role(role), "role"), (rules.check_post(role, post), "post")])
    changes = {"role": role, "post": post, "full_name": full_name.strip(), "active": int(active)}
    if must_change is not None:
        changes["must_change_password"] = int(must_change)
    change(db, user_id, actor=actor, **changes)


def set_active(db: Database, user_id: int, active: bool, *, actor: audit.Actor = audit.SYSTEM) -> None:
    """Enable or disable an account; disabling ends its sessions at once."""
    change(db, user_id, actor=actor, active=int(active))


def change(db: Database, user_id: int, *, actor: audit.Actor, **changes) -> None:
    """Change an account's columns (storage.users.update) and record which changed: the new role,
    post and status are kept in the event, a new name only as "full_name changed". A new role or
    post, or disabling the account, ends its sessions in the same transaction."""
    with write(db):
        before = users.get(db, user_id) or {}
        changed = sorted(k for k, v in changes.items() if before.get(k) != v)
        ends = bool({"role", "post"} & set(changed)) or changes.get("active", 1) == 0
        users.update(db, user_id, end_sessions=ends, **changes)
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
