"""Log in, log out, and change one's own password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from fieldapp import accounts
from fieldapp.domain.roles import ROLES
from fieldapp.forms.base import Form
from fieldapp.i18n import swap_language
from fieldapp.storage import users
from fieldapp.web import audit, logins
from fieldapp.web.access import allow, log_in, log_out
from fieldapp.web.db import get_db

bp = Blueprint("auth", __name__, url_prefix="/<lang>")


class LoginForm(Form):
    username = StringField(lazy_gettext("Username"), validators=[InputRequired(), Length(max=40)])
    password = PasswordField(lazy_gettext("Password"), validators=[InputRequired(), Length(max=256)])


class LogoutForm(Form):
    pass


class PasswordForm(Form):
    current = PasswordField(lazy_gettext("Current password"), validators=[Length(max=256)])
    new = PasswordField(lazy_gettext("New password"), validators=[Length(max=256)],
                        description=lazy_gettext("At least 10 characters; not a common password "
                                                 "and not your username. Several words are easy "
                                                 "to remember and hard to guess."))
    confirm = PasswordField(lazy_gettext("New password again"), validators=[Length(max=256)])


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
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        username, address = form.username.data.strip().lower(), request.remote_addr
        refused = logins.refusal(username, address)
        if refused:
            error, status = refused.message(), 429
            headers["Retry-After"] = str(refused.retry_after)
            audit.record("auth.login_throttled", details={"retry_after": refused.retry_after})
        elif user := accounts.authenticate(get_db(), username, form.password.data):
            logins.succeeded(username)
            log_in(user)
            audit.record("auth.login", user=user)
            target = _safe_next(request.args.get("next"))
            return redirect(swap_language(target, g.lang) if target else url_for("main.home"))
        else:
            logins.failed(username, address)
            audit.login_failed(username)
            error, status = gettext("Wrong username or password, or the account is disabled."), 401
    elif request.method == "POST":
        error, status = gettext("Enter your username and password."), 401
    return render_template("login.html", form=form, error=error), status, headers


@bp.post("/logout")
@allow(public=True)
def logout():
    if LogoutForm().validate_on_submit():
        if g.user:
            audit.record("auth.logout")
        log_out()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@allow(*ROLES)
def password():
    """Change one's own password; the only page open while an administrator requires it."""
    form = PasswordForm()
    if form.validate_on_submit():
        if form.new.data != form.confirm.data:
            form.confirm.errors = [gettext("The two new passwords are not the same.")]
        else:
            try:
                accounts.change_own_password(get_db(), g.user, form.current.data or "",
                                             form.new.data or "")
            except accounts.AccountError as e:
                form[e.field].errors = [e.message()]
            else:
                # Every session of the account has ended, this one too: carry on in a new one.
                log_in(users.get(get_db(), g.user["id"]))
                flash(gettext("Your password was changed. Other devices must log in again."),
                      "success")
                return redirect(url_for("main.home"))
    return render_template("password.html", form=form), 422 if request.method == "POST" else 200
