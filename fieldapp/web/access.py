"""Deny by default: a view is reachable only if it declares who may use it with `@allow`.

Logins are server-side sessions (storage.sessions): the signed cookie carries a random session id,
the database only its hash. A session ends at logout, when the account is disabled, changes role
or password, after SESSION_IDLE_MINUTES without a request and SESSION_MAX_HOURS after login.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask_babel import lazy_gettext

from fieldapp.domain.sessions import TOUCH_EVERY, Timeouts
from fieldapp.storage import sessions, users
from fieldapp.web import clock
from fieldapp.web.db import get_db
from fieldapp.web.errors import json_error


def allow(*roles: str, public: bool = False):
    """Declare the roles that may use a view: `@allow("officer", "supervisor")`."""

    def mark(view):
        view.allowed_roles = frozenset(roles)
        view.public = public
        return view

    return mark


def only_in(bp, mode: str) -> None:
    """Pages of one mode (field or central): in the other mode they answer 404, as if absent."""

    @bp.before_request
    def check_mode():
        if current_app.config["MODE"] != mode:
            abort(404)


# While an account must change its password, these views stay open; others lead to the change.
OPEN_DURING_PASSWORD_CHANGE = {"auth.password", "auth.logout"}
PASSWORD_CHANGE_FIRST = lazy_gettext("Change your password first: an administrator asked you to "
                                     "choose a new one. What waits on this device is kept.")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def password_stamp(password_hash: str) -> str:
    """A fingerprint of the password hash kept with a session: a new password ends old sessions,
    even one pulled from central by sync."""
    return _hash(password_hash)[:32]


def timeouts() -> Timeouts:
    config = current_app.config
    return Timeouts(idle=float(config["SESSION_IDLE_MINUTES"]) * 60,
                    absolute=float(config["SESSION_MAX_HOURS"]) * 3600)


def log_in(user: dict) -> None:
    """Start a new session: a new id every time, so an id planted before login is worthless."""
    previous = session.get("sid")
    if isinstance(previous, str):  # logging in again, perhaps as someone else: that one ends
        sessions.end(get_db(), _hash(previous))
    session.clear()
    sid = secrets.token_urlsafe(32)
    at = clock.now()
    sessions.start(get_db(), id_hash=_hash(sid), user=user,
                   password_stamp=password_stamp(user["password_hash"]), at=at,
                   expired_before=at - timeouts().idle)
    session["sid"] = sid
    # A cookie that outlives a browser crash or a restarted tablet; the server ends it sooner.
    session.permanent = True


def log_out() -> None:
    """End every session of the logged-in account, on every device, and clear this cookie."""
    if g.get("user"):
        users.end_sessions(get_db(), g.user["id"])
    session.clear()


def _load_user() -> dict | None:
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    db, id_hash, at = get_db(), _hash(sid), clock.now()
    found = sessions.find(db, id_hash)
    user = users.get(db, found["user_id"]) if found else None
    if (
        user is None or not user["active"]
        or found["generation"] != user["session_generation"]
        or found["password_stamp"] != password_stamp(user["password_hash"])
        or timeouts().expired(created_at=found["created_at"], last_seen=found["last_seen"], now=at)
    ):
        if found:
            sessions.end(db, id_hash)
        session.clear()
        return None
    if at - found["last_seen"] >= TOUCH_EVERY:
        sessions.touch(db, id_hash, at)
    return user


def _password_change_first():
    if request.blueprint in ("api", "sync"):
        return json_error(403, "password_change", PASSWORD_CHANGE_FIRST)
    return redirect(url_for("auth.password"))


def init_app(app: Flask) -> None:
    @app.before_request
    def check_access():
        g.user = None
        if request.endpoint is None or request.endpoint == "static":
            return None  # 404 or a static file
        view = app.view_functions[request.endpoint]
        if getattr(view, "public", False):
            g.user = _load_user()
            return None
        roles = getattr(view, "allowed_roles", None)
        if roles is None:
            abort(403)  # a view that declares nothing is closed to everyone
        g.user = _load_user()
        if g.user is None:
            if request.method in ("GET", "HEAD") and request.blueprint != "api":
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            abort(401)
        if g.user["role"] not in roles:
            abort(403)
        if g.user["must_change_password"] and request.endpoint not in OPEN_DURING_PASSWORD_CHANGE:
            return _password_change_first()
        return None

    @app.context_processor
    def inject_user():
        return {"current_user": g.get("user")}
