"""Audit events from a request, in one line: the actor (the logged-in user, else an anonymous
caller) and the address are taken from the request.

    from fieldapp.web import audit
    audit.record("record.viewed", target=f"record:{uuid}", details={"sections": ["needs"]})
"""

from __future__ import annotations

from flask import g, request

from fieldapp.storage import audit as store
from fieldapp.storage import users
from fieldapp.web.db import get_db


def actor(user: dict | None = None) -> store.Actor:
    """The request's actor: `user` if given, else the logged-in user, else anonymous."""
    user = user or g.get("user")
    address = request.remote_addr or ""
    return store.Actor.user(user, address) if user else store.Actor.anonymous(address)


def record(event: str, target: str = "", details: dict | None = None, *,
           user: dict | None = None) -> int:
    """Append an event done by this request's user (or `user`, e.g. the one logging in)."""
    return store.record(get_db(), event, actor=actor(user), target=target, details=details)


def login_failed(username: str) -> int:
    """A refused login: the account it named, if there is one. What was typed is never kept
    (a password typed in the username field must not land in the log)."""
    user = users.by_username(get_db(), (username or "").strip().lower())
    return store.record(get_db(), "auth.login_failed",
                        actor=store.Actor.anonymous(request.remote_addr or ""),
                        target=f"user:{user['id']}" if user else "",
                        details={"account": "known" if user else "unknown"})
