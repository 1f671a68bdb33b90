"""Log in and log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from fieldapp import accounts
from fieldapp.forms.base import Form
from fieldapp.i18n import swap_language
from fieldapp.storage import users
from fieldapp.web import audit
from fieldapp.web.access import allow, log_in
from fieldapp.web.db import get_db

bp = Blueprint("auth", __name__, url_prefix="/<lang>")


class LoginForm(Form):
    username = StringField(lazy_gettext("Username"), validators=[InputRequired(), Length(max=40)])
    password = PasswordField(lazy_gettext("Password"), validators=[InputRequired(), Length(max=256)])


class LogoutForm(Form):
    pass


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@allow(public=True)
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = accounts.authenticate(get_db(), form.username.data, form.password.data)
        if user:
            log_in(user)
            audit.record("auth.login", user=user)
            target = _safe_next(request.args.get("next"))
            return redirect(swap_language(target, g.lang) if target else url_for("main.home"))
        audit.login_failed(form.username.data)
        error = gettext("Wrong username or password, or the account is disabled.")
    elif request.method == "POST":
        error = gettext("Enter your username and password.")
    return render_template("login.html", form=form, error=error), 200 if error is None else 401


@bp.post("/logout")
@allow(public=True)
def logout():
    if LogoutForm().validate_on_submit():
        if g.user:
            users.end_sessions(get_db(), g.user["id"])
            audit.record("auth.logout")
        session.clear()
    return redirect(url_for("auth.login"))
