"""Home page, the language-less root, and versioned static URLs."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, current_app, g, redirect, render_template, url_for

from fieldapp.domain import roles
from fieldapp.storage import records
from fieldapp.web.access import allow
from fieldapp.web.db import get_db
from fieldapp.web.trainings import open_sessions_today

bp = Blueprint("main", __name__)


@cache
def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:10]


def asset_url(filename: str) -> str:
    """A static URL that changes when the file does, so it can be cached for good."""
    path = Path(current_app.static_folder) / filename
    return url_for("static", filename=filename, v=_digest(str(path)))


@bp.get("/")
@allow(public=True)
def root():
    return redirect(url_for("main.home"))


@bp.get("/<lang>/")
@allow(*roles.ROLES)
def home():
    user = g.user
    if current_app.config["MODE"] == "central" and user["role"] in roles.CENTRAL_DASHBOARD:
        return redirect(url_for("central.dashboard"))
    context = {}
    if user["role"] in roles.RECORD_READERS:
        post = None if roles.sees_all_posts(user["role"]) else user["post"]
        context["intake_count"] = records.count(get_db(), "intake", post)
    if user["role"] in roles.RECORD_CAPTURERS:
        # Today's check-ins, one tap from the home page: offline, course pages are not at hand.
        context["today"] = [(s, records.get(get_db(), s["parent"]))
                            for s in open_sessions_today(user["post"])]
    return render_template("home.html", **context)
