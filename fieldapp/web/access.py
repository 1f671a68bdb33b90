"""Deny by default: a view is reachable only if it declares who may use it with `@allow`."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, abort, current_app, g, redirect, request, session, url_for

from fieldapp.storage import users
from fieldapp.web.db import get_db


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


def password_stamp(password_hash: str) -> str:
    """A fingerprint of the password hash kept in the session: a new password ends old sessions."""
    key = current_app.secret_key.encode()
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()[:16]


def log_in(user: dict) -> None:
    session.clear()
    session["uid"] = user["id"]
    session["stamp"] = password_stamp(user["password_hash"])
    session["generation"] = user["session_generation"]
    # A cookie that outlives a browser crash or a restarted tablet: records queued offline are
    # sent without logging in again, until PERMANENT_SESSION_LIFETIME passes without a visit.
    session.permanent = True


def _load_user() -> dict | None:
    uid = session.get("uid")
    if uid is None:
        return None
    user = users.get(get_db(), uid)
    if (
        not user or not user["active"]
        or session.get("stamp") != password_stamp(user["password_hash"])
        or session.get("generation") != user["session_generation"]
    ):
        session.clear()
        return None
    return user


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
        return None

    @app.context_processor
    def inject_user():
        return {"current_user": g.get("user")}
